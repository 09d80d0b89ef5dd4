"""The column-at-a-time page path lands exactly what the row-by-row path lands."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest

from ingestion.connectors import make_connector
from ingestion.landing import PartitionBuilder
from ingestion.mapping import load_shape_mapping
from ingestion.paths import data_paths
from ingestion.registry import load_registry

DAY = dt.date(2026, 1, 7)
FETCHED = dt.datetime(2026, 1, 8, 1, 2, 3)


def land(site_id, kind, pages, root, columnar: bool):
    site = load_registry().site(site_id)
    mapping = load_shape_mapping(site.source(kind).shape).kind(kind)
    builder = PartitionBuilder(
        kind,
        site_id,
        [DAY],
        source_shape="s",
        run_id="r",
        paths=data_paths(root),
        fetched_at_utc=FETCHED,
        outside="skip",
    )
    if not columnar:
        builder._fast_page = None
    for page in pages:
        builder.add_raw_page(page, mapping, DAY)
    result = builder.commit()
    if columnar:
        result.row_path_pages = builder.row_path_pages
    return result, pq.read_table(result.partitions[0])


def quarantine_of(result):
    target = result.partitions[0].parents[3] / "_quarantine" / result.kind / f"site={result.site_id}"
    return pq.read_table(target / f"date={DAY}" / "quarantine.parquet").select(["reason", "raw_record"])


def fetch(simulator, monkeypatch, tmp_path, site_id, kind):
    for name, value in simulator.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SMARTCOMM_DATA_DIR", str(tmp_path / "unused"))
    simulator.control.drop_files(str(DAY), str(DAY), site=site_id, kind=kind)
    site = load_registry().site(site_id)
    connector = make_connector(site, kind, load_shape_mapping(site.source(kind).shape))
    pages = [page for unit in connector.units(DAY, DAY) for page in connector.pages(unit)]
    connector.close()
    assert sum(len(p) for p in pages) > 0
    return pages


@pytest.mark.parametrize(
    ("site_id", "kind"),
    [
        ("cy_commerce_block", "passages"),
        ("lt_airport_block", "passages"),
        ("lt_airport_block", "device_status"),
        ("cy_commerce_block", "alerts"),
        ("xihoulou", "fire_alarms"),
    ],
)
def test_column_path_equals_row_path(simulator, monkeypatch, tmp_path, site_id, kind):
    pages = fetch(simulator, monkeypatch, tmp_path, site_id, kind)
    pages.append(pages[0][:3])  # a repeated tail, as a paging overlap would send
    slow, slow_table = land(site_id, kind, pages, tmp_path / "rows", columnar=False)
    fast, fast_table = land(site_id, kind, pages, tmp_path / "columns", columnar=True)
    assert (fast.rows_in, fast.rows_landed, fast.rows_deduplicated, fast.rows_quarantined) == (
        slow.rows_in,
        slow.rows_landed,
        slow.rows_deduplicated,
        slow.rows_quarantined,
    )
    assert fast_table.equals(slow_table)
    assert fast.row_path_pages == 0  # a clean listing never needs the row path


@pytest.mark.parametrize(
    ("site_id", "shape_field", "bad"), [("vanke_meili", "inAndOutType", 7), ("lt_xincun", "occurred_at", "soon")]
)
def test_a_bad_row_in_a_batch_costs_only_its_page(simulator, monkeypatch, tmp_path, site_id, shape_field, bad):
    """A batch with one bad row is redone page by page; only that page goes row by row, and
    the landed rows, counts and quarantine equal the row path's."""
    pages = fetch(simulator, monkeypatch, tmp_path, site_id, "passages")
    assert len(pages) > 3
    pages[2] = [dict(row) for row in pages[2]]
    pages[2][5][shape_field] = bad
    slow, slow_table = land(site_id, "passages", pages, tmp_path / "rows", columnar=False)
    fast, fast_table = land(site_id, "passages", pages, tmp_path / "columns", columnar=True)
    assert fast.row_path_pages == 1
    assert (fast.rows_in, fast.rows_landed, fast.rows_quarantined) == (slow.rows_in, slow.rows_landed, 1)
    assert fast_table.equals(slow_table)
    assert quarantine_of(fast).equals(quarantine_of(slow))
    assert shape_field in quarantine_of(fast).column("raw_record")[0].as_py()
