"""Benchmark: one site-month of passages over HTTP into Parquet, against a plain download and dlt.

    .venv/bin/python -m bench.ingest [--month 2026-01] [--repeat 3]     # make bench-ingest
    .venv/bin/python -m bench.ingest --quick                           # 2 days, 1 round, no peer
    .venv/bin/python -m bench.ingest --compare-rev <git rev>           # also time that commit's ingestion

Starts the simulator on a free loopback port, serving the demo's faults (malformed rows and
late events, `--faults none` for a clean world), then measures, each in its own child process
(peak RSS from wait4), for the ISC-style endpoint (--isc-site, default vanke_meili) and the
token REST endpoint (--rest-site, default lt_xincun):

  floor   the same pages the connector reads (its own query windows, page size, signing or
          token) downloaded and discarded; the first pass is "cold" (the simulator generates
          each page), the timed ones are warm (transfer only), which is the stricter floor;
  ingest  `ingestion.pull.pull(site, "passages", first, last)`: fetch, map, pseudonymize,
          validate, quarantine, dedup and write the day partitions and the audit;
  parallel both sites' passages as `python -m ingestion pull` lands several units: in
          worker processes (`ingestion.workers.land_units`, `--workers auto`: one per CPU),
          against the two serial ingest runs of the same round (their sum is the baseline);
  peer    dlt's REST API source (`dlt.sources.rest_api`) loading the same token REST listing
          (same windows, page size, OAuth2 client credentials, cursor paging) into a DuckDB
          file, what a data engineer would pick instead (telemetry off).

Targets: ingest within 1.5x of the warm floor; ingest at least 10x the peer's rows/s.
Medians of --repeat rounds (floor and ingest alternate, so load drifts hit both); the peer
runs once, on the first --peer-days days (it is slow), and not with --quick unless --peer. Each run also reports its CPU
seconds (user + system), which a loaded machine stretches less than wall time. Figures go to bench/results/ingest.json (or $BENCH_FIGURES under `python -m
bench`) in the shared figure format. Never a timed assertion: a report.
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
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from bench.report import Figure, median, run_child, save_figures  # noqa: E402

KIND = "passages"
DEMO_FAULTS = "simulator/faults/demo.yml"  # what `make demo` serves: malformed rows and late events
QUICK_DAYS = 2
FLOOR_TARGET = 1.5
PEER_TARGET = 10.0


# -- children: each prints one JSON line -------------------------------------------------------
# Each child times only its transfer / load, after the same start-up (imports, registry), which
# a long-lived worker pays once; "cpu_s" is the CPU (user + system) of that timed section.


class Timed:
    """Wall and CPU time from its creation to result()."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def result(self, **figures: Any) -> dict[str, Any]:
        return {**figures, "seconds": time.perf_counter() - self.wall, "cpu_s": time.process_time() - self.cpu}


def _listing(site_id: str, first: dt.date, last: dt.date) -> tuple[Any, list[Any], Any]:
    """The connector of a site's passages and the units (query windows) a pull of first..last reads."""
    from ingestion.connectors import make_connector
    from ingestion.mapping import load_shape_mapping
    from ingestion.registry import load_registry

    site = load_registry().site(site_id)
    mapping = load_shape_mapping(site.source(KIND).shape)
    connector = make_connector(site, KIND, mapping)
    late = int(mapping.settings.get("late_listing_days", 0))
    return connector, connector.units(first, last + dt.timedelta(days=late)), mapping


