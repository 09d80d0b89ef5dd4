"""Onboarding a vendor by configuration (issue 20, item 5): one vendor YAML plus a registry edit.

(a) a second government-export vendor the simulator does not speak: the simulator's own
daily exports rewritten into its form (renamed and reordered headers, slash times, other
channel words, an extra column, UTF-8 with BOM, another file name); (b) a second ISC-style
vendor: a loopback HTTP proxy in front of the simulator's ISC gateway renames the fields,
recodes the direction and re-formats the times of every reply; (c) the early checks of a
vendor file. Landed rows are compared with the simulator's true records, row by row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from ingestion.contract import RowError
from ingestion.http import FetchError, RetryPolicy
from ingestion.mapping import FieldRule
from ingestion.paths import DataPaths
from ingestion.pii import Pseudonymizer
from ingestion.pull import pull
from ingestion.registry import DEFAULT_REGISTRY, Registry, RegistryError, parse_registry
from ingestion.state import StateStore
from ingestion.vendors import VENDOR_PATH_ENV, VendorError, load_vendor
from simulator.files import drop_files
from simulator.world import World
from tests.fixtures.proxy import Exchange, RewritingProxy
from tests.fixtures.simulator import SimulatorHandle

FAST = RetryPolicy(attempts=5, backoff_base_s=0.05, backoff_max_s=0.5, retry_after_max_s=2.0, timeout_s=30.0)
FIRST, LAST = dt.date(2026, 1, 5), dt.date(2026, 1, 7)


@pytest.fixture(scope="module")
def world() -> World:
    """The simulator's world in process (seed 7, no faults): the same records the server serves."""
    return World(seed=7)


@pytest.fixture
def vendor_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory of test vendors beside config/vendors/ (nothing is written to config/)."""
    folder = tmp_path / "vendors"
    folder.mkdir()
    monkeypatch.setenv(VENDOR_PATH_ENV, str(folder))
    return folder


def write_vendor(folder: Path, name: str, body: dict[str, Any]) -> Path:
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(body, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def registry_with(site_id: str, kind: str, source: dict[str, Any]) -> Registry:
    """config/pilots.yml with one site's source replaced (the registry edit of onboarding)."""
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text(encoding="utf-8"))
    site = next(s for s in raw["sites"] if s["site_id"] == site_id)
    site["sources"][kind] = source
    return parse_registry(raw, "test registry")


def landed_rows(paths: DataPaths, kind: str, site_id: str, columns: list[str]) -> list[dict[str, Any]]:
    glob = paths.landing / kind / f"site={site_id}" / "date=*" / "data.parquet"
    cursor = duckdb.connect().execute(
        f"select {', '.join(columns)} from read_parquet('{glob}', hive_partitioning=false) order by 1"
    )
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def true_rows(world: World, site_id: str, kind: str, columns: list[str]) -> list[dict[str, Any]]:
    rows = [r for day in _days() for r in world.records(site_id, kind, day)]
    return sorted(({c: r[c] for c in columns} for r in rows), key=lambda r: r[columns[0]])


def _days() -> list[dt.date]:
    return [FIRST + dt.timedelta(days=i) for i in range((LAST - FIRST).days + 1)]


# -- (a) a second government-export vendor ----------------------------------------------------------

GOV_SITE = "xihoulou"  # CSV exports
GOV_B_COLUMNS = [  # (the new vendor's header, the default vendor's or None for the extra column), in file order
    ("受理编号", "办件编号"),
    ("受理时间", "申请时间"),
    ("办理事项", "事项名称"),
    ("事项代码", "事项编码"),
    ("申办渠道", "办理渠道"),
    ("经办窗口", None),  # an extra column the platform never reads
    ("申请人", "申请人姓名"),
    ("证件号码", "申请人证件号码"),
    ("手机号码", "联系电话"),
    ("老年人", "是否老年人"),
    ("法定时限", "承诺时限(工作日)"),
    ("办结日期时间", "办结时间"),
    ("评价", "满意度"),
]
GOV_B_CHANNELS = {"自助终端": "自助机", "网上办理": "网办", "窗口办理": "窗口受理", "上门服务": "帮办代办"}
GOV_B_TIME = "%Y/%m/%d %H:%M:%S"

