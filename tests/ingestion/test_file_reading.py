"""Issue 20, items 3 and 4: files read as they are, replies and mappings that say where.

Vendor files come from the real simulator (its drop-files output), altered the way real
exports go wrong (a BOM, UTF-16, an empty sheet, a dropped or extra column, a 10 MB cell)
and dropped into a private drop dir; API replies come from the real simulator over loopback
HTTP, through a small proxy that rewrites one reply. Every failure must name where it
happened (site, kind, file, sheet, line, column, endpoint, window, page, field), never a value.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pyarrow as pa
import pytest

from ingestion import columnar
from ingestion import pull as pull_module
from ingestion.contract import RowError, contract
from ingestion.http import FetchError
from ingestion.mapping import VENDORS_DIR, load_shape_mapping, parse_shape_mapping
from ingestion.paths import DataPaths
from ingestion.pull import pull
from ingestion.registry import read_yaml
from ingestion.state import StateStore
from tests.fixtures.proxy import Exchange, Rewrite, RewritingProxy
from tests.fixtures.simulator import SimulatorHandle
from tests.ingestion.test_against_simulator import (
    DAY,
    FAST,
    ISC_SITE,
    REST_SITE,
    assert_matches_truth,
    landed,
    quarantined,
    small_pages,
    use,
)

GOV_CSV_SITE, GOV_XLSX_SITE, MANUAL_SITE = ISC_SITE, "baishawan", "cy_old_estate"
CSV_NAME = f"gov_cases_{DAY:%Y%m%d}.csv"
XLSX_NAME = f"gov_cases_{DAY:%Y%m%d}.xlsx"


@pytest.fixture
def env(simulator: SimulatorHandle, monkeypatch, tmp_path) -> tuple[SimulatorHandle, DataPaths, Path]:
    """The shared simulator, a private data dir and a private drop dir."""
    paths = use(simulator, monkeypatch, tmp_path)
    drops = tmp_path / "drops"
    monkeypatch.setenv("SMARTCOMM_DROP_DIR", str(drops))
    return simulator, paths, drops


def drop(sim: SimulatorHandle, drops: Path, site: str, kind: str, last: dt.date | None = None) -> list[Path]:
    """The simulator's files of DAY..last (default: DAY and its late-listing day), copied to `drops`."""
    last = last or DAY + dt.timedelta(days=1)
    copies = []
    for name in sim.control.drop_files(str(DAY), str(last), site=site, kind=kind):
        source = Path(name)
        target = drops / source.relative_to(sim.drop_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copies.append(target)
    return copies


def gov_csv(drops: Path) -> Path:
    return drops / GOV_CSV_SITE / "service_cases" / CSV_NAME


def read_gbk_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("gbk"), newline="")))


def write_csv(path: Path, rows: list[list[str]], encoding: str = "gbk", prefix: bytes = b"") -> None:
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    path.write_bytes(prefix + text.getvalue().encode(encoding))


def without_column(rows: list[list[str]], header: str) -> list[list[str]]:
    i = rows[0].index(header)
    return [r[:i] + r[i + 1 :] for r in rows]


def failure_of(site: str, kind: str, **kwargs: Any) -> str:
    with pytest.raises(FetchError) as failure:
        pull(site, kind, DAY, DAY, policy=FAST, **kwargs)
    message = str(failure.value)
    assert f"site {site}, kind {kind}" in message, message
    return message


def audit_notes(paths: DataPaths) -> list[str]:
    """The notes of the only load of the test, as the load audit keeps them."""
    (row,) = StateStore(paths).audit()
    return row["notes"].split("\n") if row["notes"] else []


