"""The publish step: a new serving file renamed into place, never a half-written one."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from superset_assets.publish import PublishError, load_publish_config, publish
from tests.superset.conftest import ServingData


@pytest.fixture(scope="module")
def warehouse(serving_data: ServingData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the session's warehouse (tests here modify it)."""
    copy = tmp_path_factory.mktemp("publish") / "warehouse.duckdb"
    shutil.copy(serving_data.warehouse, copy)
    return copy


def _count(db: Path, table: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"select count(*) from {table}").fetchone()[0]


def test_publish_copies_every_mart_with_labels(warehouse: Path, serving_data: ServingData, tmp_path: Path) -> None:
    serving = tmp_path / "serving.duckdb"
    state = serving_data.pipeline.paths.state_db
    result = publish(warehouse, serving, state_db=state, quarantine_dir=serving_data.pipeline.paths.quarantine)
    for table in load_publish_config()["warehouse"]["required"]:
        assert result.tables[table] == _count(warehouse, table) == _count(serving, table) > 0, table
    assert result.tables["load_audit"] == _count(state, "load_audit") > 0
    assert result.tables["dq_results"] == _count(warehouse, "dq_results") > 0
    assert result.tables["quarantine_summary"] > 0
    with duckdb.connect(str(serving), read_only=True) as con:
        mismatched = con.execute(
            """select count(*) from star_ratings r join dim_site s using (site_id)
               where s.site_id <> 'district' and (r.street_id <> s.street_id or r.site_name_zh <> s.name_zh)"""
        ).fetchone()[0]
        unlabelled = con.execute("select count(*) from star_ratings where site_name_zh is null").fetchone()[0]
        district = con.execute(
            "select distinct street_id, site_name_zh from star_ratings where site_id = 'district'"
        ).fetchall()
        latest = con.execute("select distinct month from star_ratings where is_latest_month").fetchall()
        max_month = con.execute("select max(month) from star_ratings").fetchone()
        names = con.execute(
            "select count(*) from indicator_scores where indicator_name_zh is null or framework_name_zh is null"
        ).fetchone()[0]
        quarantined = con.execute("select sum(rows_quarantined) from quarantine_summary").fetchone()[0]
    assert mismatched == 0 and unlabelled == 0 and names == 0
    assert district == [(None, load_publish_config()["site_labels"]["district_label_zh"])]
    assert latest == [max_month]
    on_disk = (
        duckdb.connect()
        .sql(f"select count(*) from read_parquet('{serving_data.pipeline.paths.quarantine}/*/*/*/*.parquet')")
        .fetchall()[0][0]
    )
    assert quarantined == on_disk
    assert not list(tmp_path.glob(".*.tmp")), "temporary files must not remain"


def test_missing_mart_leaves_serving_untouched(warehouse: Path, tmp_path: Path) -> None:
    serving = tmp_path / "serving.duckdb"
    publish(warehouse, serving)
    before = serving.stat().st_ino, _count(serving, "star_ratings")
    broken = tmp_path / "broken.duckdb"
    with duckdb.connect(str(broken)) as con:
        con.execute("create table dim_site (site_id varchar, street_id varchar, name_zh varchar)")
    with pytest.raises(PublishError, match="required tables missing"):
        publish(broken, serving)
    assert (serving.stat().st_ino, _count(serving, "star_ratings")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.duckdb", "serving.duckdb"]


def test_open_reader_keeps_old_file_and_new_connection_sees_new_data(warehouse: Path, tmp_path: Path) -> None:
    serving = tmp_path / "serving.duckdb"
    publish(warehouse, serving)
    old_reader = duckdb.connect(str(serving), read_only=True)
    old_total = old_reader.execute("select sum(total_score) from star_ratings").fetchone()[0]
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update star_ratings set total_score = total_score + 1")
    inode = serving.stat().st_ino
    publish(warehouse, serving)
    assert serving.stat().st_ino != inode
    assert old_reader.execute("select sum(total_score) from star_ratings").fetchone()[0] == pytest.approx(old_total)
    old_reader.close()
    rows = _count(serving, "star_ratings")
    with duckdb.connect(str(serving), read_only=True) as new_reader:
        new_total = new_reader.execute("select sum(total_score) from star_ratings").fetchone()[0]
    assert new_total == pytest.approx(old_total + rows)
