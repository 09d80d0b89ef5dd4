"""Fixtures for the dbt tests: a month of simulator data landed for every site, built once.

The simulator's generator API (`World.generate`) feeds the ingestion landing writer
directly (no HTTP): high-volume kinds column-wise, the rest through `land_records`
(bench/transform_data.py). The registry is scaled down (residents and devices x 0.1) so a
month of all ten sites lands in seconds; the simulator reads the same scaled registry, so
its ground truth describes exactly what was landed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from bench.transform_data import LandedFigures, day_range, land_simulated, scaled_registry
from dbt_project.run import build
from ingestion.paths import DataPaths, data_paths
from ingestion.pii import Pseudonymizer
from ingestion.registry import PROJECT_ROOT, Registry, load_registry

MONTH_START = dt.date(2026, 3, 1)  # a survey month (surveys run in March, June, ...)
MONTH_END = dt.date(2026, 3, 31)
SCALE = 0.1
SEED = 7


def demo_pseudonymizer() -> Pseudonymizer:
    """Pseudonyms keyed with the demo key of config/demo.env (never the process environment)."""
    for line in (PROJECT_ROOT / "config" / "demo.env").read_text(encoding="utf-8").splitlines():
        if line.startswith("SMARTCOMM_PSEUDONYM_KEY="):
            return Pseudonymizer(line.split("=", 1)[1].strip())
    raise AssertionError("config/demo.env has no SMARTCOMM_PSEUDONYM_KEY")


@dataclass
class BuiltMonth:
    paths: DataPaths
    registry: Registry
    world: object
    figures: LandedFigures

    @property
    def warehouse(self) -> Path:
        return self.paths.warehouse_db

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="session")
def built_month(tmp_path_factory: pytest.TempPathFactory) -> BuiltMonth:
    """March 2026 for all ten sites landed and built with `dbt build` (tests included)."""
    from simulator import World

    registry = scaled_registry(load_registry(), SCALE)
    world = World(seed=SEED, registry=registry)
    paths = data_paths(tmp_path_factory.mktemp("dbt_month"))
    figures = land_simulated(
        world,
        registry,
        day_range(MONTH_START, MONTH_END),
        paths,
        run_id="run-month-1",
        pseudonymizer=demo_pseudonymizer(),
    )
    build(paths.root)
    return BuiltMonth(paths, registry, world, figures)