GOV_B_VENDOR = {
    "protocol": "gov_export",
    "file_pattern": "banjian_{yyyymmdd}*.{format}",
    "encodings": ["utf-8-sig"],
    "late_listing_days": 1,
    "kinds": {
        "service_cases": {
            "record_id": "受理编号",
            "fields": {
                "case_id": "受理编号",
                "item_code": "事项代码",
                "item_name": ["办理事项", "事项名称"],  # alternatives: the first present wins
                "channel": {
                    "from": "申办渠道",
                    "map": {"自助机": "terminal", "网办": "online", "窗口受理": "counter", "帮办代办": "home_delivery"},
                },
                "applicant_name": "申请人",
                "applicant_id_card": "证件号码",
                "applicant_phone": "手机号码",
                "applicant_elderly": "老年人",
                "applied_time": {"from": "受理时间", "format": GOV_B_TIME},
                "completed_time": {"from": "办结日期时间", "format": GOV_B_TIME},
                "promised_days": "法定时限",
                "rating": "评价",
            },
        }
    },
}


def rewrite_gov_export(source: Path, target: Path) -> None:
    """One of the simulator's GBK exports in the new vendor's form."""
    rows = list(csv.DictReader(io.StringIO(source.read_bytes().decode("gbk"))))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([new for new, _ in GOV_B_COLUMNS])
    for row in rows:
        cells = []
        for _new, old in GOV_B_COLUMNS:
            value = "城阳区政务服务中心 3 号窗" if old is None else row[old]
            if old in ("申请时间", "办结时间") and value:
                value = dt.datetime.fromisoformat(value).strftime(GOV_B_TIME)
            if old == "办理渠道":
                value = GOV_B_CHANNELS[value]
            cells.append(value)
        writer.writerow(cells)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(out.getvalue().encode("utf-8-sig"))


def test_second_gov_export_vendor_lands_the_true_cases(world, vendor_dir, paths, tmp_path):
    sim_drops, b_drops = tmp_path / "sim_drops", tmp_path / "b_drops"
    exports = drop_files(
        world, FIRST, LAST + dt.timedelta(days=1), site=GOV_SITE, kind="service_cases", drop_dir=sim_drops
    )
    assert exports and all(p.suffix == ".csv" for p in exports)
    for path in exports:
        day = path.stem.removeprefix("gov_cases_")
        rewrite_gov_export(path, b_drops / GOV_SITE / "service_cases" / f"banjian_{day}.csv")
    sample = (b_drops / GOV_SITE / "service_cases" / f"banjian_{FIRST:%Y%m%d}.csv").read_bytes().decode("utf-8-sig")
    assert sample.startswith("受理编号,受理时间,") and f"{FIRST:%Y/%m/%d} " in sample

    write_vendor(vendor_dir, "gov_export_b", GOV_B_VENDOR)
    registry = registry_with(
        GOV_SITE,
        "service_cases",
        {"vendor": "gov_export_b", "format": "csv", "drop_dir": str(b_drops / "{site_id}" / "service_cases")},
    )
    source = registry.site(GOV_SITE).source("service_cases")
    assert source is not None and source.shape == "gov_export" and source.vendor_name == "gov_export_b"

    outcome = pull(GOV_SITE, "service_cases", FIRST, LAST, registry=registry, policy=FAST)

    columns = ["case_id", "item_code", "item_name", "channel", "applied_time", "completed_time"]
    columns += ["promised_days", "rating", "applicant_elderly"]
    landed = landed_rows(paths, "service_cases", GOV_SITE, columns)
    truth = true_rows(world, GOV_SITE, "service_cases", columns)
    assert len(truth) > 30
    assert landed == truth
    figures = world.truth(GOV_SITE, "service_cases", FIRST, LAST)
    assert outcome.result.rows_quarantined == 0 and len(landed) == figures["rows"]
    by_channel: dict[str, int] = {}
    for row in landed:
        by_channel[row["channel"]] = by_channel.get(row["channel"], 0) + 1
    assert by_channel == figures["by_channel"]
    # the landed shape stays the protocol (dbt staging filters on it); the audit names the vendor
    shapes = landed_rows(paths, "service_cases", GOV_SITE, ["distinct _source_shape"])
    assert shapes == [{"distinct _source_shape": "gov_export"}]
    (audit,) = StateStore(paths).audit(outcome.run_id)
    assert (audit["source_shape"], audit["vendor"], audit["outcome"]) == ("gov_export", "gov_export_b", "success")


