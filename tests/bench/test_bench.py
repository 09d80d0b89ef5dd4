"""The benchmark suite runs and reports (never its speed): runner, results file, scale generator."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from bench.__main__ import Stage, run_stage
from bench.report import FIGURE_FIELDS, Figure, percentile, read_results, write_results
from bench.scale import district_registry, land_sites, scaled_registry
from ingestion.paths import data_paths
from ingestion.registry import load_registry

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_writes_results_with_machine_facts_and_figures(tmp_path: Path) -> None:
    """`python -m bench --quick` on its fastest stage: a valid results file and latest.json."""
    out = tmp_path / "results" / "bench-smoke.json"
    env = {**os.environ, "SMARTCOMM_BENCH_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--stages", "scale", "--out", str(out)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    document = json.loads(out.read_text())
    assert json.loads((out.parent / "latest.json").read_text()) == document
    assert document["mode"] == "quick"
    assert document["stages"]["scale"]["status"] == "ok"
    machine = document["machine"]
    assert machine["cpu_count"] >= 1 and machine["memory_gib"] > 0 and len(machine["load_average"]) == 3
    assert machine["versions"]["duckdb"] and machine["versions"]["dbt-core"]
    figures = document["figures"]
    assert figures and all(set(f) == set(FIGURE_FIELDS) for f in figures)
    landed = next(f for f in figures if f["name"].startswith("land"))
    assert landed["stage"] == "scale" and landed["size"] == "quick" and landed["value"] > 0
    assert landed["peak_rss_mib"] > 0
    assert "scale" in done.stdout and "results:" in done.stdout  # the table was printed


def test_missing_and_broken_stages_are_reported_not_raised(tmp_path: Path) -> None:
    figures, info = run_stage(Stage("ghost", "bench.no_such_stage"), quick=True, workdir=tmp_path)
    assert figures == [] and info["status"] == "missing" and "bench.no_such_stage" in info["error"]
    broken = Stage("broken", "bench.scale", quick_args=["no-such-command"], detect_quick=False)
    figures, info = run_stage(broken, quick=True, workdir=tmp_path)
    assert figures == [] and info["status"] == "failed" and info["returncode"] != 0
    assert "invalid choice" in info["error"]


def test_results_round_trip_and_ratios(tmp_path: Path) -> None:
    figure = Figure("x", "build", "quick", 3.0, "s", baseline="floor", baseline_value=1.5, target="<= 3x", meets=True)
    assert figure.ratio == 2.0
    path = write_results(tmp_path / "r.json", [figure], stages={"x": {"status": "ok"}}, latest=False)
    assert read_results(path)[1] == [figure]
    assert not (tmp_path / "latest.json").exists()
    assert percentile(list(range(1, 21)), 95) == 19 and percentile([5.0], 50) == 5.0


def test_district_registry_cycles_the_pilots_under_new_ids() -> None:
    pilots = load_registry()
    district = district_registry(200, pilots)
    ids = [s.site_id for s in district.sites]
    assert len(ids) == len(set(ids)) == 200
    assert district.sites[:10] == pilots.sites  # the pilots themselves are untouched
    copy = district.sites[10]
    assert copy.site_id == f"{pilots.sites[0].site_id}_02" and copy.name_zh != pilots.sites[0].name_zh
    assert copy.residents == pilots.sites[0].residents and copy.sources == pilots.sites[0].sources
    streets = {s.street_id for s in district.sites[10:]}
    assert streets == {s.street_id for s in pilots.streets}


def test_synthetic_site_lands_its_pilots_records_under_its_own_id(tmp_path: Path) -> None:
    """A synthetic site's partitions hold its pilot's records (the ground truth) with its own site_id,
    and the reference tables describe it for dbt."""
    registry = scaled_registry(district_registry(11), 0.05)
    pilot, synthetic = registry.sites[0].site_id, registry.sites[10].site_id
    day = dt.date(2026, 3, 2)
    paths = data_paths(tmp_path)
    land_sites(registry, [day], paths, "test-scale")
    landing = paths.landing
    with duckdb.connect() as con:

        def rows(kind: str, site: str, columns: str = "* exclude (site_id)") -> list[tuple]:
            pattern = landing / kind / f"site={site}" / f"date={day}" / "data.parquet"
            return con.execute(
                f"select {columns} from read_parquet('{pattern}', hive_partitioning = false) order by all"
            ).fetchall()

        for kind in registry.sites[0].sources:
            assert rows(kind, synthetic) == rows(kind, pilot), kind
            assert set(rows(kind, synthetic, "site_id")) <= {(synthetic,)}, kind
        sites = {
            r[0] for r in con.execute(f"select site_id from '{landing / '_reference' / 'sites.parquet'}'").fetchall()
        }
    assert sites == {s.site_id for s in registry.sites}


def test_warning_scenarios_score_the_demo_quarters_from_their_first_testable_day() -> None:
    """The demo lands no warm-up: its first quarter is scored once `warning_min_baseline_weeks`
    of baseline exist; a quiet world is judged by its false alarms only."""
    from bench.warnings_eval import SCENARIOS, demo_windows, min_baseline_days, scenario_figures, score

    windows = demo_windows()
    assert [(w.start, w.end) for w in windows] == [
        (dt.date(2026, 1, 1) + dt.timedelta(days=min_baseline_days()), dt.date(2026, 3, 31)),
        (dt.date(2026, 4, 1), dt.date(2026, 6, 30)),
    ]
    noon = dt.datetime(2026, 5, 1, 12)
    false_alarm = {"site_id": "s", "kind": "crowd_spike", "start_time": noon, "last_abnormal_until": noon}
    quiet = {"quarters": [score([false_alarm], [], windows[1], sites=10)]}
    figures = {f.name.split(" 2026")[0]: f for f in scenario_figures(SCENARIOS["quiet"], quiet)}
    assert set(figures) == {"false alarms per site-month"}
    alarms = figures["false alarms per site-month"]
    assert alarms.value == round(1 / (10 * windows[1].months), 3) and alarms.meets is True
