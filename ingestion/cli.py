"""Command line: pull sources into the landing zone, show state, create raw views.

    python -m ingestion pull --site vanke_meili --kind passages --start 2026-01-05 --end 2026-01-11
    python -m ingestion pull --all --start 2026-01-05 --end 2026-01-05
    python -m ingestion status
    python -m ingestion views --db data/warehouse/raw.duckdb
    python -m ingestion scan-pii

Exit code 0 when every (site, kind) succeeded, 1 when any failed (each failure is named).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingestion.http import FetchError
from ingestion.landing import new_run_id
from ingestion.paths import data_paths
from ingestion.pii import Pseudonymizer, PseudonymKeyMissing
from ingestion.pull import PullOutcome, configured_pairs, pull
from ingestion.registry import SOURCE_KINDS, load_registry
from ingestion.state import StateStore
from ingestion.timeutil import LOCAL_TZ


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_pull(args: argparse.Namespace, console: Console) -> int:
    registry = load_registry()
    sites = None if args.all or args.site in (None, "all") else [args.site]
    kinds = None if args.all or args.kind in (None, "all") else [args.kind]
    if not args.all and (args.site is None or args.kind is None):
        console.print("[red]give --site S and --kind K (or 'all'), or --all[/red]")
        return 2
    try:
        pairs = configured_pairs(registry, sites, kinds)
        pseudonymizer = Pseudonymizer()
    except (KeyError, PseudonymKeyMissing) as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    paths = data_paths()
    state = StateStore(paths)
    run_id = args.run_id or new_run_id("cli")
    outcomes: list[PullOutcome] = []
    failures: list[tuple[str, str, str]] = []
    with Progress(
        TextColumn("{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rows]:>9} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=args.quiet,
    ) as progress:
        for site_id, kind in pairs:
            task = progress.add_task(f"{site_id} / {kind}", total=None, rows=0)

            def report(done: int, total: int, rows: int, task: int = task) -> None:
                progress.update(task, completed=done, total=total, rows=rows)

            try:
                outcomes.append(
                    pull(
                        site_id,
                        kind,
                        args.start,
                        args.end,
                        run_id=run_id,
                        paths=paths,
                        registry=registry,
                        pseudonymizer=pseudonymizer,
                        progress=report,
                        state=state,
                    )
                )
            except FetchError as exc:
                failures.append((site_id, kind, exc.cause))
                progress.update(task, description=f"[red]{site_id} / {kind} failed")
    table = Table(title=f"run {run_id}: {args.start} .. {args.end}")
    for name in ("site", "kind", "shape", "fetched", "landed", "dedup", "quarantined", "retries", "seconds"):
        table.add_column(name, justify="right" if name not in ("site", "kind", "shape") else "left")
    for o in outcomes:
        f = o.figures
        table.add_row(
            o.site_id,
            o.kind,
            o.shape,
            f"{f.rows_fetched:,}",
            f"{f.rows_landed:,}",
            f"{f.rows_deduplicated:,}",
            f"{f.rows_quarantined:,}",
            str(f.retries),
            f"{o.duration_s:.1f}",
        )
    console.print(table)
    for site_id, kind, cause in failures:
        console.print(f"[red]FAILED[/red] {site_id} / {kind}: {cause}")
    return 1 if failures else 0


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    paths = data_paths()
    if not paths.state_db.exists():
        console.print(f"no ingestion state yet ({paths.state_db})")
        return 0
    rows = StateStore(paths).status()
    today = dt.datetime.now(LOCAL_TZ).date()
    table = Table(title=f"ingestion state ({paths.state_db})")
    for name in ("site", "kind", "landed through", "lag (days)", "last outcome", "last finished (UTC)", "last error"):
        table.add_column(name)
    for r in rows:
        lag = (today - r["landed_through"]).days if r["landed_through"] else None
        colour = "green" if r["last_outcome"] == "success" else "red" if r["last_outcome"] == "failed" else "yellow"
        table.add_row(
            r["site_id"],
            r["kind"],
            str(r["landed_through"] or "-"),
            "-" if lag is None else str(lag),
            f"[{colour}]{r['last_outcome']}[/{colour}]",
            f"{r['last_finished_at_utc']:%Y-%m-%d %H:%M}" if r["last_finished_at_utc"] else "-",
            (r["last_error"] or "")[:80],
        )
    console.print(table)
    return 0


def cmd_views(args: argparse.Namespace, console: Console) -> int:
    import duckdb

    from ingestion.views import create_raw_views

    con = duckdb.connect(args.db)
    try:
        names = create_raw_views(con, schema=args.schema)
    finally:
        con.close()
    console.print(f"created {len(names)} views in {args.db}: {', '.join(names)}")
    return 0


def cmd_scan_pii(args: argparse.Namespace, console: Console) -> int:
    from ingestion.pii_scan import scan_landing

    report = scan_landing()
    for path, column, hit in report.hits:
        console.print(f"[red]personal data[/red] {path} column {column}: {hit[:4]}…")
    verdict = "[green]clean[/green]" if report.clean else f"[red]{len(report.hits)} hits[/red]"
    console.print(f"scanned {report.files} files, {report.values:,} distinct text values: {verdict}")
    return 0 if report.clean else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ingestion", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "pull",
        help="land sources for a range of local days",
        description="Land sources for a range of local days (Asia/Shanghai), inclusive. "
        "Example: python -m ingestion pull --site vanke_meili --kind passages --start 2026-01-05 --end 2026-01-11",
    )
    p.add_argument("--site", help="site id from config/pilots.yml, or 'all'")
    p.add_argument("--kind", choices=[*SOURCE_KINDS, "all"], help="source kind, or 'all'")
    p.add_argument("--all", action="store_true", help="every configured site and kind")
    p.add_argument("--start", type=_day, required=True, help="first local day, YYYY-MM-DD")
    p.add_argument("--end", type=_day, required=True, help="last local day, YYYY-MM-DD (inclusive)")
    p.add_argument("--run-id", help="run id recorded in the rows and the audit (default: generated)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_pull)
    s = sub.add_parser(
        "status",
        help="watermarks, last outcome and freshness per site and kind",
        description="Watermarks, last outcome and freshness per site and kind. Example: python -m ingestion status",
    )
    s.set_defaults(func=cmd_status)
    v = sub.add_parser(
        "views",
        help="create raw.<kind> views over the landing zone in a DuckDB file",
        description="Create raw.<kind> views over the landed Parquet. "
        "Example: python -m ingestion views --db data/warehouse/raw.duckdb",
    )
    v.add_argument("--db", required=True, help="DuckDB file to create the views in")
    v.add_argument("--schema", default="raw", help="schema of the views (default raw)")
    v.set_defaults(func=cmd_views)
    c = sub.add_parser(
        "scan-pii",
        help="scan every landed file for clear-text ID numbers, mobiles and plates",
        description="Scan every landed Parquet file (clean and quarantine) for clear-text ID-card "
        "numbers, mobile numbers and plates; exit 1 on any hit. Example: python -m ingestion scan-pii",
    )
    c.set_defaults(func=cmd_scan_pii)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "end", None) and getattr(args, "start", None) and args.end < args.start:
        print(f"--end {args.end} is before --start {args.start}", file=sys.stderr)
        return 2
    # wide tables in logs and pipes too (rich falls back to 80 columns without a terminal)
    return int(args.func(args, Console(width=None if sys.stdout.isatty() else 160)))