def with_shape_settings(monkeypatch, shape: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """pull() reads config/vendors/<shape>.yml as edited by `edit` (configuration is data)."""
    raw = read_yaml(VENDORS_DIR / f"{shape}.yml")
    edit(raw)
    mapping = parse_shape_mapping(raw, f"{shape}.yml (edited by the test)")
    monkeypatch.setattr(pull_module, "load_shape_mapping", lambda s: mapping if s == shape else load_shape_mapping(s))


# -- A. files read as they are -----------------------------------------------------------------


def test_utf8_bom_file_declared_gbk_lands_exactly_the_truth(env):
    sim, paths, drops = env
    drop(sim, drops, GOV_CSV_SITE, "service_cases")
    path = gov_csv(drops)
    write_csv(path, read_gbk_csv(path), "utf-8", prefix=b"\xef\xbb\xbf")
    outcome = pull(GOV_CSV_SITE, "service_cases", DAY, DAY, policy=FAST)
    assert outcome.figures.rows_landed > 0 and outcome.figures.rows_quarantined == 0
    assert_matches_truth(sim, paths, GOV_CSV_SITE, "service_cases", DAY, DAY)


def test_utf8_bom_on_the_first_json_line_is_stripped(env):
    sim, paths, drops = env
    files = drop(sim, drops, "xihoulou", "fire_alarms")
    first = next(p for p in sorted(files) if p.stat().st_size and f"{DAY:%Y%m%d}" in p.name)
    first.write_bytes(b"\xef\xbb\xbf" + first.read_bytes())
    pull("xihoulou", "fire_alarms", DAY, DAY, policy=FAST)
    assert_matches_truth(sim, paths, "xihoulou", "fire_alarms", DAY, DAY)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_wide_encoding_fails_naming_the_encoding_and_the_file(env, encoding):
    sim, paths, drops = env
    drop(sim, drops, GOV_CSV_SITE, "service_cases")
    path = gov_csv(drops)
    write_csv(path, read_gbk_csv(path), encoding)
    message = failure_of(GOV_CSV_SITE, "service_cases")
    expected = "UTF-32" if "32" in encoding else "UTF-16"
    assert f"{CSV_NAME}: encoding: looks like {expected}" in message, message
    assert "declared encodings are gbk, utf-8" in message and "truncated" not in message, message
    assert not paths.partition("service_cases", GOV_CSV_SITE, str(DAY)).exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [("empty", "sheet 办件明细: no header row"), ("renamed", "sheet 办件明细: not in the workbook")],
)
def test_a_workbook_without_its_sheet_or_header_fails_naming_file_and_sheet(env, change, expected):
    sim, paths, drops = env
    drop(sim, drops, GOV_XLSX_SITE, "service_cases")
    path = drops / GOV_XLSX_SITE / "service_cases" / XLSX_NAME
    book = openpyxl.load_workbook(path)
    sheet = book["办件明细"]
    if change == "empty":
        sheet.delete_rows(1, sheet.max_row)
    else:
        sheet.title = "Sheet1"
    book.save(path)
    message = failure_of(GOV_XLSX_SITE, "service_cases")
    assert f"{XLSX_NAME}: {expected}" in message, message
    assert not paths.partition("service_cases", GOV_XLSX_SITE, str(DAY)).exists()


def test_a_10_mb_field_is_quarantined_naming_file_line_and_column_and_the_rest_lands(env):
    sim, paths, drops = env
    drop(sim, drops, GOV_CSV_SITE, "service_cases")
    path = gov_csv(drops)
    rows = read_gbk_csv(path)
    assert len(rows) > 4, "too few cases that day: the test would prove little"
    column = rows[0].index("事项名称")
    victim = rows[3][0]  # file line 4
    rows[3][column] = "事" * (10 * 1024 * 1024)
    write_csv(path, rows)
    outcome = pull(GOV_CSV_SITE, "service_cases", DAY, DAY, policy=FAST)
    bad = quarantined(paths, "service_cases", GOV_CSV_SITE)
    assert [b[2] for b in bad] == [
        f"row: {CSV_NAME} line 4 column 事项名称: {10 * 1024 * 1024} characters, over max_field_chars 131072"
    ]
    raw = duckdb.connect().sql(
        f"select max(length(raw_record)) from read_parquet('{paths.quarantine}/**/quarantine.parquet')"
    )
    assert raw.fetchall()[0][0] < 10_000, "the 10 MB cell was kept in quarantine"
    truth = sim.control.truth(GOV_CSV_SITE, "service_cases", str(DAY), str(DAY))
    ids = {r[1] for r in landed(paths, "service_cases", GOV_CSV_SITE)}
    assert len(ids) == truth["by_day"][str(DAY)] - 1 == outcome.figures.rows_landed
    assert victim not in ids


