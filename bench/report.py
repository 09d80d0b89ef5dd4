"""Figures every bench stage reports, and how they are summarised, written and printed.

Each stage module measures its figures beside a baseline timed in the same run (a floor
such as a plain download or a hand-written query, or a peer), because absolute times on a
shared machine are noise; the ratio is the figure that means something. The runner
(`python -m bench`) collects `Figure`s from every stage, prints one table and writes
`bench/results/bench-<timestamp>.json` + `latest.json` with the machine's facts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
SCHEMA_VERSION = 1


@dataclass
class Figure:
    """One measured figure: its value, the same-run baseline it is judged against, the verdict."""

    stage: str
    name: str
    size: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    ratio: float | None = None
    target: str | None = None
    meets: bool | None = None
    peak_rss_mib: float | None = None
    repeats: int = 1

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline_value:
            self.ratio = self.value / self.baseline_value

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figure:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


FIGURE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Figure))


def median(values: Iterable[float]) -> float:
    """Median of repeated measurements (the figure we report: robust to one noisy run)."""
    values = list(values)
    if not values:
        raise ValueError("median of no measurements")
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): p95 of 20 requests is the 19th slowest, not an interpolation."""
    if not values:
        raise ValueError("percentile of no measurements")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return float(ordered[int(rank) - 1])


def timed_repeats(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Call fn `repeats` times; return (median seconds, all seconds, last result)."""
    seconds: list[float] = []
    result: Any = None
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
    return median(seconds), seconds, result


def self_peak_rss_mib() -> float:
    """Peak RSS of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mib() -> float:
    """Largest peak RSS of any waited-for child so far (a high-water mark over all children)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


@dataclass
class ChildRun:
    """A finished child process: its exit code, output, wall time and its own peak RSS."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mib: float


def run_child(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    stdout_path: Path | None = None,
) -> ChildRun:
    """Run a child to completion and read its own peak RSS from os.wait4 (exact, per child).

    Output goes to temporary files (not pipes) so a chatty child can't block on a full pipe
    while we sit in wait4.
    """
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, text=True, env=env, cwd=cwd)
        deadline = None if timeout is None else started + timeout
        status = rusage = None
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                pid, status, rusage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if deadline is not None and seconds > (timeout or 0):
        stderr += f"\n[bench] killed after {timeout:.0f} s"
    if stdout_path is not None:
        stdout_path.write_text(stdout)
    return ChildRun(proc.returncode, stdout, stderr, seconds, rusage.ru_maxrss / 1024)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _superset_version() -> str | None:
    """Superset lives in its own venv (.venv-superset); read its dist-info without importing it."""
    for site in sorted((PROJECT_ROOT / ".venv-superset" / "lib").glob("python*/site-packages")):
        for info in site.glob("apache_superset-*.dist-info"):
            return info.name.removeprefix("apache_superset-").removesuffix(".dist-info")
    return None


def _memory_gib() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 2)
    except ImportError:  # pragma: no cover - psutil ships with the pipeline venv
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return round(pages * size / 2**30, 2)


def machine_facts() -> dict[str, Any]:
    """What a reader needs to compare two result files: hardware, load and tool versions."""
    load = os.getloadavg()
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _memory_gib(),
        "load_average": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "versions": {
            "duckdb": _version("duckdb"),
            "dbt-core": _version("dbt-core"),
            "dbt-duckdb": _version("dbt-duckdb"),
            "great-expectations": _version("great-expectations"),
            "apache-airflow": _version("apache-airflow"),
            "apache-superset": _superset_version(),
            "pyarrow": _version("pyarrow"),
        },
    }


def write_results(
    path: str | Path | None,
    figures: Sequence[Figure],
    *,
    stages: dict[str, dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    latest: bool = True,
) -> Path:
    """Write figures + machine facts as JSON (default bench/results/bench-<timestamp>.json) and latest.json.

    `stages` records per-stage status ("ok", "failed", "missing", "skipped") with its error, so a
    stage that broke is visible in the file rather than absent from it.
    """
    now = dt.datetime.now(dt.UTC)
    if path is None:
        path = RESULTS_DIR / f"bench-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "schema": SCHEMA_VERSION,
        "created": now.isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "stages": stages or {},
        "figures": [f.to_dict() for f in figures],
        **(extra or {}),
    }
    text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False, default=str)
    path.write_text(text + "\n")
    if latest and path.name != "latest.json":
        (path.parent / "latest.json").write_text(text + "\n")
    return path


def read_results(path: str | Path) -> tuple[dict[str, Any], list[Figure]]:
    """Read a results file back: (the whole document, its figures)."""
    document = json.loads(Path(path).read_text())
    return document, [Figure.from_dict(f) for f in document.get("figures", [])]


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def print_table(
    figures: Sequence[Figure],
    *,
    title: str = "bench",
    stages: dict[str, dict[str, Any]] | None = None,
    file: Any = None,
) -> None:
    """One table of all figures (value, baseline, ratio, target, verdict, peak RSS), then failed stages."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file or sys.stdout, width=200)
    table = Table(title=title)
    for column in ("stage", "figure", "size", "value", "unit", "baseline", "ratio", "target", "ok", "peak MiB", "n"):
        table.add_column(column, justify="right" if column in {"value", "ratio", "peak MiB", "n"} else "left")
    for f in figures:
        verdict = {True: "[green]yes[/]", False: "[red]NO[/]", None: "-"}[f.meets]
        baseline = f"{f.baseline} {_fmt(f.baseline_value)}" if f.baseline else "-"
        table.add_row(
            f.stage,
            f.name,
            f.size,
            _fmt(f.value),
            f.unit,
            baseline,
            _fmt(f.ratio),
            f.target or "-",
            verdict,
            _fmt(f.peak_rss_mib, 4),
            str(f.repeats),
        )
    console.print(table)
    for stage, info in (stages or {}).items():
        if info.get("status") not in (None, "ok"):
            console.print(f"[yellow]{stage}: {info.get('status')}[/] {str(info.get('error', ''))[:300]}")


FIGURES_MARK = "BENCH-FIGURES "


def emit_figures(figures: Sequence[Figure], file: Any = None) -> None:
    """Print figures as one marked JSON line, for a stage run as a child of the runner."""
    line = json.dumps([f.to_dict() for f in figures], allow_nan=False, default=str)
    print(FIGURES_MARK + line, file=file or sys.stdout, flush=True)


def parse_emitted(stdout: str) -> list[Figure]:
    """The figures a child printed with `emit_figures` (every marked line, in order)."""
    figures: list[Figure] = []
    for line in stdout.splitlines():
        if line.startswith(FIGURES_MARK):
            figures.extend(Figure.from_dict(d) for d in json.loads(line[len(FIGURES_MARK) :]))
    return figures


FIGURES_ENV = "BENCH_FIGURES"


def save_figures(stage: str, figures: Sequence[Figure], extra: dict[str, Any] | None = None) -> Path:
    """How a stage module hands its figures over: to $BENCH_FIGURES when the runner set it
    (python -m bench), else bench/results/<stage>.json; also prints them as a table."""
    target = Path(os.environ.get(FIGURES_ENV) or RESULTS_DIR / f"{stage}.json")
    path = write_results(target, figures, stages={stage: {"status": "ok"}}, extra=extra, latest=False)
    print_table(figures, title=f"bench: {stage}")
    return path
