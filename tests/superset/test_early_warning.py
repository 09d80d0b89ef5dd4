"""The 预警 (early warning) dashboard on a real Superset: its numbers equal the marts, and a
street official sees only their street's warnings (row-level security as elsewhere)."""

from __future__ import annotations

import pytest

from tests.superset.conftest import Client, RunningSuperset
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
