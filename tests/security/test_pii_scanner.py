"""Issue 19, item 6: the PII scanner finds what a regulator would, in every store.

Values are planted in each store (landing, quarantine, warehouse, serving, state, alert
records, logs) in each form (a mobile with separators or +86 or as BIGINT, a plate with `·`,
15- and 18-digit IDs with a bad checksum, names in a name column, after a marker or in a raw
record); `python -m ingestion scan-pii` finds every one, prints none in clear and exits 1;
a clean landing from the simulator, with its quarantine, audit and alerts, has no hit."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion.cli import main
from ingestion.paths import DataPaths, data_paths
from ingestion.pii_scan import scan_all
from ingestion.pull import pull
from ingestion.state import StateStore
from pipeline.alerts import Alert, raise_alerts
from tests.ingestion.test_against_simulator import DATA_FAULTS, FAST, use

FORMS = {
    "mobile, dashes": "138-1234-5678",
    "mobile, +86": "+86 138 1234 5678",
    "plate with ·": "鲁B·12345",
    "ID, 15 digits": "110105491231002",
    "ID, 18 bad checksum": "110105194912310021",
}
MOBILE_INT = 13912345678
ID_INT = 370214198001010015


def plant_parquet(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def plant(paths: DataPaths) -> dict[str, set[str]]:
    """Every form in every store; returns store -> the values planted there."""
    text = list(FORMS.values())
    plant_parquet(
        paths.partition("passages", "s9", "2026-03-02") / "data.parquet",
        pa.table(
            {
                "note": [f"请联系 {v}" for v in text],
                "mobile": pa.array([MOBILE_INT] * 5, pa.int64()),
                "id_number": pa.array([ID_INT] * 5, pa.int64()),
                "姓名": ["张三"] * 5,
            }
        ),
    )
    plant_parquet(
        paths.quarantine_partition("visitors", "s9", "2026-03-02") / "quarantine.parquet",
        pa.table(
            {
                "reason": ["visitor_name: unknown value, 联系人：李四"],
                "raw_record": [json.dumps({"备注": "王五", "visitor_phone": "13512345678"}, ensure_ascii=False)],
            }
        ),
    )
    for db, table in ((paths.warehouse_db, "fct_leak"), (paths.serving_db, "leak_public")):
        db.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(db)) as con:
            con.execute(f'create table "{table}" (note varchar, n bigint, d double, j json, name varchar)')
            con.executemany(
                f'insert into "{table}" values (?, ?, ?, ?, ?)',
                [[v, MOBILE_INT, float(MOBILE_INT), json.dumps({"phone": "13612345678"}), "赵六"] for v in text],
            )
    store = StateStore(paths)
    store.start("r1", "s9", "passages", "isc_openapi", dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    with duckdb.connect(str(paths.state_db)) as con:  # as an older release wrote it: no redaction
        con.execute("update load_audit set error = ? where run_id = 'r1'", ["HTTP 500 +86 138 1234 5678"])
    paths.alerts_jsonl.parent.mkdir(parents=True, exist_ok=True)
    paths.alerts_jsonl.write_text(json.dumps({"title_zh": "报警人：孙七", "details": {"plate": "鲁B·54321"}}) + "\n")
    (paths.logs).mkdir(parents=True, exist_ok=True)
    (paths.logs / "pipeline.log").write_text("INFO ok\nERROR caller 138-1234-5678 failed\n", encoding="utf-8")
    task_log = paths.airflow_home / "logs" / "dag_id=ingest_s9" / "run_id=r" / "task_id=t" / "attempt=1.log"
    task_log.parent.mkdir(parents=True)
    task_log.write_text('{"event": "id 110105491231002 rejected"}\n', encoding="utf-8")
    return {
        "landing": {*text, str(MOBILE_INT), str(ID_INT), "张三"},
        "quarantine": {"李四", "王五", "13512345678"},
        "warehouse": {*text, str(MOBILE_INT), "13612345678", "赵六"},
        "serving": {*text, str(MOBILE_INT), "13612345678", "赵六"},
        "state": {"+86 138 1234 5678"},
        "alerts": {"孙七", "鲁B·54321"},
        "logs": {"138-1234-5678", "110105491231002"},
    }


@pytest.fixture
def data(tmp_path, monkeypatch) -> DataPaths:
    monkeypatch.setenv("SMARTCOMM_DATA_DIR", str(tmp_path / "data"))
    return data_paths()


def test_finds_every_form_in_every_store(data):
    planted = plant(data)
    report = scan_all(data, limit=1000)
    found: dict[str, set[str]] = {}
    for hit in report.hits:
        found.setdefault(hit.store, set()).add(hit.value)
    for store, values in planted.items():
        assert values <= found.get(store, set()), (store, values - found.get(store, set()))
    assert report.complete
    columns = {(h.store, h.column) for h in report.hits}
    assert {("landing", "mobile"), ("landing", "id_number"), ("warehouse", "n"), ("warehouse", "d")} <= columns


def test_scan_pii_command_exits_1_and_never_prints_a_hit_in_clear(data, capsys):
    planted = plant(data)
    assert main(["scan-pii"]) == 1
    out = capsys.readouterr().out
    for store, values in planted.items():
        assert store in out
        for value in values:
            assert value not in out, value


def test_an_unreadable_store_is_not_clean(data, capsys):
    data.warehouse_db.parent.mkdir(parents=True)
    data.warehouse_db.write_bytes(b"not a duckdb file" * 100)
    assert main(["scan-pii"]) == 2
    assert "not scanned" in capsys.readouterr().out


def test_a_clean_landing_with_quarantine_audit_and_alerts_has_no_hit(simulator_factory, monkeypatch, tmp_path):
    sim = simulator_factory(seed=7, faults=DATA_FAULTS, start="2026-01-29", end="2026-02-03", quiet=True)
    paths = use(sim, monkeypatch, tmp_path)
    day = dt.date(2026, 2, 1)
    pairs = [("cy_commerce_block", "passages"), ("lt_airport_block", "visitors"), ("cy_commerce_block", "register")]
    pairs += [("lt_airport_block", "vehicles"), ("cy_commerce_block", "service_cases"), ("lt_airport_block", "alerts")]
    for site, kind in pairs:
        sim.control.drop_files(str(day), str(day + dt.timedelta(days=kind != "register")), site=site, kind=kind)
        pull(site, kind, day, day, policy=FAST)
    raise_alerts([Alert("late:x", "freshness", "warning", "cy_commerce_block", "通行记录数据迟到", "late", {"h": 30})])
    report = scan_all(paths)
    assert report.scanned["landing"] >= len(pairs) and report.scanned["quarantine"] >= 1, report.scanned
    assert report.scanned["state"] >= 2 and report.scanned["alerts"] == 1
    assert report.clean and report.complete, [(h.store, h.location, h.column, h.kind, h.masked) for h in report.hits]
    assert main(["scan-pii"]) == 0
