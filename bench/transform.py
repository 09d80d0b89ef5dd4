"""Benchmark of the dbt transform against the floor, all measured in one run.

For each volume (10 sites x 1 month, 10 sites x 12 months of simulator data, full-size
registry) it lands the data (column-wise, bench/transform_data.py), then times:

- floor: DuckDB alone scanning every landed Parquet column once (one query per kind);
- build: `dbt build` on a fresh warehouse (seeds, models, data tests, unit tests);
- incremental (days given): one local day re-landed for every site and kind, then
  `dbt build` with `landing_days=[that day]` (what the pipeline does);
- incremental (detected): the same re-landing, with the changed days found by dbt itself.

Ratios are against the floor measured in the same run. Example:

    .venv/bin/python -m bench.transform --months 1 12 --out bench/results/transform.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from bench.transform_data import day_range, land_fast, registry_kinds
from dbt_project.run import build
from ingestion.contract import contract
from ingestion.paths import data_paths
from ingestion.registry import PROJECT_ROOT, load_registry

LAST_DAY = dt.date(2026, 3, 31)


def _months_back(last_day: dt.date, months: int) -> dt.date:
    year, month = last_day.year, last_day.month - months + 1
    while month <= 0:
        month += 12
        year -= 1
    return dt.date(year, month, 1)


def _load_demo_env() -> None:
    for line in (PROJECT_ROOT / "config" / "demo.env").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            os.environ.setdefault(name.strip(), value.strip())


def scan_floor(landing: Path, kinds: list[str]) -> tuple[float, int]:
    """Seconds for DuckDB to read every column of every landed file once, and the rows read."""
    rows = 0
    start = time.perf_counter()
    with duckdb.connect() as con:
        for kind in kinds:
            columns = [*contract(kind).schema.names]
            counts = ", ".join(f'count("{c}")' for c in columns)
            pattern = landing / kind / "*" / "*" / "*.parquet"
            rows += con.execute(
                f"select count(*), {counts} from read_parquet('{pattern}', union_by_name = true)"
            ).fetchone()[0]
    return time.perf_counter() - start, rows


def measure(months: int, work_dir: Path, seed: int = 7) -> dict:
    from simulator import World  # only the benchmark and tests reach the simulator's Python API

    registry = load_registry()
    first_day = _months_back(LAST_DAY, months)
    days = day_range(first_day, LAST_DAY)
    paths = data_paths(work_dir / f"months_{months}")
    if paths.root.exists():
        shutil.rmtree(paths.root)
    world = World(seed=seed, registry=registry)

    started = time.perf_counter()
    landed = land_fast(world, registry, days, paths, run_id=f"bench-{months}m-1")
    land_seconds = time.perf_counter() - started

    floor_seconds, floor_rows = scan_floor(paths.landing, registry_kinds(registry))

    started = time.perf_counter()
    build(paths.root)
    build_seconds = time.perf_counter() - started

    changed_day = days[len(days) // 2]
    land_fast(world, registry, [changed_day], paths, run_id=f"bench-{months}m-2")
    started = time.perf_counter()
    build(paths.root, landing_days=[changed_day.isoformat()])
    incremental_given_seconds = time.perf_counter() - started

    land_fast(world, registry, [changed_day], paths, run_id=f"bench-{months}m-3")
    started = time.perf_counter()
    build(paths.root)
    incremental_detected_seconds = time.perf_counter() - started

    with duckdb.connect(str(paths.warehouse_db), read_only=True) as con:
        fact_rows = con.execute("select count(*) from fct_passages").fetchone()[0]
        duplicates = con.execute("select count(*) - count(distinct site_id || event_id) from fct_passages").fetchone()[
            0
        ]
    warehouse_mb = paths.warehouse_db.stat().st_size / 1e6
    landing_mb = sum(p.stat().st_size for p in paths.landing.rglob("*.parquet")) / 1e6
    shutil.rmtree(paths.root, ignore_errors=True)
    return {
        "months": months,
        "sites": len(registry.sites),
        "days": len(days),
        "landed_rows": landed.rows,
        "landed_partitions": landed.partitions,
        "landing_mb": round(landing_mb, 1),
        "warehouse_mb": round(warehouse_mb, 1),
        "fct_passages_rows": fact_rows,
        "fct_passages_duplicates": duplicates,
        "land_seconds": round(land_seconds, 2),
        "floor_scan_seconds": round(floor_seconds, 3),
        "floor_rows": floor_rows,
        "dbt_build_seconds": round(build_seconds, 2),
        "incremental_day_given_seconds": round(incremental_given_seconds, 2),
        "incremental_day_detected_seconds": round(incremental_detected_seconds, 2),
        "build_vs_floor": round(build_seconds / floor_seconds, 1),
        "incremental_given_vs_floor": round(incremental_given_seconds / floor_seconds, 1),
        "incremental_detected_vs_floor": round(incremental_detected_seconds / floor_seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time dbt build, a one-day incremental update and the Parquet scan floor. "
        "Example: python -m bench.transform --months 1 12 --out bench/results/transform.json"
    )
    parser.add_argument("--months", type=int, nargs="+", default=[1, 12], help="volumes to measure, in months")
    parser.add_argument("--work-dir", default=None, help="scratch directory (default: a temporary one)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    _load_demo_env()
    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-transform-"))
    results = []
    for months in args.months:
        result = measure(months, work_dir)
        results.append(result)
        print(json.dumps(result), flush=True)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
