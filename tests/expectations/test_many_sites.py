"""Many sites in one call (the evaluation run's plan): each kind's partitions of all sites are
checked in one batch, and every outcome is the one a call per site gives."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion.paths import data_paths
from tests.expectations.conftest import FIRST_DAY, SITE, alerts, passages

OTHER = "lt_airport_block"  # a second small pilot site with passages and alerts
DAYS = [FIRST_DAY + dt.timedelta(days=i) for i in range(3)]


def _comparable(report) -> set[tuple]:
    """Outcomes without the run id and the clock."""
    skip = {"run_id", "validated_at_utc"}
    return {tuple(v for k, v in dataclasses.asdict(o).items() if k not in skip) for o in report.outcomes}


def _rewrite(data_dir, site: str, day: dt.date, column: str, change) -> int:
    """Change `column` in the rows whose event id ends in 7; the number of rows changed."""
    path = data_paths(data_dir).partition("passages", site, day.isoformat()) / "data.parquet"
    table = pq.read_table(path)
    ids, values = table.column("event_id").to_pylist(), table.column(column).to_pylist()
    changed = [change(v) if i.endswith("7") else v for i, v in zip(ids, values, strict=True)]
    field = table.schema.field(column)
    pq.write_table(table.set_column(table.schema.get_field_index(column), field, pa.array(changed, field.type)), path)
    return sum(1 for i in ids if i.endswith("7"))


@pytest.fixture
def two_sites(land, registry) -> None:
    """Three clean days of passages and alerts for two sites; the same event ids in both (keys are per site)."""
    for site in (SITE, OTHER):
        for day in DAYS:
            land("passages", day, passages(registry.site(site).residents, day, seed=11), site=site)
            land("alerts", day, alerts(day, seed=11), site=site)


def test_one_call_for_many_sites_equals_one_call_per_site(validator, two_sites, data_dir):
    bad_direction = _rewrite(data_dir, OTHER, DAYS[1], "direction", lambda _: "sideways")
    wrong_site = _rewrite(data_dir, SITE, DAYS[2], "site_id", lambda _: OTHER)  # rows of another site
    plan = {site: {"passages": DAYS, "alerts": DAYS} for site in (SITE, OTHER)}

    together = validator.validate_plan(plan, run_id="together")

    failures = sorted((o.site_id, o.partition_date, o.expectation) for o in together.failures)
    assert failures == sorted(
        [(OTHER, DAYS[1], "value_set:direction"), (SITE, DAYS[2], "site_matches_partition:site_id")]
    ), failures
    counts = {o.expectation: o.unexpected_count for o in together.failures}
    assert counts == {"value_set:direction": bad_direction, "site_matches_partition:site_id": wrong_site}
    assert OTHER in next(o for o in together.failures if o.site_id == SITE).unexpected_examples
    per_site = set()
    for site in (SITE, OTHER):
        per_site |= _comparable(validator.validate([site], DAYS, ["passages", "alerts"], run_id="alone"))
    assert _comparable(together) == per_site


def test_plan_skips_kinds_a_site_does_not_deliver(validator, two_sites):
    report = validator.validate_plan({"cy_old_estate": {"passages": DAYS}}, run_id="none")
    assert not report.outcomes
    assert report.skipped == ["passages cy_old_estate: the site has no passages source"]
