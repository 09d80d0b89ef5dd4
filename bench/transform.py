"""Benchmark of the dbt transform against the floor, all measured in one run.

For each size (bench/scale.py: quick, pilot-month, pilot-year, district-month) it takes the
landed data from the scale generator's cache, then times:

- floor: one hand-written DuckDB query over the landed Parquet computing the monthly counts
  and durations the marts need (bench/transform_floor.sql); the bench checks that it agrees
  with the warehouse's indicator_values, so the floor computes the same thing;
- fixed cost: `dbt build` on an empty landing zone (only the registry's reference tables):
  start-up, parse, seeds, every node, data and unit tests on no data;
- full build: `dbt build` on a fresh warehouse;
- one new day: one local day re-landed for every site and kind (a new run id), then
  `dbt build` with `landing_days=[that day]` (what the pipeline does every day);
- copy: DuckDB copying the landed rows of the row-level facts into a table (what
  materializing fct_passages & co. costs by itself; reported, no target).

Targets (issue 9): (full build - fixed cost) <= 3x the floor; one new day < 0.1x the full
build. `--quick` (CI smoke) skips the fixed cost and the copy. Every dbt invocation runs as
a child process (`python -m dbt_project.run`), so its peak RSS is its own. Each figure is
the median of --repeat runs. Examples:

    .venv/bin/python -m bench.transform --quick                        # CI smoke (make bench-quick)
    .venv/bin/python -m bench.transform --sizes pilot-month --repeat 3
    .venv/bin/python -m bench.transform --sizes pilot-month pilot-year district-month
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from bench.report import Figure, median, run_child, save_figures
from bench.scale import SEED, demo_pseudonymizer, materialize, registry_env, size
from bench.transform_data import land_simulated
from ingestion.paths import DataPaths, data_paths
from ingestion.reference import export_reference
from ingestion.registry import PROJECT_ROOT

STAGE = "transform"
FLOOR_SQL = Path(__file__).with_name("transform_floor.sql")
COPIED_KINDS = ("passages", "device_status", "alerts", "fire_alarms", "service_cases")  # the incremental facts
MONTHS_TO_SIZE = {1: "pilot-month", 12: "pilot-year"}  # the former --months argument


def floor_query(landing: Path) -> str:
    return FLOOR_SQL.read_text(encoding="utf-8").replace("{landing}", str(landing))


def time_floor(landing: Path) -> tuple[float, list[tuple]]:
    """Seconds for the floor query, and its rows (site_id, month, passages, contact_free)."""
    started = time.perf_counter()
    with duckdb.connect() as con:
        rows = con.execute(
            f"select site_id, cast(month as date), passages, contact_free from ({floor_query(landing)})"
        ).fetchall()
    return time.perf_counter() - started, rows


def time_copy(landing: Path, work: Path) -> float:
    """Seconds for DuckDB to copy the landed rows of the incremental facts into a new database."""
    target = work / "copy.duckdb"
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    with duckdb.connect(str(target)) as con:
        con.execute("set preserve_insertion_order = false")
        for kind in COPIED_KINDS:
            con.execute(f"create table {kind} as select * from read_parquet('{landing}/{kind}/*/*/*.parquet')")
    seconds = time.perf_counter() - started
    target.unlink(missing_ok=True)
    return seconds


def dbt_build(root: Path, days: list[str] | None = None, checkout: Path = PROJECT_ROOT) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of `python -m dbt_project.run build` in a child process
    (from `checkout`: another tree of the repository gives before/after figures)."""
    argv = [sys.executable, "-m", "dbt_project.run", "build", "--data-dir", str(root)]
    if days:
        argv += ["--days", ",".join(days)]
    env = {**os.environ, **registry_env(root), "PYTHONPATH": str(checkout), "DO_NOT_TRACK": "1"}
    run = run_child(argv, env=env, cwd=checkout)
    if run.returncode != 0:
        raise RuntimeError(f"dbt build failed in {root}:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
    return run.seconds, run.peak_rss_mib


def dbt_node_seconds(target_dir: Path) -> dict[str, dict]:
    """Per dbt node of the last invocation (target/run_results.json + manifest.json): its
    seconds and the project folder it belongs to (models/<folder>/..., seeds/<folder>/...:
    staging, marts, warnings, ...; a test counts with the folder of the yml defining it)."""
    results = json.loads((target_dir / "run_results.json").read_text())["results"]
    nodes = json.loads((target_dir / "manifest.json").read_text())["nodes"]
    out = {}
    for r in results:
        parts = nodes.get(r["unique_id"], {}).get("original_file_path", "").split("/")
        out[r["unique_id"]] = {"seconds": r["execution_time"], "folder": parts[1] if len(parts) > 2 else ""}
    return out


def dbt_profile(target_dir: Path, top: int = 12) -> dict:
    """Where a dbt invocation's time went: node seconds per model folder and the slowest nodes."""
    nodes = dbt_node_seconds(target_dir)
    folders: dict[str, float] = {}
    for node in nodes.values():
        folders[node["folder"]] = folders.get(node["folder"], 0.0) + node["seconds"]
    slowest = sorted(nodes.items(), key=lambda item: -item[1]["seconds"])[:top]
    return {
        "by_folder": {k: round(v, 2) for k, v in sorted(folders.items(), key=lambda kv: -kv[1])},
        "slowest": {name: round(node["seconds"], 2) for name, node in slowest},
    }


def check_floor_agrees(paths: DataPaths, floor_rows: list[tuple]) -> None:
    """The floor must compute what the marts compute: passages and contact-free counts per site-month."""
    with duckdb.connect(str(paths.warehouse_db), read_only=True) as con:
        marts = con.execute(
            "select site_id, month, denominator, numerator from indicator_values "
            "where indicator_id = 'contact_free_passage_share' and site_id <> 'district' and denominator > 0"
        ).fetchall()
        duplicates = con.execute("select count(*) - count(distinct (site_id, event_id)) from fct_passages").fetchone()[
            0
        ]
    floor = {(s, m): (int(p), int(c)) for s, m, p, c in floor_rows if p}
    built = {(s, m): (int(p), int(c)) for s, m, p, c in marts}
    if floor != built:
        diff = sorted(set(floor.items()) ^ set(built.items()))[:5]
        raise AssertionError(f"the floor and indicator_values disagree on passages per site-month: {diff}")
    if duplicates:
        raise AssertionError(f"fct_passages holds {duplicates} duplicate (site_id, event_id) after the runs")


def measure(
    size_name: str, work: Path, repeat: int, quick: bool = False, with_copy: bool = True, checkout: Path = PROJECT_ROOT
) -> tuple[list[Figure], dict]:
    """Every figure of one size, and where dbt's time went (dbt_profile of the last full and
    one-day build); the scratch data dirs live under work/ and are removed after.
    `quick` (a smoke run) skips the fixed cost: the full build is then reported without a verdict."""
    from simulator import World  # only the benchmark and tests reach the simulator's Python API

    bench_size = size(size_name)
    root = work / size_name
    shutil.rmtree(root, ignore_errors=True)
    paths, registry = materialize(bench_size, root)

    floor_runs = [time_floor(paths.landing) for _ in range(repeat)]
    floor = median(seconds for seconds, _ in floor_runs)

    empty = data_paths(work / f"{size_name}-empty")
    shutil.rmtree(empty.root, ignore_errors=True)
    export_reference(empty.root, registry)
    fixed_runs = []
    for _ in range(0 if quick else repeat):
        shutil.rmtree(empty.warehouse_dir, ignore_errors=True)
        fixed_runs.append(dbt_build(empty.root, checkout=checkout))
    fixed = median(seconds for seconds, _ in fixed_runs) if fixed_runs else None
    shutil.rmtree(empty.root, ignore_errors=True)

    full_runs = []
    for _ in range(repeat):
        shutil.rmtree(paths.warehouse_dir, ignore_errors=True)
        full_runs.append(dbt_build(paths.root, checkout=checkout))
    full = median(seconds for seconds, _ in full_runs)
    dbt_target = paths.warehouse_dir / "dbt" / "target"
    profile = {"full": dbt_profile(dbt_target)}

    world = World(seed=SEED, registry=registry)
    day = bench_size.first + dt.timedelta(days=bench_size.days // 2)
    pseudonymizer = demo_pseudonymizer()
    day_runs = []
    for attempt in range(repeat):
        land_simulated(
            world, registry, [day], paths, run_id=f"bench-{size_name}-day-{attempt}", pseudonymizer=pseudonymizer
        )
        day_runs.append(dbt_build(paths.root, [day.isoformat()], checkout=checkout))
    one_day = median(seconds for seconds, _ in day_runs)
    profile["one_day"] = dbt_profile(dbt_target)
    print(json.dumps({"size": size_name, "dbt": profile}), flush=True)
    check_floor_agrees(paths, time_floor(paths.landing)[1])  # the re-landed day included

    label = f"{bench_size.sites} sites x {bench_size.days} days"
    variable_ratio = None if fixed is None else (full - fixed) / floor
    day_ratio = one_day / full
    figures = [Figure(STAGE, "floor: monthly counts in one DuckDB query", size_name, floor, "s", repeats=repeat)]
    if fixed is not None:
        figures.append(
            Figure(
                STAGE,
                "dbt fixed cost (empty landing zone)",
                size_name,
                fixed,
                "s",
                peak_rss_mib=max(rss for _, rss in fixed_runs),
                repeats=repeat,
            )
        )
    figures += [
        Figure(
            STAGE,
            f"dbt build, full ({label}); ratio = (build - {'fixed' if fixed else '0'}) / floor",
            size_name,
            full,
            "s",
            baseline="floor",
            baseline_value=floor,
            ratio=variable_ratio if variable_ratio is not None else full / floor,
            target="<= 3x floor after fixed cost" if variable_ratio is not None else None,
            meets=None if variable_ratio is None else variable_ratio <= 3,
            peak_rss_mib=max(rss for _, rss in full_runs),
            repeats=repeat,
        ),
        Figure(
            STAGE,
            "dbt build, one new day",
            size_name,
            one_day,
            "s",
            baseline="full build",
            baseline_value=full,
            ratio=day_ratio,
            target="< 0.1x full build",
            meets=day_ratio < 0.1,
            peak_rss_mib=max(rss for _, rss in day_runs),
            repeats=repeat,
        ),
    ]
    if with_copy:
        copy = median(time_copy(paths.landing, work) for _ in range(repeat))
        figures.append(
            Figure(
                STAGE,
                "copy: landed fact rows into a DuckDB table",
                size_name,
                copy,
                "s",
                baseline="floor",
                baseline_value=floor,
                repeats=repeat,
            )
        )
    shutil.rmtree(root, ignore_errors=True)
    return figures, profile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time dbt build (fixed cost, full, one new day) against a hand-written DuckDB floor. "
        "Example: python -m bench.transform --sizes pilot-month --repeat 3"
    )
    parser.add_argument("--sizes", nargs="+", default=None, help="bench/scale.py sizes (default pilot-month)")
    parser.add_argument(
        "--months", type=int, nargs="+", default=None, help="former form: 1 = pilot-month, 12 = pilot-year"
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="runs per figure, median reported (default 3; quick 1)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="CI smoke: the quick size, one run each, no fixed cost, no copy figure"
    )
    parser.add_argument("--no-copy", action="store_true", help="skip the copy figure")
    parser.add_argument(
        "--checkout",
        type=Path,
        default=PROJECT_ROOT,
        help="run dbt from this tree of the repository (e.g. `git archive <rev>` unpacked) for before/after figures",
    )
    parser.add_argument("--work-dir", default=None, help="scratch directory (default: a temporary one)")
    parser.add_argument("--out", default=None, help="also write the figures here (JSON)")
    args = parser.parse_args(argv)
    if args.quick:
        sizes, repeat = ["quick"], args.repeat or 1
    else:
        sizes = args.sizes or [MONTHS_TO_SIZE[m] for m in args.months or []] or ["pilot-month"]
        repeat = args.repeat or 3
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-transform-"))
    figures: list[Figure] = []
    profiles: dict[str, dict] = {}
    try:
        for name in sizes:
            size_figures, profiles[name] = measure(
                name, work, repeat, args.quick, not (args.quick or args.no_copy), args.checkout.resolve()
            )
            figures += size_figures
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    if args.out:
        from bench.report import write_results

        write_results(args.out, figures, stages={STAGE: {"status": "ok"}}, latest=False)
    save_figures(STAGE, figures, extra={"dbt_profile": profiles})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
