"""Every role gets only what it needs (issue 19), against a real Superset.

`official` and each street official view the dashboards and nothing else: SQL Lab, CSV export,
dashboard export, chart creation and dataset listing answer 403; a street official's
hand-made chart-data requests (filters, WHERE clauses, metrics naming another street's site)
return only their own street. The roles are exactly roles.yml's permission lists, data access
is granted per dataset, and a dataset added later is invisible to street officials and stops
`make serve` until it has the street filter.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import yaml

from superset_assets import server
from superset_assets.bundle import chart_data_body, load_assets
from tests.superset.conftest import Client, RunningSuperset

pytestmark = pytest.mark.superset
ASSETS = load_assets()
ROLES = yaml.safe_load((server.PROJECT_ROOT / "superset_assets" / "roles.yml").read_text(encoding="utf-8"))
OBJECTS = ("Chart", "Dashboard", "Dataset", "Database")  # nobody but the admin writes these
SITE_DATASETS = sorted(
    doc["table_name"]
    for name, doc in ASSETS.items()
    if name.startswith("datasets/") and "site_id" in {c["column_name"] for c in doc["columns"]}
)


@pytest.fixture(scope="module")
def ids(superset: RunningSuperset, admin: Client) -> dict[str, Any]:
    """What the admin sees: dataset ids by table name, a chart, a dashboard, the serving database."""
    datasets = admin.get("/api/v1/dataset/", params={"q": "(page_size:100)"}).json()["result"]
    return {
        "datasets": {d["table_name"]: d["id"] for d in datasets},
        "chart": admin.charts()[0]["id"],
        "dashboard": admin.dashboards()[0]["id"],
        "database": superset.database_id(admin),
    }


def _refusals(client: Client, ids: dict[str, Any]) -> dict[str, int]:
    """The status of each thing a dashboard viewer must not do."""
    dataset = ids["datasets"]["star_ratings"]
    query = {"columns": ["site_id"], "metrics": [], "row_limit": 10}
    return {
        "sql_lab": client.post(
            "/api/v1/sqllab/execute/", json={"database_id": ids["database"], "sql": "select 1", "runAsync": False}
        ).status_code,
        "csv_export": client.get(f"/api/v1/chart/{ids['chart']}/data/", params={"format": "csv"}).status_code,
        "csv_query": client.post(
            "/api/v1/chart/data", json={**chart_data_body(dataset, query), "result_format": "csv"}
        ).status_code,
        "xlsx_query": client.post(
            "/api/v1/chart/data", json={**chart_data_body(dataset, query), "result_format": "xlsx"}
        ).status_code,
        "dashboard_export": client.get("/api/v1/dashboard/export/", params={"q": f"!({ids['dashboard']})"}).status_code,
        "chart_export": client.get("/api/v1/chart/export/", params={"q": f"!({ids['chart']})"}).status_code,
        "chart_create": client.post(
            "/api/v1/chart/",
            json={"slice_name": "probe", "viz_type": "table", "datasource_id": dataset, "datasource_type": "table"},
        ).status_code,
        "dashboard_create": client.post("/api/v1/dashboard/", json={"dashboard_title": "probe"}).status_code,
        "dataset_list": client.get("/api/v1/dataset/").status_code,
        "dataset_detail": client.get(f"/api/v1/dataset/{dataset}").status_code,
        "database_list": client.get("/api/v1/database/").status_code,
        "table_list": client.get(
            f"/api/v1/database/{ids['database']}/tables/", params={"q": "(schema_name:main)"}
        ).status_code,
    }


@pytest.mark.parametrize("who", ["official", "street"])
def test_officials_view_dashboards_and_nothing_else(superset: RunningSuperset, ids: dict[str, Any], who: str) -> None:
    for username in superset.usernames(who):
        client = superset.client(username)
        refusals = _refusals(client, ids)
        assert refusals == dict.fromkeys(refusals, 403), (username, refusals)
        assert len(client.dashboards()) == 5
        assert client.chart_data(ids["chart"]).status_code == 200


def test_analyst_has_sql_lab_and_csv_but_creates_and_exports_nothing(
    superset: RunningSuperset, ids: dict[str, Any]
) -> None:
    refusals = _refusals(superset.client("analyst"), ids)
    allowed = {"sql_lab", "csv_export", "csv_query", "xlsx_query", "dataset_list", "dataset_detail"}
    allowed |= {"database_list", "table_list"}
    assert {k: v for k, v in refusals.items() if k in allowed} == dict.fromkeys(allowed, 200), refusals
    assert {k: v for k, v in refusals.items() if k not in allowed} == dict.fromkeys(set(refusals) - allowed, 403)


def _role_permissions(superset: RunningSuperset) -> dict[str, set[tuple[str, str]]]:
    with sqlite3.connect(superset.instance.home / "superset.db") as con:
        rows = con.execute(
            """select r.name, p.name, v.name from ab_role r
               join ab_permission_view_role pvr on pvr.role_id = r.id
               join ab_permission_view pv on pv.id = pvr.permission_view_id
               join ab_permission p on p.id = pv.permission_id
               join ab_view_menu v on v.id = pv.view_menu_id"""
        ).fetchall()
    roles: dict[str, set[tuple[str, str]]] = {}
    for role, permission, view in rows:
        roles.setdefault(role, set()).add((permission, view))
    return roles


def test_roles_are_exactly_roles_yml_with_data_access_per_dataset(superset: RunningSuperset) -> None:
    """Custom roles built from explicit lists (no copy of Gamma): nothing more, and a street role's
    data access is one datasource_access per dataset of the bundle, never the whole database."""
    roles = _role_permissions(superset)
    sets = {name: {tuple(pair) for pair in pairs} for name, pairs in ROLES["permission_sets"].items()}
    bundle = {doc["table_name"] for name, doc in ASSETS.items() if name.startswith("datasets/")}
    for name in ["analyst", "official", *superset.usernames("street_")]:
        spec = ROLES["roles"].get(name) or ROLES["roles"][ROLES["street_roles"]["like"]]
        granted = roles[name]
        functional = {(p, v) for p, v in granted if not p.endswith("_access") or p == "menu_access"}
        assert functional == set().union(*(sets[s] for s in spec["permission_sets"])), name
        data = {(p, v) for p, v in granted if (p, v) not in functional}
        if spec.get("database") == "serving":
            assert {p for p, _ in data} == {"database_access"}, name
        else:
            assert {p for p, _ in data} == {"datasource_access"}, name
            assert {v.split("].[", 1)[1].split("]", 1)[0] for _, v in data} == bundle, name
        assert not {(p, v) for p, v in granted if p == "can_export" or (p == "can_write" and v in OBJECTS)}, name
    assert not {p for p, _ in roles["official"]} & {"can_csv", "can_sqllab", "can_execute_sql_query"}


def _site_rows(client: Client, dataset: int, query: dict[str, Any]) -> tuple[int, list[dict]]:
    reply = client.post("/api/v1/chart/data", json=chart_data_body(dataset, {"row_limit": 10000, **query}, force=True))
    if reply.status_code != 200:
        return reply.status_code, []
    result = reply.json()["result"][0]
    assert not result.get("error"), result["error"]
    return 200, result["data"]


@pytest.mark.parametrize("table", SITE_DATASETS)
def test_hand_made_queries_of_a_street_official_return_only_their_street(
    superset: RunningSuperset, ids: dict[str, Any], table: str
) -> None:
    """Filters, WHERE clauses and metrics naming another street's site: only the user's own
    street (and the district rows) come back, whatever the request says."""
    sites = dict(superset.serving.query("select site_id, street_id from dim_site"))
    dataset = ids["datasets"][table]
    for username in superset.usernames("street_"):
        street = username.removeprefix("street_")
        own = {site for site, s in sites.items() if s == street} | {"district"}
        other = sorted(site for site, s in sites.items() if s != street)[0]
        client = superset.client(username)
        count = {"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "n"}
        by_site = {"columns": ["site_id"], "metrics": [count]}
        probes = {
            "filter on another street's site": {**by_site, "filters": [{"col": "site_id", "op": "IN", "val": [other]}]},
            "WHERE ... OR 1 = 1": {**by_site, "extras": {"where": f"site_id = '{other}' OR 1 = 1"}},
            "WHERE breaking out of its brackets": {**by_site, "extras": {"where": f"1 = 1) OR (site_id = '{other}'"}},
            "HAVING ... OR 1 = 1": {**by_site, "extras": {"having": "1 = 1 OR 1 = 1"}},
            "column expression": {
                "columns": [{"expressionType": "SQL", "sqlExpression": "site_id", "label": "site_id"}],
                "metrics": [count],
                "extras": {"where": "1 = 1"},
            },
        }
        for name, query in probes.items():
            status, rows = _site_rows(client, dataset, query)
            assert status in (200, 400, 403), (username, table, name, status)
            leaked = {r["site_id"] for r in rows} - own
            assert not leaked, (username, table, name, leaked)
        metric = {
            "expressionType": "SQL",
            "sqlExpression": f"SUM(CASE WHEN site_id = '{other}' OR street_id <> '{street}' THEN 1 ELSE 0 END)",
            "label": "others",
        }
        status, rows = _site_rows(client, dataset, {"columns": [], "metrics": [metric]})
        assert status == 200 and rows and not rows[0]["others"], (username, table, rows)
        subquery = {"expressionType": "SQL", "sqlExpression": f"(SELECT COUNT(*) FROM {table})", "label": "all"}
        status, rows = _site_rows(client, dataset, {"columns": [], "metrics": [subquery]})
        assert status != 200, (username, table, "a sub-query in a metric must be refused", rows)


def test_a_dataset_added_later_is_invisible_to_streets_and_stops_make_serve(
    superset: RunningSuperset, admin: Client, ids: dict[str, Any]
) -> None:
    reply = admin.post(
        "/api/v1/dataset/",
        json={
            "database": ids["database"],
            "schema": "main",
            "table_name": "probe_every_site",
            "sql": "select site_id, name_zh from dim_site",
        },
    )
    assert reply.status_code == 201, reply.text[:300]
    added = reply.json()["id"]
    try:
        for username in [*superset.usernames("street_"), "official"]:
            status, _ = _site_rows(superset.client(username), added, {"columns": ["site_id"], "metrics": []})
            assert status == 403, (username, status)
        with pytest.raises(RuntimeError, match=r"lack the street filter: probe_every_site"):
            server.import_assets(superset.instance)  # what `make serve` runs before it starts gunicorn
    finally:
        assert admin.http.delete(f"/api/v1/dataset/{added}").status_code == 200
    check = superset.run_superset("python", "-m", "superset_assets.setup_superset", "--check-only")
    assert check.returncode == 0, check.stdout[-500:] + check.stderr[-500:]
