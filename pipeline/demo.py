"""`make demo` / `make pipeline`: the whole job on embedded defaults, through the real DAG code.

1. loads the demo credentials (config/demo.env) and points the registry at a simulator
   started on a free loopback port, with its file drops under data/drops;
2. runs every site's ingest DAG (`dag.test()` via pipeline.dagruns, with a day-range conf),
   in worker processes that each have their own copy of the SQLite metadata DB (how many:
   `ingest.workers` of config/pipeline.yml, `auto` = one per CPU, at most one per site);
3. runs `evaluate_district` (freshness → validation → dbt → validation → publish → reports);
4. prints the ratings of the last month.

Re-running is incremental: the ingest tasks resume from their watermarks and the
evaluation rebuilds only the days landed since its last success.

    python -m pipeline.demo [--start 2026-01-01] [--end 2026-06-30] [--sites a,b] [--parallel auto|N] [--backfill]

`--backfill` (`make backfill START=... END=...`) re-lands the range behind the watermarks;
the evaluation then rebuilds exactly those days, so the marts equal a clean full build.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from core.demo import DEMO_ENV, demo_mode, demo_values
from ingestion.connectors.files import drop_retention_days
from ingestion.hardening import harden_process
from ingestion.paths import data_paths
from ingestion.registry import PROJECT_ROOT, load_registry
from ingestion.state import StateStore
from ingestion.workers import parse_workers, resolve_workers
from pipeline.dagruns import PROGRESS_PREFIX
from pipeline.steps import nothing_to_evaluate, pipeline_config

DEMO_SEED = 7
# The simulated world starts a week before the window: the vendors' late listings reach
# back a day, and the data-quality history checks look back a week.
LEAD_DAYS = 7
console = Console()


def default_window() -> tuple[dt.date, dt.date]:
    """The complete months before the fixed demo date (config/pipeline.yml)."""
    settings = pipeline_config()["demo"]
    today, months = dt.date.fromisoformat(settings["date"]), int(settings["months"])
    end = today.replace(day=1) - dt.timedelta(days=1)
    start = end.replace(day=1)
    for _ in range(months - 1):
        start = (start - dt.timedelta(days=1)).replace(day=1)
    return start, end


def demo_environment(data_dir: Path, window_end: dt.date | None = None) -> dict[str, str]:
    """The environment every demo process runs with.

    In demo mode (SMARTCOMM_DEMO=1, set by the Makefile's demo targets) the demo credentials
    and pseudonym key of config/demo.env fill in what the environment does not set. Outside
    it nothing is filled in: the run uses the environment's own secrets, which ingestion
    checks like any production run (never the demo values, a key of 32+ random bytes).
    Freshness is judged on the morning after the window's last day: the demo's data is
    historical, and against today's clock every feed would be months late.
    """
    window_end = window_end or default_window()[1]
    env = dict(os.environ)
    env.setdefault("SMARTCOMM_FRESHNESS_AS_OF", f"{window_end + dt.timedelta(days=1)}T08:00:00+08:00")
    if demo_mode(env):
        for key, value in demo_values().items():
            env.setdefault(key, value)
    env.update(
        SMARTCOMM_DATA_DIR=str(data_dir),
        SMARTCOMM_DROP_DIR=str(data_dir / "drops"),
        AIRFLOW_HOME=str(data_dir / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT_ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        AIRFLOW__COSMOS__ENABLE_TELEMETRY="False",
        DO_NOT_TRACK="1",
        GX_ANALYTICS_ENABLED="false",
        PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])),
    )
    return env


def world_options(seed: int = DEMO_SEED, anomalies: int | None = None) -> list[str]:
    """The simulator options that pick the demo's world: its seed, the demo's faults and,
    unless the simulator's default, the labelled anomaly episodes per site and quarter."""
    options = ["--seed", str(seed), "--faults", "simulator/faults/demo.yml"]
    return options if anomalies is None else [*options, "--anomalies", str(anomalies)]


@contextmanager
def running_simulator(
    env: dict[str, str], start: dt.date, end: dt.date, log_path: Path, world: list[str] | None = None
):
    """The vendor simulator on a free loopback port, with the demo's realistic faults."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "simulator", "serve", *(world or world_options()), "--port", "0", "--quiet",
        "--drop-dir", env["SMARTCOMM_DROP_DIR"],
        "--start", (start - dt.timedelta(days=LEAD_DAYS)).isoformat(), "--end", (end + dt.timedelta(days=1)).isoformat(),
    ]  # fmt: skip
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            deadline = time.monotonic() + 120
            url = None
            while url is None:
                line = process.stdout.readline() if process.stdout else ""
                if "listening on" in line:
                    url = line.strip().split("listening on", 1)[1].strip()
                elif not line and process.poll() is not None:
                    raise RuntimeError(f"simulator exited early, see {log_path}")
                elif time.monotonic() > deadline:
                    raise TimeoutError(f"simulator did not start, see {log_path}")
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def drop_files(env: dict[str, str], start: dt.date, end: dt.date, world: list[str] | None = None) -> None:
    """The vendors' file drops for the window; skipped when this window was dropped already
    from the same world (the files are a pure function of the world and the day, and re-runs
    must be fast) and the landed files are still kept (drops.retention_days of
    config/pipeline.yml: afterwards ingestion has deleted them, and a backfill needs them
    dropped again). The stamp file holds the world's options."""
    first, last = start - dt.timedelta(days=LEAD_DAYS), end + dt.timedelta(days=1)
    world = world or world_options()
    stamp = Path(env["SMARTCOMM_DROP_DIR"]) / f".dropped-{first}-{last}"
    kept_s = drop_retention_days() * 86400
    if (
        stamp.exists()
        and stamp.read_text(encoding="utf-8") == " ".join(world)
        and time.time() - stamp.stat().st_mtime < kept_s
    ):
        console.print(f"[green]✓[/green] vendor file drops already in place ({stamp.parent})")
        return
    run(
        [sys.executable, "-m", "simulator", "drop-files", *world, "--drop-dir", env["SMARTCOMM_DROP_DIR"],
         "--start", first.isoformat(), "--end", last.isoformat()],
        env, "vendor file drops (gov exports, spreadsheets, alarm files)",
    )  # fmt: skip
    stamp.write_text(" ".join(world), encoding="utf-8")


def run(command: list[str], env: dict[str, str], what: str, on_progress: Callable[[dict], None] | None = None) -> None:
    """Run a step, its output kept for the error message; `PROGRESS` lines of pipeline.dagruns
    go to `on_progress` as they come, so a long step shows each DAG run as it ends."""
    started = time.perf_counter()
    tail: deque[str] = deque(maxlen=200)
    with subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        for line in process.stdout or ():
            if line.startswith(PROGRESS_PREFIX) and on_progress:
                on_progress(json.loads(line.removeprefix(PROGRESS_PREFIX)))
            else:
                tail.append(line)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        console.print(f"[red]✗ {what} failed after {seconds:.0f} s[/red]")
        console.print("".join(tail)[-8000:], markup=False)
        raise SystemExit(process.returncode)
    console.print(f"[green]✓[/green] {what} ({seconds:.0f} s)")


class RunProgress:
    """Prints one line per finished DAG run: `✓ ingest_x (3/10, 412 s)`."""

    def __init__(self, expected: int) -> None:
        self.expected, self.done, self.lock = expected, 0, threading.Lock()

    def __call__(self, run: dict) -> None:
        with self.lock:
            self.done += 1
            mark = "[green]✓[/green]" if run["state"] == "success" else "[red]✗[/red]"
            failed = f", failed: {', '.join(run['failed_tasks'])}" if run["failed_tasks"] else ""
            console.print(f"  {mark} {run['dag_id']} ({self.done}/{self.expected}, {run['seconds']:.0f} s{failed})")


def airflow(env: dict[str, str], *args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("airflow")), *args]


