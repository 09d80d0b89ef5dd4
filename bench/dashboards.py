"""Latency of every dashboard's chart-data requests, cold and warm cache, against a floor.

    .venv/bin/python -m bench.dashboards --quick                          # the quick size (CI smoke)
    .venv/bin/python -m bench.dashboards --sizes pilot-year district-month
    .venv/bin/python -m bench.dashboards --serving /tmp/sd/warehouse/serving.duckdb   # measure a built file

For each size (bench/scale.py) the marts are built from the cached landing zone (`dbt
build`, the marts' expectations and publish, in one child process), the serving file is put where one real Superset
(gunicorn, as `make serve` runs it) reads it, and every chart of every dashboard is
requested (`GET /api/v1/chart/{id}/data/`) `--rounds` times: cold = `force=true` (the query
runs on DuckDB and refills the cache), warm = the cached answer. Timings cover the request
only: login and the CSRF token are fetched once per client, outside the clock.

The floor, in the same run and on the same serving file, is the same API answering a
one-row COUNT(*) over the smallest dataset (cold: forced; warm: cached): Superset's own
cost per request. Superset's metadata (db upgrade, init, assets: minutes here) is prepared
once and cached under bench/cache/ keyed by the assets' hash.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.report import Figure, median, percentile, run_child, save_figures
from bench.scale import CACHE_DIR, audit_landed, materialize, registry_env, size
from superset_assets import server
from superset_assets.bundle import chart_data_body

COLD_TARGET_MS = 500.0
WARM_TARGET_MS = 100.0
ASSET_FILES = ("bundle.py", "setup_superset.py", "roles.yml")  # what shapes the metadata (not the runtime config)

_BUILD = r"""
import contextlib, datetime as dt, json, sys
from bench.dashboards_data import evaluate_and_publish
from expectations.results import CriticalDataQualityError
from expectations.steps import validate_marts
from ingestion.paths import data_paths

def validate():
    with contextlib.suppress(CriticalDataQualityError):  # a finding shown on the data-quality dashboard
        validate_marts("bench-dashboards")

print(json.dumps(evaluate_and_publish(data_paths(), dt.date.fromisoformat(sys.argv[1]), None, validate)))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assets_hash() -> str:
    root = server.PROJECT_ROOT / "superset_assets"
    digest = hashlib.sha256()
    for path in sorted([*(root / "assets").rglob("*.yaml"), *(root / name for name in ASSET_FILES)]):
        if path.exists():
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def prepared_superset(work: Path) -> server.SupersetInstance:
    """A Superset home for this run: a copy of the cached prepared metadata (built if missing).

    The metadata names the serving file's path, so the cached home comes with a fixed serving
    path beside it; `use_serving` puts each size's file there."""
    cached = CACHE_DIR / f"superset-{_assets_hash()}"
    secrets = cached / "secrets"  # the key and demo logins, outside the data and metadata folders
    if not (secrets / server.LOGINS_FILE).exists():
        shutil.rmtree(cached, ignore_errors=True)
        inst = server.instance(data_dir=cached / "data", home=cached / "home", port=0, secrets_path=secrets)
        (cached / "data" / "warehouse").mkdir(parents=True, exist_ok=True)
        server.prepare(inst)
    home = work / "superset-home"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(cached / "home", home, ignore=shutil.ignore_patterns("cache", "*.log", "events.jsonl"))
    return server.instance(data_dir=cached / "data", home=home, port=free_port(), secrets_path=secrets)


def use_serving(inst: server.SupersetInstance, serving: Path) -> None:
    """Put a built serving file where Superset reads it (hard link, renamed into place)."""
    target = inst.data_dir / "warehouse" / "serving.duckdb"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(serving, tmp)
    except OSError:
        shutil.copyfile(serving, tmp)
    os.replace(tmp, target)


def build_size(size_name: str, work: Path, timeout: float) -> tuple[Path, dict]:
    """Land (cached), build and publish a size; returns its serving file and the build times."""
    from bench.dashboards_data import demo_env

    root = work / size_name
    shutil.rmtree(root, ignore_errors=True)
    paths, registry = materialize(size_name, root)
    spec = size(size_name)
    audit_landed(paths, registry, spec.first, spec.last, f"bench-{size_name}")
    env = {
        **os.environ,
        **demo_env(),
        **registry_env(root),
        "SMARTCOMM_GX_DIR": str(root / "gx"),
        "PYTHONPATH": str(server.PROJECT_ROOT),
    }
    run = run_child([sys.executable, "-c", _BUILD, spec.last.isoformat()], env=env, timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"build of {size_name} failed: {run.stderr.strip()[-2000:]}")
    times = json.loads(run.stdout.strip().splitlines()[-1])
    return root / "warehouse" / "serving.duckdb", {**times, "peak_rss_mib": run.peak_rss_mib}


