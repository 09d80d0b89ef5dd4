"""End-to-end fixtures: the whole DAG chain (ingest DAGs → evaluate_district) via `dag.test()`.

Two sites × one month (March 2026, a survey month) against a private simulator over real
HTTP. The registry is cut to the two sites and scaled down (residents, devices × 0.1, like
tests/dbt) and written to a file that both the simulator and the platform read
($SMARTCOMM_REGISTRY), so the simulator's ground truth describes exactly what is served.
Airflow runs in child processes (`python -m pipeline.dagruns`, the code `make backfill`
runs) with a private AIRFLOW_HOME; each chain has its own data directory.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from bench.transform_data import scaled_registry
from ingestion.paths import DataPaths, data_paths
from ingestion.registry import Registry, load_registry, parse_registry
from pipeline.dagruns import PROGRESS_PREFIX
from tests.dags.conftest import airflow_environment, airflow_home  # noqa: F401  (fixture)
from tests.fixtures.simulator import PROJECT_ROOT, SimulatorHandle, start_simulator

SITES = ("vanke_meili", "lt_airport_block")  # ISC + manual workbooks; token REST + alarm files + gov CSV
MONTH_START = dt.date(2026, 3, 1)
MONTH_END = dt.date(2026, 3, 31)
SCALE = 0.1
SEED = 7
# Freshness is judged on the morning after the window (the data is historical).
AS_OF = "2026-04-01T08:00:00+08:00"


def e2e_registry() -> Registry:
    raw = scaled_registry(load_registry(), SCALE).model_dump(mode="json")
    raw["sites"] = [site for site in raw["sites"] if site["site_id"] in SITES]
    return parse_registry(raw, "<e2e registry>")


@dataclass
class Chain:
    """One data directory driven through the DAGs in child processes (its own metadata DB copy)."""

    paths: DataPaths
    env: dict[str, str]
    registry: Registry

    def start(self, *args: str) -> subprocess.Popen:
        """`python -m pipeline.dagruns --retries 0 ARGS` in the background, its output in files
        (a pipe nobody reads would block the child once full)."""
        self.paths.root.mkdir(parents=True, exist_ok=True)
        with (
            (self.paths.root / "dagruns.out").open("w", encoding="utf-8") as out,
            (self.paths.root / "dagruns.log").open("a", encoding="utf-8") as log,
        ):
            return subprocess.Popen(
                [sys.executable, "-m", "pipeline.dagruns", "--retries", "0", *args],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=out,
                stderr=log,
                text=True,
            )

    def result(self, process: subprocess.Popen, expect_ok: bool = True, timeout: float = 2400) -> dict:
        """Wait for a started run; returns its JSON summary."""
        process.wait(timeout=timeout)
        stdout = (self.paths.root / "dagruns.out").read_text(encoding="utf-8", errors="replace")
        lines = [line for line in stdout.splitlines() if line.startswith('{"runs"')]
        if not lines or (expect_ok and process.returncode != 0):
            log = (self.paths.root / "dagruns.log").read_text(encoding="utf-8", errors="replace")
            raise AssertionError(f"pipeline.dagruns exited {process.returncode}:\n{stdout[-3000:]}\n{log[-6000:]}")
        summary = json.loads(lines[-1])
        # The demo's progress: one PROGRESS line per run, as it ended, agreeing with the summary.
        progress = [json.loads(line.removeprefix(PROGRESS_PREFIX)) for line in stdout.splitlines()
                    if line.startswith(PROGRESS_PREFIX)]  # fmt: skip
        assert [(p["dag_id"], p["state"]) for p in progress] == [(r["dag_id"], r["state"]) for r in summary["runs"]]
        return summary

    def run(self, *args: str, expect_ok: bool = True) -> dict:
        return self.result(self.start(*args), expect_ok)


@dataclass
class E2E:
    simulator: SimulatorHandle
    registry: Registry
    registry_file: Path
    home: Path
    root: Path

    @contextmanager
    def private_simulator(self, name: str) -> Iterator[SimulatorHandle]:
        """Another simulator on the same registry and seed, files dropped: for faults that must
        not reach the chains running beside (faults are per server)."""
        with _simulator(self.root / name, self.registry_file) as simulator:
            yield simulator

    def chain(self, name: str, simulator: SimulatorHandle | None = None) -> Chain:
        """A data dir and an AIRFLOW_HOME with its own copy of the migrated metadata DB, so chains
        may run side by side (two `dag.test()` processes on one SQLite file collide)."""
        paths = data_paths(self.root / name)
        home = self.root / name / "airflow"
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.home / "airflow.db", home / "airflow.db")
        extra = {
            **(simulator or self.simulator).env,
            "SMARTCOMM_DATA_DIR": str(paths.root),
            "SMARTCOMM_REGISTRY": str(self.registry_file),
            "SMARTCOMM_FRESHNESS_AS_OF": AS_OF,
            "GX_ANALYTICS_ENABLED": "false",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        }
        return Chain(paths, airflow_environment(home, extra), self.registry)


@contextmanager
def _simulator(workdir: Path, registry_file: Path) -> Iterator[SimulatorHandle]:
    """A simulator serving `registry_file`, the vendors' files of the month dropped."""
    with ExitStack() as stack:
        saved = os.environ.get("SMARTCOMM_REGISTRY")
        os.environ["SMARTCOMM_REGISTRY"] = str(registry_file)  # the simulator process inherits it
        try:
            simulator = stack.enter_context(start_simulator(workdir, seed=SEED, quiet=True))
        finally:  # this process keeps the project's registry (other tests share it)
            if saved is None:
                os.environ.pop("SMARTCOMM_REGISTRY", None)
            else:
                os.environ["SMARTCOMM_REGISTRY"] = saved
        for site in SITES:  # including the late-listing days around the month
            simulator.control.drop_files(
                (MONTH_START - dt.timedelta(days=1)).isoformat(),
                (MONTH_END + dt.timedelta(days=1)).isoformat(),
                site=site,
            )
        yield simulator


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory, airflow_home: Path) -> Iterator[E2E]:  # noqa: F811
    """A private simulator on the two-site registry, its files dropped for the month."""
    root = tmp_path_factory.mktemp("e2e")
    registry = e2e_registry()
    registry_file = root / "pilots.yml"
    registry_file.write_text(yaml.safe_dump(registry.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    with _simulator(root / "simulator", registry_file) as simulator:
        yield E2E(simulator, registry, registry_file, airflow_home, root)


@dataclass
class CleanRun:
    chain: Chain
    process: subprocess.Popen
    _result: dict | None = None

    def wait(self) -> Chain:
        """The reference build, once finished (it runs in the background from first use)."""
        if self._result is None:
            self._result = self.chain.result(self.process)
        assert self._result["ok"], self._result
        return self.chain


@pytest.fixture(scope="session")
def clean_run(e2e: E2E) -> Iterator[CleanRun]:
    """The month in one range per site, then one evaluation: the reference build. Started in
    the background so that the fault scenario runs beside it (2 cores)."""
    chain = e2e.chain("clean")
    process = chain.start(
        "--start", MONTH_START.isoformat(), "--end", MONTH_END.isoformat(), "--sites", ",".join(SITES)
    )
    yield CleanRun(chain, process)
    if process.poll() is None:
        process.kill()
        process.wait()