def sites_behind(sites: list[str], end: dt.date) -> list[str]:
    """The sites with a kind whose watermark is before `end` (a warm re-run skips the others)."""
    state = StateStore()
    registry = load_registry()
    return [
        site
        for site in sites
        if any((state.watermark(site, kind) or dt.date.min) < end for kind in registry.site(site).sources)
    ]


def ensure_airflow_db(env: dict[str, str]) -> None:
    if not (Path(env["AIRFLOW_HOME"]) / "airflow.db").exists():
        run(airflow(env, "db", "migrate"), env, "airflow db migrate (SQLite metadata)")


def worker_environment(env: dict[str, str], worker: int) -> dict[str, str]:
    """A worker's own copy of the migrated SQLite metadata DB: parallel `dag.test()` runs on
    one SQLite file collide (IntegrityError while syncing the DAGs), separate files do not."""
    home = Path(env["AIRFLOW_HOME"])
    worker_home = home / "workers" / str(worker)
    worker_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(home / "airflow.db", worker_home / "airflow.db")
    return {
        **env,
        "AIRFLOW_HOME": str(worker_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{worker_home / 'airflow.db'}",
    }


def ingest_sites(
    env: dict[str, str],
    sites: list[str],
    start: dt.date,
    end: dt.date,
    resume: bool = True,
    parallel: int | str | None = None,
    allow_shrink: bool = False,
) -> None:
    """Every site's ingest DAG over start..end (`dag.test()`, one run per site), `parallel` workers
    (None: ingest.workers of config/pipeline.yml), each one process taking the next site from a
    shared queue as it finishes one, the sites with most residents first (the most data: those
    started last would otherwise keep one worker busy while the other idles)."""
    workers = resolve_workers(parallel, len(sites))
    residents = {site.site_id: site.residents for site in load_registry().sites}
    queue = Path(env["AIRFLOW_HOME"]) / "ingest-queue.txt"
    queue.write_text("\n".join(sorted(sites, key=lambda s: -residents.get(s, 0))), encoding="utf-8")
    flags = (["--resume"] if resume else []) + (["--allow-shrink"] if allow_shrink else [])
    progress = RunProgress(len(sites))
    console.print(f"  ingesting {len(sites)} sites, {start} .. {end}, in {workers} workers")

    def work(i: int) -> None:
        worker_env = worker_environment(env, i) if workers > 1 else env
        command = [sys.executable, "-m", "pipeline.dagruns", "--no-evaluate", *flags,
                   "--start", start.isoformat(), "--end", end.isoformat(), "--sites-queue", str(queue)]  # fmt: skip
        run(command, worker_env, f"ingest worker {i + 1} of {workers}", progress)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(work, range(workers)))