def login(base_url: str, username: str, password: str) -> httpx.Client:
    """An API client logged in as `username` (bearer token, CSRF token, Referer)."""
    client = httpx.Client(base_url=base_url, timeout=120)
    reply = client.post(
        "/api/v1/security/login", json={"username": username, "password": password, "provider": "db", "refresh": False}
    )
    reply.raise_for_status()
    client.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"
    client.headers["X-CSRFToken"] = client.get("/api/v1/security/csrf_token/").json()["result"]
    client.headers["Referer"] = base_url
    return client


def _timed(client: httpx.Client, method: str, path: str, errors: list[str] | None = None, **kwargs) -> float | None:
    """Milliseconds of one request; a failed one is recorded in `errors` (or raised) and not timed."""
    started = time.perf_counter()
    reply = client.request(method, path, **kwargs)
    elapsed = time.perf_counter() - started
    if reply.status_code != 200:
        message = f"{path}: HTTP {reply.status_code} {reply.text[:200]}"
        if errors is None:
            raise RuntimeError(message)
        errors.append(message)
        return None
    return elapsed * 1000


def _first_item_filters(client: httpx.Client, dashboard_id: int) -> dict[int, dict]:
    """Per dataset id, the filter a browser opening the dashboard applies first: a native filter
    that defaults to its first item (预警's warning choice, required) narrows its dataset's
    charts to the first value of its column before they load; unfiltered they would return
    every warning's series, a request the page never makes."""
    metadata = json.loads(client.get(f"/api/v1/dashboard/{dashboard_id}").json()["result"]["json_metadata"] or "{}")
    narrowed: dict[int, dict] = {}
    for native in metadata.get("native_filter_configuration", []):
        if not native.get("controlValues", {}).get("defaultToFirstItem"):
            continue
        for target in native.get("targets", []):
            column = target["column"]["name"]
            first = {"columns": [column], "metrics": [], "orderby": [[column, True]], "row_limit": 1}
            body = chart_data_body(target["datasetId"], first)
            rows = client.post("/api/v1/chart/data", json=body).json()["result"][0]["data"]
            if rows:
                narrowed[target["datasetId"]] = {"col": column, "op": "IN", "val": [rows[0][column]]}
    return narrowed


def _narrowed_context(client: httpx.Client, chart_id: int, narrowed: dict[int, dict]) -> dict | None:
    """The chart's saved query context with its dashboard's first-item filter, or None if none applies."""
    if not narrowed:
        return None
    context = json.loads(client.get(f"/api/v1/chart/{chart_id}").json()["result"]["query_context"] or "{}")
    extra = narrowed.get(context.get("datasource", {}).get("id"))
    if extra is None:
        return None
    for query in context["queries"]:
        query["filters"] = [*query.get("filters", []), extra]
    return context


def measure(client: httpx.Client, rounds: int) -> dict:
    """Per dashboard: the cold and warm milliseconds of every chart request; and the floors."""
    dashboards = client.get("/api/v1/dashboard/", params={"q": "(page_size:100)"}).json()["result"]
    datasets = client.get("/api/v1/dataset/", params={"q": "(page_size:100)"}).json()["result"]
    smallest = next(d for d in datasets if d["table_name"] == "district_ratings")

    def floor_body(force: bool) -> dict:
        return chart_data_body(smallest["id"], {"columns": [], "metrics": ["row_count"], "row_limit": 1}, force)

    report: dict = {
        "floor_cold": [_timed(client, "POST", "/api/v1/chart/data", json=floor_body(True)) for _ in range(rounds * 4)],
        "floor_warm": [_timed(client, "POST", "/api/v1/chart/data", json=floor_body(False)) for _ in range(rounds * 4)],
        "dashboards": {},
    }
    for dashboard in sorted(dashboards, key=lambda d: d["id"]):
        charts = client.get(f"/api/v1/dashboard/{dashboard['id']}/charts").json()["result"]
        narrowed = _first_item_filters(client, dashboard["id"])
        contexts = {chart["id"]: _narrowed_context(client, chart["id"], narrowed) for chart in charts}
        timings: dict[str, list[float | None]] = {"cold": [], "warm": []}
        errors: list[str] = []
        for _ in range(rounds):
            for cache, params in (("cold", {"force": "true"}), ("warm", {})):
                for chart in charts:
                    context = contexts[chart["id"]]
                    if context is None:
                        path = f"/api/v1/chart/{chart['id']}/data/"
                        timings[cache].append(_timed(client, "GET", path, errors, params=params))
                    else:
                        body = {**context, "force": cache == "cold"}
                        timings[cache].append(_timed(client, "POST", "/api/v1/chart/data", errors, json=body))
        report["dashboards"][dashboard["dashboard_title"]] = {
            "charts": len(charts),
            "narrowed_by_default_filter": sum(context is not None for context in contexts.values()),
            "cold": [t for t in timings["cold"] if t is not None],
            "warm": [t for t in timings["warm"] if t is not None],
            "errors": sorted(set(errors)),
        }
    return report


