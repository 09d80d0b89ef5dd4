"""Early warning (dbt_project/models/warnings/) against the simulator's labelled episodes.

Default suite: four weeks of baseline plus two evaluated weeks of all ten sites (registry
x0.1, only the kinds the detectors read, many episodes per quarter so every type shows up),
landed straight into the landing zone as the other dbt tests do. It checks recall and
precision against the labels, the explanation of every warning, that re-running a day
changes neither the warnings nor the alerts, and that an ongoing episode keeps its id.
A quiet full-size quarter checks that small counts raise no warning; the labelled quarter at
demo scale is marked slow; the figures on the demo's own path are `make bench`'s
(bench/warnings_eval.py) and dbt_project/README.md's ("Early warning").
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from bench.transform_data import day_range
from bench.warnings_eval import (
    WARM_UP_DAYS,
    Window,
    build_warnings,
    evaluation_config,
    labelled_episodes,
    land_days,
    land_window,
    read_warnings,
    score,
    warning_world,
)
from ingestion.paths import DataPaths, data_paths
from pipeline.alerts import recorded_alerts
from pipeline.warnings import early_warning

# Levels established on this window (measured: see the README); a drop below them fails.
MIN_RECALL = 0.85
MIN_PRECISION = 0.8
DEMO_SCALE_MIN_RECALL = 0.8  # the quarter at demo scale (slow): below the 0.9, see the README
EPISODES_PER_QUARTER = 26  # about two a week per site: every type appears in two weeks
WINDOW = Window(dt.date(2026, 4, 13), dt.date(2026, 4, 26))


@dataclass
class BuiltWarnings:
    paths: DataPaths
    registry: Any
    world: Any

    def warnings(self) -> list[dict[str, Any]]:
        return read_warnings(self.paths.warehouse_db)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarnings:
    """The window without its last day landed and built; tests land and rebuild that day."""
    paths = data_paths(tmp_path_factory.mktemp("warnings"))
    registry, world = warning_world(EPISODES_PER_QUARTER)
    first = WINDOW.start - dt.timedelta(days=WARM_UP_DAYS)
    land_days(paths, registry, world, day_range(first, WINDOW.end - dt.timedelta(days=1)), "warnings-run-1")
    build_warnings(paths)
    return BuiltWarnings(paths, registry, world)


@pytest.fixture(scope="module")
def complete(built: BuiltWarnings) -> dict[str, Any]:
    """The last day landed and rebuilt incrementally, as the daily run does; the warnings
    before and after, and the alerts raised after each build."""
    state = built.paths.state_db
    before = built.warnings()
    first_alerts = early_warning(built.paths.warehouse_db, state, hooks=[])
    land_days(built.paths, built.registry, built.world, [WINDOW.end], "warnings-run-2")
    build_warnings(built.paths, [WINDOW.end.isoformat()])
    after = built.warnings()
    second_alerts = early_warning(built.paths.warehouse_db, state, hooks=[])
    return {"before": before, "after": after, "alerts": [first_alerts, second_alerts]}


def test_warnings_find_the_labelled_episodes(built: BuiltWarnings, complete: dict[str, Any]) -> None:
    result = score(complete["after"], labelled_episodes(built.world, built.registry, WINDOW), WINDOW, 10)
    assert result["episodes"] >= 20, result
    assert result["recall"] >= MIN_RECALL, result["by_episode_type"]
    assert result["precision"] >= MIN_PRECISION, result["by_warning_kind"]


def test_every_warning_explains_itself(complete: dict[str, Any]) -> None:
    rows = complete["after"]
    assert rows
    for row in rows:
        assert row["severity"] in {"low", "medium", "high"}
        assert row["start_time"] < row["last_abnormal_until"] and row["detected_at"] > row["start_time"]
        assert (row["end_time"] is None) == row["is_open"]
        assert "规则" in row["explanation_zh"] and "Rule:" in row["explanation_en"]
        assert row["street_id"] and row["site_name_zh"]


def test_an_episode_keeps_its_id_when_a_new_day_arrives(complete: dict[str, Any]) -> None:
    """Earlier hours and their baselines do not change with a new day, so every earlier episode
    is still there under the same id; a closed one is unchanged, an open one may grow."""
    after = {row["warning_id"]: row for row in complete["after"]}
    for row in complete["before"]:
        assert row["warning_id"] in after, row["explanation_en"]
        later = after[row["warning_id"]]
        assert later["start_time"] == row["start_time"]
        if not row["is_open"]:
            assert later["last_abnormal_until"] == row["last_abnormal_until"]
        assert later["last_abnormal_until"] >= row["last_abnormal_until"]


def test_rerunning_a_day_duplicates_neither_warnings_nor_alerts(built: BuiltWarnings, complete: dict[str, Any]) -> None:
    land_days(built.paths, built.registry, built.world, [WINDOW.end], "warnings-run-3")
    build_warnings(built.paths, [WINDOW.end.isoformat()])
    again = built.warnings()
    assert sorted(r["warning_id"] for r in again) == sorted(r["warning_id"] for r in complete["after"])
    third = early_warning(built.paths.warehouse_db, built.paths.state_db, hooks=[])
    assert third["new_alerts"] == []
    keys = [a["key"] for a in recorded_alerts(built.paths.state_db) if a["source"] == "warning"]
    assert len(keys) == len(set(keys)) > 0
    sent = complete["alerts"][0]["new_alerts"] + complete["alerts"][1]["new_alerts"]
    assert sorted(sent) == sorted(keys)
    with duckdb.connect(str(built.paths.warehouse_db), read_only=True) as con:
        ((duplicates,),) = con.execute(
            "select count(*) - count(distinct (site_id, gate_id, hour_start)) from int_warning_gate_hours"
        ).fetchall()
    assert duplicates == 0


# What the daily run builds incrementally, and what is derived from it.
INCREMENTAL_WARNING_TABLES = ("int_warning_series", "int_warning_baselines", "int_warning_flags", "fct_warnings")


def _warning_rows(warehouse: Path) -> dict[str, set[tuple]]:
    """Each warning table's rows, doubles rounded to 9 places, for an order-free comparison."""
    rows = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in INCREMENTAL_WARNING_TABLES:
            (schema,) = con.execute(
                "select table_schema from information_schema.tables where table_name = ?", [table]
            ).fetchone()
            columns = con.execute(f"select * from {schema}.{table} limit 0").description
            select = ", ".join(
                f"round({name}, 9)" if str(kind) in {"DOUBLE", "FLOAT"} else name for name, kind, *_ in columns
            )
            rows[table] = set(con.execute(f"select {select} from {schema}.{table}").fetchall())
    return rows


