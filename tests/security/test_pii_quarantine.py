"""Issue 19, item 5: malformed rows of every shape reach quarantine without clear personal
data; data files are private; vendor drops are retired once landed.

The rows come from the real simulator's file drops (GBK CSV export, JSON-lines alarm files,
a grid worker's XLSX register), each then broken the way files break in the field: a ragged
CSV row, a JSON line cut short or not an object, a workbook row with an unreadable date. Each
carries names, ID numbers (15 digits, 18 with a bad checksum), mobiles with separators and
+86, and a plate with `·`; none may be readable in quarantine, which the extended scanner
(ingestion.pii_scan) checks as well."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import openpyxl
import pytest

from ingestion.connectors import files
from ingestion.landing import land_records
from ingestion.paths import DataPaths
from ingestion.pii import personal_data_in
from ingestion.pii_scan import scan_all
from ingestion.pull import pull
from ingestion.state import StateStore
from tests.fixtures.simulator import SimulatorHandle
from tests.ingestion.test_against_simulator import FAST, PROJECT_ROOT, use
from tests.ingestion.test_landing import passage

DAY = dt.date(2026, 2, 1)  # a register snapshot day: the February workbook
GOV_SITE, ALARM_SITE, REGISTER_SITE = "cy_commerce_block", "lt_airport_block", "cy_commerce_block"
PLANTED = [
    "张三",
    "李四",
    "王五",
    "138-1234-5678",
    "+86 138 1234 5678",
    "13812345678",
    "鲁B·12345",
    "110105491231002",  # 15 digits, first generation
    "110105194912310021",  # 18, bad checksum
    "9-909",  # a room and a household id: personal by field name only
    "HX-4711",
]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimulatorHandle:
    from tests.fixtures.simulator import start_simulator

    faults = [{"fault": "invalid_id_checksum", "site": REGISTER_SITE, "kind": "register", "params": {"rate": 0.01}}]
    with start_simulator(
        tmp_path_factory.mktemp("sim_pii"), seed=7, start="2026-01-29", end="2026-02-03", faults=faults, quiet=True
    ) as handle:
        yield handle


def break_gov_csv(path: Path) -> None:
    """Append a ragged row: a real row (name, ID, phone under their headers) plus extra cells."""
    text = path.read_bytes().decode("gbk")
    first = next(csv.reader(io.StringIO(text.splitlines()[1])))
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(
        [*first, "联系人张三", "+86 138 1234 5678", "鲁B·12345 110105491231002"]
    )
    path.write_bytes(path.read_bytes() + out.getvalue().encode("gbk"))


def break_alarm_file(path: Path) -> None:
    """Append a JSON line cut short and a line that is a list, not an object."""
    broken = (
        '{"msgId": "broken-1", "deviceSn": "FS0001", "contact": "李四", "phone": "138-1234-5678",'
        ' "plate": "鲁B·12345", "idNo": "110105194912310021", "room": "9-909", "household_id": "HX-4711"\n'
    )
    listed = json.dumps(["王五", 13812345678, "+86 138 1234 5678"], ensure_ascii=False) + "\n"
    path.write_bytes(path.read_bytes() + broken.encode() + listed.encode())


def break_register_row(path: Path) -> list[str]:
    """Give the workbook's first resident an unreadable birth date and free text with personal
    data in a non-personal column; returns that resident's clear values."""
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    header_row = next(r for r in sheet.iter_rows(min_row=1, max_row=10) if any(c.value == "姓名" for c in r))
    col = {str(c.value).strip(): c.column for c in header_row if c.value}
    row = header_row[0].row + 1

    def cell(*names: str):
        return sheet.cell(row, next(col[n] for n in names if n in col))

    clear = [
        str(cell(*names).value)
        for names in (("姓名",), ("身份证号", "身份证号码", "公民身份号码"), ("联系电话", "手机号"))
    ]
    cell("出生日期", "出生年月日").value = "1990-13-45"
    cell("是否独居", "独居").value = "联系人张三 138-1234-5678 鲁B·12345"
    book.save(path)
    return clear