def _server_rss_mib(inst: server.SupersetInstance) -> float | None:
    """Resident memory of gunicorn and its workers now (psutil), the server's footprint."""
    try:
        import psutil

        parent = psutil.Process(inst.process.pid)
        return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)]) / 2**20
    except Exception:
        return None


def figures_for(size_name: str, report: dict, server_rss: float | None) -> list[Figure]:
    floor_cold, floor_warm = median(report["floor_cold"]), median(report["floor_warm"])
    figures = [
        Figure("dashboards", "floor: COUNT(*) forced", size_name, floor_cold, "ms", repeats=len(report["floor_cold"])),
        Figure("dashboards", "floor: COUNT(*) cached", size_name, floor_warm, "ms", repeats=len(report["floor_warm"])),
    ]
    for title, row in report["dashboards"].items():
        if row["errors"]:
            figures.append(
                Figure(
                    "dashboards",
                    f"{title} failed chart requests",
                    size_name,
                    len(row["errors"]),
                    "charts",
                    target="every chart answers",
                    meets=False,
                )
            )
        for cache, values, floor, target in (
            ("cold", row["cold"], floor_cold, COLD_TARGET_MS),
            ("warm", row["warm"], floor_warm, WARM_TARGET_MS),
        ):
            if not values:
                continue
            p50, p95 = median(values), percentile(values, 95)
            figures.append(
                Figure(
                    "dashboards",
                    f"{title} {cache} p50",
                    size_name,
                    p50,
                    "ms",
                    f"floor {cache}",
                    floor,
                    repeats=len(values),
                )
            )
            figures.append(
                Figure(
                    "dashboards",
                    f"{title} {cache} p95",
                    size_name,
                    p95,
                    "ms",
                    baseline=f"floor {cache}",
                    baseline_value=floor,
                    target=f"p95 <= {target:.0f} ms",
                    meets=p95 <= target,
                    peak_rss_mib=server_rss,
                    repeats=len(values),
                )
            )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Dashboard chart-data latency, cold and warm. Example: python -m bench.dashboards --sizes pilot-year"
    )
    parser.add_argument("--sizes", nargs="+", default=["pilot-year", "district-month"], help="bench/scale.py sizes")
    parser.add_argument("--quick", action="store_true", help="CI smoke: the quick size, 2 rounds")
    parser.add_argument("--serving", type=Path, help="measure this serving file instead of building sizes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=3 * 3600.0, help="seconds per build")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (built serving files) afterwards")
    args = parser.parse_args(argv)
    sizes, rounds = (["quick"], 2) if args.quick else (args.sizes, args.rounds)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-dashboards-"))
    figures: list[Figure] = []
    details: dict = {}
    try:
        inst = prepared_superset(work)
        servings = {"given": (args.serving, {})} if args.serving else {}
        for name in [] if args.serving else sizes:
            servings[name] = build_size(name, work, args.timeout)
            figures.append(
                Figure(
                    "dashboards",
                    "build + validate marts + publish (set-up)",
                    name,
                    sum(v for k, v in servings[name][1].items() if k != "peak_rss_mib"),
                    "s",
                    peak_rss_mib=servings[name][1]["peak_rss_mib"],
                )
            )
        for name, (serving, build_times) in servings.items():
            use_serving(inst, serving)
            server.start(inst, workers=args.workers)
            try:
                client = login(inst.url, "admin", inst.logins()["admin"])
                report = measure(client, rounds)
                rss = _server_rss_mib(inst)
            finally:
                server.stop(inst)
            figures += figures_for(name, report, rss)
            for title, row in report["dashboards"].items():
                for error in row["errors"]:
                    print(f"{name} {title}: {error}", file=sys.stderr)
            details[name] = {"build": build_times, "server_rss_mib": rss, **report}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    save_figures("dashboards", figures, extra={"details": details, "rounds": rounds})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
