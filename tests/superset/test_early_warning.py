"""The 预警 (early warning) dashboard on a real Superset: its numbers equal the marts, a
street official sees only their street's warnings (row-level security as elsewhere), and in
a browser the list opens on open high and medium warnings while the counts show every status."""

from __future__ import annotations

import json

import pytest

from tests.superset.conftest import Client, RunningSuperset
from tests.superset.test_browser import CHROMIUM, logged_in_page, wait_rendered
from tests.superset.test_superset_api import _rows

pytestmark = pytest.mark.superset


def test_warning_charts_equal_the_marts(admin: Client, superset: RunningSuperset) -> None:
    serving = superset.serving
    ((total, open_now, high),) = serving.query(
        "select count(*), count(*) filter (where is_open), count(*) filter (where severity = 'high') from fct_warnings"
    )
    assert total > 0, "the serving data should hold warnings (simulator episodes are on by default)"
    by_site = _rows(admin, "预警数（按社区与严重程度）")
    assert sum(r["warning_count"] for r in by_site) == total
    expected_sites = {name for (name,) in serving.query("select distinct site_name_zh from fct_warnings")}
    assert {r["site_name_zh"] for r in by_site} == expected_sites
    assert _rows(admin, "进行中预警")[0]["open_warnings"] == open_now
    assert _rows(admin, "高等级预警")[0]["high_warnings"] == high
    listed = _rows(admin, "预警清单（最新在前）")
    assert len(listed) == total and all(r["explanation_zh"] for r in listed)
    forecast = _rows(admin, "日通行人次：实际与未来7天预测")
    ((forecast_days,),) = serving.query(
        "select count(distinct day) from fct_forecasts where measure = 'passages' and is_forecast"
    )
    assert forecast_days == 7 and len(forecast) >= 7


@pytest.mark.parametrize("street_id", ["chengyang", "liuting"])
def test_street_official_sees_only_their_streets_warnings(superset: RunningSuperset, street_id: str) -> None:
    client = superset.client(f"street_{street_id}")
    own = {name for (name,) in superset.serving.query("select name_zh from dim_site where street_id = ?", [street_id])}
    ((own_total,),) = superset.serving.query("select count(*) from fct_warnings where street_id = ?", [street_id])
    listed = _rows(client, "预警清单（最新在前）")
    assert {r["site_name_zh"] for r in listed} <= own
    assert len(listed) == own_total
    forecast = _rows(client, "日通行人次：实际与未来7天预测")
    ((own_actual,),) = superset.serving.query(
        "select sum(actual) from fct_forecasts where measure = 'passages' and street_id = ?", [street_id]
    )
    assert sum(r["actual_sum"] or 0 for r in forecast) == pytest.approx(own_actual)


LIST = "预警清单（最新在前）"
BY_SITE = "预警数（按社区与严重程度）"


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium missing: run `make setup-system`")
def test_the_list_opens_on_open_high_and_medium_warnings(admin: Client, superset: RunningSuperset) -> None:
    """The filters' defaults are applied on first load: the list's query asks for open (进行中)
    high and medium (高, 中) warnings, the counts by site keep every status, and the list
    shows as many rows as the marts hold such warnings."""
    from playwright.sync_api import sync_playwright

    chart_ids = {chart["slice_name"]: chart["id"] for chart in admin.charts()}
    dashboard = next(d for d in admin.dashboards() if d["slug"] == "early-warning")
    responses = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = logged_in_page(browser, superset, "admin")
        page.set_viewport_size({"width": 1600, "height": 4000})  # every chart in view: none is left unloaded
        page.on(
            "response", lambda r: "/api/v1/chart/data" in r.url and r.request.method == "POST" and responses.append(r)
        )
        page.goto(f"{superset.url}/superset/dashboard/{dashboard['slug']}/")
        page.wait_for_selector(".dashboard-component-chart-holder", timeout=60_000)
        wait_rendered(page, dashboard["dashboard_title"])
        queries, answers = {}, {}
        for response in responses:
            body = json.loads(response.request.post_data or "{}")
            slice_id = (body.get("form_data") or {}).get("slice_id")
            if slice_id:
                queries[slice_id], answers[slice_id] = body["queries"][0], response.json()
        browser.close()

    def filters(title: str) -> dict[str, list]:
        return {f["col"]: sorted(f["val"]) for f in queries[chart_ids[title]].get("filters", []) if f["op"] == "IN"}

    assert filters(LIST) == {"status_zh": ["进行中"], "severity_zh": sorted(["高", "中"])}
    assert filters(BY_SITE) == {"severity_zh": sorted(["高", "中"])}
    ((open_high_medium,),) = superset.serving.query(
        "select count(*) from fct_warnings where is_open and severity in ('high', 'medium')"
    )
    assert answers[chart_ids[LIST]]["result"][0]["rowcount"] == open_high_medium
