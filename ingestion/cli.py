"""Command line: pull sources into the landing zone, show state, create raw views.

    python -m ingestion pull --site vanke_meili --kind passages --start 2026-01-05 --end 2026-01-11
    python -m ingestion pull --all --start 2026-01-05 --end 2026-01-05 [--workers auto|N]
    python -m ingestion status
    python -m ingestion views --db data/warehouse/raw.duckdb
    python -m ingestion scan-pii
    python -m ingestion pseudonym-key new|check|adopt

Exit code 0 when every (site, kind) succeeded, 1 when any failed (each failure is named).
Several (site, kind) units land side by side in worker processes (ingestion/workers.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingestion.hardening import harden_process
from ingestion.landing import new_run_id
from ingestion.landing_key import check_landing_key, has_landed_data, record_fingerprint, recorded_fingerprint
from ingestion.paths import data_paths
from ingestion.pii import MIN_KEY_BYTES, Pseudonymizer, PseudonymKeyError
from ingestion.pull import configured_pairs
from ingestion.registry import SOURCE_KINDS, load_registry
from ingestion.state import StateStore
from ingestion.timeutil import LOCAL_TZ
from ingestion.workers import UnitResult, land_units, parse_workers, resolve_workers


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _workers(text: str) -> int | str:
    try:
        return parse_workers(text, source="--workers")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_pull(args: argparse.Namespace, console: Console) -> int:
    registry = load_registry()
    sites = None if args.all or args.site in (None, "all") else [args.site]
    kinds = None if args.all or args.kind in (None, "all") else [args.kind]
    if not args.all and (args.site is None or args.kind is None):
        console.print("[red]give --site S and --kind K (or 'all'), or --all[/red]")
        return 2
    paths = data_paths()
    try:
        pairs = configured_pairs(registry, sites, kinds)
        pseudonymizer = Pseudonymizer()
        check_landing_key(paths, pseudonymizer)
    except (KeyError, PseudonymKeyError) as exc:
        console.print(f"[red]{exc}[/red]", markup=False)
        return 2
    try:
        workers = resolve_workers(args.workers, len(pairs))
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]", markup=False)
        return 2
    state = StateStore(paths)
    run_id = args.run_id or new_run_id("cli")
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
        bars: dict[int, TaskID] = {}

        def report(index: int, done: int, total: int | None, rows: int) -> None:
            """A unit's bar appears when it starts (in whichever worker) and moves as it lands."""
            if index not in bars:
                site_id, kind = pairs[index]
                bars[index] = progress.add_task(f"{site_id} / {kind}", total=None, rows=0)
            if total is not None:
                progress.update(bars[index], completed=done, total=total, rows=rows)

        def finished(result: UnitResult) -> None:
            if result.cause is not None:
                failures.append((result.site_id, result.kind, result.cause))
                report(result.index, 0, None, 0)
                progress.update(bars[result.index], description=f"[red]{result.site_id} / {result.kind} failed")

        if workers > 1 and not args.quiet:
            console.print(f"{len(pairs)} (site, kind) units in {workers} worker processes")
        results = land_units(
            pairs,
            args.start,
            args.end,
            run_id=run_id,
            workers=workers,
            paths=paths,
            registry=registry,
            pseudonymizer=pseudonymizer,
            state=state,
            progress=report,
            on_result=finished,
            allow_shrink=args.allow_shrink,
        )
    outcomes = [r.outcome for r in results if r.outcome is not None]
    table = Table(title=f"run {run_id}: {args.start} .. {args.end}")
    for name in ("site", "kind", "shape", "fetched", "landed", "dedup", "quarantined", "outside", "retries", "seconds"):
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
            f"{f.rows_outside_window:,}",
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
    from ingestion.pii_scan import STORES, scan_all

    report = scan_all()
    for hit in report.hits:
        console.print(
            f"[red]personal data[/red] {hit.store} {hit.location} column {hit.column}: {hit.kind} {hit.masked}",
            highlight=False,
        )
    for location, error in report.unreadable:
        console.print(f"[yellow]not scanned[/yellow] {location}: {error}", highlight=False)
    stores = ", ".join(f"{store} {report.scanned[store]}" for store in STORES)
    verdict = "[green]clean[/green]" if report.clean else f"[red]{report.total_hits} hits[/red]"
    if report.clean and not report.complete:
        verdict = f"[yellow]incomplete: {len(report.unreadable)} not scanned[/yellow]"
    console.print(f"scanned {report.files} files and tables ({stores}), {report.values:,} distinct values: {verdict}")
    return 1 if not report.clean else 2 if not report.complete else 0


