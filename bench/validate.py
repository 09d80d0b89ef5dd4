"""Benchmark: validating a site-month with Great Expectations, against the time to land it.

    .venv/bin/python bench/validate.py [--quick] [--site vanke_meili] [--month 2026-01] [--repeats 3]

Baselines, measured in this run on the same data:

1. passages (the big kind): the simulator's ISC-shaped vendor records for each day (made
   untimed, no HTTP) landed the way the ISC connector lands its pages:
   `ingestion.landing.PartitionBuilder.add_raw_page` in pages of 1,000, then `commit()`
   (column path, pseudonyms, checks, Parquet). Target: validation ≤ 0.3 × landing.
2. every kind of the site: canonical records through `ingestion.landing.land_records`
   (the writer's record path; file-drop and spreadsheet kinds have no page path to replay
   without their files), so that ratio flatters validation: read it with the seconds.

Validation runs in a fresh child process so its peak RSS is its own: GX import + context
once (reported apart), then `LandingValidator.validate` of the month, passages alone and
then every kind, each a median of `--repeats` runs (the schema-suite cache is per process,
so repeats after the first show the steady state of a long-running worker).
`--quick` (< 1 min on a quiet machine): a small site, 5 days. Figures go to bench.report (JSON + table).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import Figure, median, run_child, save_figures  # noqa: E402

STAGE = "validate"
PAGE_ROWS = 1000
TARGET = 0.3


def _days(month: str, count: int | None) -> list[dt.date]:
    first = dt.date.fromisoformat(f"{month}-01")
    nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    days = [first + dt.timedelta(days=i) for i in range((nxt - first).days)]
    return days[:count] if count else days


def land_passages(data_dir: Path, site: str, days: list[dt.date], seed: int, repeats: int) -> dict:
    """ISC pages of every day through PartitionBuilder (the connector's path); median of repeats."""
    from ingestion.landing import PartitionBuilder
    from ingestion.mapping import load_shape_mapping
    from ingestion.paths import data_paths
    from ingestion.pii import Pseudonymizer
    from simulator import World
    from simulator.encode import encode
    from simulator.listing import Lister

    world = World(seed=seed)
    names = Lister(world).names(site)
    pages = {day: encode("isc_openapi", "passages", world.with_faults(site, "passages", day), names) for day in days}
    mapping = load_shape_mapping("isc_openapi").kind("passages")
    paths = data_paths(data_dir)
    walls, cpus, rows = [], [], 0
    for _ in range(max(1, repeats)):
        pseudonymizer = Pseudonymizer()
        wall, cpu = time.perf_counter(), time.process_time()
        rows = 0
        for day, records in pages.items():
            builder = PartitionBuilder(
                "passages",
                site,
                [day],
                source_shape="isc_openapi",
                run_id="bench",
                paths=paths,
                pseudonymizer=pseudonymizer,
            )
            for start in range(0, len(records), PAGE_ROWS):
                builder.add_raw_page(records[start : start + PAGE_ROWS], mapping, day)
            rows += builder.commit().rows_landed
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"landing_s": median(walls), "landing_cpu_s": median(cpus), "rows": rows}


def land_other_kinds(data_dir: Path, site: str, days: list[dt.date], seed: int) -> dict:
    """Every other kind of the site through land_records (once: the record path is slow)."""
    from ingestion.landing import land_records
    from ingestion.paths import data_paths
    from ingestion.pii import Pseudonymizer
    from ingestion.registry import load_registry
    from simulator import World

    world, paths, pseudonymizer = World(seed=seed), data_paths(data_dir), Pseudonymizer()
    source_kinds = [k for k in load_registry().site(site).sources if k != "passages"]
    wall = cpu = 0.0
    rows = 0
    for kind in source_kinds:
        shape = load_registry().site(site).sources[kind].shape
        for day in days:
            records = world.generate(site, kind, day).to_pylist()
            started, cpu_started = time.perf_counter(), time.process_time()
            result = land_records(
                kind, site, day, records, source_shape=shape, run_id="bench", paths=paths, pseudonymizer=pseudonymizer
            )
            wall += time.perf_counter() - started
            cpu += time.process_time() - cpu_started
            rows += result.rows_landed
    return {"landing_s": wall, "landing_cpu_s": cpu, "rows": rows, "kinds": len(source_kinds) + 1}


