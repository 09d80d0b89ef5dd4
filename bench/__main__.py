"""`python -m bench`: run every stage's benchmark, print one table, write one JSON file.

    .venv/bin/python -m bench                   # full (make bench)
    .venv/bin/python -m bench --quick           # CI smoke sizes (make bench-quick)
    .venv/bin/python -m bench --quick --stages e2e,dashboards

Each stage runs as a child process (`python -m bench.<stage> ...`), so a stage that is
broken or missing is reported as such and the others still run, and each stage's peak RSS
is its own. A stage hands its figures over through `bench.report.save_figures` (the file
named by $BENCH_FIGURES); for stage modules that still write their own JSON, an adapter
below turns it into figures. Results: bench/results/bench-<UTC timestamp>.json and
bench/results/latest.json (git-ignored), with the machine's facts at start and end.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import (
    FIGURES_ENV,
    PROJECT_ROOT,
    RESULTS_DIR,
    Figure,
    machine_facts,
    parse_emitted,
    print_table,
    read_results,
    run_child,
    write_results,
)

Adapter = Callable[[dict[str, Any], "Stage"], list[Figure]]


@dataclass
class Stage:
    """One stage's benchmark module and how the runner calls it at each mode."""

    name: str
    module: str
    full_args: list[str] = field(default_factory=list)
    quick_args: list[str] | None = None  # used unless the module takes --quick (and detect_quick)
    detect_quick: bool = True
    legacy_file: str | None = None  # bench/results/<file> the module writes by itself
    adapter: Adapter | None = None
    full_timeout: float = 4 * 3600
    quick_timeout: float = 900  # a quick stage takes about a minute on a quiet machine
    in_quick: bool = True
    size_label: str = ""

    def module_path(self) -> Path | None:
        spec = importlib.util.find_spec(self.module)
        return Path(spec.origin) if spec and spec.origin else None


def _validate_figures(doc: dict[str, Any], stage: Stage) -> list[Figure]:
    ratio = doc["validate_s"] / doc["landing_s"]
    return [
        Figure(
            "validate",
            "GX on a site-month of passages",
            f"site-month ({doc.get('site', '?')} {doc.get('month', '')})",
            doc["validate_s"],
            "s",
            baseline="landing it",
            baseline_value=doc["landing_s"],
            ratio=ratio,
            target="<= 0.3x landing",
            meets=ratio <= 0.3,
            peak_rss_mib=doc.get("peak_rss_mib"),
        )
    ]


SPARK_SELECTION = "+indicator_values +indicator_scores +star_ratings +next_star_gaps"

STAGES: list[Stage] = [
    # git clone -> make demo -> every dashboard answering, per phase (issue 18); first, on a quiet machine
    Stage("first-run", "bench.first_run", quick_timeout=1800),
    Stage(
        "scale",
        "bench.scale",
        full_args=["bench", "--size", "quick"],
        quick_args=["bench", "--quick"],
        detect_quick=False,
    ),
    Stage("ingest", "bench.ingest"),
    Stage("validate", "bench.validate", legacy_file="validate.json", adapter=_validate_figures, quick_args=[]),
    # one run per figure at these sizes (the stage takes ~16 min on 2 cores; three runs would add ~30 min)
    Stage("transform", "bench.transform", full_args=["--sizes", "pilot-year", "district-month", "--repeat", "1"]),
    Stage("dashboards", "bench.dashboards"),
    Stage("e2e", "bench.e2e"),
    # early warning against the labelled episodes, each scenario a whole demo run (~8 min; issue 24)
    Stage("warnings", "bench.warnings_eval", detect_quick=False, full_timeout=2 * 3600, in_quick=False),
    Stage(
        "spark",
        "bench.spark",
        # the evaluation marts and everything upstream at district scale on both engines (issue 11;
        # `make bench-spark BENCH_SPARK_ARGS="--sizes pilot-year district-month ..."` adds pilot-year)
        full_args=["--sizes", "district-month", "--select", SPARK_SELECTION],
        full_timeout=6 * 3600,
        in_quick=False,
    ),
]


def _supports_quick(stage: Stage) -> bool:
    if not stage.detect_quick:
        return False
    path = stage.module_path()
    return bool(path) and "--quick" in path.read_text(encoding="utf-8", errors="replace")