def cmd_pseudonym_key(args: argparse.Namespace, console: Console) -> int:
    if args.action == "new":
        print(secrets.token_urlsafe(48))  # 48 random bytes, 64 characters
        return 0
    paths = data_paths()
    try:
        pseudonymizer = Pseudonymizer()
        if args.action == "adopt":
            if recorded_fingerprint(paths) is not None:
                console.print(f"the landing zone {paths.landing} already records its key; nothing adopted")
                return 1
            if not has_landed_data(paths):
                console.print(f"the landing zone {paths.landing} is empty: its first landing records the key")
                return 1
            record_fingerprint(paths, pseudonymizer)
            console.print(f"recorded the fingerprint of the current key for {paths.landing}")
            return 0
        if recorded_fingerprint(paths) is None:
            console.print(f"the landing zone {paths.landing} records no key yet (its first landing will)")
            return 0 if not has_landed_data(paths) else 1
        check_landing_key(paths, pseudonymizer)
    except PseudonymKeyError as exc:
        console.print(f"[red]{exc}[/red]", markup=False)
        return 1
    console.print(f"[green]the key is the one the landing zone {paths.landing} was written with[/green]")
    return 0


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
    p.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="worker processes landing (site, kind) units side by side: N or 'auto' (one per CPU); "
        "default: ingest.workers of config/pipeline.yml",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--allow-shrink",
        action="store_true",
        help="let a day's partition be replaced by fewer rows than it holds (recorded in the audit); "
        "without it such a day fails the run, and a day the source delivered nothing for is kept as landed",
    )
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
        help="scan every store for clear-text ID numbers, mobiles, plates and names",
        description="Scan every store (landing, quarantine, warehouse, serving, state, alert records, logs) "
        "for clear-text ID-card numbers (15 or 18 characters), mobiles (separators, +86), plates (with ·) and "
        "names, in text, integer and JSON columns; exit 1 on any hit, 2 when a store could not be read. "
        "Example: python -m ingestion scan-pii",
    )
    c.set_defaults(func=cmd_scan_pii)
    k = sub.add_parser(
        "pseudonym-key",
        help="make a new pseudonym key, or check / adopt the landing zone's key fingerprint",
        description=f"new: print a fresh random key (at least {MIN_KEY_BYTES} bytes are required outside demo "
        "mode); check: does SMARTCOMM_PSEUDONYM_KEY match the key the landing zone was written with; adopt: "
        "record the current key for a landing zone landed before fingerprints existed. "
        "Example: python -m ingestion pseudonym-key check",
    )
    k.add_argument("action", choices=["new", "check", "adopt"])
    k.set_defaults(func=cmd_pseudonym_key)
    return parser


def main(argv: list[str] | None = None) -> int:
    harden_process()  # private files (umask 077), redacted log records
    args = build_parser().parse_args(argv)
    if getattr(args, "end", None) and getattr(args, "start", None) and args.end < args.start:
        print(f"--end {args.end} is before --start {args.start}", file=sys.stderr)
        return 2
    # wide tables in logs and pipes too (rich falls back to 80 columns without a terminal)
    return int(args.func(args, Console(width=None if sys.stdout.isatty() else 160)))
