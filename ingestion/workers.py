"""Land independent (site, kind) units side by side, in worker processes.

    land_units(pairs, start, end, run_id=..., workers=resolve_workers(None, len(pairs)))

A (site, kind) pull writes only its own partitions, its own audit row and its own vendor
files, so units never wait on each other; what they share is the CPU (mapping, HMAC,
Parquet and zstd are Python and Arrow work, ~15 µs of CPU a row) and the state database,
which `ingestion.state.open_state_db` opens briefly with lock retries. Workers are
processes, not threads, because the work is CPU-bound Python; they are started with the
"spawn" context because a pull runs a prefetch thread and httpx clients, and forking a
parent that has threads can copy a held lock into the child.

How many: `ingest.workers` in config/pipeline.yml (`auto`: one per CPU this process may run
on, never more than there are units), overridden by `python -m ingestion pull --workers N`;
`python -m pipeline.demo` takes its `--parallel` default from the same setting. With one
worker the units run in this process, one after the other, exactly as before.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from ingestion.hardening import harden_process
from ingestion.http import FetchError
from ingestion.paths import DataPaths, data_paths
from ingestion.pii import Pseudonymizer
from ingestion.pull import PullOutcome, pull
from ingestion.registry import CONFIG_DIR, Registry, load_registry, read_yaml
from ingestion.state import StateStore

PIPELINE_FILE = CONFIG_DIR / "pipeline.yml"
AUTO = "auto"
# (unit index, units done, units total or None when just started, rows fetched so far)
UnitProgressFn = Callable[[int, int, int | None, int], None]


@dataclass
class UnitResult:
    """One (site, kind) pull as the parent sees it: the outcome, or the cause of its failure."""

    index: int
    site_id: str
    kind: str
    outcome: PullOutcome | None = None
    cause: str | None = None


@dataclass(frozen=True)
class _Run:
    """What every unit of one land_units call shares (sent to the workers with each unit)."""

    start: dt.date
    end: dt.date
    run_id: str
    paths: DataPaths
    allow_shrink: bool = False


def available_cpus() -> int:
    """CPUs this process may run on (a container's or taskset's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configured_workers() -> int | str:
    """`ingest.workers` of config/pipeline.yml: a positive number or "auto" (the default)."""
    setting = (read_yaml(PIPELINE_FILE).get("ingest") or {}).get("workers", AUTO)
    return parse_workers(setting, source=f"{PIPELINE_FILE}: ingest.workers")


def parse_workers(value: Any, source: str = "workers") -> int | str:
    """ "auto" or a positive integer; anything else is an error naming where it came from."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{source} must be 'auto' or a positive integer, not {value!r}") from None
    if number < 1 or str(number) != str(value).strip():
        raise ValueError(f"{source} must be 'auto' or a positive integer, not {value!r}")
    return number


def resolve_workers(setting: int | str | None, units: int) -> int:
    """Worker processes for `units` units: `setting` (None: the configured one), "auto" being
    one per available CPU; never more than there are units, never fewer than one."""
    setting = configured_workers() if setting is None else parse_workers(setting)
    wanted = available_cpus() if setting == AUTO else int(setting)
    return max(1, min(wanted, units))


def land_units(
    pairs: Sequence[tuple[str, str]],
    start: dt.date,
    end: dt.date,
    *,
    run_id: str,
    workers: int,
    paths: DataPaths | None = None,
    registry: Registry | None = None,
    pseudonymizer: Pseudonymizer | None = None,
    state: StateStore | None = None,
    progress: UnitProgressFn | None = None,
    on_result: Callable[[UnitResult], None] | None = None,
    allow_shrink: bool = False,
) -> list[UnitResult]:
    """Pull every (site, kind) of `pairs` over start..end; results in the order of `pairs`.

    A failed unit does not stop the others (as in a serial run); its cause is in its result.
    `progress` and `on_result` are called in this process, whatever the number of workers."""
    run = _Run(start, end, run_id, paths or data_paths(), allow_shrink)
    if workers <= 1:
        return [
            _report(on_result, _pull_here(i, site_id, kind, run, registry, pseudonymizer, state, progress))
            for i, (site_id, kind) in enumerate(pairs)
        ]
    context = multiprocessing.get_context("spawn")
    messages: Any = context.Queue()
    results: dict[int, UnitResult] = {}
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(messages,)
    ) as pool:
        pending: dict[Future[UnitResult], tuple[int, str, str]] = {
            pool.submit(_pull_in_worker, i, site_id, kind, run): (i, site_id, kind)
            for i, (site_id, kind) in enumerate(pairs)
        }
        try:
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(messages, progress)
                for future in done:
                    i, site_id, kind = pending.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool as exc:  # a worker was killed (OOM, signal): name the unit
                        result = UnitResult(i, site_id, kind, cause=f"worker process ended abruptly ({exc})")
                    results[i] = _report(on_result, result)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    _drain(messages, progress)
    messages.close()
    return [results[i] for i in range(len(pairs))]


def _report(on_result: Callable[[UnitResult], None] | None, result: UnitResult) -> UnitResult:
    if on_result:
        on_result(result)
    return result


def _drain(messages: Any, progress: UnitProgressFn | None) -> None:
    while True:
        try:
            message = messages.get_nowait()
        except queue.Empty:
            return
        if progress:
            progress(*message)


def _pull_here(
    index: int,
    site_id: str,
    kind: str,
    run: _Run,
    registry: Registry | None,
    pseudonymizer: Pseudonymizer | None,
    state: StateStore | None,
    progress: UnitProgressFn | None,
) -> UnitResult:
    """One unit in this process; a failure becomes the result's cause (FetchError is redacted)."""
    if progress:
        progress(index, 0, None, 0)

    def report(done: int, total: int, rows: int) -> None:
        if progress:
            progress(index, done, total, rows)

    try:
        outcome = pull(
            site_id,
            kind,
            run.start,
            run.end,
            run_id=run.run_id,
            paths=run.paths,
            registry=registry,
            pseudonymizer=pseudonymizer,
            progress=report,
            state=state,
            allow_shrink=run.allow_shrink,
        )
    except FetchError as exc:
        return UnitResult(index, site_id, kind, cause=exc.cause)
    return UnitResult(index, site_id, kind, outcome=outcome)


# -- in a worker process -----------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _init_worker(messages: Any) -> None:
    """A worker's start: the same hardening as the CLI (umask 077, redacted logs), then the
    registry, pseudonymizer (its HMAC cache lives as long as the worker) and progress channel."""
    harden_process()
    _worker.update(messages=messages, registry=load_registry(), pseudonymizer=Pseudonymizer())


def _pull_in_worker(index: int, site_id: str, kind: str, run: _Run) -> UnitResult:
    messages = _worker["messages"]
    state = _worker.get("state")
    if state is None or state.path != run.paths.state_db:
        state = _worker["state"] = StateStore(run.paths)

    def progress(i: int, done: int, total: int | None, rows: int) -> None:
        messages.put((i, done, total, rows))

    try:
        return _pull_here(index, site_id, kind, run, _worker["registry"], _worker["pseudonymizer"], state, progress)
    except Exception as exc:  # not a FetchError (pull wraps those): still this unit's failure, redacted
        return UnitResult(index, site_id, kind, cause=FetchError(site_id, kind, f"{type(exc).__name__}: {exc}").cause)
