"""Every fetched row is accounted for, and a re-run never replaces data with less data.

Against the real simulator (ISC over HTTP through a rewriting proxy, real file drops):
rows far outside their listing's window are quarantined, not dropped; a day whose rows are
all rejected fails; a day re-landed with far fewer rows fails naming both counts; a source
that delivers nothing for a day it delivered before keeps the landed day (not delivered),
unless the run allows shrinking, which the audit records. The audit's identity
fetched = landed + deduplicated + quarantined + outside the window holds in every case, and
tests/conftest.py checks it for every audit row the whole suite writes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from ingestion.http import FetchError, NotDeliveredError
from ingestion.paths import DataPaths
from ingestion.pull import pull
from ingestion.state import StateStore
from tests.fixtures.proxy import Exchange, RewritingProxy
from tests.ingestion.test_against_simulator import FAST, ISC_SITE, landed, quarantined

FILE_SITE = ISC_SITE  # cy_commerce_block: gov CSV service cases, a monthly register workbook
DAY = dt.date(2026, 1, 6)
NEXT = dt.timedelta(days=1)  # the late-listing day a gov export run reads too
FAR = {"1970": "1970-01-01T08:00:00+08:00", "2099": "2099-01-06T10:00:00+08:00"}


def audit_rows(paths: DataPaths) -> list[dict[str, Any]]:
    return sorted(StateStore(paths).audit(), key=lambda row: row["started_at_utc"])


def assert_balanced(row: dict[str, Any]) -> None:
    parts = (row["rows_landed"], row["rows_deduplicated"], row["rows_quarantined"], row["rows_outside_window"])
    assert row["rows_fetched"] == sum(parts), row


def partition_rows(paths: DataPaths, kind: str, day: dt.date, site_id: str = FILE_SITE) -> int | None:
    target = paths.partition(kind, site_id, day.isoformat()) / "data.parquet"
    return pq.ParquetFile(target).metadata.num_rows if target.exists() else None


def test_rows_far_outside_the_listing_window_are_quarantined_not_dropped(sim, monkeypatch) -> None:
    simulator, paths = sim
    moved: dict[str, str] = {}

    def far_times(exchange: Exchange) -> Any:
        """The first two rows of the day in each page of door events get a 1970 or 2099 time."""
        if not exchange.path.endswith("/door/events"):
            return None
        body = exchange.json()
        rows = [r for r in body["data"]["list"] if str(r.get("eventTime", "")).startswith(DAY.isoformat())]
        for row, label in zip(rows, FAR, strict=False):
            row["eventTime"] = FAR[moved.setdefault(str(row["eventId"]), label)]
        return body

    with RewritingProxy(simulator.base_url, far_times) as proxy:
        monkeypatch.setenv("SMARTCOMM_ISC_URL", proxy.url)
        outcome = pull(ISC_SITE, "passages", DAY, DAY, policy=FAST)

    truth = simulator.control.truth(ISC_SITE, "passages", str(DAY), str(DAY))
    assert moved and set(moved.values()) == set(FAR), moved
    rows = landed(paths, "passages", ISC_SITE)
    assert len(rows) == truth["by_day"][str(DAY)] - len(moved)
    assert not {r[1] for r in rows} & set(moved)
    bad = quarantined(paths, "passages", ISC_SITE)
    assert {r[1] for r in bad} == set(moved)
    assert all(r[0] == str(DAY) and "outside the listing window" in r[2] for r in bad), bad
    (row,) = audit_rows(paths)
    assert row["rows_quarantined"] == len(moved) and row["rows_outside_window"] > 0  # the late day read ahead
    assert_balanced(row)
    assert outcome.figures.balanced


def gov_file(files: list[str], day: dt.date) -> Path:
    (path,) = [Path(f) for f in files if Path(f).name == f"gov_cases_{day:%Y%m%d}.csv"]
    return path


def rewrite_csv(path: Path, change) -> int:
    """Rewrite a GBK gov export's data rows with `change(rows) -> rows`; returns the rows kept."""
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("gbk"), newline="")))
    body = change(rows[1:])
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows([rows[0], *body])
    path.write_bytes(out.getvalue().encode("gbk"))
    return len(body)