def test_the_field_limit_is_vendor_configuration(env, monkeypatch):
    sim, paths, drops = env
    drop(sim, drops, GOV_CSV_SITE, "service_cases")
    path = gov_csv(drops)
    rows = read_gbk_csv(path)
    rows[1][rows[0].index("事项名称")] = "事" * 100
    write_csv(path, rows)
    with_shape_settings(monkeypatch, "gov_export", lambda raw: raw.update(max_field_chars=64))
    pull(GOV_CSV_SITE, "service_cases", DAY, DAY, policy=FAST)
    reasons = [b[2] for b in quarantined(paths, "service_cases", GOV_CSV_SITE)]
    assert reasons == [f"row: {CSV_NAME} line 2 column 事项名称: 100 characters, over max_field_chars 64"]


# -- C. mappings you can trust -----------------------------------------------------------------


def test_a_missing_mapped_header_fails_naming_field_and_header(env):
    sim, _, drops = env
    drop(sim, drops, GOV_CSV_SITE, "service_cases")
    path = gov_csv(drops)
    write_csv(path, without_column(read_gbk_csv(path), "事项编码"))
    message = failure_of(GOV_CSV_SITE, "service_cases")
    assert f"{CSV_NAME}: mapped header missing: field item_code (looked for 事项编码)" in message, message


def test_a_missing_header_of_a_manual_workbook_names_every_synonym(env):
    sim, _, drops = env
    (path,) = drop(sim, drops, MANUAL_SITE, "activities", last=DAY)
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    for row in sheet.iter_rows(max_row=10):
        for cell in row:
            if cell.value in ("活动类别", "类别"):
                cell.value = "分类"
    book.save(path)
    message = failure_of(MANUAL_SITE, "activities")
    assert f"{path.name}, sheet {sheet.title}: mapped header missing: field category (looked for 活动类别, 类别)" in (
        message
    ), message


def test_an_optional_missing_header_lands_with_a_note(env, monkeypatch):
    sim, paths, drops = env
    drop(sim, drops, GOV_CSV_SITE, "service_cases")
    path = gov_csv(drops)
    write_csv(path, without_column(read_gbk_csv(path), "满意度"))
    with_shape_settings(
        monkeypatch,
        "gov_export",
        lambda raw: raw["kinds"]["service_cases"]["fields"].update(rating={"from": "满意度", "optional": True}),
    )
    pull(GOV_CSV_SITE, "service_cases", DAY, DAY, policy=FAST)
    assert audit_notes(paths) == [f"{CSV_NAME}: optional field rating (满意度) absent"]
    assert_matches_truth(sim, paths, GOV_CSV_SITE, "service_cases", DAY, DAY)
    glob = paths.landing / "service_cases" / f"site={GOV_CSV_SITE}" / "date=*" / "data.parquet"
    assert duckdb.connect().sql(f"select count(rating) from read_parquet('{glob}')").fetchall()[0][0] == 0


def test_extra_columns_are_noted_once_per_file_without_personal_data(env, monkeypatch):
    sim, paths, drops = env
    drop(sim, drops, GOV_CSV_SITE, "service_cases")
    path = gov_csv(drops)
    rows = read_gbk_csv(path)
    extra = ["备注", "经办人", "张伟"]  # the last: a person's name typed as a header
    write_csv(path, [rows[0] + extra] + [[*r, "x", "y", "z"] for r in rows[1:]])
    pull(GOV_CSV_SITE, "service_cases", DAY, DAY, policy=FAST)
    assert audit_notes(paths) == [f"{CSV_NAME}: extra columns 备注, 经办人, <name> ignored"]
    assert_matches_truth(sim, paths, GOV_CSV_SITE, "service_cases", DAY, DAY)


