"""Raw views over the landing zone, the PII scan and the CLI's help."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from ingestion.cli import build_parser, main
from ingestion.landing import land_records
from ingestion.pii_scan import scan_landing
from ingestion.views import create_raw_views
from tests.ingestion.test_landing import VALID_ID, passage


def test_raw_views_cover_every_kind_and_empty_ones(paths, tmp_path):
    land_records("passages", "s1", "2026-03-02", [passage("e1"), passage("e2")], source_shape="c", run_id="r")
    land_records(
        "passages", "s2", "2026-03-03", [passage("e3", event_time="2026-03-03 09:00")], source_shape="c", run_id="r"
    )
    con = duckdb.connect(str(tmp_path / "views.duckdb"))
    names = create_raw_views(con, paths)
    assert "raw.passages" in names and "raw.surveys" in names and "raw.quarantine" in names
    assert con.sql("select site_id, count(*) from raw.passages group by 1 order by 1").fetchall() == [
        ("s1", 2),
        ("s2", 1),
    ]
    assert con.execute("select count(*) from raw.surveys").fetchone() == (0,)
    assert "score" in [d[0] for d in con.sql("select * from raw.surveys").description]


def test_pii_scan_finds_clear_text_and_passes_pseudonyms(paths):
    land_records("passages", "s1", dt.date(2026, 3, 2), [passage("e1")], source_shape="c", run_id="r")
    assert scan_landing(paths).clean
    import pyarrow as pa
    import pyarrow.parquet as pq

    leak = paths.landing / "passages" / "site=s9" / "date=2026-03-02" / "data.parquet"
    leak.parent.mkdir(parents=True)
    pq.write_table(pa.table({"note": [f"id {VALID_ID}", "call 13812345678", "car 鲁B12345"]}), leak)
    hits = {h[2] for h in scan_landing(paths).hits}
    assert hits == {VALID_ID, "13812345678", "鲁B12345"}


@pytest.mark.parametrize("command", ["pull", "status", "views", "scan-pii", "pseudonym-key"])
def test_every_command_has_help_with_an_example(command):
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    assert "Example: python -m ingestion" in (sub.description or "")


def test_cli_rejects_unknown_site_and_reversed_range(paths, capsys):
    assert (
        main(["pull", "--site", "nowhere", "--kind", "passages", "--start", "2026-01-01", "--end", "2026-01-01"]) == 2
    )
    assert main(["pull", "--all", "--start", "2026-01-02", "--end", "2026-01-01"]) == 2