def test_a_day_re_landed_with_far_fewer_rows_fails_naming_both_counts(sim) -> None:
    simulator, paths = sim

    def drop() -> list[str]:
        return simulator.control.drop_files(str(DAY), str(DAY + NEXT), site=FILE_SITE, kind="service_cases")

    drop()
    pull(FILE_SITE, "service_cases", DAY, DAY)
    before = partition_rows(paths, "service_cases", DAY)
    assert before and before >= 3, "too few cases that day for the test to mean anything"

    kept = rewrite_csv(gov_file(drop(), DAY), lambda rows: rows[: len(rows) // 3])  # delivered again, shorter
    with pytest.raises(FetchError) as refused:
        pull(FILE_SITE, "service_cases", DAY, DAY)
    message = str(refused.value)
    for part in (FILE_SITE, "service_cases", str(DAY), f"holds {before} rows", f"with {kept}", "--allow-shrink"):
        assert part in message, message
    assert partition_rows(paths, "service_cases", DAY) == before  # nothing replaced

    pull(FILE_SITE, "service_cases", DAY, DAY, allow_shrink=True)  # the source really holds fewer now
    assert partition_rows(paths, "service_cases", DAY) == kept
    first, refused_run, allowed = audit_rows(paths)
    assert refused_run["outcome"] == "failed" and not refused_run["allow_shrink"]
    assert allowed["allow_shrink"] and allowed["shrunk_days"] == f"{DAY}: {before} -> {kept}"
    for row in (first, allowed):
        assert_balanced(row)


def test_a_small_day_whose_rows_are_all_rejected_fails_and_writes_nothing(sim) -> None:
    simulator, paths = sim
    files = simulator.control.drop_files(str(DAY), str(DAY + NEXT), site=FILE_SITE, kind="service_cases")
    path = gov_file(files, DAY)
    header = next(csv.reader(io.StringIO(path.read_bytes().decode("gbk"))))
    case_id = header.index("办件编号")
    cases = rewrite_csv(path, lambda rows: [[*r[:case_id], "", *r[case_id + 1 :]] for r in rows])
    assert 2 <= cases < 20, "the day must be under min_rows_for_share_check, where the share check never fired"
    with pytest.raises(FetchError) as refused:
        pull(FILE_SITE, "service_cases", DAY, DAY)
    message = str(refused.value)
    for part in (FILE_SITE, "service_cases", f"day {DAY}", f"{cases} of {cases} rows rejected", "case_id"):
        assert part in message, message
    assert partition_rows(paths, "service_cases", DAY) is None  # not an empty delivered day
    assert path.exists()  # the vendor's file stays for the re-run (nothing lost)


def test_a_workbook_that_delivers_nothing_keeps_the_landed_month(sim) -> None:
    """The backfill of the issue: a month's register workbook dropped again for two days of
    the month holds no snapshot; the landed snapshot stays, and the run says not delivered."""
    simulator, paths = sim
    first, last = dt.date(2026, 1, 1), dt.date(2026, 1, 11)
    simulator.control.drop_files(str(first), str(last), site=FILE_SITE, kind="register")
    pull(FILE_SITE, "register", first, last)
    snapshot = partition_rows(paths, "register", first)
    assert snapshot

    simulator.control.drop_files("2026-01-10", "2026-01-11", site=FILE_SITE, kind="register")  # no 1st: no rows
    with pytest.raises(NotDeliveredError) as waiting:
        pull(FILE_SITE, "register", first, last)
    assert f"delivered nothing for {first}" in str(waiting.value), waiting.value
    assert partition_rows(paths, "register", first) == snapshot

    pull(FILE_SITE, "register", first, last, allow_shrink=True)
    assert partition_rows(paths, "register", first) == 0
    rows = audit_rows(paths)
    assert [r["outcome"] for r in rows] == ["success", "failed", "success"]
    assert rows[2]["shrunk_days"] == f"{first}: {snapshot} -> 0"
    for row in rows:
        assert_balanced(row)
    with duckdb.connect(str(paths.state_db), read_only=True) as con:  # the identity, as SQL over the audit
        unbalanced = con.execute(
            "select count(*) from load_audit where rows_fetched <> rows_landed + rows_deduplicated"
            " + rows_quarantined + rows_outside_window"
        ).fetchone()[0]
    assert unbalanced == 0
