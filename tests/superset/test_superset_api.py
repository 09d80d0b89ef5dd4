"""Against a real Superset (gunicorn on a free port): import, chart data, numbers, roles, RLS, publish."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from superset_assets.bundle import build_bundle, load_assets
from tests.superset.conftest import Client, RunningSuperset

pytestmark = pytest.mark.superset
ASSETS = load_assets()
EXPECTED = {
    kind: sum(1 for name in ASSETS if name.startswith(f"{kind}/")) for kind in ("dashboards", "charts", "datasets")
}


def _counts(client: Client) -> dict[str, int]:
    return {
        "dashboards": len(client.dashboards()),
        "charts": len(client.charts()),
        "datasets": client.get("/api/v1/dataset/", params={"q": "(page_size:100)"}).json()["count"],
    }


def _chart_id(client: Client, name: str) -> int:
    return next(c["id"] for c in client.charts() if c["slice_name"] == name)


def _rows(client: Client, chart_name: str, force: bool = False) -> list[dict]:
    reply = client.chart_data(_chart_id(client, chart_name), force=force)
    assert reply.status_code == 200, reply.text[:500]
    result = reply.json()["result"][0]
    assert not result.get("error"), result["error"]
    return result["data"]


def test_assets_import_twice_without_duplicates(admin: Client, superset: RunningSuperset) -> None:
    assert _counts(admin) == EXPECTED
    bundle = build_bundle(serving_db=superset.serving.serving)
    for _ in range(2):
        reply = admin.post(
            "/api/v1/dashboard/import/",
            files={"formData": ("bundle.zip", bundle, "application/zip")},
            data={"overwrite": "true"},
        )
        assert reply.status_code == 200, reply.text[:500]
    assert _counts(admin) == EXPECTED
    titles = sorted(d["dashboard_title"] for d in admin.dashboards())
    assert titles == sorted(["区级总览", "社区详情", "指标与差距", "数据质量", "预警"])


def test_every_chart_of_every_dashboard_answers_with_rows(admin: Client) -> None:
    """Each dashboard's charts, as the dashboard lists them (what bench/dashboards.py requests):
    every one answers with rows and no error, and every chart is on a dashboard."""
    failures, seen = [], set()
    for dashboard in admin.dashboards():
        reply = admin.get(f"/api/v1/dashboard/{dashboard['id']}/charts")
        assert reply.status_code == 200, reply.text[:300]
        charts = reply.json()["result"]
        assert charts, f"{dashboard['dashboard_title']} has no charts"
        for chart in charts:
            seen.add(chart["id"])
            reply = admin.chart_data(chart["id"], force=True)
            where = f"{dashboard['dashboard_title']} / {chart['slice_name']}"
            if reply.status_code != 200:
                failures.append(f"{where}: HTTP {reply.status_code} {reply.text[:300]}")
                continue
            result = reply.json()["result"][0]
            if result.get("error") or not result.get("data"):
                failures.append(f"{where}: error={result.get('error')} rows={len(result.get('data') or [])}")
    assert not failures, "\n".join(failures)
    assert {c["slice_name"] for c in admin.charts() if c["id"] not in seen} == set()


def test_overview_numbers_equal_the_marts(admin: Client, superset: RunningSuperset) -> None:
    serving = superset.serving
    ranking = _rows(admin, "社区总分排名")
    expected = serving.query(
        """select site_name_zh, street_name_zh, avg(total_score), max(stars) from star_ratings
           where framework_id = 'default' and site_id <> 'district'
             and month = (select max(month) from star_ratings) group by all order by 3 desc"""
    )
    got = [(r["site_name_zh"], r["street_name_zh"], r["avg_total_score"], r["max_stars"]) for r in ranking]
    assert len(got) == len(expected) == 10
    assert sorted(g[:2] for g in got) == sorted(e[:2] for e in expected)
    assert [g[2] for g in got] == pytest.approx([e[2] for e in expected])
    assert {g[0]: g[3] for g in got} == {e[0]: e[3] for e in expected}

    stars = _rows(admin, "全区星级（汇聚口径）")[0]["pooled_stars_max"]
    score = _rows(admin, "全区总分（汇聚口径）")[0]["pooled_score_max"]
    ((district_stars, district_score),) = serving.query(
        "select pooled_stars, pooled_total_score from district_ratings where framework_id = 'default'"
        " order by month desc limit 1"
    )
    assert stars == district_stars and score == pytest.approx(district_score)

    per_framework = {r["framework_name_zh"]: r for r in _rows(admin, "各评价体系全区星级与目标")}
    latest = serving.query(
        """select framework_name_zh, pooled_stars, site_average_stars from district_ratings
           where month = (select max(month) from district_ratings)"""
    )
    assert set(per_framework) == {name for name, _, _ in latest} and len(latest) >= 2
    for name, pooled, average in latest:
        assert per_framework[name]["pooled_stars_max"] == pooled
        assert per_framework[name]["site_average_stars_max"] == pytest.approx(average)
        assert (per_framework[name]["target_4_stars"], per_framework[name]["ambition_5_stars"]) == (4, 5)

    dimensions = _rows(admin, "各社区五个维度得分")
    (expected_cells,) = serving.query(
        """select count(*) from dimension_scores where framework_id = 'default' and site_id <> 'district'
           and is_latest_month"""
    )[0]
    assert len(dimensions) == expected_cells == 50


@pytest.mark.parametrize("street_id", ["chengyang", "liuting"])
def test_street_official_sees_only_their_street(superset: RunningSuperset, street_id: str) -> None:
    client = superset.client(f"street_{street_id}")
    own = {name for (name,) in superset.serving.query("select name_zh from dim_site where street_id = ?", [street_id])}
    district = superset.serving.query("select distinct site_name_zh from star_ratings where site_id = 'district'")[0][0]
    ranking = {r["site_name_zh"] for r in _rows(client, "社区总分排名")}
    assert ranking == own and 0 < len(own) < 10
    # The district rows stay visible to every street; other streets' sites do not.
    assert _rows(client, "全区星级（汇聚口径）")[0]["pooled_stars_max"] is not None
    gaps = {r["site_name_zh"] for r in _rows(client, "升星差距（下一星级所需）")}
    assert gaps & own and gaps <= own | {district}
    cases = _rows(client, "办件渠道分布")
    (own_cases,) = superset.serving.query("select count(*) from fct_service_cases where street_id = ?", [street_id])[0]
    assert sum(r["case_count"] for r in cases) == own_cases > 0


def test_anonymous_visitors_get_nothing(superset: RunningSuperset, admin: Client) -> None:
    """The Public role is empty; its permissions are cached per worker (superset_assets/security.py)."""
    chart_id = admin.charts()[0]["id"]
    with httpx.Client(base_url=superset.url, timeout=60) as anonymous:
        for path in ("/api/v1/chart/", f"/api/v1/chart/{chart_id}/data/", "/api/v1/dashboard/", "/api/v1/dataset/"):
            reply = anonymous.get(path)
            assert reply.status_code == 401, (path, reply.status_code, reply.text[:200])


def test_official_gets_403_on_sql_lab_and_analyst_does_not(superset: RunningSuperset) -> None:
    database_id = next(
        d["id"]
        for d in superset.client("admin").get("/api/v1/database/").json()["result"]
        if d["database_name"] == "serving"
    )
    body = {
        "database_id": database_id,
        "sql": "select count(*) as n from star_ratings",
        "runAsync": False,
        "schema": "main",
    }
    official = superset.client("official").post("/api/v1/sqllab/execute/", json=body)
    assert official.status_code == 403, official.text[:300]
    analyst = superset.client("analyst").post("/api/v1/sqllab/execute/", json=body)
    assert analyst.status_code == 200, analyst.text[:300]
    (expected,) = superset.serving.query("select count(*) from star_ratings")[0]
    assert analyst.json()["data"][0]["n"] == expected
    # The official still reads the dashboards' data.
    assert _rows(superset.client("official"), "社区总分排名")


def test_charts_keep_answering_during_publish_and_see_new_data(admin: Client, superset: RunningSuperset) -> None:
    serving = superset.serving
    chart_id = _chart_id(admin, "全区总分（汇聚口径）")
    before = _rows(admin, "全区总分（汇聚口径）")[0]["pooled_score_max"]
    errors: list[str] = []
    answered = 0
    stop = threading.Event()

    def hammer() -> None:
        nonlocal answered
        client = Client(superset.url, "admin", superset.instance.logins()["admin"])
        while not stop.is_set():
            reply = client.chart_data(chart_id, force=True)
            result = reply.json().get("result", [{}])[0] if reply.status_code == 200 else {}
            if reply.status_code != 200 or result.get("error") or not result.get("data"):
                errors.append(f"HTTP {reply.status_code}: {reply.text[:200]}")
            answered += 1

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        con = duckdb.connect(str(serving.warehouse))
        con.execute("update district_ratings set pooled_total_score = pooled_total_score + 10")
        con.close()
        for _ in range(3):
            serving.republish()
            time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors[:5]
    assert answered >= 5
    # No force: the result cache is keyed by the serving file, so the new value shows at once.
    after = _rows(admin, "全区总分（汇聚口径）")[0]["pooled_score_max"]
    assert after == pytest.approx(before + 10)
    # Forced, on every worker (each keeps the serving file attached: serving_connection.py).
    for _ in range(6):
        assert _rows(admin, "全区总分（汇聚口径）", force=True)[0]["pooled_score_max"] == pytest.approx(before + 10)


def test_serving_database_is_read_only(admin: Client, superset: RunningSuperset) -> None:
    database = next(d for d in admin.get("/api/v1/database/").json()["result"] if d["database_name"] == "serving")
    detail = admin.get(f"/api/v1/database/{database['id']}/connection").json()["result"]
    assert detail["sqlalchemy_uri"].endswith("?access_mode=read_only")
    assert Path(detail["sqlalchemy_uri"].split("duckdb:///", 1)[1].split("?")[0]) == superset.serving.serving


def test_gunicorn_opens_no_control_socket(superset: RunningSuperset) -> None:
    """Two Superset instances on one machine (the demo and the tests) must not share gunicorn 27's
    default control socket at ~/.gunicorn/gunicorn.ctl: the second took it over and deleted it."""
    import psutil

    master = psutil.Process(superset.instance.process.pid)
    processes = [master, *master.children(recursive=True)]
    sockets = [conn.laddr for proc in processes for conn in proc.net_connections(kind="unix") if conn.laddr]
    assert len(processes) >= 3, "expected the gunicorn master and its workers"
    assert not [path for path in sockets if "gunicorn" in str(path) or str(path).endswith(".ctl")], sockets