def child_floor(site_id: str, first: dt.date, last: dt.date) -> dict[str, Any]:
    """Download every page of the listing and discard it (the cursor / total read by regex)."""
    import orjson

    from ingestion.connectors.isc import IscConnector, sign_headers

    connector, units, _ = _listing(site_id, first, last)
    client = connector.client  # the connector's own HTTP client: same keep-alive, same headers
    pages = nbytes = 0
    timer = Timed()
    if isinstance(connector, IscConnector):
        total_re = re.compile(rb'"total"\s*:\s*(\d+)')
        path = connector.base_path + connector.endpoint
        for unit in units:
            body = {
                "startTime": unit.start.isoformat(),
                "endTime": unit.end.isoformat(),
                "pageSize": connector.page_size,
            }
            page_no, n_pages = 1, 1
            while page_no <= n_pages:
                payload = orjson.dumps({**body, "pageNo": page_no})
                headers = sign_headers("POST", path, payload, connector.app_key, connector.app_secret, connector.signed)
                response = client.post(connector.endpoint, content=payload, headers=headers)
                response.raise_for_status()
                content = response.content
                nbytes += len(content)
                pages += 1
                if page_no == 1:
                    total = int(total_re.search(content).group(1))
                    n_pages = total // connector.page_size + 1  # the connector stops on a short page
                page_no += 1
    else:
        cursor_re = re.compile(rb'"next_cursor"\s*:\s*"([^"]+)"')
        headers = {"Authorization": f"Bearer {connector._fetch_token()}"}
        for unit in units:
            params: dict[str, Any] = {
                "start_time": int(unit.start.timestamp() * 1000),
                "end_time": int(unit.end.timestamp() * 1000),
                "limit": connector.page_size,
            }
            while True:
                response = client.get(connector.list_path, params=params, headers=headers)
                response.raise_for_status()
                content = response.content
                nbytes += len(content)
                pages += 1
                match = cursor_re.search(content[-600:])
                if not match:
                    break
                params = {"cursor": match.group(1).decode()}
    result = timer.result(pages=pages, bytes=nbytes)
    connector.close()
    return result


def child_ingest(site_id: str, first: dt.date, last: dt.date) -> dict[str, Any]:
    import pyarrow as pa

    from ingestion.pull import pull
    from ingestion.registry import load_registry

    registry = load_registry()
    pa.array([0])  # pyarrow imports pandas on its first conversion: start-up, like the registry
    timer = Timed()
    f = pull(site_id, KIND, first, last, run_id="bench", registry=registry).figures
    return timer.result(rows=f.rows_fetched, landed=f.rows_landed, quarantined=f.rows_quarantined, retries=f.retries)


def child_parallel(sites: str, first: dt.date, last: dt.date) -> dict[str, Any]:
    """Both sites' passages at once, in `--workers auto` worker processes; CPU includes the workers'."""
    import resource

    import pyarrow as pa

    from ingestion.workers import land_units, resolve_workers

    pairs = [(site_id, KIND) for site_id in sites.split(",")]
    workers = resolve_workers("auto", len(pairs))
    pa.array([0])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    timer = Timed()
    results = land_units(pairs, first, last, run_id="bench", workers=workers)
    result = timer.result(workers=workers)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pool's workers, reaped when it closed
    result["cpu_s"] += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    failed = [f"{r.site_id}: {r.cause}" for r in results if r.outcome is None]
    if failed:
        raise RuntimeError(f"parallel ingest failed: {failed}")
    result["rows"] = sum(r.outcome.figures.rows_fetched for r in results if r.outcome)
    return result


