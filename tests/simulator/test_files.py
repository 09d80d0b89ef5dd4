"""File drops: GBK exports, untidy manual workbooks, hourly alarm JSON lines, and file faults."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date, timedelta

import openpyxl
import pytest

from simulator.files import drop_files
from simulator.world import World

DAY = date(2026, 1, 6)


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=5)


def gov_csv_rows(path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("gbk"))))


def test_gov_csv_is_gbk_with_chinese_headers_and_matches_truth(world, tmp_path):
    paths = drop_files(world, DAY, DAY, site="xihoulou", drop_dir=tmp_path)
    csv_path = tmp_path / "xihoulou" / "service_cases" / f"gov_cases_{DAY:%Y%m%d}.csv"
    assert csv_path in paths
    data = csv_path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    rows = gov_csv_rows(csv_path)
    assert list(rows[0])[:4] == ["办件编号", "事项编码", "事项名称", "办理渠道"]
    truth = world.truth("xihoulou", "service_cases", DAY, DAY)
    assert len(rows) == truth["served_rows"]
    labels = {"自助终端": "terminal", "网上办理": "online", "窗口办理": "counter", "上门服务": "home_delivery"}
    counted: dict[str, int] = {}
    for row in rows:
        counted[labels[row["办理渠道"]]] = counted.get(labels[row["办理渠道"]], 0) + 1
    assert counted == truth["by_channel"]


def test_gov_xlsx_opens_in_openpyxl(world, tmp_path):
    drop_files(world, DAY, DAY, site="baishawan", kind="service_cases", drop_dir=tmp_path)
    path = tmp_path / "baishawan" / "service_cases" / f"gov_cases_{DAY:%Y%m%d}.xlsx"
    sheet = openpyxl.load_workbook(path)["办件明细"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "办件编号" and rows[0][8] == "申请时间"
    assert len(rows) - 1 == world.truth("baishawan", "service_cases", DAY, DAY)["served_rows"]
    assert rows[1][8].date() == DAY  # a real date-time cell


def test_manual_workbook_layout(world, tmp_path):
    drop_files(world, date(2026, 1, 1), date(2026, 1, 31), site="cy_old_estate", drop_dir=tmp_path)
    folder = tmp_path / "cy_old_estate" / "manual"
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{k}_2026-01.xlsx" for k in ("activities", "disclosures", "register", "service_cases", "surveys")
    ]
    sheet = openpyxl.load_workbook(folder / "service_cases_2026-01.xlsx").active
    assert sheet.title == "2026年1月"
    merged = {str(r) for r in sheet.merged_cells.ranges}
    assert "A1:M1" in merged and "A2:M2" in merged
    assert "办件登记台账" in sheet["A1"].value
    assert sheet["A3"].value == "序号"
    values = list(sheet.iter_rows(min_row=4, values_only=True))
    data = []
    for row in values:
        if all(v is None for v in row):
            break
        data.append(row)
    truth = world.truth("cy_old_estate", "service_cases", date(2026, 1, 1), date(2026, 1, 31))
    assert len(data) == truth["served_rows"]
    footer = [row for row in values if row[0] and str(row[0]).startswith("制表人")]
    assert len(footer) == 1
    register = openpyxl.load_workbook(folder / "register_2026-01.xlsx").active
    assert any(r.min_col == 2 and r.max_row > r.min_row for r in register.merged_cells.ranges)  # 楼栋 merged down


def test_headers_drift_between_months(world, tmp_path):
    drop_files(world, date(2026, 1, 1), date(2026, 6, 30), site="cy_old_estate", kind="register", drop_dir=tmp_path)
    headers = set()
    for path in sorted((tmp_path / "cy_old_estate" / "manual").glob("register_*.xlsx")):
        sheet = openpyxl.load_workbook(path, read_only=True).active
        headers.add(next(sheet.iter_rows(min_row=3, max_row=3, values_only=True)))
    assert len(headers) > 1


def test_alarm_jsonl_hourly_files(world, tmp_path):
    drop_files(world, DAY, DAY, site="lt_xincun", kind="alerts", drop_dir=tmp_path)
    folder = tmp_path / "lt_xincun" / "alarms"
    files = sorted(folder.glob(f"alerts_{DAY:%Y%m%d}*.jsonl"))
    assert len(files) == 24
    rows = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    truth = world.truth("lt_xincun", "alerts", DAY, DAY)
    assert len(rows) == truth["served_rows"]
    hour_file = folder / f"alerts_{DAY:%Y%m%d}10.jsonl"
    for line in hour_file.read_text(encoding="utf-8").splitlines():
        assert json.loads(line)["alarmTime"].startswith(f"{DAY} 10:")


def test_file_faults(tmp_path):
    world = World(
        seed=5,
        faults=[
            {"fault": "wrong_encoding", "site": "xihoulou", "count": 1},
            {"fault": "duplicate_file", "site": "lt_jiayuan", "kind": "service_cases", "count": 1},
            {"fault": "truncated_file", "site": "baishawan", "kind": "service_cases", "count": 1},
        ],
    )
    paths = drop_files(world, DAY, DAY, kind="service_cases", drop_dir=tmp_path)
    utf8 = tmp_path / "xihoulou" / "service_cases" / f"gov_cases_{DAY:%Y%m%d}.csv"
    text = utf8.read_bytes().decode("utf-8")
    assert "办件编号" in text
    original = tmp_path / "lt_jiayuan" / "service_cases" / f"gov_cases_{DAY:%Y%m%d}.csv"
    copy = original.with_name(f"gov_cases_{DAY:%Y%m%d}(1).csv")
    assert copy in paths and copy.read_bytes() == original.read_bytes()
    truncated = tmp_path / "baishawan" / "service_cases" / f"gov_cases_{DAY:%Y%m%d}.xlsx"
    with pytest.raises(zipfile.BadZipFile):
        openpyxl.load_workbook(truncated)


def test_late_case_lands_in_the_next_days_file(tmp_path):
    world = World(
        seed=5,
        faults=[{"fault": "late_events", "site": "lt_jiayuan", "kind": "service_cases", "params": {"rate": 0.2}}],
    )
    truth = world.truth("lt_jiayuan", "service_cases", DAY, DAY)
    late = {e["id"] for e in truth["late"]}
    assert late
    drop_files(world, DAY, DAY + timedelta(days=1), site="lt_jiayuan", kind="service_cases", drop_dir=tmp_path)
    folder = tmp_path / "lt_jiayuan" / "service_cases"
    today = {r["办件编号"] for r in gov_csv_rows(folder / f"gov_cases_{DAY:%Y%m%d}.csv")}
    tomorrow = {r["办件编号"] for r in gov_csv_rows(folder / f"gov_cases_{DAY + timedelta(days=1):%Y%m%d}.csv")}
    assert not late & today and late <= tomorrow


def test_same_seed_same_files(tmp_path):
    for run in ("a", "b"):
        drop_files(World(seed=9), DAY, DAY, site="baishawan", kind="service_cases", drop_dir=tmp_path / run)
    name = f"baishawan/service_cases/gov_cases_{DAY:%Y%m%d}.xlsx"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_missing_file_is_not_dropped(tmp_path):
    world = World(
        seed=5, faults=[{"fault": "missing_file", "site": "lt_jiayuan", "kind": "service_cases", "days": [str(DAY)]}]
    )
    drop_files(world, DAY, DAY + timedelta(days=1), site="lt_jiayuan", kind="service_cases", drop_dir=tmp_path)
    names = sorted(p.name for p in (tmp_path / "lt_jiayuan" / "service_cases").iterdir())
    assert names == [f"gov_cases_{DAY + timedelta(days=1):%Y%m%d}.csv"]
