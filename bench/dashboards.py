"""Latency of each dashboard's chart-data requests, cold and warm cache, against a floor.

    .venv/bin/python -m bench.dashboards --months 12            # build 10 sites x 12 months, then measure
    .venv/bin/python -m bench.dashboards --data-dir /tmp/sd     # reuse a data dir built earlier

Builds the serving database from the simulator (bench/dashboards_data.py) unless --data-dir
already holds one, starts a real Superset (gunicorn, 2 workers) on a free port, and for
every dashboard requests each chart's data (`GET /api/v1/chart/{id}/data/`) `--rounds`
times: cold = `force=true` (the query runs on DuckDB, the cache is refilled), warm = the
cached answer. The floor, measured in the same run, is the same request for a one-row
COUNT(*) over the smallest dataset: Superset's own overhead. Writes
bench/results/dashboards.json and prints p50/p95 per dashboard and the ratio to the floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.dashboards_data import build_serving, month_range
from superset_assets import server

RESULTS = Path(__file__).resolve().parent / "results"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _login(base_url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=120)
    reply = client.post(
        "/api/v1/security/login", json={"username": username, "password": password, "provider": "db", "refresh": False}
    )
    reply.raise_for_status()
    client.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"
    client.headers["X-CSRFToken"] = client.get("/api/v1/security/csrf_token/").json()["result"]
    client.headers["Referer"] = base_url
    return client


def _timed(client: httpx.Client, method: str, path: str, **kwargs) -> float:
    started = time.perf_counter()
    reply = client.request(method, path, **kwargs)
    elapsed = time.perf_counter() - started
    if reply.status_code != 200:
        raise RuntimeError(f"{path}: HTTP {reply.status_code} {reply.text[:200]}")
    return elapsed * 1000


def measure(client: httpx.Client, rounds: int) -> dict:
    dashboards = client.get("/api/v1/dashboard/", params={"q": "(page_size:100)"}).json()["result"]
    datasets = client.get("/api/v1/dataset/", params={"q": "(page_size:100)"}).json()["result"]
    smallest = next(d for d in datasets if d["table_name"] == "district_ratings")
    floor_body = {
        "datasource": {"id": smallest["id"], "type": "table"},
        "force": True,
        "queries": [{"columns": [], "metrics": ["row_count"], "row_limit": 1}],
        "result_format": "json",
        "result_type": "full",
    }
    floor = [_timed(client, "POST", "/api/v1/chart/data", json=floor_body) for _ in range(rounds * 5)]
    report = {"floor_ms": {"p50": statistics.median(floor), "p95": _quantile(floor, 0.95), "n": len(floor)}}
    for dashboard in sorted(dashboards, key=lambda d: d["id"]):
        charts = client.get(f"/api/v1/dashboard/{dashboard['id']}/charts").json()["result"]
        cold, warm = [], []
        for _ in range(rounds):
            for chart in charts:
                cold.append(_timed(client, "GET", f"/api/v1/chart/{chart['id']}/data/", params={"force": "true"}))
            for chart in charts:
                warm.append(_timed(client, "GET", f"/api/v1/chart/{chart['id']}/data/"))
        report[dashboard["dashboard_title"]] = {
            "charts": len(charts),
            "cold_ms": {"p50": statistics.median(cold), "p95": _quantile(cold, 0.95), "n": len(cold)},
            "warm_ms": {"p50": statistics.median(warm), "p95": _quantile(warm, 0.95), "n": len(warm)},
        }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Dashboard chart-data latency, cold and warm. Example: python -m bench.dashboards --months 12"
    )
    parser.add_argument("--months", type=int, default=12, help="months of simulator data (10 sites)")
    parser.add_argument("--scale", type=float, default=0.1, help="registry scale (residents, devices)")
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse (or build into) this data dir")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-dashboards-"))
    serving = data_dir / "warehouse" / "serving.duckdb"
    build_seconds = {}
    if not serving.exists():
        first, last = month_range(dt.date(2026, 1, 1), args.months)
        build_seconds = build_serving(data_dir, first, last, scale=args.scale).seconds
    inst = server.instance(data_dir=data_dir, home=data_dir / "superset-bench", port=_free_port())
    server.prepare(inst)
    server.start(inst)
    try:
        client = _login(inst.url, "admin", inst.logins()["admin"])
        report = measure(client, args.rounds)
    finally:
        server.stop(inst)
    report["setup"] = {"data_dir": str(data_dir), "months": args.months, "scale": args.scale, "build_s": build_seconds}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dashboards.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    floor = report["floor_ms"]["p50"]
    print(
        f"floor (COUNT(*) on a small table through Superset): p50 {floor:.0f} ms, p95 {report['floor_ms']['p95']:.0f} ms"
    )
    print(
        f"{'dashboard':<10} {'charts':>6} {'cold p50':>9} {'cold p95':>9} {'warm p50':>9} {'warm p95':>9} {'cold/floor':>10}"
    )
    for name, row in report.items():
        if name in ("floor_ms", "setup"):
            continue
        c, w = row["cold_ms"], row["warm_ms"]
        print(
            f"{name:<10} {row['charts']:>6} {c['p50']:>8.0f}ms {c['p95']:>8.0f}ms {w['p50']:>8.0f}ms {w['p95']:>8.0f}ms"
            f" {c['p50'] / floor:>9.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
