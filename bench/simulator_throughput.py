"""Benchmark: how fast the simulator serves and generates, and whether memory stays flat.

    .venv/bin/python bench/simulator_throughput.py [--site vanke_meili] [--month 2026-01] [--days 7]

Three measurements, each a report, never an assertion:

1. Served rows/s for the ISC passage endpoint at pageSize 1000, one client on one
   keep-alive connection, signed requests: cold (first pass: generation + encoding inside)
   and warm (pages from the day cache), with httpx parsing each page with orjson as a
   connector would, and warm with a lean stdlib client that only reads and counts. Baselines measured in the same run: the loopback floor (the same
   client fetching `/_control/health`, requests/s) and the client's own parse cost
   (orjson.loads of the same page bytes in-process).
2. Generation time of one site-month of canonical passages (`World.raw`, no HTTP) and of
   the same month encoded as ISC rows (what the server caches), in a fresh process.
3. Peak RSS while computing the truth of one site-year of passages day by day, sampled
   after 1, 3, 6 and 12 months (streamed generation: it should stay flat).

Writes bench/results/simulator_throughput.json.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

CST = timezone(timedelta(hours=8))
PASSAGES = "/artemis/api/acs/v1/door/events"


def demo_env() -> dict[str, str]:
    from core.demo import demo_values

    return demo_values()


def signed(env: dict[str, str], path: str) -> dict[str, str]:
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "X-Ca-Key": env["SMARTCOMM_ISC_APP_KEY"],
        "X-Ca-Nonce": str(uuid.uuid4()),
        "X-Ca-Timestamp": str(int(time.time() * 1000)),
        "X-Ca-Signature-Headers": "x-ca-key,x-ca-nonce,x-ca-timestamp",
    }
    text = "\n".join(
        [
            "POST",
            headers["Accept"],
            headers["Content-Type"],
            f"x-ca-key:{headers['X-Ca-Key']}",
            f"x-ca-nonce:{headers['X-Ca-Nonce']}",
            f"x-ca-timestamp:{headers['X-Ca-Timestamp']}",
            path,
        ]
    )
    digest = hmac.new(env["SMARTCOMM_ISC_APP_SECRET"].encode(), text.encode(), hashlib.sha256).digest()
    headers["X-Ca-Signature"] = base64.b64encode(digest).decode()
    return headers


def serve(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "--port", "0", "--quiet", "--env-file", "config/demo.env"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()
    if not line.startswith("simulator listening on "):
        process.kill()
        raise RuntimeError(f"simulator did not start: {line!r}")
    return process, line.removeprefix("simulator listening on ")


def page_through(
    http, base_url: str, env: dict[str, str], site: str, first: date, days: int
) -> tuple[int, int, float, float]:
    """(rows, pages, seconds, seconds spent parsing) over one window per local day."""
    import orjson

    path = f"/isc/{site}{PASSAGES}"
    rows = pages = 0
    parse_s = 0.0
    started = time.perf_counter()
    for offset in range(days):
        day = first + timedelta(days=offset)
        window = {
            "startTime": datetime.combine(day, datetime.min.time(), CST).isoformat(),
            "endTime": datetime.combine(day + timedelta(days=1), datetime.min.time(), CST).isoformat(),
        }
        page = 1
        while True:
            body = json.dumps({**window, "pageNo": page, "pageSize": 1000}).encode()
            reply = http.post(base_url + path, content=body, headers=signed(env, path))
            t = time.perf_counter()
            listed = orjson.loads(reply.content)["data"]["list"]
            parse_s += time.perf_counter() - t
            rows += len(listed)
            pages += 1
            if len(listed) < 1000:
                break
            page += 1
    return rows, pages, time.perf_counter() - started, parse_s


def page_through_lean(base_url: str, env: dict[str, str], site: str, first: date, days: int) -> tuple[int, int, float]:
    """The same pages with a lean stdlib client that only reads the bytes and counts rows:
    what the server can deliver when the client is not the bottleneck."""
    import http.client

    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=300)
    path = f"/isc/{site}{PASSAGES}"
    rows = pages = 0
    started = time.perf_counter()
    for offset in range(days):
        day = first + timedelta(days=offset)
        window = {
            "startTime": datetime.combine(day, datetime.min.time(), CST).isoformat(),
            "endTime": datetime.combine(day + timedelta(days=1), datetime.min.time(), CST).isoformat(),
        }
        page = 1
        while True:
            body = json.dumps({**window, "pageNo": page, "pageSize": 1000}).encode()
            connection.request("POST", path, body=body, headers=signed(env, path))
            data = connection.getresponse().read()
            count = data.count(b'{"eventId"')
            rows += count
            pages += 1
            if count < 1000:
                break
            page += 1
    connection.close()
    return rows, pages, time.perf_counter() - started


def measure_serving(site: str, first: date, days: int) -> dict[str, object]:
    import httpx

    env = demo_env()
    process, base_url = serve(env)
    try:
        with httpx.Client(timeout=300) as http:
            health_n = 300
            t = time.perf_counter()
            for _ in range(health_n):
                http.get(f"{base_url}/_control/health")
            health_rps = health_n / (time.perf_counter() - t)
            cold = page_through(http, base_url, env, site, first, days)
            warm = page_through(http, base_url, env, site, first, days)
            lean = page_through_lean(base_url, env, site, first, days)
    finally:
        process.terminate()
        process.wait(timeout=10)
    rows, pages, seconds, parse_s = warm
    return {
        "site": site,
        "days": days,
        "rows": rows,
        "pages": pages,
        "cold_rows_per_s": round(cold[0] / cold[2]),
        "warm_rows_per_s": round(rows / seconds),
        "warm_rows_per_s_excluding_client_parse": round(rows / (seconds - parse_s)),
        "warm_pages_per_s": round(pages / seconds, 1),
        "warm_rows_per_s_lean_client": round(lean[0] / lean[2]),
        "lean_client_rows_match": lean[0] == rows,
        "baseline_health_requests_per_s": round(health_rps, 1),
        "ratio_page_latency_to_health_latency": round(health_rps / (pages / seconds), 2),
        "client_parse_share_of_warm_time": round(parse_s / seconds, 3),
        "target_rows_per_s": 200_000,
    }


GENERATION = r"""
import json, sys, time
from datetime import date, timedelta
sys.path.insert(0, sys.argv[1])
from simulator.world import World
from simulator.listing import Lister
site, first, days = sys.argv[2], date.fromisoformat(sys.argv[3]), int(sys.argv[4])
world = World(seed=7)
world.site_world(site)
t = time.perf_counter(); rows = 0
for i in range(days):
    rows += len(world.raw(site, "passages", first + timedelta(days=i))["event_id"])
