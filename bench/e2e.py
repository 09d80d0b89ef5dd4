"""End to end: the daily incremental run of the whole pipeline at 10, 50 and 200 sites.

For each size (bench/scale.py: a cached month of every site, hard-linked into a fresh data
dir with its registry) the set-up, in child processes so each peak RSS is its own:

1. `full build`: export the reference tables, `dbt build` over the month, publish;
   the evaluation watermark is then set (an empty plan finished as success);
2. a new local day (the day after the month) is landed for every site and kind through
   the ingestion writer and recorded in the load audit as a successful load;
3. `daily run` (timed): the pipeline's step functions in one child process, as the
   evaluation DAG calls them (STEPS): plan -> check_freshness -> validate_landing ->
   export_reference -> build_marts -> validate_marts -> early_warning -> publish.

Step 2-3 repeat with the next day (`--repeats`). Figures: the daily run and each step per
size (median), its peak RSS, the full build, and the growth from the smallest to each
larger size as a ratio and an exponent (log t / log sites; target <= 1, linear or better).
What early warning adds to the daily run (issue 10) is two figures: `daily: early_warning`
(the alert step) and `daily: warning models` (the seconds dbt spent on the nodes of
models/warnings/ inside build_marts, from its run_results.json; dbt runs 2 threads, so
node seconds may overlap).

    .venv/bin/python -m bench.e2e --sizes quick
    .venv/bin/python -m bench.e2e --sizes pilot-month district50-month district-month --repeats 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Figure, median, run_child, save_figures
from bench.scale import audit_landed, land_sites, materialize, registry_env, registry_for, size

# The evaluation DAG's tasks in its order (dags/evaluate_district.py), as step functions;
# month_end_reports is left out: the bench's new days complete no month.
STEPS = (
    ("plan", "pipeline.steps:plan", "run_id"),
    ("check_freshness", "pipeline.freshness:check_freshness", None),
    ("validate_landing", "pipeline.steps:validate_landing", "planned"),
    ("export_reference", "pipeline.steps:export_reference", None),
    ("build_marts", "pipeline.steps:build_marts", "planned"),
    ("validate_marts", "pipeline.steps:validate_marts", "planned"),
    ("early_warning", "pipeline.warnings:early_warning", None),
    ("publish", "pipeline.steps:publish", None),
)
STEP_NAMES = tuple(name for name, _, _ in STEPS)
WARNING_MODELS = "warnings"  # dbt_project/models/warnings/ and seeds/warnings/ (dbt_node_seconds folders)
MEMORY_TARGET_MIB = 4096

_DAILY = r"""
import importlib, json, sys, time
from bench.e2e import STEPS
from bench.transform import dbt_node_seconds
from pipeline import steps
from ingestion.paths import data_paths
args = {"run_id": sys.argv[1]}
seconds = {}
for name, target, arg in STEPS:
    module, function = target.split(":")
    call = getattr(importlib.import_module(module), function)
    t = time.perf_counter()
    result = call(args[arg]) if arg else call()
    seconds[name] = time.perf_counter() - t
    if name == "plan":
        args["planned"] = result
    if name == "build_marts":
        nodes = dbt_node_seconds(data_paths().warehouse_dir / "dbt" / "target")
steps.finish(args["planned"], "success")
print(json.dumps({"seconds": seconds, "dbt_nodes": nodes, "days": args["planned"]["days"],
                  "sites": len(args["planned"]["sites"])}))
