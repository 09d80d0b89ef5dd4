"""Landing suites: a clean week passes; each fault fails the expected expectation with its severity."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ingestion.paths import data_paths
from tests.expectations.conftest import SITE, alerts, passages


def failed(report, severity: str | None = None) -> set[str]:
    return {o.expectation for o in report.failures if severity is None or o.severity == severity}


def partition_file(data_dir, kind: str, day: dt.date):
    return data_paths(data_dir).partition(kind, SITE, day.isoformat()) / "data.parquet"


def test_clean_week_passes_every_suite(validator, clean_week):
    report = validator.validate([SITE], clean_week, ["passages", "alerts"], run_id="clean")
    assert report.outcomes, "nothing was validated"
    assert not report.failures, [(o.expectation, o.observed_value) for o in report.failures]
    suites = {o.suite for o in report.outcomes}
    assert suites == {
        "landing.partition",
        "landing.passages.schema",
        "landing.passages",
        "landing.alerts.schema",
        "landing.alerts",
    }
    # the history bound applied once three earlier days existed
    history = [o for o in report.outcomes if o.expectation == "rows_vs_history" and o.kind == "passages"]
    assert len(history) == len(clean_week)


def test_renamed_column_is_critical_schema_drift(validator, clean_week, data_dir):
    day = clean_week[-1]
    path = partition_file(data_dir, "passages", day)
    table = pq.read_table(path)
    pq.write_table(table.rename_columns(["happen_time" if c == "event_time" else c for c in table.column_names]), path)
    report = validator.validate_partition("passages", SITE, day, "drift")
    critical = failed(report, "critical")
    assert {"schema_columns:column_name", "not_null:event_time"} <= critical
    drift = next(o for o in report.outcomes if o.expectation == "schema_columns:column_name")
    assert "happen_time" in drift.observed_value and "event_time" in drift.observed_value


def test_number_as_string_is_a_critical_type_failure(validator, clean_week, data_dir):
    day = clean_week[-1]
    path = partition_file(data_dir, "passages", day)
    con = duckdb.connect()
    con.execute(
        f"copy (select * replace (cast(temperature_c as varchar) as temperature_c) from read_parquet('{path}', hive_partitioning = false)) "
        f"to '{path}.new' (format parquet)"
    )
    con.close()
    shutil.move(f"{path}.new", path)
    report = validator.validate_partition("passages", SITE, day, "drift")
    assert failed(report, "critical") == {"column_type"}, [(o.expectation, o.observed_value) for o in report.failures]
    outcome = next(o for o in report.outcomes if o.expectation == "column_type")
    assert "temperature_c" in outcome.unexpected_examples


def test_malformed_rows_beyond_threshold_fail_the_quarantine_share(validator, land, registry):
    day = dt.date(2026, 1, 5)
    records = passages(registry.site(SITE).residents, day, seed=3)
    for row in records[: len(records) // 10]:  # 10% with an unreadable timestamp
        row["event_time"] = "2026-13-45 25:61"
    result = land("passages", day, records)
    assert result.rows_quarantined == len(records) // 10
    report = validator.validate_partition("passages", SITE, day, "malformed")
    assert failed(report, "critical") == {"quarantine_share_critical:quarantined_share_counted"}
    assert failed(report, "warning") == {"quarantine_share_warning:quarantined_share"}


def test_one_malformed_row_in_a_tiny_partition_only_warns(validator, land, registry):
    """1 of 10 rows is over the critical share, but one bad row is no broken feed."""
    day = dt.date(2026, 1, 5)
    records = passages(registry.site(SITE).residents, day, seed=3)[:10]
    records[0]["event_time"] = "2026-13-45 25:61"
    assert land("passages", day, records).rows_quarantined == 1
    report = validator.validate_partition("passages", SITE, day, "tiny")
    assert "quarantine_share_critical:quarantined_share_counted" not in failed(report, "critical")
    assert "quarantine_share_warning:quarantined_share" in failed(report, "warning")


def test_malformed_rows_under_the_critical_threshold_only_warn(validator, land, registry):
    day = dt.date(2026, 1, 5)
    records = passages(registry.site(SITE).residents, day, seed=3)
    for row in records[: len(records) // 50]:  # 2%
        row["temperature_c"] = 0.0
    land("passages", day, records)
    report = validator.validate_partition("passages", SITE, day, "malformed")
    assert report.ok
    assert failed(report, "warning") == {"quarantine_share_warning:quarantined_share"}


def test_truncated_file_is_a_critical_unreadable_partition(validator, clean_week, data_dir):
    day = clean_week[-1]
    path = partition_file(data_dir, "passages", day)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    report = validator.validate_partition("passages", SITE, day, "truncated")
    assert failed(report, "critical") == {"partition_readable:readable"}
    outcome = report.critical_failures[0]
    assert outcome.observed_value and "parquet" in outcome.observed_value.lower()


def test_duplicated_file_fails_natural_key_uniqueness(validator, clean_week, data_dir):
    day = clean_week[-1]
    path = partition_file(data_dir, "passages", day)
    shutil.copy(path, path.with_name("data(1).parquet"))
    report = validator.validate_partition("passages", SITE, day, "duplicated")
    assert "natural_key_unique:event_id" in failed(report, "critical")
    outcome = next(o for o in report.outcomes if o.expectation == "natural_key_unique:event_id")
    rows = pq.ParquetFile(path).metadata.num_rows
    assert outcome.unexpected_count == 2 * rows


@pytest.mark.parametrize("how", ["missing", "empty"])
def test_a_day_with_no_data_is_critical_for_a_daily_kind(validator, clean_week, land, how):
    day = clean_week[-1] + dt.timedelta(days=1)
    if how == "empty":
        land("passages", day, [])  # the writer lands an empty partition when the source had nothing
    report = validator.validate([SITE], [day], ["passages"], run_id="nodata")
    critical = {"rows_vs_registry_min"} | ({"partition_present:present"} if how == "missing" else set())
    assert failed(report, "critical") == critical
    assert failed(report, "warning") == {"rows_vs_history"}


def test_a_sparse_kind_may_be_empty_but_not_undelivered(validator, clean_week, land):
    empty_day, missing_day = (clean_week[-1] + dt.timedelta(days=n) for n in (1, 2))
    land("alerts", empty_day, [])  # a quiet day: no alerts at all
    report = validator.validate([SITE], [empty_day, missing_day], ["alerts"], run_id="sparse")
    assert {(o.partition_date, o.expectation) for o in report.failures} == {(missing_day, "partition_present:present")}
    assert report.critical_failures and not report.ok


def test_rows_outside_the_local_day_are_critical(validator, clean_week, data_dir):
    """A UTC/local mix-up shifts rows into the neighbouring day: the partition must not hold them."""
    day = clean_week[-1]
    path = partition_file(data_dir, "passages", day)
    con = duckdb.connect()
    con.execute(
        f"copy (select * replace (event_time + interval 8 hour as event_time) from read_parquet('{path}', hive_partitioning = false)) "
        f"to '{path}.new' (format parquet)"
    )
    con.close()
    shutil.move(f"{path}.new", path)
    report = validator.validate_partition("passages", SITE, day, "tz")
    assert failed(report, "critical") == {"day_inside_partition:event_time"}
    outcome = report.critical_failures[0]
    assert 0 < outcome.unexpected_count < pq.ParquetFile(path).metadata.num_rows


def test_a_sudden_drop_against_the_previous_week_warns(validator, clean_week, land, registry):
    day = clean_week[-1] + dt.timedelta(days=1)
    land("passages", day, passages(registry.site(SITE).residents, day, seed=7, per_resident=0.9))
    report = validator.validate_partition("passages", SITE, day, "drop")
    assert report.ok, "about a third of the usual rows is suspicious, not blocking"
    assert failed(report) == {"rows_vs_history"}


def test_negative_duration_that_reached_landing_warns(validator, land, data_dir):
    day = dt.date(2026, 1, 5)
    land("alerts", day, alerts(day, seed=1))
    path = partition_file(data_dir, "alerts", day)
    con = duckdb.connect()
    con.execute(
        f"copy (select * replace (case when alert_id like '%0001' then raised_time - interval 1 hour "
        f"else closed_time end as closed_time) from read_parquet('{path}', hive_partitioning = false)) to '{path}.new' (format parquet)"
    )
    con.close()
    shutil.move(f"{path}.new", path)
    report = validator.validate_partition("alerts", SITE, day, "order")
    assert report.ok
    assert failed(report, "warning") == {"time_order:closed_time>=raised_time"}


def test_a_fault_in_one_day_of_a_week_is_reported_on_that_day_only(validator, clean_week, data_dir):
    """The week is checked as one batch; a failing check is traced back to its day with its count and values."""
    import pyarrow as pa

    from expectations.landing import partition_facts

    bad_day = clean_week[3]
    path = partition_file(data_dir, "passages", bad_day)
    table = pq.read_table(path)
    ids, directions = table.column("event_id").to_pylist(), table.column("direction").to_pylist()
    changed = ["sideways" if i.endswith("7") else d for i, d in zip(ids, directions, strict=True)]
    bad_rows = changed.count("sideways")
    field = table.schema.field("direction")
    pq.write_table(
        table.set_column(table.schema.get_field_index("direction"), field, pa.array(changed, field.type)), path
    )
    paths = data_paths(data_dir)
    assert (
        partition_facts(paths, "passages", SITE, bad_day).schema
        == partition_facts(paths, "passages", SITE, clean_week[0]).schema
    ), "the damaged day must share the batch of the clean days"
    report = validator.validate([SITE], clean_week, ["passages"], run_id="one-bad-day")
    failures = [(o.partition_date, o.expectation) for o in report.failures]
    assert failures == [(bad_day, "value_set:direction")], failures
    outcome = report.failures[0]
    assert outcome.severity == "critical" and outcome.unexpected_count == bad_rows > 0
    assert "sideways" in outcome.unexpected_examples
    # every day still has its own outcome for every expectation, passed or not
    per_day = {d: {o.expectation for o in report.outcomes if o.partition_date == d} for d in clean_week}
    assert all(names == per_day[bad_day] for names in per_day.values())
    passed = next(
        o for o in report.outcomes if o.partition_date == clean_week[0] and o.expectation == "value_set:direction"
    )
    rows = pq.ParquetFile(partition_file(data_dir, "passages", clean_week[0])).metadata.num_rows
    assert passed.success and passed.observed_value == f"0 of {rows} rows unexpected"


def test_register_snapshots_of_two_months_repeat_keys_without_failing(validator, data_dir):
    """Natural keys are unique per partition: the same residents in two monthly snapshots are no duplicates."""
    import pyarrow as pa

    from ingestion.contract import contract

    days = [dt.date(2026, 1, 1), dt.date(2026, 2, 1)]
    for day in days:
        n = 800
        rows = {
            "snapshot_date": [day] * n,
            "person_key": [f"{i:032x}" for i in range(n)],
            "household_key": [f"h{i // 3:031x}" for i in range(n)],
            "building": ["1"] * n,
            "age_band": ["35-59"] * n,
            "is_elderly": [False] * n,
            "lives_alone": [None] * n,
            "last_verified_date": [day] * n,
            "site_id": [SITE] * n,
            "_run_id": ["r"] * n,
            "_source_shape": ["manual_xlsx"] * n,
            "_source_record_id": [None] * n,
            "_fetched_at_utc": [dt.datetime(2026, 1, 1, 2, 0)] * n,
        }
        folder = data_paths(data_dir).partition("register", SITE, day.isoformat())
        folder.mkdir(parents=True)
        pq.write_table(pa.Table.from_pydict(rows, schema=contract("register").schema), folder / "data.parquet")
    report = validator.validate([SITE], [days[0], days[0] + dt.timedelta(days=1), days[1]], ["register"], "snap")
    assert not report.failures, [(o.partition_date, o.expectation, o.observed_value) for o in report.failures]
    assert {o.partition_date for o in report.outcomes} == set(days)
    assert len(report.skipped) == 1  # the day without a snapshot


def test_gx_batch_fingerprint_setting_still_exists():
    """expectations.engine turns off GX's per-batch md5 of every value; a GX upgrade that renames the
    setting would silently bring back the cost (about as much as all the checks on a month)."""
    import great_expectations.execution_engine.pandas_execution_engine as gx_pandas_engine

    import expectations.engine  # noqa: F401  (applies the setting)

    assert gx_pandas_engine.HASH_THRESHOLD == 0
    source = Path(gx_pandas_engine.__file__).read_text(encoding="utf-8")
    assert "< HASH_THRESHOLD" in source and "pandas_data_fingerprint" in source