def child_peer(site_id: str, first: dt.date, last: dt.date, workdir: str) -> dict[str, Any]:
    """dlt's rest_api source over the same REST listing into DuckDB (windows of <= 31 days)."""
    import dlt
    import duckdb
    from dlt.sources.rest_api import rest_api_source

    from ingestion.connectors.windows import local_midnight, split_days

    connector, _, mapping = _listing(site_id, first, last)
    late = int(mapping.settings.get("late_listing_days", 0))
    windows = split_days(first, last + dt.timedelta(days=late), window_days=31, max_days=31)
    base_url = str(connector.client.base_url)
    resources = [
        {
            "name": f"{KIND}_{i}",
            "table_name": KIND,
            "endpoint": {
                "path": connector.list_path,
                "params": {
                    "start_time": int(local_midnight(start).timestamp() * 1000),
                    "end_time": int(local_midnight(end).timestamp() * 1000),
                    "limit": connector.page_size,
                },
                "data_selector": "data",
                "paginator": {"type": "cursor", "cursor_path": "next_cursor", "cursor_param": "cursor"},
            },
        }
        for i, (start, end) in enumerate(windows)
    ]
    source = rest_api_source(
        {
            "client": {
                "base_url": base_url,
                "auth": {
                    "type": "oauth2_client_credentials",
                    "access_token_url": base_url + connector.token_path,
                    "client_id": connector.client_id,
                    "client_secret": connector.client_secret,
                },
            },
            "resources": resources,
        }
    )
    connector.close()
    database = Path(workdir) / "peer.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name="bench_ingest_peer",
        destination=dlt.destinations.duckdb(str(database)),
        dataset_name="raw",
        pipelines_dir=str(Path(workdir) / "pipelines"),
    )
    timer = Timed()
    pipeline.run(source)
    result = timer.result()
    with duckdb.connect(str(database), read_only=True) as con:
        result["rows"] = con.execute(f"select count(*) from raw.{KIND}").fetchone()[0]
    return result


# -- the parent -------------------------------------------------------------------------------


def demo_env() -> dict[str, str]:
    from core.demo import demo_values

    return demo_values()