def test_a_value_over_max_length_is_quarantined_with_the_length_not_the_value(env):
    sim, paths, drops = env
    drop(sim, drops, GOV_CSV_SITE, "service_cases")
    path = gov_csv(drops)
    rows = read_gbk_csv(path)
    value = "ITEM" + "7" * 60 + "SECRETTAIL"
    rows[2][rows[0].index("事项编码")] = value
    write_csv(path, rows)
    pull(GOV_CSV_SITE, "service_cases", DAY, DAY, policy=FAST)
    reasons = [b[2] for b in quarantined(paths, "service_cases", GOV_CSV_SITE)]
    assert reasons == [f"item_code: {len(value)} characters, longer than max_length 64"]
    truth = sim.control.truth(GOV_CSV_SITE, "service_cases", str(DAY), str(DAY))
    assert len(landed(paths, "service_cases", GOV_CSV_SITE)) == truth["by_day"][str(DAY)] - 1


def test_max_length_holds_value_by_value_and_in_bulk():
    spec = contract("alerts").column("device_id")
    assert spec.max_length == 64
    with pytest.raises(RowError, match=r"^device_id: 65 characters, longer than max_length 64$"):
        spec.converter("D" * 65)
    assert spec.converter("D" * 64) == "D" * 64
    reasons: list[str | None] = [None, None]  # the column path: the over-long row's own reason
    typed = columnar.typed(spec, pa.string(), columnar.Column(["D" * 10, "D" * 65]), 2, reasons)
    assert typed.to_pylist() == ["D" * 10, None]
    assert reasons == [None, "device_id: 65 characters, longer than max_length 64"]
    assert contract("alerts").column("alert_type").max_length == 256  # the kinds.yml default


# -- B. API replies that say where ---------------------------------------------------------------


@contextmanager
def proxy(sim: SimulatorHandle, monkeypatch, rewrite: Rewrite) -> Iterator[RewritingProxy]:
    """A loopback proxy in front of the simulator for both API shapes."""
    with RewritingProxy(sim.base_url, rewrite) as server:
        monkeypatch.setenv("SMARTCOMM_ISC_URL", server.url)
        monkeypatch.setenv("SMARTCOMM_REST_URL", server.url)
        yield server


ISC_ENDPOINT = f"/isc/{ISC_SITE}/artemis/api/acs/v1/door/events"
WINDOW = f"window {DAY}..{DAY + dt.timedelta(days=1)}"
DAY_START = dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.timezone(dt.timedelta(hours=8))).isoformat()


def isc_page(page: int, change: Callable[[Any], Any]) -> Rewrite:
    """Replace the reply to page `page` of DAY's passages window by `change(reply)`."""

    def rewrite(exchange: Exchange) -> Any:
        request = exchange.request_json()
        if exchange.path != ISC_ENDPOINT or request.get("pageNo") != page or request.get("startTime") != DAY_START:
            return None
        return change(exchange.json())

    return rewrite


def _data_list(reply: dict[str, Any]) -> Any:
    return reply["data"]["list"]


def _total(value: Any) -> Callable[[dict[str, Any]], Any]:
    def change(reply: dict[str, Any]) -> Any:
        if value is None:
            del reply["data"]["total"]
        else:
            reply["data"]["total"] = value
        return reply

    return change