"""

_FULL = r"""
import json, time
from pipeline import steps
from dbt_project.run import build
seconds = {}
t = time.perf_counter(); steps.export_reference(); build(); seconds["dbt_build"] = time.perf_counter() - t
t = time.perf_counter(); steps.publish(); seconds["publish"] = time.perf_counter() - t
planned = steps.plan("bench-full")  # nothing audited yet: an empty plan; success sets the watermark
steps.finish(planned, "success")
print(json.dumps({"seconds": seconds}))
"""


def _demo_env() -> dict[str, str]:
    from bench.dashboards_data import demo_env

    return demo_env()


def _env(root: Path) -> dict[str, str]:
    env = {**os.environ, **_demo_env(), **registry_env(root), "SMARTCOMM_GX_DIR": str(root / "gx")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    return env


def _child(code: str, args: list[str], root: Path, timeout: float) -> tuple[dict, float, float]:
    run = run_child([sys.executable, "-c", code, *args], env=_env(root), timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"child failed (exit {run.returncode}): {run.stderr.strip()[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1]), run.seconds, run.peak_rss_mib


def land_day(root: Path, size_name: str, day: dt.date, run_id: str) -> int:
    """A new day for every site and kind, landed and audited as a successful load."""
    from ingestion.paths import data_paths

    registry = registry_for(size(size_name))
    paths = data_paths(root)
    landed = land_sites(registry, [day], paths, run_id)
    audit_landed(paths, registry, day, day, run_id)
    return landed.rows


def measure_size(size_name: str, work: Path, repeats: int, timeout: float) -> tuple[list[Figure], dict]:
    spec = size(size_name)
    root = work / size_name
    shutil.rmtree(root, ignore_errors=True)
    materialize(spec, root)
    sites = spec.sites
    full, full_s, full_rss = _child(_FULL, [], root, timeout)
    figures = [
        Figure("e2e", "full build + publish", size_name, full_s, "s", peak_rss_mib=full_rss, repeats=1),
    ]
    runs: list[dict] = []
    for i in range(repeats):
        day = spec.last + dt.timedelta(days=i + 1)
        land_day(root, size_name, day, f"bench-day-{i}")
        result, seconds, rss = _child(_DAILY, [f"bench-eval-{i}"], root, timeout)
        runs.append({**result, "wall": seconds, "peak_rss_mib": rss})
    peak = max(r["peak_rss_mib"] for r in runs)
    total = median(r["wall"] for r in runs)
    figures.append(
        Figure(
            "e2e",
            "daily run",
            size_name,
            total,
            "s",
            peak_rss_mib=peak,
            repeats=len(runs),
            target=f"peak RSS <= {MEMORY_TARGET_MIB} MiB",
            meets=peak <= MEMORY_TARGET_MIB,
        )
    )
    for step in STEP_NAMES:
        figures.append(
            Figure(
                "e2e",
                f"daily: {step}",
                size_name,
                median(r["seconds"][step] for r in runs),
                "s",
                baseline="daily run",
                baseline_value=total,
                repeats=len(runs),
            )
        )
    warning_models = median(
        sum(n["seconds"] for n in r["dbt_nodes"].values() if n["folder"] == WARNING_MODELS) for r in runs
    )
    figures.append(
        Figure(
            "e2e",
            "daily: warning models (dbt nodes in build_marts)",
            size_name,
            warning_models,
            "s",
            baseline="daily run",
            baseline_value=total,
            repeats=len(runs),
        )
    )
    info = {"sites": sites, "root": str(root), "full": full, "runs": runs}
    return figures, info


def growth_figures(figures: list[Figure], sites_of: dict[str, int]) -> list[Figure]:
    """Daily-run cost of each larger size against the smallest: ratio and exponent (<= 1 is linear or better)."""
    daily = sorted((f for f in figures if f.name == "daily run"), key=lambda f: sites_of[f.size])
    if len(daily) < 2:
        return []
    base = daily[0]
    out = []
    for f in daily[1:]:
        ratio = f.value / base.value
        exponent = math.log(ratio) / math.log(sites_of[f.size] / sites_of[base.size])
        out.append(
            Figure(
                "e2e",
                f"growth exponent {sites_of[base.size]}->{sites_of[f.size]} sites",
                f.size,
                exponent,
                "exp",
                baseline=f"daily run {base.size}",
                baseline_value=base.value,
                ratio=ratio,
                target="exponent <= 1 (linear or better)",
                meets=exponent <= 1.0,
                repeats=f.repeats,
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Daily incremental pipeline run at several sizes. Example: python -m bench.e2e --sizes quick"
    )
    parser.add_argument("--sizes", nargs="+", default=["pilot-month", "district50-month", "district-month"])
    parser.add_argument("--quick", action="store_true", help="CI smoke: the quick size, one repeat")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per child process")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs")
    args = parser.parse_args(argv)
    sizes, repeats = (["quick"], 1) if args.quick else (args.sizes, args.repeats)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    figures: list[Figure] = []
    details: dict[str, dict] = {}
    started = time.perf_counter()
    try:
        for name in sizes:
            size_figures, details[name] = measure_size(name, work, repeats, args.timeout)
            figures += size_figures
            print(json.dumps({"size": name, **{f.name: round(f.value, 2) for f in size_figures}}), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    figures += growth_figures(figures, {name: size(name).sites for name in sizes})
    save_figures("e2e", figures, extra={"details": details, "seconds": time.perf_counter() - started})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
