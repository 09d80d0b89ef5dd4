"""Frameworks are data: editing a threshold seed changes the ratings after `dbt build`."""

from __future__ import annotations

import csv
import shutil

import duckdb
import pytest

from dbt_project.run import PROJECT_DIR, run_dbt
from ingestion.paths import data_paths
from tests.dbt.conftest import BuiltMonth

INDICATOR = "smart_gate_coverage"


def _ratings(warehouse) -> dict[str, tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            row[0]: row[1:]
            for row in con.execute(
                """
                select r.site_id, r.total_score, r.survey_share, s.score, s.effective_weight, s.indicator_stars, s.assessable
                from star_ratings r
                join indicator_scores s using (site_id, month, framework_id)
                where r.framework_id = 'default' and s.indicator_id = ?
                """,
                [INDICATOR],
            ).fetchall()
        }


def test_editing_a_threshold_seed_changes_scores_and_totals(built_month: BuiltMonth, tmp_path) -> None:
    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "__pycache__"))
    seed = project / "seeds" / "framework_thresholds.csv"
    rows = list(csv.DictReader(seed.open(encoding="utf-8")))
    for row in rows:
        if row["framework_id"] == "default" and row["indicator_id"] == INDICATOR:
            row.update(star_1="0", star_2="0", star_3="0", star_4="0", star_5="0", zero_at="-1")
    with seed.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    edited = data_paths(tmp_path / "data")
    edited.warehouse_dir.mkdir(parents=True)
    shutil.copy(built_month.warehouse, edited.warehouse_db)
    before = _ratings(built_month.warehouse)
    assert any(stars < 5 for _, _, _, _, stars, assessable in before.values() if assessable), "the edit must matter"

    run_dbt(
        ["build", "--select", "framework_thresholds+", "--exclude", "test_type:unit"], edited.root, project_dir=project
    )

    after = _ratings(edited.warehouse_db)
    assert set(after) == set(before)
    for site_id, (total, survey_share, score, weight, _, assessable) in before.items():
        new_total, _, new_score, _, new_stars, _ = after[site_id]
        if not assessable:
            assert new_total == pytest.approx(total, abs=1e-9)
            continue
        assert (new_score, new_stars) == (100.0, 5), site_id
        assert new_total == pytest.approx(total + (100.0 - score) * weight * (1.0 - survey_share), abs=1e-9), site_id