@pytest.mark.parametrize(
    ("page", "change", "expected"),
    [
        (2, _data_list, "reply is a list, not an object"),
        (2, _total("about 20k"), "`total` is not a number"),
        (1, _total("about 20k"), "`total` is not a number"),
        (1, _total(None), "`total` is missing with 500 rows"),
        (1, _total(0), "`total` is 0 with 500 rows"),
        (2, lambda r: {**r, "data": [r["data"]]}, "`data` is a list, not an object"),
        (2, lambda r: {**r, "data": {**r["data"], "list": {}}}, "`data.list` is an object, not a list"),
    ],
    ids=["list-reply", "text-total", "text-total-page1", "missing-total", "zero-total", "data-list", "list-object"],
)
def test_isc_replies_of_the_wrong_shape_fail_naming_endpoint_window_page_and_field(
    simulator, monkeypatch, tmp_path, page, change, expected
):
    paths = use(simulator, monkeypatch, tmp_path)
    with proxy(simulator, monkeypatch, isc_page(page, change)) as server:
        message = failure_of(ISC_SITE, "passages", registry=small_pages(500))
    assert server.rewritten >= 1
    assert f"POST {ISC_ENDPOINT} {WINDOW} page {page}: " in message and expected in message, message
    assert "about 20k" not in message
    assert landed(paths, "passages", ISC_SITE) == []


def test_isc_missing_total_is_accepted_where_the_vendor_never_sends_it(simulator, monkeypatch, tmp_path):
    paths = use(simulator, monkeypatch, tmp_path)
    with_shape_settings(monkeypatch, "isc_openapi", lambda raw: raw.update(total_reliable=False))
    with proxy(simulator, monkeypatch, isc_page(1, _total(None))) as server:
        pull(ISC_SITE, "passages", DAY, DAY, policy=FAST, registry=small_pages(500))
    assert server.rewritten == 1
    assert_matches_truth(simulator, paths, ISC_SITE, "passages", DAY, DAY)


REST_PATH = f"/rest/{REST_SITE}/api/v1/passages"


def rest_page(page: int, change: Callable[[Any], Any]) -> Rewrite:
    """Replace the reply to the `page`-th GET of the passages list (DAY's window comes first)."""

    def rewrite(exchange: Exchange) -> Any:
        return change(exchange.json()) if exchange.path == REST_PATH and exchange.nth == page else None

    return rewrite


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r["data"], "reply is a list, not an object"),
        (lambda r: {**r, "next_cursor": None, "has_more": True}, "`has_more` is true without `next_cursor`"),
        (lambda r: {**r, "next_cursor": {"offset": 500}}, "`next_cursor` is an object"),
    ],
    ids=["list-reply", "more-without-cursor", "cursor-object"],
)
def test_rest_replies_of_the_wrong_shape_fail_naming_endpoint_window_page_and_field(
    simulator, monkeypatch, tmp_path, change, expected
):
    paths = use(simulator, monkeypatch, tmp_path)
    with proxy(simulator, monkeypatch, rest_page(2, change)) as server:
        message = failure_of(REST_SITE, "passages", registry=small_pages(500))
    assert server.rewritten >= 1
    assert f"GET /api/v1/passages {WINDOW} page 2: {expected}" in message, message
    assert landed(paths, "passages", REST_SITE) == []


# -- the drop folder ---------------------------------------------------------------------------


def test_drop_files_are_found_as_a_glob_finds_them_with_fresh_drops_winning(env) -> None:
    """An hourly feed asks for 24 patterns a day of one listing of the folder: the files a unit
    reads are those `Path.glob` finds for each hour (kept copies under _landed/ included, a
    fresh drop of the same name instead of its kept copy, a duplicate drop "(1)" as well)."""
    from ingestion.connectors import make_connector
    from ingestion.connectors.files import LANDED_DIR
    from ingestion.registry import load_registry

    sim, _, drops = env
    registry = load_registry()
    site = next(s for s in registry.sites if s.source("fire_alarms") and s.source("fire_alarms").shape == "alarm_jsonl")
    files = drop(sim, drops, site.site_id, "fire_alarms")
    folder = files[0].parent
    kept = folder / LANDED_DIR
    kept.mkdir()
    for path in files[::2]:  # every other hour landed before, kept for a backfill
        path.rename(kept / path.name)
    shutil.copyfile(kept / files[0].name, folder / files[0].name)  # re-delivered: the fresh copy wins
    shutil.copyfile(folder / files[1].name, folder / files[1].name.replace(".jsonl", "(1).jsonl"))
    (folder / (files[1].name + ".part")).write_text("", encoding="utf-8")  # not the pattern
    mapping = load_shape_mapping(site.source("fire_alarms").vendor_name)
    connector = make_connector(site, "fire_alarms", mapping)
    pattern = str(mapping.settings["file_pattern"])

    def globbed(day: dt.date) -> list[Path]:
        found: dict[str, Path] = {}
        for hour in range(24):
            name = pattern.format(kind="fire_alarms", yyyymmddhh=f"{day:%Y%m%d}{hour:02d}")
            hour_files = {p.name: p for p in kept.glob(name)} | {p.name: p for p in folder.glob(name)}
            found.update(dict(sorted(hour_files.items())))
        return list(found.values())

    units = connector.units(DAY, DAY + dt.timedelta(days=1))
    assert [u.day for u in units] == [DAY, DAY + dt.timedelta(days=1)]
    for unit in units:
        assert list(unit.files) == globbed(unit.day)
    assert folder / files[0].name in units[0].files and kept / files[0].name not in units[0].files
    assert any("(1)" in p.name for p in units[0].files)


