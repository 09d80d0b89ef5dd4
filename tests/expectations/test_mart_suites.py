"""Mart suites on a warehouse laid out like dbt_project's evaluation marts.

The warehouse here is written with SQL in the marts' column layout (the indicator catalog is
the real dbt seed), so a broken mart can be made on purpose; the suites read it exactly as
they read the one dbt builds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from expectations.marts import MartValidator
from expectations.results import DataQualityPipelineError

ROOT = Path(__file__).resolve().parents[2]
MONTH = dt.date(2026, 1, 1)


def build_warehouse(path: Path, site_ids: list[str]) -> None:
    con = duckdb.connect(str(path))
    catalog = ROOT / "dbt_project" / "seeds" / "indicator_catalog.csv"
    con.execute(f"create table indicator_catalog as select * from read_csv_auto('{catalog}', header = true)")
    con.execute("create table sites as select unnest(?::varchar[]) as site_id", [site_ids])
    con.execute(
        """create table indicator_values as
           select s.site_id, date '2026-01-01' as month, c.indicator_id,
                  case c.unit when 'ratio' then 0.5 + 0.04 * (hash(s.site_id || c.indicator_id) % 10)
                              when 'minutes' then 4.5 else 3.0 end as value,
                  10.0 as numerator, 20.0 as denominator, true as assessable, c.source_kinds
           from sites s cross join indicator_catalog c"""
    )
    con.execute(
        """create table indicator_scores as
           select site_id, month, 'shandong_default' as framework_id, 1 as framework_version, indicator_id,
                  70.0 as score, 3 as indicator_stars from indicator_values"""
    )
    con.execute(
        """create table dimension_scores as
           select distinct site_id, month, 'shandong_default' as framework_id, 1 as framework_version,
                  'safety' as dimension_id, 70.0 as score from indicator_values"""
    )
    con.execute(
        """create table star_ratings as
           select site_id, date '2026-01-01' as month, 'shandong_default' as framework_id, 1 as framework_version,
                  72.0 as total_score, 3 as band_stars, 3 as gate_stars, 3 as stars, 0.95 as coverage
           from sites"""
    )
    con.close()


@pytest.fixture
def warehouse(tmp_path: Path, registry) -> Path:
    path = tmp_path / "warehouse.duckdb"
    build_warehouse(path, [s.site_id for s in registry.sites] + ["chengyang"])
    return path


@pytest.fixture
def marts(gx_engine, tmp_path) -> MartValidator:
    return MartValidator(data_dir=tmp_path / "data", engine=gx_engine)


def test_consistent_marts_pass(marts, warehouse):
    report = marts.validate(db_path=warehouse, month="2026-01", run_id="marts-ok")
    assert {o.kind for o in report.outcomes} == {
        "indicator_values",
        "indicator_scores",
        "dimension_scores",
        "star_ratings",
    }
    assert not report.failures, [(o.kind, o.expectation, o.observed_value) for o in report.failures]
    assert {o.partition_date for o in report.outcomes} == {MONTH}


def test_broken_marts_fail_critical_with_the_right_rule(marts, warehouse):
    con = duckdb.connect(str(warehouse))
    con.execute(
        "update indicator_values set value = 1.3 where indicator_id = 'camera_online_rate' and site_id = 'xihoulou'"
    )
    con.execute(
        "update indicator_values set value = 12.0 where indicator_id in (select indicator_id from indicator_catalog where unit <> 'ratio')"
    )
    con.execute("update star_ratings set stars = 6 where site_id = 'vanke_meili'")
    con.execute("update star_ratings set coverage = 1.2 where site_id = 'xihoulou'")
    con.execute("delete from star_ratings where site_id = 'baishawan'")
    con.close()
    report = marts.validate(db_path=warehouse, month="2026-01", run_id="marts-bad")
    failed = {(o.kind, o.expectation) for o in report.critical_failures}
    assert failed == {
        ("indicator_values", "ratio_in_unit_interval:ratio_value"),
        ("star_ratings", "stars_in_range:stars"),
        ("star_ratings", "coverage_in_unit_interval:coverage"),
        ("star_ratings", "every_site_present:site_id"),
    }, "a non-ratio indicator of 12 (minutes, per 10k) must not trip the ratio bound"
    ratio = next(o for o in report.outcomes if o.expectation == "ratio_in_unit_interval:ratio_value")
    assert ratio.unexpected_count == 1 and "1.3" in ratio.unexpected_examples


def test_a_mart_dbt_did_not_build_is_a_pipeline_error(marts, warehouse):
    con = duckdb.connect(str(warehouse))
    con.execute("drop table star_ratings")
    con.close()
    with pytest.raises(DataQualityPipelineError, match="star_ratings"):
        marts.validate(db_path=warehouse, month="2026-01")
