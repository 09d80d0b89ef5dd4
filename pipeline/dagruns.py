"""Run the project's DAGs in this process with `dag.test()`: the real DAG code, no scheduler.

Used by `make backfill`, the demo's ingest workers and the end-to-end tests. A range of
local days is one run per site (the ingest DAGs' `start_day`/`end_day` params), then one
`evaluate_district` run rebuilds exactly the days landed since its last success, so
re-running a range is idempotent: the same partitions are replaced, the marts rebuilt.
`resume` starts each kind after its watermark instead (a repeat fetches only what is new).

Airflow is configured by the environment (AIRFLOW_HOME with a migrated SQLite metadata
database, AIRFLOW__CORE__DAGS_FOLDER=dags/, see pipeline.demo.demo_environment); the
vendors' URLs and credentials too. Prints a `PROGRESS {json}` line as each DAG run ends (the
demo shows them while it works) and one JSON summary line last; exits 1 on a failed run.

    python -m pipeline.dagruns --start 2026-03-01 --end 2026-03-31 [--sites a,b | --sites-queue FILE]
        [--resume] [--no-evaluate | --evaluate-only] [--retries 0]

With `--sites-queue`, several such processes share one list of sites: each takes the next
site from the file as it finishes one (see claim_next), so no process is left with the big
sites while another idles.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ingestion.registry import PROJECT_ROOT, load_registry

EVALUATE_DAG = "evaluate_district"
PROGRESS_PREFIX = "PROGRESS "


@dataclass(frozen=True)
class DagRunResult:
    dag_id: str
    state: str
    tasks: dict[str, str] = field(default_factory=dict)
    conf: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == "success"


@cache
def _dagbag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag


def _state(value: Any) -> str:
    return str(getattr(value, "value", value))


def run_dag(
    dag_id: str,
    conf: dict[str, Any] | None = None,
    logical_date: dt.datetime | None = None,
    retries: int | None = None,
) -> DagRunResult:
    """One `dag.test()` run; `retries` overrides the tasks' retries (0 in tests: fail now, not in 5 min)."""
    dag = _dagbag().dags[dag_id]
    if retries is not None:
        for task in dag.tasks:
            task.retries = retries
    started = time.perf_counter()
    run = dag.test(logical_date=logical_date or _now(), run_conf=conf)
    tasks = {ti.task_id: _state(ti.state) for ti in run.get_task_instances()}
    return DagRunResult(dag_id, _state(run.state), tasks, conf or {}, round(time.perf_counter() - started, 1))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def ingest_range(
    site_id: str,
    start: dt.date,
    end: dt.date,
    resume: bool = False,
    retries: int | None = None,
    allow_shrink: bool = False,
) -> DagRunResult:
    """The site's ingest DAG over start..end (local days) as one run."""
    conf = {"start_day": start.isoformat(), "end_day": end.isoformat(), "resume": resume, "allow_shrink": allow_shrink}
    logical = dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC)  # one run per (site, range end)
    return run_dag(f"ingest_{site_id}", conf, logical, retries)


def evaluate(retries: int | None = None) -> DagRunResult:
    """`evaluate_district`: validate and rebuild what landed since its last success, publish."""
    return run_dag(EVALUATE_DAG, retries=retries)


def claim_next(queue_file: Path) -> str | None:
    """The next site id of a queue file shared by worker processes (one id per line, taken
    from the top under an exclusive lock); None when it is empty."""
    with open(queue_file, "r+", encoding="utf-8") as queue:
        fcntl.flock(queue, fcntl.LOCK_EX)  # released when the file closes
        sites = queue.read().split()
        if not sites:
            return None
        queue.seek(0)
        queue.truncate()
        queue.write("\n".join(sites[1:]))
        return sites[0]


def queued_sites(queue_file: Path) -> Iterable[str]:
    """The sites this process claims from a shared queue file, one at a time."""
    return iter(lambda: claim_next(queue_file), None)


def run_range(
    start: dt.date,
    end: dt.date,
    sites: Iterable[str] | None = None,
    resume: bool = False,
    ingest: bool = True,
    evaluation: bool = True,
    retries: int | None = None,
    on_result: Callable[[DagRunResult], None] = lambda result: None,
    allow_shrink: bool = False,
) -> list[DagRunResult]:
    """Every site's ingest run over the range, then one evaluation (even if an ingest failed:
    the evaluation reports what did land and the freshness check names what did not).
    `on_result` sees each run as it ends."""
    sites = sites or [site.site_id for site in load_registry().sites]
    results: list[DagRunResult] = []

    def record(result: DagRunResult) -> None:
        results.append(result)
        on_result(result)

    for site in sites if ingest else []:
        record(ingest_range(site, start, end, resume, retries, allow_shrink))
    if evaluation:
        record(evaluate(retries))
    return results


def print_progress(result: DagRunResult) -> None:
    """One `PROGRESS {json}` line on stdout, flushed: the run's DAG, state and seconds."""
    failed = sorted(task for task, state in result.tasks.items() if state not in ("success", "skipped"))
    line = {"dag_id": result.dag_id, "state": result.state, "seconds": result.seconds, "failed_tasks": failed}
    print(PROGRESS_PREFIX + json.dumps(line), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.dagruns", description=__doc__.split("\n")[0])
    parser.add_argument("--start", type=dt.date.fromisoformat, help="first local day")
    parser.add_argument("--end", type=dt.date.fromisoformat, help="last local day")
    parser.add_argument("--sites", default=None, help="comma-separated site ids (default: all)")
    parser.add_argument(
        "--sites-queue", type=Path, default=None, help="take sites one by one from this file, shared with other runs"
    )
    parser.add_argument("--resume", action="store_true", help="start each kind after its watermark")
    parser.add_argument(
        "--allow-shrink", action="store_true", help="let a day be replaced by fewer rows than it holds (audited)"
    )
    parser.add_argument("--no-evaluate", action="store_true", help="only the ingest runs")
    parser.add_argument("--evaluate-only", action="store_true", help="only evaluate_district")
    parser.add_argument("--retries", type=int, default=None, help="override the tasks' retries")
    args = parser.parse_args(argv)
    if not args.evaluate_only and not (args.start and args.end):
        parser.error("--start and --end are required unless --evaluate-only")
    results = run_range(
        args.start,
        args.end,
        sites=queued_sites(args.sites_queue) if args.sites_queue else args.sites.split(",") if args.sites else None,
        resume=args.resume,
        ingest=not args.evaluate_only,
        evaluation=not args.no_evaluate,
        retries=args.retries,
        on_result=print_progress,
        allow_shrink=args.allow_shrink,
    )
    sys.stdout.flush()
    print(json.dumps({"runs": [asdict(r) for r in results], "ok": all(r.ok for r in results)}))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
