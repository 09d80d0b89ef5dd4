"""`dbt build` on the local Spark cluster beside DuckDB, on the same landed data, in one run.

For each size (bench/scale.py: `quick`, `pilot-month`, `pilot-year`, `district-month`, ...)
one data directory is materialized from the scale cache and built twice with the full
project (seeds, models, data and unit tests): first on the embedded DuckDB target (the
baseline), then on the `spark` target against the standalone master + worker + Thrift
server that deploy/cluster.py starts on free loopback ports. The figure is the Spark build's
wall time and its ratio to DuckDB's; peak memory is sampled every 0.5 s over the dbt process
tree and, for Spark, every JVM of the stack (master, worker, Thrift driver, executor).

    .venv/bin/python -m bench.spark                                  # quick
    .venv/bin/python -m bench.spark --sizes pilot-year district-month --repeats 1 --work-dir /tmp/spark-bench

With `--work-dir` the data directories, the stack's logs and dbt's logs and
`target/run_results.json` of each build (`<size>/warehouse/dbt-<target>/`) are kept for a
look at where the time went; without it they go to a temporary directory that is removed.

No target is asserted: the figures say where a one-machine DuckDB stops being enough
(see dbt_project/README.md, "DuckDB and Spark").
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.report import Figure, save_figures
from bench.scale import materialize, registry_env
from deploy.cluster import Settings, down, private_settings, running_pid, up

SPARK_SERVICES = ("spark-master", "spark-worker", "spark-thrift")


class PeakSampler:
    """Peak of the summed RSS of some process trees, sampled in a thread."""

    def __init__(self, roots: Iterable[int], interval_s: float = 0.5) -> None:
        self.roots = list(roots)
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree_rss(self) -> int:
        seen: set[int] = set()
        total = 0
        for root in self.roots:
            try:
                process = psutil.Process(root)
                for member in [process, *process.children(recursive=True)]:
                    if member.pid not in seen:
                        seen.add(member.pid)
                        total += member.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._tree_rss())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._tree_rss())

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / 2**20


@dataclass
class Build:
    seconds: float
    peak_mib: float


def timed_build(
    data_dir: Path, env: dict[str, str], target: str, extra_roots: Iterable[int] = (), select: str | None = None
) -> Build:
    """One `dbt build` in a child process; wall time and the peak RSS of it plus `extra_roots`."""
    import os
    import subprocess

    argv = [sys.executable, "-m", "dbt_project.run", "build", "--data-dir", str(data_dir), "--target", target]
    if select:
        argv += ["--select", *select.split(), "--indirect-selection", "buildable"]
    log = data_dir / f"bench-{target}.log"
    with open(log, "w", encoding="utf-8") as out:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        try:
            with PeakSampler([process.pid, *extra_roots]) as sampler:
                returncode = process.wait()
        except BaseException:  # Ctrl-C: stop the build too, the figures so far are saved
            process.terminate()
            process.wait()
            raise
        seconds = time.perf_counter() - started
    if returncode != 0:
        raise RuntimeError(f"dbt build --target {target} failed on {data_dir}, see {log}")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{data_dir.name} {target}: {seconds:.0f} s, peak {sampler.peak_mib:.0f} MiB, load {load}", flush=True)
    return Build(seconds, sampler.peak_mib)


def bench_size(size: str, workdir: Path, stack: Settings, repeats: int, select: str | None = None) -> list[Figure]:
    root = workdir / size
    materialize(size, root)
    env = {**registry_env(root), **{key: stack[key] for key in ("SMARTCOMM_SPARK_HOST", "SMARTCOMM_SPARK_PORT")}}
    jvms = [pid for name in SPARK_SERVICES if (pid := running_pid(stack, name))]
    duck, spark = [], []
    for repeat in range(repeats):
        # a fresh warehouse each time: both builds are full builds, not incremental no-ops
        for path in (root / "warehouse").glob("warehouse.duckdb*"):
            path.unlink()
        duck.append(timed_build(root, env, "duckdb", select=select))
        # a schema per size and repeat: Spark's tables outlive the build (the metastore is the
        # stack's), and an existing incremental table would turn the next build incremental
        spark_env = {**env, "SMARTCOMM_SPARK_SCHEMA": f"bench_{size.replace('-', '_')}_{repeat}"}
        spark.append(timed_build(root, spark_env, "spark", jvms, select=select))
    what = f" ({select})" if select else ""
    duck_s = statistics.median(build.seconds for build in duck)
    spark_s = statistics.median(build.seconds for build in spark)
    return [
        Figure(
            "spark",
            f"dbt build on DuckDB{what}",
            size,
            duck_s,
            "s",
            peak_rss_mib=max(b.peak_mib for b in duck),
            repeats=repeats,
        ),
        Figure(
            "spark",
            f"dbt build on Spark (standalone, Thrift){what}",
            size,
            spark_s,
            "s",
            baseline=f"dbt build on DuckDB{what}",
            baseline_value=duck_s,
            target="informational: where Spark overtakes DuckDB",
            peak_rss_mib=max(b.peak_mib for b in spark),
            repeats=repeats,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["quick"], help="bench/scale.py sizes (default: quick)")
    parser.add_argument("--repeats", type=int, default=1, help="builds per engine and size; the median is reported")
    parser.add_argument("--quick", action="store_true", help="the quick size once")
    parser.add_argument(
        "--select", default=None, help="a dbt selection instead of the whole project, e.g. '+star_ratings'"
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="keep data, stack and dbt logs here")
    args = parser.parse_args(argv)
    sizes = ["quick"] if args.quick else args.sizes
    figures: list[Figure] = []
    with contextlib.ExitStack() as scope:
        if args.work_dir is None:
            workdir = Path(scope.enter_context(tempfile.TemporaryDirectory(prefix="bench-spark-")))
        else:
            workdir = args.work_dir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        stack = private_settings(workdir / "cluster", workdir / "data", spark_schema="bench")
        started = time.perf_counter()
        try:
            up(stack, ["spark"])
            figures.append(
                Figure("spark", "Spark stack ready (master, worker, Thrift)", "-", time.perf_counter() - started, "s")
            )
            for size in sizes:
                figures += bench_size(size, workdir, stack, args.repeats, args.select)
        finally:
            down(stack)
            if figures:  # what was measured before a failure or Ctrl-C is kept
                save_figures("spark", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