def summary(serving_db: Path, framework_id: str = "default") -> Table:
    """Site, stars, total, coverage and top gap for the latest month."""
    con = duckdb.connect(str(serving_db), read_only=True)
    try:
        month = con.execute("select max(month) from star_ratings").fetchone()[0]
        rows = con.execute(
            """
            select s.name_zh, r.stars, r.total_score, r.coverage, r.capped_by,
                   (select i.name_zh from next_star_gaps g join dim_indicator i using (indicator_id)
                    where g.site_id = r.site_id and g.month = r.month and g.framework_id = r.framework_id
                    order by g.gap_rank limit 1) as top_gap
            from star_ratings r join dim_site s using (site_id)
            where r.month = ? and r.framework_id = ?
            order by r.site_id = 'district' desc, r.total_score desc
            """,
            [month, framework_id],
        ).fetchall()
    finally:
        con.close()
    table = Table(title=f"{month:%Y-%m} 星级评价 ({framework_id})")
    for column in ("社区/街区", "星级", "总分", "覆盖率", "封顶", "首要差距"):
        table.add_column(column)
    for name, stars, total, coverage, capped_by, top_gap in rows:
        table.add_row(
            name, "★" * stars + "☆" * (5 - stars), f"{total:.1f}", f"{coverage:.0%}", capped_by or "", top_gap or ""
        )
    return table


def main(argv: list[str] | None = None) -> int:
    default_start, default_end = default_window()
    parser = argparse.ArgumentParser(prog="python -m pipeline.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--start", type=dt.date.fromisoformat, default=default_start, help="first local day")
    parser.add_argument("--end", type=dt.date.fromisoformat, default=default_end, help="last local day")
    parser.add_argument("--sites", default=None, help="comma-separated site ids (default: all)")
    parser.add_argument(
        "--seed",
        type=int,
        default=DEMO_SEED,
        help=f"the simulated world (default {DEMO_SEED}; the warning evaluation uses others)",
    )
    parser.add_argument(
        "--anomalies",
        type=int,
        default=None,
        help="labelled anomaly episodes per site and quarter (default: the simulator's, 3; 0 = a quiet world)",
    )
    parser.add_argument(
        "--parallel",
        type=parse_workers,
        default=None,
        help="ingest workers (N or 'auto': one per CPU), each with its own copy of the SQLite metadata DB; "
        "default: ingest.workers of config/pipeline.yml",
    )
    parser.add_argument(
        "--backfill",
        action="store_true",
        help="re-land the whole range even behind the watermarks (`make backfill`), then re-evaluate",
    )
    parser.add_argument(
        "--allow-shrink",
        action="store_true",
        help="let a day be replaced by fewer rows than it holds (`make backfill ALLOW_SHRINK=1`; audited)",
    )
    args = parser.parse_args(argv)

    harden_process()  # umask 077 for every file of the demo, its children's included
    if not demo_mode():
        console.print(f"[yellow]{DEMO_ENV} is not 1: running with the environment's own secrets[/yellow]")
    paths = data_paths()
    env = demo_environment(paths.root, args.end)
    sites = args.sites.split(",") if args.sites else [s.site_id for s in load_registry().sites]
    world = world_options(args.seed, args.anomalies)
    what = "Backfill" if args.backfill else "Demo"
    console.rule(f"[bold]{what}: {len(sites)} sites, {args.start} .. {args.end}, data in {paths.root}")
    started = time.perf_counter()
    ensure_airflow_db(env)
    pending = sites if args.backfill else sites_behind(sites, args.end)
    if not pending:
        console.print(f"[green]✓[/green] every site landed through {args.end}: nothing to ingest")
    else:
        with running_simulator(env, args.start, args.end, paths.root / "logs" / "simulator.log", world) as url:
            env.update(SMARTCOMM_ISC_URL=url, SMARTCOMM_REST_URL=url)
            console.print(f"[green]✓[/green] simulator on {url}")
            drop_files(env, args.start, args.end, world)
            ingest_sites(
                env,
                pending,
                args.start,
                args.end,
                resume=not args.backfill,
                parallel=args.parallel,
                allow_shrink=args.allow_shrink,
            )
    if nothing_to_evaluate() and paths.serving_db.exists():
        console.print("[green]✓[/green] nothing new landed: evaluation skipped, the published data is current")
    else:
        console.print("  evaluating the district: freshness, validation, dbt build, publish, month-end reports")
        run([sys.executable, "-m", "pipeline.dagruns", "--evaluate-only"], env, "evaluate_district")
    console.print(summary(paths.serving_db))
    console.print(
        f"[bold]{what} done in {time.perf_counter() - started:.0f} s.[/bold] Reports: {paths.root / 'reports'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