def validate_child(data_dir: Path, site: str, days: list[dt.date], repeats: int) -> dict:
    """In its own process (see main): GX set-up once, then the month validated, passages and all kinds."""
    started = time.perf_counter()
    from expectations.engine import GxEngine
    from expectations.landing import LandingValidator

    validator = LandingValidator(data_dir=data_dir, engine=GxEngine(data_dir / "gx"))
    setup_s = time.perf_counter() - started
    out: dict = {"setup_s": setup_s}
    for label, kinds in (("passages", ["passages"]), ("all", None)):
        walls, cpus = [], []
        for i in range(max(1, repeats)):
            wall, cpu = time.perf_counter(), time.process_time()
            report = validator.validate([site], days, kinds, run_id=f"bench-{label}-{i}")
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        out[label] = {
            "validate_s": median(walls),
            "validate_cpu_s": median(cpus),
            "runs_s": walls,
            "expectations": len(report.outcomes),
            "failures": sorted({f"{o.kind}:{o.expectation}" for o in report.failures}),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="a small site, 5 days, 2 repeats (< 1 min on a quiet machine)"
    )
    parser.add_argument("--site", help="default vanke_meili (quick: cy_commerce_block)")
    parser.add_argument("--month", default="2026-01")
    parser.add_argument("--days", type=int, help="only the first N days of the month (quick: 5)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, help="runs per figure, median reported (default 3; quick 2)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # data dir: run the validation phase
    args = parser.parse_args(argv)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("SMARTCOMM_PSEUDONYM_KEY", "bench-pseudonym-key")
    site = args.site or ("cy_commerce_block" if args.quick else "vanke_meili")
    days = _days(args.month, args.days or (5 if args.quick else None))
    repeats = args.repeats or (2 if args.quick else 3)

    if args.child:
        print("RESULT " + json.dumps(validate_child(Path(args.child), site, days, repeats)))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        data_dir = Path(tmp) / "data"
        passages = land_passages(data_dir, site, days, args.seed, repeats)
        others = land_other_kinds(data_dir, site, days, args.seed)
        argv_child = [sys.executable, __file__, "--child", str(data_dir), "--site", site, "--month", args.month]
        argv_child += ["--days", str(len(days)), "--repeats", str(repeats)]
        child = run_child(argv_child, env=dict(os.environ), timeout=1800)
        if child.returncode != 0:
            print(child.stdout, child.stderr, file=sys.stderr)
            return 1
        result = json.loads(next(line for line in child.stdout.splitlines() if line.startswith("RESULT "))[7:])

    size = f"{site} {len(days)} days ({args.month})"
    all_landing = passages["landing_s"] + others["landing_s"]
    all_landing_cpu = passages["landing_cpu_s"] + others["landing_cpu_s"]
    page_path = "ingestion PartitionBuilder.add_raw_page, ISC pages"
    with_others = "passages as above + other kinds through land_records"
    figures = []
    for name, measured, baseline, landing in (
        ("passages", result["passages"], page_path, passages),
        (
            f"all {others['kinds']} kinds",
            result["all"],
            with_others,
            {"landing_s": all_landing, "landing_cpu_s": all_landing_cpu},
        ),
    ):
        for clock, suffix in (("wall", "_s"), ("CPU", "_cpu_s")):
            figures.append(
                Figure(
                    STAGE,
                    f"{name}: GX validation vs landing ({clock})",
                    size,
                    measured[f"validate{suffix}"],
                    "s",
                    baseline=baseline if clock == "wall" else f"{baseline} (CPU)",
                    baseline_value=landing[f"landing{suffix}"],
                    target=f"ratio <= {TARGET}",
                    meets=measured[f"validate{suffix}"] <= TARGET * landing[f"landing{suffix}"],
                    peak_rss_mib=child.peak_rss_mib if clock == "wall" else None,
                    repeats=repeats,
                )
            )
    figures.append(Figure(STAGE, "GX import + context, once per process", size, result["setup_s"], "s"))
    extra = {
        "validate": {
            "passages_rows": passages["rows"],
            "other_rows": others["rows"],
            "expectations": {k: result[k]["expectations"] for k in ("passages", "all")},
            "failures_on_clean_data": {k: result[k]["failures"] for k in ("passages", "all")},
            "runs_s": {k: result[k]["runs_s"] for k in ("passages", "all")},
            "load_average_1m": os.getloadavg()[0],
        }
    }
    save_figures(STAGE, figures, extra=extra)
    print(
        f"{passages['rows']:,} passages + {others['rows']:,} other rows; "
        f"outcomes {extra['validate']['expectations']}; failures on clean data: "
        f"{extra['validate']['failures_on_clean_data']}; load average {extra['validate']['load_average_1m']:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
