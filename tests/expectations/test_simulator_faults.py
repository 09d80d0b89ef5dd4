"""The landing suites on data that came the real way: simulator (HTTP, file drops) -> ingestion pull -> landing.

Each fault is switched on in the simulator for one day only, pulled by ingestion and
validated; landed row counts are compared with the simulator's ground truth. Faults that
ingestion absorbs (a renamed vendor field, a file dropped twice) must NOT raise a data
alarm: the partition then passes and equals the truth.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from expectations.landing import LandingValidator
from ingestion.http import FetchError
from ingestion.paths import data_paths
from ingestion.pull import pull
from ingestion.registry import load_registry
from tests.fixtures.simulator import SimulatorHandle, start_simulator

SITE = "cy_commerce_block"  # ISC APIs for gates and alerts, a daily GBK CSV for service cases
CLEAN_DAYS = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(5)]
WORLD_END = "2026-01-14"  # listings after this are empty: "a day with no data"


class World:
    """A running simulator, its environment applied, and a landing zone fed by ingestion."""

    def __init__(self, sim: SimulatorHandle, data_dir: Path, gx_engine) -> None:
        self.sim = sim
        self.data_dir = data_dir
        self.registry = load_registry()
        self.validator = LandingValidator(data_dir=data_dir, registry=self.registry, engine=gx_engine)

    def pull(self, kind: str, first: dt.date, last: dt.date | None = None):
        return pull(SITE, kind, first, last or first, registry=self.registry, paths=data_paths(self.data_dir))

    def truth_rows(self, kind: str, day: dt.date) -> int:
        return self.sim.control.truth(SITE, kind, day.isoformat(), day.isoformat())["rows"]

    def with_fault(self, rule: dict, day: dt.date) -> None:
        self.sim.control.set_faults([{**rule, "site": SITE, "days": [day.isoformat()]}])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, gx_engine) -> Iterator[World]:
    work = tmp_path_factory.mktemp("sim_faults")
    with (
        start_simulator(work / "sim", end=WORLD_END, anomalies=0, quiet=True) as sim,
        pytest.MonkeyPatch.context() as mp,
    ):
        for name, value in sim.env.items():
            mp.setenv(name, value)
        # the package's per-test key (conftest.py), from the first landing on: a landing zone keeps one key
        mp.setenv("SMARTCOMM_PSEUDONYM_KEY", "test-pseudonym-key")
        w = World(sim, work / "data", gx_engine)
        sim.control.drop_files(CLEAN_DAYS[0].isoformat(), CLEAN_DAYS[-1].isoformat(), site=SITE, kind="service_cases")
        for kind in ("passages", "alerts", "service_cases"):
            w.pull(kind, CLEAN_DAYS[0], CLEAN_DAYS[-1])
        yield w


@pytest.fixture(autouse=True)
def _no_faults_left(request) -> Iterator[None]:
    yield
    if "world" in request.fixturenames:
        request.getfixturevalue("world").sim.control.clear_faults()


def rows_landed(report, kind: str) -> int:
    outcome = next(o for o in report.outcomes if o.kind == kind and o.expectation == "rows_vs_registry_min")
    return int(outcome.observed_value)


def failed(report) -> set[tuple[str, str]]:
    return {(o.expectation, o.severity) for o in report.failures}


def test_clean_days_from_the_simulator_pass_and_match_the_truth(world):
    report = world.validator.validate([SITE], CLEAN_DAYS, ["passages", "alerts", "service_cases"], run_id="sim-clean")
    assert not report.failures, [(o.kind, o.partition_date, o.expectation, o.observed_value) for o in report.failures]
    truth = world.sim.control.truth(SITE, "passages", CLEAN_DAYS[0].isoformat(), CLEAN_DAYS[-1].isoformat())
    landed = {
        o.partition_date.isoformat(): int(o.observed_value)
        for o in report.outcomes
        if o.kind == "passages" and o.expectation == "rows_vs_registry_min"
    }
    assert landed == truth["by_day"]


@pytest.mark.slow
def test_a_clean_week_of_every_kind_passes(world, tmp_path):
    """All eleven kinds of the site for eight days, pulled into a fresh landing zone."""
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(8)]
    fresh = World(world.sim, tmp_path / "data", world.validator.engine)
    world.sim.control.drop_files(days[0].isoformat(), days[-1].isoformat(), site=SITE)
    for kind in fresh.registry.site(SITE).sources:
        fresh.pull(kind, days[0], days[-1])
    report = fresh.validator.validate([SITE], days, None, run_id="sim-week")
    assert not report.failures, [(o.kind, o.partition_date, o.expectation, o.observed_value) for o in report.failures]
    assert {o.kind for o in report.outcomes} == set(fresh.registry.site(SITE).sources), "a kind was not validated"


def test_malformed_rows_beyond_threshold_are_critical(world):
    day = dt.date(2026, 1, 6)
    world.with_fault({"fault": "malformed_rows", "kind": "passages", "params": {"rate": 0.1}}, day)
    world.pull("passages", day)
    truth = world.sim.control.truth(SITE, "passages", day.isoformat(), day.isoformat())
    report = world.validator.validate_partition("passages", SITE, day, "sim-malformed")
    assert failed(report) == {
        ("quarantine_share_critical:quarantined_share_counted", "critical"),
        ("quarantine_share_warning:quarantined_share", "warning"),
    }
    malformed = sum(1 for m in truth["malformed"] if m["day"] == day.isoformat())
    assert f"{malformed} of " in report.critical_failures[0].observed_value
    assert rows_landed(report, "passages") == truth["rows"]


def test_vendor_schema_drift_is_absorbed_by_the_mapping_and_raises_no_false_alarm(world):
    """ISC renames eventTime to happenTime: ingestion maps the synonym, the partition is whole."""
    day = dt.date(2026, 1, 7)
    world.with_fault({"fault": "schema_drift", "kind": "passages", "params": {"variant": "renamed_field"}}, day)
    world.pull("passages", day)
    report = world.validator.validate_partition("passages", SITE, day, "sim-drift")
    assert not report.failures, failed(report)
    assert rows_landed(report, "passages") == world.truth_rows("passages", day)


def test_truncated_file_leaves_the_day_undelivered_which_is_critical(world):
    day = dt.date(2026, 1, 8)
    world.with_fault({"fault": "truncated_file", "kind": "service_cases"}, day)
    world.sim.control.drop_files(day.isoformat(), day.isoformat(), site=SITE, kind="service_cases")
    with pytest.raises(FetchError, match="truncated"):
        world.pull("service_cases", day)
    report = world.validator.validate_partition("service_cases", SITE, day, "sim-truncated")
    assert failed(report) == {("partition_present:present", "critical")}


def test_file_dropped_twice_is_deduplicated_and_passes(world):
    day = dt.date(2026, 1, 9)
    world.with_fault({"fault": "duplicate_file", "kind": "service_cases"}, day)
    files = world.sim.control.drop_files(day.isoformat(), day.isoformat(), site=SITE, kind="service_cases")
    assert any("(1)" in os.path.basename(f) for f in files), files
    world.pull("service_cases", day)
    report = world.validator.validate_partition("service_cases", SITE, day, "sim-duplicate")
    assert not report.failures, failed(report)
    unique = next(o for o in report.outcomes if o.expectation == "natural_key_unique:case_id")
    assert unique.success and unique.unexpected_count == 0
    assert rows_landed(report, "service_cases") == world.truth_rows("service_cases", day)


def test_a_day_with_no_data_is_critical(world):
    """The vendor answers, but with nothing: ingestion lands an empty day, the suite flags it."""
    day = dt.date.fromisoformat(WORLD_END) + dt.timedelta(days=1)
    outcome = world.pull("passages", day)
    assert outcome.figures.rows_landed == 0
    report = world.validator.validate_partition("passages", SITE, day, "sim-nodata")
    assert ("rows_vs_registry_min", "critical") in failed(report)
    assert not report.ok