def start_simulator(
    env: dict[str, str], first: dt.date, last: dt.date, faults: str | None = DEMO_FAULTS
) -> tuple[subprocess.Popen, str]:
    # a cache for both sites' months (the default 1M rows would evict pages between the floor
    # and ingest runs, and a "warm" floor would regenerate them)
    argv = [sys.executable, "-m", "simulator", "serve", "--seed", "7", "--port", "0", "--cache-rows", "4000000"]
    argv += ["--faults", faults] if faults else []
    proc = subprocess.Popen(
        [*argv, "--start", str(first), "--end", str(last)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", proc.stdout.readline())
        if match:
            return proc, match.group(1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("simulator did not start")


class Runner:
    """Runs the children with one environment and keeps every run's record."""

    def __init__(self, env: dict[str, str], first: dt.date, last: dt.date, workdir: Path) -> None:
        self.env, self.first, self.last, self.workdir = env, first, last, workdir
        self.runs: list[dict[str, Any]] = []

    def run(
        self, label: str, child: str, site_id: str, *, code_dir: Path | None = None, last: dt.date | None = None
    ) -> dict[str, Any]:
        data_dir = self.workdir / f"data-{len(self.runs)}"
        env = {**self.env, "SMARTCOMM_DATA_DIR": str(data_dir)}
        # -m puts the working directory first on sys.path: an older tree's ingestion/ wins there
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (code_dir, PROJECT_ROOT) if p)
        argv = [
            sys.executable,
            "-m",
            "bench.ingest",
            "--child",
            child,
            site_id,
            str(self.first),
            str(last or self.last),
        ]
        done = run_child([*argv, str(data_dir)], env=env, cwd=code_dir or PROJECT_ROOT, timeout=3 * 3600)
        if done.returncode != 0:
            raise RuntimeError(f"{label} failed: {done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        days = ((last or self.last) - self.first).days + 1
        result.update(label=label, child=child, site=site_id, days=days, peak_rss_mib=round(done.peak_rss_mib, 1))
        self.runs.append(result)
        rows = result.get("rows")
        rate = f" = {rows / result['seconds']:,.0f} rows/s" if rows else ""
        print(
            f"{label:>16}: {result['seconds']:7.2f} s{rate}, CPU {result['cpu_s']:.2f} s, "
            f"peak RSS {result['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
        return result

    def seconds(self, label: str) -> list[float]:
        return [r["seconds"] for r in self.runs if r["label"] == label]

    def cpu(self, label: str) -> float:
        return median(r["cpu_s"] for r in self.runs if r["label"] == label)

    def peak(self, label: str) -> float:
        return max(r["peak_rss_mib"] for r in self.runs if r["label"] == label)


def checkout(rev: str, workdir: Path) -> Path:
    """ingestion/ and config/ of an older commit, to time it beside the current code."""
    target = workdir / f"rev-{rev}"
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", rev, "ingestion", "config"], cwd=PROJECT_ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--isc-site", default="vanke_meili", help="a site whose passages come from the ISC API")
    parser.add_argument("--rest-site", default="lt_xincun", help="a site whose passages come from the token REST API")
    parser.add_argument("--month", default="2026-01", help="YYYY-MM (default 2026-01)")
    parser.add_argument("--repeat", type=int, default=3, help="floor/ingest rounds; medians are reported (default 3)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DAYS} days, 1 round, no peer (CI smoke)")
    parser.add_argument("--no-peer", action="store_true", help="skip the dlt peer")
    parser.add_argument("--no-parallel", action="store_true", help="skip both sites in parallel worker processes")
    parser.add_argument("--peer", action="store_true", help="run the dlt peer with --quick too (slow)")
    parser.add_argument("--peer-days", type=int, default=3, help="days the dlt peer loads (default 3; it is slow)")
    parser.add_argument("--compare-rev", help="also time the ingestion package of this git revision (before/after)")
    parser.add_argument(
        "--faults",
        default=DEMO_FAULTS,
        help=f"the simulator's fault file (default {DEMO_FAULTS}; 'none': a clean world)",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, site_id, first, last, workdir = args.child
        first_day, last_day = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        if name == "floor":
            result = child_floor(site_id, first_day, last_day)
        elif name == "ingest":
            result = child_ingest(site_id, first_day, last_day)
        elif name == "parallel":
            result = child_parallel(site_id, first_day, last_day)
        else:
            result = child_peer(site_id, first_day, last_day, workdir)
        print(json.dumps(result))
        return 0

    first = dt.date.fromisoformat(args.month + "-01")
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    repeat = args.repeat
    if args.quick:
        last, repeat = first + dt.timedelta(days=QUICK_DAYS - 1), 1
    size = f"{(last - first).days + 1} days" if args.quick else f"site-month {args.month}"
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        workdir = Path(tmp)
        env = {**os.environ, **demo_env(), "RUNTIME__DLTHUB_TELEMETRY": "false", "DLT_DATA_DIR": str(workdir / "dlt")}
        # the world spans one more day: ingestion reads the late-listing day after the range
        faults = None if args.faults == "none" else args.faults
        server, url = start_simulator(env, first, last + dt.timedelta(days=1), faults)
        env.update({"SMARTCOMM_ISC_URL": url, "SMARTCOMM_REST_URL": url})
        runner = Runner(env, first, last, workdir)
        apis = {"isc": args.isc_site, "rest": args.rest_site}
        old = checkout(args.compare_rev, workdir) if args.compare_rev else None
        try:
            for api, site_id in apis.items():
                runner.run(f"{api} floor cold", "floor", site_id)  # the simulator generates each page
            for _ in range(repeat):
                for api, site_id in apis.items():
                    runner.run(f"{api} floor", "floor", site_id)
                    runner.run(f"{api} ingest", "ingest", site_id)
                    if old is not None:
                        runner.run(f"{api} ingest@rev", "ingest", site_id, code_dir=old)
                if not args.no_parallel:
                    runner.run("parallel ingest", "parallel", ",".join(apis.values()))
            if not args.no_peer and (args.peer or not args.quick):
                peer_last = min(last, first + dt.timedelta(days=args.peer_days - 1))
                runner.run("rest peer dlt", "peer", args.rest_site, last=peer_last)
        finally:
            server.terminate()
            server.wait(timeout=30)
        figures = figures_of(runner, apis, size, args.compare_rev)
    extra = {
        "sites": apis,
        "faults": args.faults,
        "first_day": str(first),
        "last_day": str(last),
        "load_average_1min": os.getloadavg()[0],
        "runs": runner.runs,
    }
    path = save_figures("ingest", figures, extra=extra)
    print(f"-> {path}")
    return 0


def figures_of(runner: Runner, apis: dict[str, str], size: str, rev: str | None) -> list[Figure]:
    figures = []
    names = {"isc": "ISC API", "rest": "token REST API"}
    rows: dict[str, int] = {}
    for api, site_id in apis.items():
        rows[api] = next(r["rows"] for r in runner.runs if r["label"] == f"{api} ingest")
        label = f"{size}, {site_id}, {rows[api]:,} rows"
        ingest = median(runner.seconds(f"{api} ingest"))
        floor = median(runner.seconds(f"{api} floor"))
        n = len(runner.seconds(f"{api} ingest"))
        figures += [
            Figure(
                "ingest",
                f"passages, {names[api]} -> Parquet",
                label,
                ingest,
                "s",
                baseline="plain download (warm)",
                baseline_value=floor,
                target=f"<= {FLOOR_TARGET}x",
                meets=ingest / floor <= FLOOR_TARGET,
                peak_rss_mib=runner.peak(f"{api} ingest"),
                repeats=n,
            ),
            Figure("ingest", f"passages, {names[api]}: ingest rows/s", label, rows[api] / ingest, "rows/s", repeats=n),
            Figure(
                "ingest",
                f"passages, {names[api]}: ingest CPU (user+sys)",
                label,
                runner.cpu(f"{api} ingest"),
                "s",
                baseline="download CPU",
                baseline_value=runner.cpu(f"{api} floor"),
                repeats=n,
            ),
            Figure(
                "ingest",
                f"passages, {names[api]}: download floor rows/s",
                label,
                rows[api] / floor,
                "rows/s",
                peak_rss_mib=runner.peak(f"{api} floor"),
                repeats=n,
            ),
        ]
        if rev:
            before = median(runner.seconds(f"{api} ingest@rev"))
            figures.append(
                Figure(
                    "ingest",
                    f"passages, {names[api]}: ingestion at {rev}",
                    label,
                    before,
                    "s",
                    baseline="ingest (this tree)",
                    baseline_value=ingest,
                    peak_rss_mib=runner.peak(f"{api} ingest@rev"),
                    repeats=n,
                )
            )
    if runner.seconds("parallel ingest"):
        parallel = median(runner.seconds("parallel ingest"))
        serial = median(a + b for a, b in zip(*(runner.seconds(f"{api} ingest") for api in apis), strict=True))
        run = next(r for r in runner.runs if r["label"] == "parallel ingest")
        figures.append(
            Figure(
                "ingest",
                f"passages, ISC + token REST API in {run['workers']} worker processes (--workers auto)",
                f"{size}, {' + '.join(apis.values())}, {sum(rows.values()):,} rows, {os.cpu_count()} CPUs",
                parallel,
                "s",
                baseline="the two ingest runs one after the other (sum, same rounds)",
                baseline_value=serial,
                peak_rss_mib=runner.peak("parallel ingest"),
                repeats=len(runner.seconds("parallel ingest")),
            )
        )
    if any(r["label"] == "rest peer dlt" for r in runner.runs):
        peer = runner.runs[-1]
        ingest_rate = rows["rest"] / median(runner.seconds("rest ingest"))
        peer_rate = peer["rows"] / peer["seconds"]
        figures.append(
            Figure(
                "ingest",
                "passages, token REST API: dlt rest_api -> DuckDB (peer) rows/s",
                f"{peer['days']} days, {apis['rest']}, {peer['rows']:,} rows",
                peer_rate,
                "rows/s",
                baseline="ingest rows/s",
                baseline_value=ingest_rate,
                ratio=ingest_rate / peer_rate,
                target=f"ingest >= {PEER_TARGET:.0f}x peer",
                meets=ingest_rate / peer_rate >= PEER_TARGET,
                peak_rss_mib=peer["peak_rss_mib"],
            )
        )
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
