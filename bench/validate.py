"""Benchmark: validating one site-month of passages, against the time to land that month.

    .venv/bin/python bench/validate.py [--site vanke_meili] [--month 2026-01] [--seed 7]

1. Baseline, measured in this run: the simulator generates each day's canonical passages
   (not timed) and ingestion's writer lands them (`land_records`: normalize, pseudonymize,
   check, write Parquet); the sum of those calls is the landing time.
2. Validation, in a fresh process so its peak memory is its own: import GX and build the
   context (reported apart: paid once per process), then validate every day partition of
   the month with one context (partition, schema and content suites). The floor beside it
   is reading the same partitions into pandas through DuckDB, without GX.

Prints a table and writes bench/results/validate.json. Ratios, not timed assertions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _month_days(month: str) -> list[dt.date]:
    first = dt.date.fromisoformat(f"{month}-01")
    nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return [first + dt.timedelta(days=i) for i in range((nxt - first).days)]


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def land_month(data_dir: Path, site: str, days: list[dt.date], seed: int) -> dict:
    from ingestion.landing import land_records
    from ingestion.paths import data_paths
    from simulator import World

    world = World(seed=seed)
    paths = data_paths(data_dir)
    landing_s = landing_cpu_s = 0.0
    rows = 0
    for day in days:
        records = world.generate(site, "passages", day).to_pylist()
        start, cpu = time.perf_counter(), time.process_time()
        result = land_records("passages", site, day, records, source_shape="bench", run_id="bench", paths=paths)
        landing_s += time.perf_counter() - start
        landing_cpu_s += time.process_time() - cpu
        rows += result.rows_landed
    return {"landing_s": landing_s, "landing_cpu_s": landing_cpu_s, "rows": rows}


def validate_month(data_dir: Path, site: str, days: list[dt.date]) -> dict:
    """Runs in its own process (see main)."""
    start = time.perf_counter()
    from expectations.engine import GxEngine
    from expectations.landing import LandingValidator, read_partition

    engine = GxEngine(data_dir / "gx")
    validator = LandingValidator(data_dir=data_dir, engine=engine)
    validator._ensure("passages")
    setup_s = time.perf_counter() - start
    rss_after_setup = _peak_rss_mib()

    start = time.perf_counter()
    for day in days:
        frame = read_partition(validator.paths, "passages", site, day).frame
        assert frame is not None and len(frame) > 0
    read_s = time.perf_counter() - start

    start, cpu = time.perf_counter(), time.process_time()
    report = validator.validate([site], days, ["passages"], run_id="bench")
    validate_s = time.perf_counter() - start
    validate_cpu_s = time.process_time() - cpu
    return {
        "setup_s": setup_s,
        "read_only_s": read_s,
        "validate_s": validate_s,
        "validate_cpu_s": validate_cpu_s,
        "expectations": len(report.outcomes),
        "failed": len(report.failures),
        "failures": sorted({o.expectation for o in report.failures}),
        "peak_rss_after_setup_mib": rss_after_setup,
        "peak_rss_mib": _peak_rss_mib(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site", default="vanke_meili")
    parser.add_argument("--month", default="2026-01")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--phase", choices=["all", "validate"], default="all", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "validate.json"))
    args = parser.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("SMARTCOMM_PSEUDONYM_KEY", "bench-pseudonym-key")
    days = _month_days(args.month)

    if args.phase == "validate":
        print(json.dumps(validate_month(Path(args.data_dir), args.site, days)))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        data_dir = Path(tmp) / "data"
        landed = land_month(data_dir, args.site, days, args.seed)
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--phase",
                "validate",
                "--data-dir",
                str(data_dir),
                "--site",
                args.site,
                "--month",
                args.month,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        validated = json.loads(child.stdout.strip().splitlines()[-1])
    result = {
        "site": args.site,
        "month": args.month,
        "days": len(days),
        **landed,
        **validated,
        "ratio_validate_to_landing": validated["validate_s"] / landed["landing_s"],
        "ratio_validate_to_landing_cpu": validated["validate_cpu_s"] / landed["landing_cpu_s"],
        "load_average_1m": os.getloadavg()[0],
        "ratio_validate_with_setup_to_landing": (validated["validate_s"] + validated["setup_s"]) / landed["landing_s"],
        "ratio_validate_to_read_only": validated["validate_s"] / validated["read_only_s"],
        "cpu_count": os.cpu_count(),
        "measured_at_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"one site-month of passages: {args.site} {args.month}, {landed['rows']:,} rows in {len(days)} partitions")
    print(
        f"  landing (ingestion writer, baseline)   {landed['landing_s']:8.2f} s  (CPU {landed['landing_cpu_s']:.2f} s)"
    )
    print(f"  GX import + context (once per process) {validated['setup_s']:8.2f} s")
    print(f"  read partitions into pandas (floor)    {validated['read_only_s']:8.2f} s")
    print(
        f"  validate {validated['expectations']} expectations          {validated['validate_s']:8.2f} s"
        f"  (CPU {validated['validate_cpu_s']:.2f} s)"
    )
    print(
        f"  peak RSS after setup / overall         {validated['peak_rss_after_setup_mib']:6.0f} / {validated['peak_rss_mib']:.0f} MiB"
    )
    print(f"  ratio validate / landing (wall)        {result['ratio_validate_to_landing']:8.2f}")
    print(f"  ratio validate / landing (CPU time)    {result['ratio_validate_to_landing_cpu']:8.2f}")
    print(f"  ratio (validate + setup) / landing     {result['ratio_validate_with_setup_to_landing']:8.2f}")
    print(f"  ratio validate / read-only floor       {result['ratio_validate_to_read_only']:8.2f}")
    print(f"  failures on clean data: {validated['failed']} {validated['failures']}")
    print(f"  load average (1 min) at the end: {result['load_average_1m']:.1f} on {os.cpu_count()} cores")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
