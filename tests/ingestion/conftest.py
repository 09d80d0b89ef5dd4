"""Ingestion test fixtures: a private data directory and the demo pseudonym key per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.demo import demo_values
from ingestion.paths import DataPaths, data_paths


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
