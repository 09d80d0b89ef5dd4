"""The one landing path lands the simulator's true rows, and a bad row costs only itself."""

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


def land(site_id, kind, pages, root):
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
    for page in pages:
        builder.add_raw_page(page, mapping, DAY)
    result = builder.commit()
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
def test_a_listing_lands_the_true_rows(simulator, monkeypatch, tmp_path, site_id, kind):
    pages = fetch(simulator, monkeypatch, tmp_path, site_id, kind)
    tail = pages[0][:3]
    pages.append(tail)  # a repeated tail, as a paging overlap would send
    result, table = land(site_id, kind, pages, tmp_path / "landed")
    truth = simulator.control.truth(site_id, kind, str(DAY), str(DAY))
    assert result.rows_in == sum(len(p) for p in pages)
    assert result.rows_landed == table.num_rows == truth["by_day"][str(DAY)]
    assert result.rows_quarantined == 0
    assert result.rows_in == result.rows_accounted
    assert result.rows_deduplicated + result.rows_outside >= len(tail)  # the repeated tail: deduplicated or outside
    assert table.column("_source_record_id").null_count == 0
    assert len(set(table.column("_source_record_id").to_pylist())) == table.num_rows


@pytest.mark.parametrize(
    ("site_id", "shape_field", "bad", "reason"),
    [
        ("vanke_meili", "inAndOutType", 7, "direction: unknown code 7 in inAndOutType"),
        ("lt_xincun", "occurred_at", "soon", "event_time: cannot read 'soon' as timestamp"),
    ],
)
def test_a_bad_row_costs_only_itself(simulator, monkeypatch, tmp_path, site_id, shape_field, bad, reason):
    """A bad row in a batch is quarantined once with its reason; every other row of the batch
    lands exactly as it does without the bad row."""
    pages = fetch(simulator, monkeypatch, tmp_path, site_id, "passages")
    assert len(pages) > 3
    clean = [list(page) for page in pages]
    del clean[2][5]
    pages[2] = [dict(row) for row in pages[2]]
    pages[2][5][shape_field] = bad
    result, table = land(site_id, "passages", pages, tmp_path / "bad")
    expected, expected_table = land(site_id, "passages", clean, tmp_path / "clean")
    assert (result.rows_in, result.rows_landed, result.rows_quarantined) == (
        expected.rows_in + 1,
        expected.rows_landed,
        1,
    )
    assert table.equals(expected_table)
    quarantine = quarantine_of(result)
    assert quarantine.num_rows == 1
    assert quarantine.column("reason")[0].as_py().startswith(reason)
    assert shape_field in quarantine.column("raw_record")[0].as_py()


def test_odd_values_send_only_their_chunk_to_the_converters() -> None:
    """A batch with a few odd values (a word for a time, a number among texts) lands exactly
    as the contract's converter gives every value, reasons on the right rows, while Arrow
    still types the chunks without one: only those chunks go value by value."""
    from ingestion import columnar
    from ingestion.contract import ColumnSpec, RowError

    spec = ColumnSpec("event_time", "timestamp", nullable=False, values=None, range=None, pii_pseudonym=False)
    start = dt.datetime(2026, 1, 7, 8)
    values: list = [
        f"{start + dt.timedelta(seconds=i):%Y-%m-%dT%H:%M:%S}+08:00" for i in range(5 * columnar.CHUNK_ROWS)
    ]
    values[700] = "soon"  # chunk 1
    values[3 * columnar.CHUNK_ROWS + 9] = 1767744000000  # chunk 3: epoch ms, text and numbers mixed
    expected, expected_reasons = [], []
    for value in values:
        try:
            expected.append(spec.converter(value))
            expected_reasons.append(None)
        except RowError as exc:
            expected.append(None)
            expected_reasons.append(str(exc))
    calls = []
    converter = spec.converter
    spec.__dict__["converter"] = lambda value: calls.append(value) or converter(value)  # count the slow path
    reasons: columnar.Reasons = [None] * len(values)

    arr = columnar.typed(spec, columnar.pa.timestamp("us"), columnar.Column(values), len(values), reasons)

    assert arr.to_pylist() == expected
    assert reasons == expected_reasons
    assert [i for i, r in enumerate(reasons) if r] == [700]
    assert arr[3 * columnar.CHUNK_ROWS + 9].as_py() == dt.datetime(2026, 1, 7, 8)  # 2026-01-07T00:00Z, local
    assert len(calls) == 2 * columnar.CHUNK_ROWS  # the two chunks with an odd value, not the batch
