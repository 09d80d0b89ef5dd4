"""Fixtures for the scale-out tests: the local Spark / Celery stack of deploy/cluster.py on free
loopback ports in a temp state dir, and one month of simulator data for two sites.

The stack is the documented one (`make cluster-up` runs the same code), started only by the
tests that need it and stopped at the end of the session. It needs .venv-spark (pyspark)
and Debian's redis-server, which only the scale-out targets install (`make scale-setup`);
without them the tests are skipped with that instruction. All tests here are slow.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.transform_data import LandedFigures, day_range, land_simulated, scaled_registry
from deploy.cluster import Settings, down, private_settings, up
from ingestion.paths import DataPaths, data_paths
from ingestion.registry import Registry, load_registry, parse_registry
from tests.dbt.conftest import demo_pseudonymizer

SITES = ("xihoulou", "vanke_meili")  # token REST and ISC vendors: most staging shapes
MONTH_START = dt.date(2026, 3, 1)  # a survey month
MONTH_END = dt.date(2026, 3, 31)
SCALE = 0.1
SEED = 7


def two_site_registry(sites: tuple[str, ...] = SITES, scale: float = SCALE) -> Registry:
    """The registry scaled down and cut to `sites` (the simulator reads the same registry)."""
    raw = scaled_registry(load_registry(), scale).model_dump(mode="json")
    raw["sites"] = [site for site in raw["sites"] if site["site_id"] in sites]
    return parse_registry(raw, f"<registry: {', '.join(sites)} scaled by {scale}>")


def cluster_settings(state: Path, data_dir: Path) -> Settings:
    return private_settings(state, data_dir, spark_schema="scale_test")


def require_scale_environment(*, spark: bool = False, celery: bool = False) -> None:
    settings = Settings.load()
    if spark and not (settings.path("SMARTCOMM_SPARK_HOME") / "bin" / "spark-class").exists():
        pytest.skip("needs .venv-spark (pyspark): run `make scale-setup` (or `make cluster-up`)")
    if celery and shutil.which("redis-server") is None:
        pytest.skip("needs Debian redis-server: run `make scale-setup` (requirements/debian-scale.txt)")


@dataclass
class StackHandle:
    settings: Settings

    def dbt_environment(self) -> dict[str, str]:
        """What dbt's `spark` target reads (dbt_project/profiles.yml)."""
        return {
            key: self.settings[key]
            for key in ("SMARTCOMM_SPARK_HOST", "SMARTCOMM_SPARK_PORT", "SMARTCOMM_SPARK_SCHEMA")
        }


@pytest.fixture(scope="session")
def spark_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    """Spark master + worker + Thrift server on free ports, for the whole session."""
    require_scale_environment(spark=True)
    settings = cluster_settings(tmp_path_factory.mktemp("spark_state"), tmp_path_factory.mktemp("spark_data"))
    try:
        up(settings, ["spark"])
        yield StackHandle(settings)
    finally:
        down(settings)


@dataclass
class LandedMonth:
    paths: DataPaths
    registry: Registry
    figures: LandedFigures


@pytest.fixture(scope="session")
def landed_two_sites(tmp_path_factory: pytest.TempPathFactory) -> LandedMonth:
    """March 2026 of two sites landed straight from the simulator's generator (no HTTP)."""
    from simulator import World

    registry = two_site_registry()
    paths = data_paths(tmp_path_factory.mktemp("scale_month"))
    figures = land_simulated(
        World(seed=SEED, registry=registry),
        registry,
        day_range(MONTH_START, MONTH_END),
        paths,
        run_id="run-scale-1",
        pseudonymizer=demo_pseudonymizer(),
    )
    return LandedMonth(paths, registry, figures)
