"""The publish step: a new serving file renamed into place, never a half-written one."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from superset_assets.publish import PublishError, publish
from tests.superset.demo_warehouse import add_quality_tables, build_demo_warehouse


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("publish")
    wh = build_demo_warehouse(root / "warehouse.duckdb", months=2)
    state = root / "state.duckdb"
    add_quality_tables(wh, state, months=2)
    return wh, state


def _count(db: Path, table: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"select count(*) from {table}").fetchone()[0]
    finally:
        con.close()


def test_publish_copies_every_mart_with_labels(warehouse: tuple[Path, Path], tmp_path: Path) -> None:
    wh, state = warehouse
    serving = tmp_path / "serving.duckdb"
    result = publish(wh, serving, state_db=state, quarantine_dir=tmp_path / "none")
    for table in ("star_ratings", "indicator_values", "fct_passages", "dq_results"):
        assert result.tables[table] == _count(wh, table) == _count(serving, table)
    assert result.tables["load_audit"] == _count(state, "load_audit")
    con = duckdb.connect(str(serving), read_only=True)
    try:
        mismatched = con.execute(
            """select count(*) from star_ratings r join dim_site s using (site_id)
               where r.street_id <> s.street_id or r.site_name_zh <> s.site_name_zh"""
        ).fetchone()[0]
        district = con.execute(
            "select distinct street_id, site_name_zh from star_ratings where site_id = 'district'"
        ).fetchall()
        latest = con.execute("select distinct month from star_ratings where is_latest_month").fetchall()
        max_month = con.execute("select max(month) from star_ratings").fetchone()
    finally:
        con.close()
    assert mismatched == 0
    assert district == [(None, "城阳区（全区）")]
    assert latest == [max_month]
    assert not list(tmp_path.glob(".*.tmp")), "temporary files must not remain"


def test_missing_mart_leaves_serving_untouched(warehouse: tuple[Path, Path], tmp_path: Path) -> None:
    wh, state = warehouse
    serving = tmp_path / "serving.duckdb"
    publish(wh, serving, state_db=state)
    before = serving.stat().st_ino, _count(serving, "star_ratings")
    broken = tmp_path / "broken.duckdb"
    con = duckdb.connect(str(broken))
    con.execute("create table dim_site (site_id varchar, street_id varchar, site_name_zh varchar)")
    con.close()
    with pytest.raises(PublishError, match="required tables missing"):
        publish(broken, serving, state_db=state)
    assert (serving.stat().st_ino, _count(serving, "star_ratings")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.duckdb", "serving.duckdb"]


def test_open_reader_keeps_old_file_and_new_connection_sees_new_data(
    warehouse: tuple[Path, Path], tmp_path: Path
) -> None:
    wh, state = warehouse
    serving = tmp_path / "serving.duckdb"
    publish(wh, serving, state_db=state)
    old_reader = duckdb.connect(str(serving), read_only=True)
    old_total = old_reader.execute("select sum(total_score) from star_ratings").fetchone()[0]

    changed = tmp_path / "changed.duckdb"
    con = duckdb.connect(str(changed))
    con.execute(f"attach '{wh}' as src (read_only)")
    con.execute("copy from database src to changed")
    con.execute("update star_ratings set total_score = total_score + 1")
    con.close()
    inode = serving.stat().st_ino
    publish(changed, serving, state_db=state)

    assert serving.stat().st_ino != inode
    assert old_reader.execute("select sum(total_score) from star_ratings").fetchone()[0] == pytest.approx(old_total)
    old_reader.close()
    rows = _count(serving, "star_ratings")
    new_reader = duckdb.connect(str(serving), read_only=True)
    assert new_reader.execute("select sum(total_score) from star_ratings").fetchone()[0] == pytest.approx(
        old_total + rows
    )
    new_reader.close()
    assert os.access(serving, os.R_OK)