SURVEY_MONTH = (dt.date(2026, 6, 1), dt.date(2026, 6, 30))


def survey_workbook(sim: SimulatorHandle, drops: Path) -> tuple[Path, list[int], int]:
    """The manual site's June survey workbook copied to `drops`: (path, its data rows' numbers,
    the column of 调查日期). The survey runs mid-month, so no answer is dated the 1st."""
    first, last = SURVEY_MONTH
    for name in sim.control.drop_files(str(first), str(last), site=MANUAL_SITE, kind="surveys"):
        source = Path(name)
        target = drops / source.relative_to(sim.drop_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    path = next(drops.glob(f"{MANUAL_SITE}/**/surveys_{first:%Y-%m}.xlsx"))
    sheet = openpyxl.load_workbook(path).worksheets[0]
    header = next(i for i, row in enumerate(sheet.iter_rows(values_only=True), 1) if "调查日期" in row)
    column = list(next(sheet.iter_rows(min_row=header, max_row=header, values_only=True))).index("调查日期") + 1
    rows = [r for r in range(header + 1, sheet.max_row + 1) if sheet.cell(r, column).value is not None]
    assert not any(str(sheet.cell(r, column).value).startswith(str(first)) for r in rows)
    return path, rows, column


def unreadable_dates(path: Path, rows: list[int], column: int) -> None:
    book = openpyxl.load_workbook(path)
    for row in rows:
        book.worksheets[0].cell(row, column).value = "0000-00-00"
    book.save(path)


def test_two_unreadable_dates_in_a_monthly_workbook_are_quarantined_not_a_failed_first(env):
    """Rows whose time cannot be read are kept under their workbook's first day; two of them
    (the demo's fault rate gives that, seed 6) are a quarantine matter, not a failed 1st."""
    sim, paths, drops = env
    path, rows, column = survey_workbook(sim, drops)
    unreadable_dates(path, rows[:2], column)
    pull(MANUAL_SITE, "surveys", *SURVEY_MONTH, policy=FAST)
    reasons = [reason for _day, _id, reason in quarantined(paths, "surveys", MANUAL_SITE)]
    assert len(reasons) == 2 and all("answered_date" in reason for reason in reasons), reasons
    assert len(landed(paths, "surveys", MANUAL_SITE)) == len(rows) - 2


def test_a_workbook_whose_dates_are_all_unreadable_fails_naming_it(env):
    sim, paths, drops = env
    path, rows, column = survey_workbook(sim, drops)
    unreadable_dates(path, rows, column)
    with pytest.raises(FetchError) as failure:
        pull(MANUAL_SITE, "surveys", *SURVEY_MONTH, policy=FAST)
    message = str(failure.value)
    assert path.name in message and f"{len(rows)} of {len(rows)} rows have no readable time" in message, message
    assert landed(paths, "surveys", MANUAL_SITE) == [] and path.exists()
