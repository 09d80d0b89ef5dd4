"""Benchmark: one site-month of ISC passages into Parquet, against a plain download (the floor).

    .venv/bin/python bench/ingest.py [--site vanke_meili] [--month 2026-01] [--repeat 2]

Starts the simulator on a free loopback port, then alternates, in child processes:
  floor   the same signed ISC pages (one window per local day, pageSize 1000) downloaded
          and discarded, the page count taken from the first page's `total`;
  ingest  `ingestion.pull.pull(site, "passages", month)`: fetch, map, pseudonymize,
          validate, dedup and write the day partitions.
The first floor pays the simulator's page generation (cold), later ones hit its cache
(warm: transfer only). Reports rows/s, ingest time over each floor (target <= 1.5) and each child's peak RSS
(getrusage in the child), and writes bench/results/ingest.json. Never a timed assertion: a report.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

FLOOR = r"""
import datetime as dt, json, os, re, sys, time
import httpx, orjson
from ingestion.connectors.isc import sign_headers
from ingestion.connectors.windows import local_midnight
from ingestion.mapping import load_shape_mapping
from ingestion.registry import load_registry
from ingestion.timeutil import days_between

site_id, first, last = sys.argv[1], dt.date.fromisoformat(sys.argv[2]), dt.date.fromisoformat(sys.argv[3])
site = load_registry().site(site_id)
source = site.source("passages")
base = site.resolve(source.base_url)
endpoint = load_shape_mapping("isc_openapi").kind("passages").settings["endpoint"]
path = httpx.URL(base).path + endpoint
key, secret = os.environ[source.app_key_env], os.environ[source.app_secret_env]
signed = ["x-ca-key", "x-ca-nonce", "x-ca-timestamp"]
total_re = re.compile(rb'"total"\s*:\s*(\d+)')
started = time.perf_counter()
rows = pages = nbytes = 0
with httpx.Client(base_url=base, timeout=60) as client:
    for day in days_between(first, last):
        body = {"startTime": local_midnight(day).isoformat(), "endTime": local_midnight(day + dt.timedelta(days=1)).isoformat(), "pageSize": 1000}
        page_no, n_pages = 1, 1
        while page_no <= n_pages:
            payload = orjson.dumps({**body, "pageNo": page_no})
            r = client.post(endpoint, content=payload, headers=sign_headers("POST", path, payload, key, secret, signed))
            r.raise_for_status()
            content = r.content  # downloaded, then discarded
            nbytes += len(content)
            pages += 1
            if page_no == 1:
                total = int(total_re.search(content).group(1))
                rows += total
                n_pages = max(1, -(-total // 1000)) + (1 if total % 1000 == 0 and total else 0)
            page_no += 1
import resource
print(json.dumps({"rows": rows, "pages": pages, "bytes": nbytes, "seconds": time.perf_counter() - started,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

INGEST = r"""
import datetime as dt, json, sys, time
from ingestion.pull import pull
site_id, first, last = sys.argv[1], dt.date.fromisoformat(sys.argv[2]), dt.date.fromisoformat(sys.argv[3])
started = time.perf_counter()
outcome = pull(site_id, "passages", first, last, run_id="bench")
f = outcome.figures
import resource
print(json.dumps({"rows": f.rows_landed, "fetched": f.rows_fetched, "quarantined": f.rows_quarantined,
                  "retries": f.retries, "seconds": time.perf_counter() - started,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def demo_env() -> dict[str, str]:
    values = {}
    for line in (PROJECT_ROOT / "config" / "demo.env").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    return values


def start_simulator(env: dict[str, str], first: dt.date, last: dt.date) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "serve",
            "--seed",
            "7",
            "--port",
            "0",
            "--start",
            str(first),
            "--end",
            str(last),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if match:
            return proc, match.group(1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("simulator did not start")


def run_child(code: str, args: list[str], env: dict[str, str]) -> dict:
    """Run a child Python; its JSON result (the child reports its own peak RSS, getrusage)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"child failed: {err.decode()[-3000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", default="vanke_meili", help="an ISC passages site (default vanke_meili)")
    parser.add_argument("--month", default="2026-01", help="YYYY-MM (default 2026-01)")
    parser.add_argument("--repeat", type=int, default=2, help="floor/ingest pairs (default 2)")
    args = parser.parse_args()
    first = dt.date.fromisoformat(args.month + "-01")
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    env = {**os.environ, **demo_env(), "PYTHONPATH": str(PROJECT_ROOT)}
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        # the world spans one more day: ingestion reads the late-listing day after the month
        server, url = start_simulator(env, first, last + dt.timedelta(days=1))
        env.update({"SMARTCOMM_ISC_URL": url, "SMARTCOMM_REST_URL": url, "SMARTCOMM_DATA_DIR": tmp})
        try:
            # Round 0's floor pays the simulator's generation of each page ("cold"); later
            # floors download pages the simulator has cached ("warm": transfer only). Both
            # are reported; ingest is compared with each.
            for round_no in range(args.repeat):
                for name, code in (("floor", FLOOR), ("ingest", INGEST)):
                    result = run_child(code, [args.site, str(first), str(last)], env)
                    result.update(name=name if (name == "ingest" or round_no) else "floor_cold", round=round_no)
                    if name == "floor" and round_no:
                        result["name"] = "floor_warm"
                    results.append(result)
                    print(
                        f"{result['name']:>10} round {round_no}: {result['rows']:,} rows in {result['seconds']:.1f} s "
                        f"= {result['rows'] / result['seconds']:,.0f} rows/s, peak RSS {result['peak_rss_mib']:.0f} MiB"
                    )
        finally:
            server.terminate()
            server.wait(timeout=30)
    best = {
        n: min((r for r in results if r["name"] == n), key=lambda r: r["seconds"])
        for n in ("floor_cold", "floor_warm", "ingest")
        if any(r["name"] == n for r in results)
    }
    ingest = best["ingest"]
    summary = {
        "site": args.site,
        "month": args.month,
        "rows": ingest["rows"],
        "ingest_rows_per_s": ingest["rows"] / ingest["seconds"],
        "floor_cold_rows_per_s": best["floor_cold"]["rows"] / best["floor_cold"]["seconds"],
        "ratio_ingest_to_cold_floor": ingest["seconds"] / best["floor_cold"]["seconds"],
        "target_ratio": 1.5,
        "ingest_peak_rss_mib": max(r["peak_rss_mib"] for r in results if r["name"] == "ingest"),
        "floor_peak_rss_mib": max(r["peak_rss_mib"] for r in results if r["name"] != "ingest"),
        "load_average_1min": os.getloadavg()[0],
        "runs": results,
    }
    if "floor_warm" in best:
        summary["floor_warm_rows_per_s"] = best["floor_warm"]["rows"] / best["floor_warm"]["seconds"]
        summary["ratio_ingest_to_warm_floor"] = ingest["seconds"] / best["floor_warm"]["seconds"]
    out = PROJECT_ROOT / "bench" / "results" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    warm = summary.get("ratio_ingest_to_warm_floor")
    print(
        f"ingest {summary['ingest_rows_per_s']:,.0f} rows/s; ingest/cold floor = {summary['ratio_ingest_to_cold_floor']:.2f}"
        + (f", ingest/warm floor = {warm:.2f}" if warm else "")
        + f" (target <= 1.5); ingest peak RSS {summary['ingest_peak_rss_mib']:.0f} MiB; "
        f"load {summary['load_average_1min']:.1f} -> {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