def test_backfilling_a_past_day_rebuilds_what_it_changes(
    built: BuiltWarnings, complete: dict[str, Any], tmp_path: Path
) -> None:
    """A past day re-landed with other data is rebuilt with only that day named (as a backfill
    runs), yet the series, baselines, flags and warnings equal a full rebuild: the days whose
    windows and baselines read it a day and 1..4 weeks later were rebuilt too."""
    copy = data_paths(tmp_path / "data")
    shutil.copytree(built.paths.root, copy.root)
    day = WINDOW.end - dt.timedelta(days=14)  # its baseline weeks on: day + 7 and day + 14 = WINDOW.end
    changed = 0
    for partition in sorted((copy.landing / "passages").glob(f"site=*/date={day.isoformat()}")):
        for file in partition.glob("*.parquet"):
            table = pq.read_table(file)
            pq.write_table(table.slice(0, table.num_rows // 3), file)  # two thirds of the day lost
            changed += table.num_rows - table.num_rows // 3
    assert changed > 0
    build_warnings(copy, [day.isoformat()])
    incremental = _warning_rows(copy.warehouse_db)
    build_warnings(copy, full_refresh=True)
    full = _warning_rows(copy.warehouse_db)
    before = _warning_rows(built.paths.warehouse_db)["int_warning_baselines"]
    changed_days = {row[-1] for row in full["int_warning_baselines"] ^ before}  # landing_date is last
    assert {day, day + dt.timedelta(days=7), day + dt.timedelta(days=14)} <= changed_days
    for table in INCREMENTAL_WARNING_TABLES:
        assert incremental[table] == full[table], (
            table,
            sorted(incremental[table] - full[table])[:3],
            sorted(full[table] - incremental[table])[:3],
        )


def test_forecasts_cover_seven_days_with_an_interval(built: BuiltWarnings, complete: dict[str, Any]) -> None:
    with duckdb.connect(str(built.paths.warehouse_db), read_only=True) as con:
        rows = con.execute(
            """select site_id, measure, count(*) filter (where is_forecast), min(day) filter (where is_forecast),
                      bool_and(forecast_lower <= forecast and forecast <= forecast_upper) filter (where is_forecast)
               from fct_forecasts group by all"""
        ).fetchall()
        ((coverage,),) = con.execute(
            "select avg(case when actual between forecast_lower and forecast_upper then 1.0 else 0.0 end)"
            " from fct_forecasts where not is_forecast and measure = 'passages' and baseline_weeks >= 4"
        ).fetchall()
    assert len(rows) == 2 * 10 - 1  # the older estate has no passages
    for _site, _measure, days, first, ordered in rows:
        assert days == 7 and first == WINDOW.end + dt.timedelta(days=1) and ordered
    assert coverage >= 0.8  # the 95 % interval holds most of the observed days


QUARTER = Window(dt.date(2026, 4, 1), dt.date(2026, 6, 30))


@pytest.fixture(scope="module")
def quiet_quarter(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarnings:
    """A quarter of all ten sites at full size (the demo's counts; at x0.1 a gate's nights hold
    too few entries to tempt a detector) in a world with no labelled episode, with its warm-up."""
    paths = data_paths(tmp_path_factory.mktemp("quiet"))
    registry, world = land_window(paths, QUARTER, anomalies=0, scale=1.0)
    build_warnings(paths)
    return BuiltWarnings(paths, registry, world)


def test_small_counts_raise_no_warning_over_a_quiet_quarter(quiet_quarter: BuiltWarnings) -> None:
    """Night entries are the smallest counts the detectors test (a gate sees about one entry a
    night): tested on every gate and night of a quarter, chance alone must not raise a warning,
    and the quarter as a whole keeps within the false-alarm budget."""
    with duckdb.connect(str(quiet_quarter.paths.warehouse_db), read_only=True) as con:
        tested, median_expected, largest = con.execute(
            "select count(*), median(expected), max(observed) from int_warning_scores "
            "where detector_id = 'night_entries' and hour_start >= ? and hour_start < ?",
            [QUARTER.lo, QUARTER.hi],
        ).fetchone()
    assert tested >= 10 * 80 * 6 and median_expected <= 2, (tested, median_expected)  # many small-count tests
    assert largest >= 3 * max(median_expected, 1), largest  # chance does give nights well above the median
    warnings = quiet_quarter.warnings()
    assert [w for w in warnings if w["kind"] == "night_entries"] == []
    episodes = labelled_episodes(quiet_quarter.world, quiet_quarter.registry, QUARTER)
    result = score(warnings, episodes, QUARTER, len(quiet_quarter.registry.sites))
    assert result["episodes"] == 0, result
    budget = evaluation_config()["targets"]["false_alarms_per_site_month"]  # the quiet world's target
    assert result["false_alarms_per_site_month"] <= budget, result["by_warning_kind"]


@pytest.mark.slow
def test_quarter_evaluation_at_demo_scale(tmp_path: Path) -> None:
    """A whole quarter of the demo's world (full-size registry, its 3 episodes per site and
    quarter, seed 7) with its warm-up: recall and precision (`make bench` measures the same
    through the demo's HTTP path)."""
    paths = data_paths(tmp_path)
    registry, world = land_window(paths, QUARTER, anomalies=3, scale=1.0)
    build_warnings(paths)
    result = score(read_warnings(paths.warehouse_db), labelled_episodes(world, registry, QUARTER), QUARTER, 10)
    figures = {
        key: result[key] for key in ("episodes", "warnings", "recall", "precision", "false_alarms_per_site_month")
    }
    # Measured 25 of 30 found: the misses are backlogs (dbt_project/README.md, "Early warning").
    assert result["recall"] >= DEMO_SCALE_MIN_RECALL and result["precision"] >= MIN_PRECISION, figures
