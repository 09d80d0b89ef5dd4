"""The monthly evaluation report: its workbook and PDF say what the marts say, in Chinese.

Lives beside the Superset tests to share their serving database, built from the simulator through ingestion,
dbt, GX and publish (tests/superset/conftest.py), so the report reads real marts.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest

from reporting.data import load_evaluation, stars_text
from reporting.pdf import write_pdf
from reporting.workbook import write_workbook

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reports"


@pytest.fixture(scope="module")
def report(serving_data, tmp_path_factory):
    month = serving_data.query("select strftime(max(month), '%Y-%m') from star_ratings")[0][0]
    evaluation = load_evaluation(serving_data.serving, month, "default")
    out = tmp_path_factory.mktemp("report")
    return evaluation, write_workbook(evaluation, out / "report.xlsx"), write_pdf(evaluation, out / "report.pdf")


def test_workbook_summary_matches_star_ratings(report, serving_data):
    evaluation, xlsx, _ = report
    expected = {
        name: (stars, round(total, 1))
        for name, stars, total in serving_data.query(
            "select s.name_zh, r.stars, r.total_score from star_ratings r join dim_site s using (site_id)"
            " where r.framework_id = 'default' and r.month = ? and r.site_id <> 'district'",
            [evaluation.month],
        )
    }
    book = openpyxl.load_workbook(xlsx)
    assert book.sheetnames[0] == "汇总" and len(book.sheetnames) == 1 + len(expected)
    rows = list(book["汇总"].iter_rows(min_row=5, values_only=True))
    found = {row[0]: (row[3], round(row[4], 1)) for row in rows if row[0]}
    assert found == expected
    for name, (stars, _) in expected.items():
        assert any(row[2] == stars_text(stars) for row in rows if row[0] == name)


def test_pdf_names_every_site_and_renders(report):
    evaluation, _, pdf = report
    if not shutil.which("pdftotext"):
        pytest.fail("pdftotext missing: run `make setup-system` (poppler-utils)")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    missing = [site.name_zh for site in evaluation.sites if site.name_zh not in text.replace("\n", "")]
    assert not missing, f"site names missing from the PDF text: {missing}"
    assert "城阳区新型智慧社区试点评价报告" in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-singlefile", str(pdf), str(ARTIFACTS / "report-page-1")], check=True
    )
    assert (ARTIFACTS / "report-page-1.png").stat().st_size > 10_000


def test_unknown_month_or_framework_is_a_clear_error(serving_data):
    with pytest.raises(ValueError, match="months available"):
        load_evaluation(serving_data.serving, "1999-01", "default")
    with pytest.raises(ValueError, match="unknown framework"):
        load_evaluation(serving_data.serving, "2026-01", "no_such_framework")