def test_the_default_gov_vendor_does_not_read_the_new_form(world, paths, tmp_path):
    """The control: without the new vendor file the rewritten exports are not readable, so the
    test above lands them because of that file, and config/vendors/gov_export.yml is untouched."""
    sim_drops, b_drops = tmp_path / "sim_drops", tmp_path / "b_drops"
    for path in drop_files(
        world, FIRST, FIRST + dt.timedelta(days=1), site=GOV_SITE, kind="service_cases", drop_dir=sim_drops
    ):
        rewrite_gov_export(path, b_drops / GOV_SITE / "service_cases" / path.name)  # the default file name
    registry = registry_with(
        GOV_SITE,
        "service_cases",
        {"shape": "gov_export", "format": "csv", "drop_dir": str(b_drops / "{site_id}" / "service_cases")},
    )
    with pytest.raises(FetchError, match="header not recognised"):
        pull(GOV_SITE, "service_cases", FIRST, FIRST, registry=registry, policy=FAST)


# -- (b) a second ISC-style vendor behind a renaming proxy ------------------------------------------

ISC_SITE = "cy_commerce_block"  # the smallest ISC site
ISC_B_NAMES = {
    "eventId": "serialNo",
    "eventTime": "passTime",
    "doorIndexCode": "gateNo",
    "inAndOutType": "passDir",
    "eventType": "verifyType",
    "personType": "userType",
    "certNo": "idNo",
    "personId": "userNo",
    "personName": "userName",
    "picUri": "snapUrl",
    "appointmentId": "bookingNo",
    "temperatureData": "bodyTemp",
    "tailgateFlag": "followFlag",
}
ISC_B_DIRECTION = {"1": "IN", "0": "OUT"}
ISC_B_TIME = "%Y%m%d%H%M%S"  # compact local time: read without the format it would pass for epoch ms

ISC_B_VENDOR = {
    "protocol": "isc_openapi",
    "page_size": 1000,
    "max_window_months": 3,
    "window_days": 1,
    "late_listing_days": 1,
    "signed_headers": ["x-ca-key", "x-ca-nonce", "x-ca-timestamp"],
    "success_code": "0",
    "kinds": {
        "passages": {
            "endpoint": "/artemis/api/acs/v1/door/events",
            "record_id": "serialNo",
            "fields": {
                "event_id": "serialNo",
                "event_time": {"from": "passTime", "format": ISC_B_TIME},
                "gate_id": "gateNo",
                "direction": {"from": "passDir", "map": {"IN": "in", "OUT": "out"}},
                "method": {
                    "from": "verifyType",
                    "map": {"196893": "face", "198914": "card", "200514": "qr_visitor", "198657": "manual"},
                },
                "person_type": {"from": "userType", "map": {"1": "resident", "2": "visitor", "0": "unknown"}},
                "id_card": "idNo",
                "person_id": "userNo",
                "person_name": "userName",
                "face_url": "snapUrl",
                "appointment_id": "bookingNo",
                "temperature_c": "bodyTemp",
                "tailgating": {"from": "followFlag", "map": {"1": True, "0": False}, "default": False},
            },
        }
    },
}


def isc_b_record(record: dict[str, Any]) -> dict[str, Any]:
    """An ISC passage as the second vendor sends it."""
    out = {ISC_B_NAMES.get(name, name): value for name, value in record.items()}
    if out.get("passDir") is not None:
        out["passDir"] = ISC_B_DIRECTION[str(out["passDir"])]
    if isinstance(out.get("passTime"), str):
        moment = dt.datetime.fromisoformat(out["passTime"]).astimezone(dt.timezone(dt.timedelta(hours=8)))
        out["passTime"] = moment.strftime(ISC_B_TIME)
    return out


def isc_b_reply(exchange: Exchange) -> Any:
    """The gateway's reply with every listed passage in the second vendor's form."""
    envelope = exchange.json()
    listing = (envelope.get("data") or {}).get("list")
    if not isinstance(listing, list):
        return None
    envelope["data"]["list"] = [isc_b_record(r) for r in listing]
    return envelope


