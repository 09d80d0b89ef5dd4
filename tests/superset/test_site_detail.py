"""社区详情 (site detail) on a real Superset: its passage and device charts read the serving
rollups (fct_passage_hours, fct_device_days) and show the same numbers as the same chart on
the fact they read before (fct_passages: one row per passage; fct_device_hours: one row per
device-hour): unfiltered, under the dashboard's site and month filters, and under a street
official's row-level security."""

from __future__ import annotations

from typing import Any

import pytest

from superset_assets.bundle import load_assets, query_for
from tests.superset.conftest import Client, RunningSuperset

pytestmark = pytest.mark.superset
ASSETS = load_assets()
DATASETS = {doc["uuid"]: doc["table_name"] for name, doc in ASSETS.items() if name.startswith("datasets/")}
FACT_OF = {"fct_passage_hours": "fct_passages", "fct_device_days": "fct_device_hours"}  # rollup -> fact
ROLLUP_CHARTS = [
    doc for name, doc in ASSETS.items() if name.startswith("charts/") and DATASETS[doc["dataset_uuid"]] in FACT_OF
]


def _dataset_ids(client: Client) -> dict[str, int]:
    reply = client.get("/api/v1/dataset/", params={"q": "(page_size:100)"})
    reply.raise_for_status()
    return {d["table_name"]: d["id"] for d in reply.json()["result"]}


def _answer(client: Client, dataset_id: int, chart: dict[str, Any], filters: list[dict]) -> list[dict]:
    """The chart's own query (as bundle.py derives it from its params) on a dataset, plus filters."""
    query = query_for({**chart["params"], "viz_type": chart["viz_type"]})
    query["filters"] = [*query["filters"], *filters]
    body = {
        "datasource": {"id": dataset_id, "type": "table"},
        "force": True,
        "queries": [query],
        "result_format": "json",
        "result_type": "full",
    }
    reply = client.post("/api/v1/chart/data", json=body)
    assert reply.status_code == 200, reply.text[:500]
    result = reply.json()["result"][0]
    assert not result.get("error") and not result.get("rejected_filters"), result
    return result["data"]


def _same(chart: dict[str, Any], rollup: list[dict], fact: list[dict]) -> None:
    """Equal rows, matched on the chart's dimensions; metrics equal (ratios to 1e-12)."""
    dimensions = query_for({**chart["params"], "viz_type": chart["viz_type"]})["columns"]
    by_key = {tuple(row[c] for c in dimensions): row for row in fact}
    assert rollup and len(rollup) == len(fact) == len(by_key)
    for row in rollup:
        other = by_key[tuple(row[c] for c in dimensions)]
        assert row.keys() == other.keys()
        for name, value in row.items():
            expected = pytest.approx(other[name], rel=1e-12, abs=0) if isinstance(value, float) else other[name]
            assert value == expected, (name, row, other)


def test_the_site_detail_charts_on_large_facts_read_the_rollups() -> None:
    site_detail = ASSETS["dashboards/site_detail.yaml"]
    on_dashboard = {cell["chart"] for row in site_detail["layout"] for cell in row}
    charts = {doc["uuid"]: doc for name, doc in ASSETS.items() if name.startswith("charts/")}
    assert not {DATASETS[charts[uuid]["dataset_uuid"]] for uuid in on_dashboard} & set(FACT_OF.values())
    assert {doc["slice_name"] for doc in ROLLUP_CHARTS} == {
        "分时段通行人次（按通行方式）",
        "无接触通行占比",
        "访客预约占比",
        "设备在线率（按设备类型）",
    }
    targets = {t["datasetUuid"] for f in site_detail["metadata"]["native_filter_configuration"] for t in f["targets"]}
    assert {DATASETS[uuid] for uuid in targets} == {"fct_passage_hours"}


@pytest.mark.parametrize("chart", ROLLUP_CHARTS, ids=lambda c: c["params"].get("metric") or c["params"]["metrics"][0])
def test_rollup_charts_equal_the_fact(admin: Client, superset: RunningSuperset, chart: dict[str, Any]) -> None:
    ids = _dataset_ids(admin)
    rollup = DATASETS[chart["dataset_uuid"]]
    ((site, month),) = superset.serving.query(
        "select site_name_zh, strftime(max(event_month), '%Y-%m') from fct_passages group by 1 order by 1 limit 1"
    )
    for filters in (
        [],
        [
            {"col": "site_name_zh", "op": "IN", "val": [site]},  # the dashboard's native filters
            {"col": "month_label", "op": "IN", "val": [month]},
        ],
    ):
        _same(chart, _answer(admin, ids[rollup], chart, filters), _answer(admin, ids[FACT_OF[rollup]], chart, filters))


@pytest.mark.parametrize("street_id", ["chengyang", "liuting"])
def test_street_official_sees_only_their_streets_passages(superset: RunningSuperset, street_id: str) -> None:
    client = superset.client(f"street_{street_id}")
    ((own,),) = superset.serving.query("select count(*) from fct_passages where street_id = ?", [street_id])
    by_hour = next(doc for doc in ROLLUP_CHARTS if doc["slice_name"] == "分时段通行人次（按通行方式）")
    rows = _answer(client, _dataset_ids(superset.client("admin"))["fct_passage_hours"], by_hour, [])
    assert sum(r["passage_count"] for r in rows) == own > 0
