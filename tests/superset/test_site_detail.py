"""社区详情 (site detail) on a real Superset: its passage and device charts read the serving
rollups (fct_passage_hours, fct_device_days), and show the numbers the row-level facts in
the warehouse give (fct_passages: one row per passage; fct_device_hours: one row per
device-hour), unfiltered, under the dashboard's site and month filters, and under a street
official's row-level security. The facts themselves are not published: Superset holds only
aggregates (brief: analytics needs pseudonymous keys and aggregate counts only)."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from superset_assets.bundle import chart_data_body, load_assets, query_for
from superset_assets.publish import load_publish_config
from tests.superset.conftest import Client, RunningSuperset

pytestmark = pytest.mark.superset
ASSETS = load_assets()
DATASETS = {doc["uuid"]: doc for name, doc in ASSETS.items() if name.startswith("datasets/")}
FACT_OF = {"fct_passage_hours": "fct_passages", "fct_device_days": "fct_device_hours"}  # rollup -> fact
ROLLUP_CHARTS = [
    doc
    for name, doc in ASSETS.items()
    if name.startswith("charts/") and DATASETS[doc["dataset_uuid"]]["table_name"] in FACT_OF
]
# The metrics as one would write them on the facts, row by row: the oracle for the rollups'
# SUM(...) / SUM(...) metrics. Other columns take the rollup dataset's own expression (its
# CASE labels and month_label read columns the facts have under the same names).
FACT_METRICS = {
    "passage_count": "count(*)",
    "contact_free_share": "avg(case when is_contact_free then 1.0 else 0.0 end)",
    "visitor_appointment_share": "sum(case when is_visitor_entry and appointment_id is not null then 1 else 0 end)"
    " * 1.0 / nullif(sum(case when is_visitor_entry then 1 else 0 end), 0)",
    "online_rate": "avg(case when online then 1.0 else 0.0 end)",
}
FACT_COLUMNS = {"hour_of_day": "hour(event_time)", "site_name_zh": "site.name_zh", "street_id": "site.street_id"}


def _dataset_ids(client: Client) -> dict[str, int]:
    reply = client.get("/api/v1/dataset/", params={"q": "(page_size:100)"})
    reply.raise_for_status()
    return {d["table_name"]: d["id"] for d in reply.json()["result"]}


def _query(chart: dict[str, Any], filters: list[dict]) -> dict[str, Any]:
    """The chart's own query (as bundle.py derives it from its params), plus filters."""
    query = query_for({**chart["params"], "viz_type": chart["viz_type"]})
    query["filters"] = [*query["filters"], *filters]
    return query


def _on_superset(client: Client, dataset_id: int, query: dict[str, Any]) -> list[dict]:
    reply = client.post("/api/v1/chart/data", json=chart_data_body(dataset_id, query, force=True))
    assert reply.status_code == 200, reply.text[:500]
    result = reply.json()["result"][0]
    assert not result.get("error") and not result.get("rejected_filters"), result
    return result["data"]


def _on_fact(superset: RunningSuperset, chart: dict[str, Any], query: dict[str, Any]) -> list[dict]:
    """The same query on the rollup's fact in the warehouse, in plain DuckDB."""
    rollup = DATASETS[chart["dataset_uuid"]]
    expressions = {c["column_name"]: c["expression"] for c in rollup["columns"] if c.get("expression")}

    def column(name: str) -> str:
        return FACT_COLUMNS.get(name) or expressions.get(name) or f"fact.{name}"

    dimensions, metrics = query["columns"], query["metrics"]
    # plain IN filters are all this oracle translates (the site-detail charts have no ad-hoc SQL)
    assert not query["extras"]["where"] and all(f["op"] == "IN" for f in query["filters"]), query
    selected = [f"{column(d)} as {d}" for d in dimensions] + [f"{FACT_METRICS[m]} as {m}" for m in metrics]
    where = " and ".join(f"{column(f['col'])} in ({', '.join('?' * len(f['val']))})" for f in query["filters"])
    sql = (
        f"select {', '.join(selected)} from {FACT_OF[rollup['table_name']]} fact join dim_site site using (site_id)"
        + (f" where {where}" if where else "")
        + (f" group by {', '.join(str(i + 1) for i in range(len(dimensions)))}" if dimensions else "")
    )
    con = duckdb.connect(str(superset.serving.warehouse), read_only=True)
    try:
        cursor = con.execute(sql, [v for f in query["filters"] for v in f["val"]])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def _same(dimensions: list[str], rollup: list[dict], fact: list[dict]) -> None:
    """Equal rows, matched on the chart's dimensions; metrics equal (ratios to 1e-12)."""
    by_key = {tuple(row[c] for c in dimensions): row for row in fact}
    assert rollup and len(rollup) == len(fact) == len(by_key)
    for row in rollup:
        other = by_key[tuple(row[c] for c in dimensions)]
        assert row.keys() == other.keys()
        for name, value in row.items():
            expected = pytest.approx(float(other[name]), rel=1e-12, abs=0) if isinstance(value, float) else other[name]
            assert value == expected, (name, row, other)


def test_the_site_detail_charts_read_rollups_and_the_facts_are_not_published() -> None:
    site_detail = ASSETS["dashboards/site_detail.yaml"]
    assert {doc["slice_name"] for doc in ROLLUP_CHARTS} == {
        "分时段通行人次（按通行方式）",
        "无接触通行占比",
        "访客预约占比",
        "设备在线率（按设备类型）",
    }
    targets = {t["datasetUuid"] for f in site_detail["metadata"]["native_filter_configuration"] for t in f["targets"]}
    assert {DATASETS[uuid]["table_name"] for uuid in targets} == {"fct_passage_hours"}
    published = load_publish_config()["warehouse"]
    facts = set(FACT_OF.values())
    assert not facts & {*published["required"], *published["optional"]}
    assert not facts & {doc["table_name"] for doc in DATASETS.values()}


@pytest.mark.parametrize("chart", ROLLUP_CHARTS, ids=lambda c: c["params"].get("metric") or c["params"]["metrics"][0])
def test_rollup_charts_equal_the_fact(admin: Client, superset: RunningSuperset, chart: dict[str, Any]) -> None:
    dataset_id = _dataset_ids(admin)[DATASETS[chart["dataset_uuid"]]["table_name"]]
    ((site, month),) = superset.serving.query(
        "select site_name_zh, strftime(max(event_month), '%Y-%m') from fct_passage_hours group by 1 order by 1 limit 1"
    )
    for filters in (
        [],
        [
            {"col": "site_name_zh", "op": "IN", "val": [site]},  # the dashboard's native filters
            {"col": "month_label", "op": "IN", "val": [month]},
        ],
    ):
        query = _query(chart, filters)
        _same(query["columns"], _on_superset(admin, dataset_id, query), _on_fact(superset, chart, query))


@pytest.mark.parametrize("street_id", ["chengyang", "liuting"])
def test_street_official_sees_only_their_streets_passages(superset: RunningSuperset, street_id: str) -> None:
    by_hour = next(doc for doc in ROLLUP_CHARTS if doc["slice_name"] == "分时段通行人次（按通行方式）")
    query = _query(by_hour, [])
    seen = _on_superset(
        superset.client(f"street_{street_id}"), _dataset_ids(superset.client("admin"))["fct_passage_hours"], query
    )
    own = _on_fact(superset, by_hour, _query(by_hour, [{"col": "street_id", "op": "IN", "val": [street_id]}]))
    _same(query["columns"], seen, own)
