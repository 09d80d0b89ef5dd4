"""dq_results, pipeline errors versus bad data, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import duckdb
import pandas as pd
import pytest

from expectations.cli import main
from expectations.results import CriticalDataQualityError, DataQualityPipelineError, write_results
from expectations.suites import content_suite_name
from tests.expectations.conftest import SITE


def test_an_expectation_that_raises_is_a_pipeline_error_not_bad_data(validator, gx_engine):
    """GX catches exceptions inside expectations and reports success=False; we must not read that as data."""
    from expectations.landing import partition_parameters
    from expectations.rules import kind_rules

    validator._ensure("alerts")
    day = dt.date(2026, 1, 5)
    parameters = partition_parameters(
        validator.paths, validator.registry.site(SITE), "alerts", day, kind_rules("alerts")
    )
    broken = pd.DataFrame({"alert_id": ["A1"]})  # the suite's other columns are absent: its checks raise
    with pytest.raises(DataQualityPipelineError, match="raised instead of checking the data"):
        gx_engine.run(content_suite_name("alerts"), broken, parameters, "broken-run")
    with pytest.raises(DataQualityPipelineError, match="before checking the data"):
        gx_engine.run(content_suite_name("alerts"), broken, {}, "no-parameters")


def test_critical_failure_stops_the_pipeline_step(validator, clean_week, data_dir):
    day = clean_week[-1] + dt.timedelta(days=1)  # no passages that day
    report = validator.validate([SITE], [day], ["passages"], run_id="stop")
    with pytest.raises(CriticalDataQualityError, match="rows_vs_registry_min"):
        report.raise_for_critical()
    clean = validator.validate([SITE], clean_week[-1:], ["passages"], run_id="go")
    clean.raise_for_critical()  # no exception: warnings or passes never block


def test_dq_results_written_once_per_run_and_partition_without_holding_the_file(validator, clean_week, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    report = validator.validate([SITE], clean_week[-2:], ["passages"], run_id="run-a")
    assert write_results(report.outcomes, db) == len(report.outcomes)
    write_results(report.outcomes, db)  # re-run of the same run: replaces, never duplicates
    other = validator.validate([SITE], clean_week[-1:], ["passages"], run_id="run-b")
    write_results(other.outcomes, db)
    con = duckdb.connect(str(db), read_only=True)  # would fail if the writer still held the file
    try:
        counts = dict(con.execute("select run_id, count(*) from dq_results group by run_id").fetchall())
        columns = [r[0] for r in con.execute("describe dq_results").fetchall()]
    finally:
        con.close()
    assert counts == {"run-a": len(report.outcomes), "run-b": len(other.outcomes)}
    for column in (
        "run_id",
        "layer",
        "site_id",
        "kind",
        "partition_date",
        "suite",
        "expectation",
        "severity",
        "success",
        "observed_value",
        "unexpected_count",
        "unexpected_examples",
    ):
        assert column in columns


def test_unexpected_examples_never_carry_pseudonym_values(validator, data_dir):
    """Duplicate register keys fail uniqueness, but the person keys are not copied into dq_results."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ingestion.contract import contract
    from ingestion.paths import data_paths

    day = dt.date(2026, 1, 1)
    keys = [f"{i:032x}" for i in range(800)]
    keys[1] = keys[0]  # the same resident twice
    now = dt.datetime(2026, 1, 1, 2, 0)
    rows = {
        "snapshot_date": [day] * 800,
        "person_key": keys,
        "household_key": [f"h{i // 3:031x}" for i in range(800)],
        "building": ["1"] * 800,
        "age_band": ["35-59"] * 800,
        "is_elderly": [False] * 800,
        "lives_alone": [None] * 800,
        "last_verified_date": [day] * 800,
        "site_id": [SITE] * 800,
        "_run_id": ["r"] * 800,
        "_source_shape": ["manual_xlsx"] * 800,
        "_source_record_id": [None] * 800,
        "_fetched_at_utc": [now] * 800,
    }
    folder = data_paths(data_dir).partition("register", SITE, day.isoformat())
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pydict(rows, schema=contract("register").schema), folder / "data.parquet")
    report = validator.validate_partition("register", SITE, day, "pii")
    assert {o.expectation for o in report.failures} == {"natural_key_unique:person_key"}
    outcome = report.failures[0]
    assert outcome.unexpected_count == 2 and outcome.unexpected_examples is None
    text = json.dumps([(o.observed_value, o.unexpected_examples) for o in report.outcomes])
    assert keys[0] not in text


def test_cli_prints_a_table_and_exits_non_zero_on_critical(clean_week, data_dir, tmp_path):
    day = clean_week[-1] + dt.timedelta(days=1)  # a day with no passages
    env = {**os.environ, "SMARTCOMM_GX_DIR": str(tmp_path / "gx"), "GX_ANALYTICS_ENABLED": "false"}
    cmd = [
        sys.executable,
        "-m",
        "expectations",
        "validate",
        "--layer",
        "landing",
        "--site",
        SITE,
        "--date",
        day.isoformat(),
        "--kind",
        "passages",
        "--data-dir",
        str(data_dir),
        "--results-db",
        str(tmp_path / "dq.duckdb"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL" in done.stdout and "partition_present" in done.stdout and "critical" in done.stdout
    con = duckdb.connect(str(tmp_path / "dq.duckdb"), read_only=True)
    try:
        failed = con.execute("select count(*) from dq_results where not success and severity = 'critical'").fetchone()[
            0
        ]
    finally:
        con.close()
    assert failed >= 1


def test_cli_exit_zero_on_a_clean_day(clean_week, data_dir, tmp_path, capsys):
    code = main(
        [
            "validate",
            "--layer",
            "landing",
            "--site",
            SITE,
            "--date",
            clean_week[-1].isoformat(),
            "--kind",
            "passages",
            "--kind",
            "alerts",
            "--data-dir",
            str(data_dir),
            "--gx-dir",
            str(tmp_path / "gx"),
            "--no-write",
            "--docs",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 failed" in out
    index = out.split("data docs: ")[1].strip()
    assert index.endswith("index.html") and os.path.exists(index)


def test_every_cli_command_has_help_with_an_example():
    from expectations.cli import build_parser

    parser = build_parser()
    assert "Example:" in parser.epilog
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        assert command.epilog and "Example:" in command.epilog, f"{name} has no example"
