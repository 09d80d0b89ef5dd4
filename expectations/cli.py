"""Command line: validate partitions, print a readable table, exit non-zero on critical failure.

python -m expectations validate --layer landing --site vanke_meili --date 2026-01-05
python -m expectations validate --layer landing --site all --date 2026-01-01 --until 2026-01-07
python -m expectations validate --layer marts --date 2026-01
python -m expectations docs
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from expectations.results import DataQualityPipelineError, ValidationReport, write_results

EXIT_OK, EXIT_CRITICAL, EXIT_PIPELINE_ERROR = 0, 1, 2


def _days(start: str, until: str | None) -> list[dt.date]:
    first = dt.date.fromisoformat(start)
    last = dt.date.fromisoformat(until) if until else first
    if last < first:
        raise SystemExit(f"--until {last} is before --date {first}")
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def print_report(report: ValidationReport, *, show_passed: bool = False, out=None) -> None:
    """A fixed-width table of the failures (and passes with --all), then a one-line summary."""
    out = out or sys.stdout
    rows = [o for o in report.outcomes if show_passed or not o.success]
    header = ("result", "severity", "site", "kind", "date", "expectation", "observed")
    table = [
        (
            "ok" if o.success else "FAIL",
            o.severity,
            o.site_id or "*",
            o.kind,
            str(o.partition_date),
            o.expectation,
            (o.observed_value or "")[:70],
        )
        for o in rows
    ]
    widths = [max([len(h)] + [len(r[i]) for r in table]) for i, h in enumerate(header)]
    widths[-1] = len(header[-1])  # the last column is not padded
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line, file=out)
    print("-" * max(len(line), 60), file=out)
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip(), file=out)
    s = report.summary()
    print(
        f"\nrun {report.run_id}: {s['expectations']} expectations, {s['failed']} failed "
        f"({s['critical']} critical, {s['warning']} warning); {len(report.skipped)} skipped",
        file=out,
    )


def _validate(args: argparse.Namespace) -> int:
    from expectations.landing import LandingValidator, new_run_id
    from ingestion.paths import data_paths

    run_id = args.run_id or new_run_id()
    try:
        if args.layer == "landing":
            if not args.date:
                raise SystemExit("--date is required for the landing layer")
            validator = LandingValidator(data_dir=args.data_dir, gx_root=args.gx_dir)
            sites = None if args.site in (None, "all") else [args.site]
            kinds = args.kind or None
            report = validator.validate(sites, _days(args.date, args.until), kinds, run_id)
        else:
            from expectations.marts import MartValidator

            validator = MartValidator(data_dir=args.data_dir, gx_root=args.gx_dir)
            report = validator.validate(db_path=args.source_db, month=args.date, run_id=run_id)
    except DataQualityPipelineError as exc:
        print(f"pipeline error (the checks broke, not the data): {exc}", file=sys.stderr)
        return EXIT_PIPELINE_ERROR
    print_report(report, show_passed=args.all)
    if not args.no_write:
        db = Path(args.results_db) if args.results_db else data_paths(args.data_dir).warehouse_db
        written = write_results(report.outcomes, db)
        print(f"{written} result rows written to {db} (table dq_results)")
    if args.docs:
        print(f"data docs: {validator.engine.build_docs()}")
    return EXIT_OK if report.ok else EXIT_CRITICAL


def _docs(args: argparse.Namespace) -> int:
    from expectations.engine import GxEngine

    print(f"data docs: {GxEngine(args.gx_dir).build_docs()}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m expectations",
        description="Data-quality checks (Great Expectations) for landed partitions and evaluation marts.",
        epilog="Example: python -m expectations validate --layer landing --site vanke_meili --date 2026-01-05",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser(
        "validate",
        help="validate partitions and write dq_results",
        description="Validate partitions, print failures, write dq_results; exit 1 on a critical failure, "
        "2 when the checks themselves broke.",
        epilog="Example: python -m expectations validate --layer landing --site all --date 2026-01-01 --until 2026-01-07",
    )
    v.add_argument("--layer", choices=["landing", "marts"], required=True)
    v.add_argument("--site", default="all", help="site_id, or 'all' (default)")
    v.add_argument("--date", help="local day YYYY-MM-DD (landing) or month YYYY-MM (marts; default: every month)")
    v.add_argument("--until", help="last day of a range (landing)")
    v.add_argument("--kind", action="append", help="only this kind (repeatable; default: the site's kinds)")
    v.add_argument("--run-id", help="run id recorded in dq_results (default: a new one)")
    v.add_argument("--data-dir", help="data directory (default $SMARTCOMM_DATA_DIR or <repo>/data)")
    v.add_argument(
        "--gx-dir", help="GX project root (default $SMARTCOMM_GX_DIR or expectations/; the context is <root>/gx)"
    )
    v.add_argument("--results-db", help="DuckDB file for dq_results (default: the warehouse)")
    v.add_argument("--source-db", help="marts: DuckDB file holding the marts (default: the warehouse)")
    v.add_argument("--all", action="store_true", help="list passed expectations too")
    v.add_argument("--no-write", action="store_true", help="do not write dq_results")
    v.add_argument("--docs", action="store_true", help="rebuild the GX Data Docs afterwards")
    v.set_defaults(func=_validate)
    d = sub.add_parser(
        "docs",
        help="build the GX Data Docs site",
        description="Build the static GX Data Docs from the stored validation results.",
        epilog="Example: python -m expectations docs",
    )
    d.add_argument(
        "--gx-dir", help="GX project root (default $SMARTCOMM_GX_DIR or expectations/; the context is <root>/gx)"
    )
    d.set_defaults(func=_docs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