gen_s = time.perf_counter() - t
lister = Lister(World(seed=7), max_rows=10**9)
lister.world.site_world(site)
t = time.perf_counter()
for i in range(days):
    lister.day("isc_openapi", site, "passages", first + timedelta(days=i))
enc_s = time.perf_counter() - t
print(json.dumps({"rows": rows, "generate_s": round(gen_s, 2), "generate_rows_per_s": round(rows / gen_s),
                  "generate_and_encode_isc_s": round(enc_s, 2)}))
"""

MEMORY = r"""
import json, sys, resource
from datetime import date, timedelta
sys.path.insert(0, sys.argv[1])
import psutil
from simulator.world import World
from simulator.truth import truth
site, first = sys.argv[2], date.fromisoformat(sys.argv[3])
world = World(seed=7)
proc = psutil.Process()
samples = {}
day = first
rows = 0
for month in range(1, 13):
    end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    rows += truth(world, site, "passages", day, end)["rows"]
    if month in (1, 3, 6, 12):
        samples[f"rss_mib_after_{month}_months"] = round(proc.memory_info().rss / 2**20, 1)
    day = end + timedelta(days=1)
samples["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
samples["rows"] = rows
print(json.dumps(samples))
"""


def child(code: str, *args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", code, str(PROJECT_ROOT), *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", default="vanke_meili")
    parser.add_argument("--month", default="2026-01", help="YYYY-MM of the site-month (and first month of the year)")
    parser.add_argument("--days", type=int, default=7, help="days paged through for the serving measurement")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    first = date.fromisoformat(f"{args.month}-01")
    next_month = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    results: dict[str, object] = {"machine_cpus": os.cpu_count(), "python": sys.version.split()[0]}
    print(f"serving: {args.site} passages, {args.days} days, pageSize 1000 ...", flush=True)
    results["serving"] = measure_serving(args.site, first, args.days)
    print(json.dumps(results["serving"], indent=2), flush=True)
    print("generation: one site-month ...", flush=True)
    results["site_month"] = child(GENERATION, args.site, first.isoformat(), str((next_month - first).days))
    print(json.dumps(results["site_month"], indent=2), flush=True)
    if not args.skip_memory:
        print("memory: one site-year of truth, day by day ...", flush=True)
        results["site_year_memory"] = child(MEMORY, args.site, first.isoformat())
        print(json.dumps(results["site_year_memory"], indent=2), flush=True)
    out = PROJECT_ROOT / "bench" / "results" / "simulator_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"wrote {out.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
