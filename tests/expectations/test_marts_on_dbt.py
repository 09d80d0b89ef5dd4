"""Mart suites on the marts the real dbt project builds from a month of simulator data (slow)."""

from __future__ import annotations

import datetime as dt

import pytest

from expectations.marts import MartValidator
from expectations.results import write_results

pytestmark = pytest.mark.slow


def test_marts_built_by_dbt_pass_their_suites_and_results_land_in_the_warehouse(tmp_path, gx_engine, monkeypatch):
    from bench.transform_data import day_range, land_simulated, scaled_registry
    from dbt_project.run import build
    from ingestion.paths import data_paths
    from ingestion.registry import load_registry
    from simulator import World

    monkeypatch.setenv("SMARTCOMM_PSEUDONYM_KEY", "test-pseudonym-key")
    registry = scaled_registry(load_registry(), 0.1)
    paths = data_paths(tmp_path / "data")
    land_simulated(
        World(seed=7, registry=registry),
        registry,
        day_range(dt.date(2026, 3, 1), dt.date(2026, 3, 31)),
        paths,
        run_id="marts-test",
    )
    build(paths.root)
    validator = MartValidator(data_dir=paths.root, registry=registry, engine=gx_engine)
    report = validator.validate(month="2026-03", run_id="marts-dbt")
    assert {o.kind for o in report.outcomes} == {
        "indicator_values",
        "indicator_scores",
        "dimension_scores",
        "star_ratings",
    }
    assert report.ok, [
        (o.kind, o.expectation, o.observed_value, o.unexpected_examples) for o in report.critical_failures
    ]
    assert write_results(report.outcomes, paths.warehouse_db) == len(report.outcomes)