@pytest.fixture
def isc_b(simulator: SimulatorHandle, paths: DataPaths, monkeypatch: pytest.MonkeyPatch) -> Iterator[RewritingProxy]:
    for name, value in simulator.env.items():
        monkeypatch.setenv(name, value)
    with RewritingProxy(simulator.base_url, isc_b_reply) as proxy:
        yield proxy


def isc_b_source(proxy: RewritingProxy, vendor: str | None) -> dict[str, Any]:
    source = {
        "base_url": f"{proxy.url}/isc/{{site_id}}",
        "app_key_env": "SMARTCOMM_ISC_APP_KEY",
        "app_secret_env": "SMARTCOMM_ISC_APP_SECRET",
    }
    return {"vendor": vendor, **source} if vendor else {"shape": "isc_openapi", **source}


def test_second_isc_vendor_behind_a_renaming_proxy_lands_the_true_passages(world, vendor_dir, paths, isc_b):
    write_vendor(vendor_dir, "isc_b", ISC_B_VENDOR)
    registry = registry_with(ISC_SITE, "passages", isc_b_source(isc_b, "isc_b"))

    outcome = pull(ISC_SITE, "passages", FIRST, LAST, registry=registry, policy=FAST)

    assert isc_b.rewritten >= 4  # every listing day went through the proxy
    columns = ["event_id", "event_time", "gate_id", "direction", "method", "person_type", "appointment_id"]
    columns += ["temperature_c", "tailgating"]
    landed = landed_rows(paths, "passages", ISC_SITE, [*columns, "person_key"])
    keys = Pseudonymizer()
    truth = []
    for day in _days():
        for r in world.records(ISC_SITE, "passages", day):
            clear = r["person_id"] or r["id_card"]
            truth.append({**{c: r[c] for c in columns}, "person_key": keys.key_for("person", clear) if clear else None})
    truth.sort(key=lambda r: r["event_id"])
    assert len(truth) > 5000 and any(r["person_key"] for r in truth) and any(r["temperature_c"] for r in truth)
    assert landed == truth
    assert outcome.result.rows_quarantined == 0
    (audit,) = StateStore(paths).audit(outcome.run_id)
    assert (audit["source_shape"], audit["vendor"]) == ("isc_openapi", "isc_b")


def test_the_default_isc_vendor_refuses_the_proxied_replies(paths, isc_b):
    """The control: the default ISC mapping finds none of its fields behind the proxy, so the
    day is refused as schema drift; the vendor file is what makes the test above pass."""
    registry = registry_with(ISC_SITE, "passages", isc_b_source(isc_b, None))
    with pytest.raises(FetchError, match=r"rejected|quarantin|drift"):
        pull(ISC_SITE, "passages", FIRST, FIRST, registry=registry, policy=FAST)


# -- time formats --------------------------------------------------------------------------------


def test_a_time_format_reads_what_guessing_would_misread() -> None:
    day_first = FieldRule("applied_time", ("受理时间",), time_format="%d/%m/%Y %H:%M")
    assert day_first.extract({"受理时间": " 05/03/2026 14:30 "}) == dt.datetime(2026, 3, 5, 14, 30)
    compact = FieldRule("event_time", ("passTime",), time_format=ISC_B_TIME)
    assert compact.extract({"passTime": "20260106000058"}) == dt.datetime(2026, 1, 6, 0, 0, 58)
    with pytest.raises(RowError, match="does not match"):
        compact.extract({"passTime": "2026-01-06 00:00:58"})
    aware = FieldRule("event_time", ("t",), time_format="%Y-%m-%d %H:%M%z")
    assert aware.extract({"t": "2026-01-06 00:00+0000"}).utcoffset() == dt.timedelta(0)
    from zoneinfo import ZoneInfo

    utc = FieldRule("event_time", ("t",), tz=ZoneInfo("UTC"), time_format="%Y/%m/%d %H:%M")
    assert utc.extract({"t": "2026/01/05 16:30"}) == dt.datetime(2026, 1, 5, 16, 30, tzinfo=ZoneInfo("UTC"))
    assert compact.extract({"passTime": dt.datetime(2026, 1, 6)}) == dt.datetime(2026, 1, 6)  # a real cell


# -- (c) early, named errors -----------------------------------------------------------------------


