"""Command line: `python -m simulator serve | drop-files | truth` (see simulator/README.md)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

import orjson

from ingestion.registry import PROJECT_ROOT, SOURCE_KINDS

DEFAULT_PORT = 8700


def load_env_file(path: str | Path) -> dict[str, str]:
    """KEY=VALUE lines (comments and blanks skipped) into os.environ; existing values win."""
    loaded: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        loaded[key.strip()] = value.strip().strip('"').strip("'")
    for key, value in loaded.items():
        os.environ.setdefault(key, value)
    return loaded


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=7, help="world seed (default 7)")
    parser.add_argument("--faults", default=None, help="fault rules YAML (e.g. simulator/faults/demo.yml)")
    parser.add_argument(
        "--anomalies", type=int, default=None, help="anomaly episodes per site per quarter (default 3; 0 = none)"
    )
    parser.add_argument(
        "--env-file", default=None, help="KEY=VALUE file loaded into the environment (e.g. config/demo.env)"
    )
    parser.add_argument("--registry", default=None, help="pilot registry (default config/pilots.yml)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator", description="Simulator of the pilot communities' vendor systems."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="serve every site's vendor APIs on one loopback port",
        description="Example: python -m simulator serve --seed 7 --start 2026-01-01 --end 2026-03-31 --port 8700 --env-file config/demo.env",
    )
    _common(serve)
    serve.add_argument(
        "--start", type=date.fromisoformat, default=None, help="first local day of the world (default unbounded)"
    )
    serve.add_argument(
        "--end", type=date.fromisoformat, default=None, help="last local day of the world (default unbounded)"
    )
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1 (0 = a free port)")
    serve.add_argument("--drop-dir", default=None, help="sets SMARTCOMM_DROP_DIR for the control API's drop-files")
    serve.add_argument("--token-ttl", type=int, default=900, help="REST token lifetime in seconds (default 900)")
    serve.add_argument("--quiet", action="store_true", help="no per-request log lines")
    serve.add_argument(
        "--cache-rows",
        type=int,
        default=1_000_000,
        help="encoded rows kept in memory (default 1,000,000: ~0.5 GB, a site-month of the largest site)",
    )
    drop = sub.add_parser(
        "drop-files",
        help="write the file-based drops (gov exports, manual workbooks, alarm JSON lines)",
        description="Example: python -m simulator drop-files --seed 7 --start 2026-01-01 --end 2026-01-31 --drop-dir data/drops",
    )
    _common(drop)
    drop.add_argument("--start", type=date.fromisoformat, required=True)
    drop.add_argument("--end", type=date.fromisoformat, required=True)
    drop.add_argument("--site", default="*", help="site id (default all)")
    drop.add_argument("--kind", default="*", help="kind (default all)")
    drop.add_argument("--drop-dir", default=None, help="sets SMARTCOMM_DROP_DIR (default data/drops)")
    tr = sub.add_parser(
        "truth",
        help="print the exact true figures as JSON",
        description="Example: python -m simulator truth --site vanke_meili --kind passages --start 2026-01-05 --end 2026-01-05",
    )
    _common(tr)
    tr.add_argument("--site", required=True)
    tr.add_argument("--kind", required=True, choices=SOURCE_KINDS)
    tr.add_argument("--start", type=date.fromisoformat, required=True)
    tr.add_argument("--end", type=date.fromisoformat, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.env_file:
        load_env_file(args.env_file)
    if getattr(args, "drop_dir", None):
        os.environ["SMARTCOMM_DROP_DIR"] = str(Path(args.drop_dir).resolve())
    from ingestion.registry import load_registry
    from simulator.world import World

    registry = load_registry(args.registry)
    start, end = getattr(args, "start", None), getattr(args, "end", None)
    world = World(
        seed=args.seed,
        registry=registry,
        faults=args.faults,
        anomalies_per_quarter=args.anomalies,
        start=start if args.command == "serve" else None,
        end=end if args.command == "serve" else None,
    )
    if args.command == "truth":
        from simulator.truth import truth

        result = truth(world, args.site, args.kind, args.start, args.end)
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if args.command == "drop-files":
        from simulator.files import drop_files

        paths = drop_files(world, args.start, args.end, site=args.site, kind=args.kind, drop_dir=args.drop_dir)
        print(f"wrote {len(paths)} files")
        return 0
    from simulator.server import SimulatorState, make_server

    drop_dir = Path(args.drop_dir).resolve() if args.drop_dir else None
    state = SimulatorState(world, drop_dir, args.token_ttl, cache_rows=args.cache_rows)
    state.quiet = args.quiet
    server = make_server(state, args.port)
    port = server.server_address[1]
    print(f"simulator listening on http://127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


__all__ = ["PROJECT_ROOT", "build_parser", "load_env_file", "main"]
