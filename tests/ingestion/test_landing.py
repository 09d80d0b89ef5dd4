"""The landing writer: normalization, pseudonyms, quarantine, dedup, atomic replace."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow.parquet as pq
import pytest

from ingestion.contract import contract
from ingestion.landing import land_records
from ingestion.pii import Pseudonymizer, PseudonymKeyMissing, find_personal_data, id_card_valid

VALID_ID = "11010519491231002X"  # GB 11643 sample number, valid checksum
DAY = dt.date(2026, 3, 2)


def passage(event_id: str, **overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "event_id": event_id,
        "event_time": "2026-03-02T08:00:00+08:00",
        "gate_id": "g1",
        "direction": "in",
        "method": "face",
        "person_type": "resident",
        "id_card": VALID_ID,
        "name": "张三",
        "temperature_c": 36.5,
        "tailgating": False,
    }
    record.update(overrides)
    return record


def read(path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_lands_schema_pseudonyms_and_metadata(paths):
    result = land_records("passages", "vanke_meili", DAY, [passage("e1")], source_shape="canonical", run_id="r1")
    assert (result.rows_in, result.rows_landed, result.rows_quarantined) == (1, 1, 0)
    table = pq.read_table(result.partitions[0])
    assert table.schema.equals(contract("passages").schema, check_metadata=False)
    row = table.to_pylist()[0]
    assert row["person_key"] == Pseudonymizer().key_for("person", VALID_ID)
    assert row["site_id"] == "vanke_meili" and row["_run_id"] == "r1" and row["_source_record_id"] == "e1"
    assert row["event_time"] == dt.datetime(2026, 3, 2, 8, 0)
    assert VALID_ID not in str(row) and "张三" not in str(row)


def test_times_normalized_to_shanghai_before_the_day_is_decided(paths):
    records = [
        passage("utc", event_time="2026-03-01T23:30:00Z"),  # 07:30 local on the 2nd
        passage("epoch", event_time=1772380800000),  # 2026-03-01T16:00Z = local midnight of the 2nd
        passage("late", event_time="2026-03-01T15:59:59Z"),  # 23:59:59 local on the 1st: not this day
    ]
    result = land_records("passages", "s1", DAY, records, source_shape="canonical", run_id="r1")
    rows = {r["event_id"]: r["event_time"] for r in read(result.partitions[0])}
    assert rows == {"utc": dt.datetime(2026, 3, 2, 7, 30), "epoch": dt.datetime(2026, 3, 2, 0, 0)}
    assert result.rows_quarantined == 1


def test_bad_rows_are_quarantined_with_reason_and_redacted_raw(paths):
    records = [
        passage("ok"),
        passage("temp0", temperature_c=0),
        passage("badtime", event_time="not a time"),
        passage("dir", direction="sideways"),
        passage("phone", id_card=None, phone="13812345678"),
    ]
    result = land_records("passages", "s1", DAY, records, source_shape="canonical", run_id="r1")
    assert result.rows_landed == 2 and result.rows_quarantined == 3
    quarantine = paths.quarantine_partition("passages", "s1", "2026-03-02") / "quarantine.parquet"
    rejected = {r["_source_record_id"] or r["raw_record"]: r for r in read(quarantine)}
    reasons = sorted(r["reason"].split(":")[0] for r in rejected.values())
    assert reasons == ["direction", "event_time", "temperature_c"]
    for row in rejected.values():
        assert not find_personal_data(row["raw_record"]), row["raw_record"]
        assert "张三" not in row["raw_record"]


def test_invalid_id_card_checksum_is_quarantined(paths):
    bad = VALID_ID[:-1] + "1"
    assert id_card_valid(VALID_ID) and not id_card_valid(bad)
    records = [
        {"snapshot_date": "2026-03-01", "id_card": VALID_ID, "household_id": "H1", "lives_alone": True},
        {"snapshot_date": "2026-03-01", "id_card": bad, "household_id": "H1"},
    ]
    result = land_records("register", "s1", "2026-03-01", records, source_shape="canonical", run_id="r1")
    assert result.rows_landed == 1 and result.quarantine_reasons == {"id_card": 1}
    row = read(result.partitions[0])[0]
    assert row["age_band"] == "60-79" and row["is_elderly"] is True  # born 1949-12-31


def test_dedup_keeps_latest_and_rerun_replaces_partition(paths):
    first = [passage("e1", gate_id="g1"), passage("e2"), passage("e1", gate_id="g2")]
    result = land_records("passages", "s1", DAY, first, source_shape="canonical", run_id="r1")
    assert result.rows_deduplicated == 1 and result.rows_landed == 2
    land_records("passages", "s1", DAY, [passage("e1"), passage("e3")], source_shape="canonical", run_id="r2")
    glob = str(paths.landing / "passages" / "*" / "*" / "*.parquet")
    rows = duckdb.connect().sql(f"select event_id, _run_id from read_parquet('{glob}') order by 1").fetchall()
    assert rows == [("e1", "r2"), ("e3", "r2")]
    leftovers = [p for p in paths.landing.rglob("*") if p.is_file() and p.suffix != ".parquet"]
    assert leftovers == [paths.meta / "pseudonym_key.json"]  # no temp file; the key's fingerprint (issue 19)


def test_empty_day_still_writes_a_schema_file(paths):
    result = land_records("fire_alarms", "s1", DAY, [], source_shape="canonical", run_id="r1")
    table = pq.read_table(result.partitions[0])
    assert table.num_rows == 0 and "alarm_id" in table.schema.names


def test_negative_duration_is_quarantined(paths):
    alert = {
        "alert_id": "a1",
        "alert_type": "fever",
        "raised_time": "2026-03-02 10:00:00",
        "acknowledged_time": "2026-03-02 09:00:00",
    }
    result = land_records("alerts", "s1", DAY, [alert], source_shape="canonical", run_id="r1")
    assert result.rows_landed == 0 and result.quarantine_reasons == {"acknowledged_time": 1}


def test_missing_key_refuses_to_land(paths, monkeypatch):
    monkeypatch.delenv("SMARTCOMM_PSEUDONYM_KEY")
    with pytest.raises(PseudonymKeyMissing):
        land_records("passages", "s1", DAY, [passage("e1")], source_shape="canonical", run_id="r1")
    assert not paths.landing.exists()