def run_stage(stage: Stage, quick: bool, workdir: Path) -> tuple[list[Figure], dict[str, Any]]:
    """Run one stage as a child; its figures and a status record ("ok", "missing", "failed", "timeout")."""
    if stage.module_path() is None:
        return [], {"status": "missing", "error": f"no module {stage.module} (not written yet)"}
    quick_args = ["--quick"] if _supports_quick(stage) else (stage.quick_args or [])
    args = quick_args if quick else stage.full_args
    timeout = stage.quick_timeout if quick else stage.full_timeout
    out = workdir / f"{stage.name}.json"
    env = {**os.environ, FIGURES_ENV: str(out), "PYTHONPATH": str(PROJECT_ROOT)}
    argv = [sys.executable, "-m", stage.module, *args]
    legacy = RESULTS_DIR / stage.legacy_file if stage.legacy_file else None
    started_wall = time.time()
    run = run_child(argv, env=env, cwd=PROJECT_ROOT, timeout=timeout)
    info: dict[str, Any] = {
        "argv": argv[1:],
        "returncode": run.returncode,
        "seconds": round(run.seconds, 1),
        "peak_rss_mib": round(run.peak_rss_mib, 1),
    }
    figures: list[Figure] = []
    error = None
    try:
        if out.exists():
            figures = read_results(out)[1]
        elif parse_emitted(run.stdout):
            figures = parse_emitted(run.stdout)
        elif legacy and legacy.exists() and legacy.stat().st_mtime >= started_wall and stage.adapter:
            figures = stage.adapter(json.loads(legacy.read_text()), stage)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        error = f"cannot read its figures: {type(exc).__name__}: {exc}"
    if "killed after" in run.stderr:
        info["status"] = "timeout"
    elif run.returncode != 0:
        info["status"] = "failed"
    elif error or not figures:
        info["status"] = "failed"
        error = error or "finished without figures"
    else:
        info["status"] = "ok"
    if info["status"] != "ok":
        info["error"] = error or run.stderr.strip()[-1500:] or run.stdout.strip()[-1500:]
    for f in figures:
        if f.peak_rss_mib is None:  # the stage's own peak is the best we know for its figures
            f.peak_rss_mib = run.peak_rss_mib
    return figures, info


def run(stage_names: list[str] | None, quick: bool, out: Path | None = None) -> tuple[Path, list[Figure], dict]:
    """Run the stages in order; write the results file (and latest.json); return (path, figures, statuses)."""
    chosen = [s for s in STAGES if (stage_names is None and (s.in_quick or not quick)) or s.name in (stage_names or [])]
    unknown = set(stage_names or []) - {s.name for s in STAGES}
    if unknown:
        raise SystemExit(f"unknown stage(s) {sorted(unknown)}; known: {[s.name for s in STAGES]}")
    facts_before = machine_facts()
    figures: list[Figure] = []
    statuses: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        for stage in chosen:
            print(f"==> bench {stage.name} ({'quick' if quick else 'full'})", flush=True)
            stage_figures, statuses[stage.name] = run_stage(stage, quick, Path(tmp))
            figures += stage_figures
            s = statuses[stage.name]
            print(f"    {s['status']}: {len(stage_figures)} figures in {s.get('seconds', 0)} s", flush=True)
    extra = {
        "mode": "quick" if quick else "full",
        "seconds": round(time.perf_counter() - started, 1),
        "machine_at_start": facts_before,
        "git_commit": _git_commit(),
    }
    path = write_results(out, figures, stages=statuses, extra=extra)
    return path, figures, statuses


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the benchmark stages and write bench/results/. Example: python -m bench --quick",
    )
    parser.add_argument("--quick", action="store_true", help="CI smoke sizes (make bench-quick)")
    parser.add_argument("--stages", help=f"comma-separated subset of {','.join(s.name for s in STAGES)}")
    parser.add_argument("--out", type=Path, help="results file (default bench/results/bench-<timestamp>.json)")
    parser.add_argument(
        "--stage-args",
        action="append",
        default=[],
        metavar="STAGE=ARGS",
        help='replace a stage\'s arguments, e.g. "dashboards=--sizes pilot-month district50-month"',
    )
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.stages.split(",")] if args.stages else None
    for item in args.stage_args:
        name, _, rest = item.partition("=")
        stage = next((s for s in STAGES if s.name == name), None)
        if stage is None:
            parser.error(f"--stage-args: unknown stage {name!r}")
        stage.full_args = stage.quick_args = shlex.split(rest)
        stage.detect_quick = False
    path, figures, statuses = run(names, args.quick, args.out)
    print_table(figures, title=f"bench ({'quick' if args.quick else 'full'})", stages=statuses)
    print(f"results: {path}")
    return 0 if all(s["status"] in ("ok", "missing") for s in statuses.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