def _gov(**changes: Any) -> dict[str, Any]:
    body = yaml.safe_load(yaml.safe_dump(GOV_B_VENDOR, allow_unicode=True))
    body.update(changes)
    return body


def _gov_fields(**changes: Any) -> dict[str, Any]:
    body = _gov()
    body["kinds"]["service_cases"]["fields"].update(changes)
    return body


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        (_gov(protocol="sftp_csv"), "protocol", "unknown protocol 'sftp_csv'"),
        (
            {k: v for k, v in _gov().items() if k != "protocol"} | {"shape": "gov_export"},
            "protocol",
            "`shape` is now `protocol`",
        ),
        (_gov(kinds={"parcels": {"fields": {"parcel_id": "单号"}}}), "kinds.parcels", "unknown kind"),
        (_gov_fields(case_number="受理编号"), "kinds.service_cases.fields.case_number", "unknown canonical field"),
        (
            _gov(kinds={"passages": ISC_B_VENDOR["kinds"]["passages"]}),
            "kinds.passages",
            "protocol gov_export cannot carry passages",
        ),
        (
            {
                **ISC_B_VENDOR,
                "kinds": {"passages": {k: v for k, v in ISC_B_VENDOR["kinds"]["passages"].items() if k != "endpoint"}},
            },
            "kinds.passages.endpoint",
            "required by protocol isc_openapi",
        ),
        (
            _gov_fields(applied_time={"fromm": "受理时间"}),
            "kinds.service_cases.fields.applied_time.fromm",
            "unknown key",
        ),
        (
            _gov_fields(rating={"from": "评价", "format": "%Y"}),
            "kinds.service_cases.fields.rating.format",
            "timestamp or date",
        ),
        (
            _gov_fields(applied_time={"from": "受理时间", "format": "yyyy/mm/dd"}),
            "fields.applied_time.format",
            "strptime",
        ),
        (
            _gov_fields(applied_time={"from": "受理时间", "tz": "Mars/Olympus"}),
            "fields.applied_time.tz",
            "unknown time zone",
        ),
        (_gov(file_pattern="banjian_{date}.csv"), "file_pattern", "unknown placeholder {date}"),
        (_gov(file_pattern="banjian.{format}"), "file_pattern", "needs the placeholder {yyyymmdd}"),
        ({k: v for k, v in _gov().items() if k != "file_pattern"}, "file_pattern", "required by protocol gov_export"),
        (
            _gov(kinds={"service_cases": {"fields": {"case_id": "受理编号", "channel": "申办渠道"}}}),
            "kinds.service_cases.fields",
            "no rule for item_code",
        ),
    ],
)
def test_a_bad_vendor_file_fails_early_naming_file_and_key(vendor_dir, body, key, message):
    path = write_vendor(vendor_dir, "bad_vendor", body)
    with pytest.raises(VendorError) as failure:
        load_vendor("bad_vendor")
    text = str(failure.value)
    assert str(path) in text and key in text and message in text, text


def test_the_registry_names_site_and_source_of_a_vendor_mistake(vendor_dir):
    drop = {"format": "csv", "drop_dir": "data/drops/{site_id}/service_cases"}
    with pytest.raises(RegistryError, match=r"site xihoulou.*sources.service_cases.vendor.*no file gov_missing.yml"):
        registry_with(GOV_SITE, "service_cases", {"vendor": "gov_missing", **drop})
    write_vendor(vendor_dir, "isc_b", ISC_B_VENDOR)
    with pytest.raises(RegistryError, match=r"site xihoulou.*vendor isc_b .* cannot deliver service_cases"):
        registry_with(
            GOV_SITE,
            "service_cases",
            {"vendor": "isc_b", "base_url": "http://127.0.0.1:1", "app_key_env": "K", "app_secret_env": "S"},
        )
    with pytest.raises(RegistryError, match=r"vendor isc_b speaks protocol isc_openapi, not gov_export"):
        registry_with(GOV_SITE, "service_cases", {"shape": "gov_export", "vendor": "isc_b", **drop})
    write_vendor(vendor_dir, "gov_export", GOV_B_VENDOR)  # a second home for the default vendor
    with pytest.raises(VendorError, match="defined twice"):
        load_vendor("gov_export")
