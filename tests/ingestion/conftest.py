"""Ingestion test fixtures: a private data directory and the demo pseudonym key per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.demo import demo_values
from ingestion.paths import DataPaths, data_paths
from tests.fixtures.simulator import SimulatorHandle, start_simulator


def demo_env() -> dict[str, str]:
    """The demo credentials of config/demo.env as a mapping."""
    return demo_values()


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DataPaths:
    """SMARTCOMM_DATA_DIR in tmp_path and the demo credentials in the environment."""
    for name, value in demo_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SMARTCOMM_DATA_DIR", str(tmp_path / "data"))
    return data_paths()


def use(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> DataPaths:
    """The simulator's endpoints and credentials in the environment, a private data directory."""
    for name, value in sim.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SMARTCOMM_DATA_DIR", str(tmp_path / "data"))
    return data_paths()


@pytest.fixture(scope="session")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    """A private simulator whose faults each test sets (world bounded to a few days)."""
    with start_simulator(
        tmp_path_factory.mktemp("sim_faults"), seed=7, start="2026-01-01", end="2026-01-12", quiet=True
    ) as sim:
        yield sim


@pytest.fixture
def sim(faulty: SimulatorHandle, monkeypatch, tmp_path) -> Iterator[tuple[SimulatorHandle, DataPaths]]:
    """The faults simulator, cleared, and a private data directory pointed at it."""
    faulty.control.clear_faults()
    paths = use(faulty, monkeypatch, tmp_path)
    yield faulty, paths
    faulty.control.clear_faults()