def quarantine_rows(paths: DataPaths) -> list[dict]:
    glob = str(paths.quarantine / "*" / "site=*" / "date=*" / "quarantine.parquet")
    cursor = duckdb.connect().execute(f"select * from read_parquet('{glob}')")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_malformed_rows_of_every_shape_reach_quarantine_without_clear_personal_data(sim, monkeypatch, tmp_path):
    paths = use(sim, monkeypatch, tmp_path)
    nxt = str(DAY + dt.timedelta(days=1))
    sim.control.drop_files(str(DAY), nxt, site=GOV_SITE, kind="service_cases")
    sim.control.drop_files(str(DAY), nxt, site=ALARM_SITE, kind="fire_alarms")
    sim.control.drop_files(str(DAY), str(DAY), site=REGISTER_SITE, kind="register")
    drops = sim.drop_dir
    break_gov_csv(drops / GOV_SITE / "service_cases" / f"gov_cases_{DAY:%Y%m%d}.csv")
    break_alarm_file(drops / ALARM_SITE / "alarms" / f"fire_alarms_{DAY:%Y%m%d}10.jsonl")
    resident = break_register_row(drops / REGISTER_SITE / "manual" / f"register_{DAY:%Y-%m}.xlsx")

    for site, kind in ((GOV_SITE, "service_cases"), (ALARM_SITE, "fire_alarms"), (REGISTER_SITE, "register")):
        assert pull(site, kind, DAY, DAY, policy=FAST).outcome == "success"

    rows = quarantine_rows(paths)
    reasons = {(r["kind"], r["reason"].split(":")[0]): r["reason"] for r in rows}
    csv_reason = reasons[("service_cases", "row")]
    assert f"gov_cases_{DAY:%Y%m%d}.csv line" in csv_reason and "header has" in csv_reason  # file and line named
    json_reasons = [r["reason"] for r in rows if r["kind"] == "fire_alarms"]
    assert any("is not JSON" in r for r in json_reasons) and any("is not an object" in r for r in json_reasons)
    assert any(r["kind"] == "register" and r["reason"].startswith(("birth_date", "lives_alone")) for r in rows)

    for row in rows:
        kept = json.dumps(row, ensure_ascii=False, default=str)
        for clear in [*PLANTED, *resident]:
            assert clear not in kept, (clear, row["reason"], row["raw_record"])
        raw = json.loads(row["raw_record"])
        assert personal_data_in(raw, record=True) == [], row["raw_record"]
    ragged = next(json.loads(r["raw_record"]) for r in rows if r["kind"] == "service_cases")
    assert ragged["申请人姓名"].startswith("<pseudonym:") and len(ragged["_extra_cells"]) == 3
    for row in (json.loads(r["raw_record"]) for r in rows if r["kind"] == "register"):
        dwelling = [v for k, v in row.items() if k in ("户号", "户编号", "单元", "楼栋", "楼号", "房号", "门牌号")]
        assert len(dwelling) == 4 and all(v.startswith("<pseudonym:") for v in dwelling), row

    report = scan_all(paths)
    assert report.scanned["quarantine"] >= 3 and report.scanned["state"] >= 1
    assert report.clean and report.complete, [(h.store, h.location, h.column, h.kind) for h in report.hits]


def test_reasons_are_redacted_like_records(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTCOMM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMARTCOMM_PSEUDONYM_KEY", "test-pseudonym-key")
    records = [passage("q1", direction="王五 138-1234-5678"), passage("q2", gate_id=None, method="鲁B·12345")]
    result = land_records("passages", "s1", "2026-03-02", records, source_shape="c", run_id="r")
    assert result.rows_quarantined == 2
    for row in quarantine_rows(scan_root := DataPaths(tmp_path / "data")):
        assert row["reason"].split(":")[0] in ("direction", "gate_id", "method")
        assert not any(clear in row["reason"] for clear in ("王五", "138-1234-5678", "鲁B·12345")), row["reason"]
    assert scan_all(scan_root).clean


def modes(root: Path) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {"dirs": set(), "files": set()}
    for path in root.rglob("*"):
        found["dirs" if path.is_dir() else "files"].add(stat.S_IMODE(path.stat().st_mode))
    return found


def test_landing_writes_private_files_whatever_the_umask(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTCOMM_PSEUDONYM_KEY", "test-pseudonym-key")
    root = tmp_path / "data"
    previous = os.umask(0o022)
    try:
        records = [passage("ok"), passage("bad", direction="sideways")]
        land_records("passages", "s1", "2026-03-02", records, source_shape="c", run_id="r", paths=DataPaths(root))
        StateStore(DataPaths(root)).watermark("s1", "passages")
    finally:
        os.umask(previous)
    assert modes(root) == {"dirs": {0o700}, "files": {0o600}}
    assert (root / "landing" / "_quarantine").is_dir() and (root / "state" / "state.duckdb").is_file()


def test_landed_data_is_private_and_drops_are_retired(sim, monkeypatch, tmp_path):
    paths = use(sim, monkeypatch, tmp_path)
    day = dt.date(2026, 1, 30)
    sim.control.drop_files(str(day), str(day + dt.timedelta(days=1)), site=GOV_SITE, kind="service_cases")
    folder = sim.drop_dir / GOV_SITE / "service_cases"
    kept = folder / files.LANDED_DIR
    stale = kept / "gov_cases_20251201.csv"
    kept.mkdir(exist_ok=True)
    stale.write_text("old\n", encoding="utf-8")
    os.utime(stale, (time.time() - 8 * 86400,) * 2)  # landed 8 days ago: past the 7-day default
    assert files.drop_retention_days() == 7

    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    args = [sys.executable, "-m", "ingestion", "pull", "--site", GOV_SITE, "--kind", "service_cases"]
    args += ["--start", str(day), "--end", str(day), "--quiet"]
    done = subprocess.run(args, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    views = [sys.executable, "-m", "ingestion", "views", "--db", str(paths.root / "raw.duckdb")]
    done = subprocess.run(views, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr  # DuckDB's own file: private by the CLI's umask

    assert modes(paths.root) == {"dirs": {0o700}, "files": {0o600}}  # landing, _meta, state, raw.duckdb
    landed_names = {f"gov_cases_{day:%Y%m%d}.csv", f"gov_cases_{day + dt.timedelta(days=1):%Y%m%d}.csv"}
    assert not landed_names & {p.name for p in folder.glob("*.csv")}, "landed drops left in the drop folder"
    assert landed_names <= {p.name for p in kept.iterdir()} and not stale.exists()
    assert {stat.S_IMODE(p.stat().st_mode) for p in kept.iterdir()} == {0o600}
    # a re-run (a retry, a late listing) still finds the kept files
    assert pull(GOV_SITE, "service_cases", day, day, policy=FAST).outcome == "success"

    monkeypatch.setattr(files, "drop_retention_days", lambda: 0)  # retention 0: deleted once landed
    pull(GOV_SITE, "service_cases", day, day, policy=FAST)
    assert not landed_names & {p.name for p in kept.iterdir()}
