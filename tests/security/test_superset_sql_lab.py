"""SQL Lab cannot reach the server's files or change the serving database for other users (issue 19).

Two layers, each tested on its own: the DuckDB sandbox of the serving connection
(superset_assets/serving_connection.py: external access off, configuration locked, no
extensions), driven directly here; and SQL Lab's statement filter (superset_assets/security.py),
against a real Superset as the demo `analyst`, whose refusals carry the filter's mark. After the
probes every role's dashboards still answer.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from superset_assets import serving_connection
from tests.superset.conftest import Client, RunningSuperset

SQL_LAB_GUARD = "sql_lab_statement_filter"  # superset_assets/security.py GUARD: the filter refused

# What an attacker tried (issue 19), and the rest of DuckDB's doors: file readers and writers,
# other databases, settings shared by every user of a worker, extensions, several statements.
FILE_PROBES = [
    "select * from read_text('{secret}')",
    "select * from read_blob('{secret}')",
    "select * from read_csv('/etc/passwd')",
    "select * from read_csv_auto('/etc/passwd')",
    "select * from glob('/etc/*')",
    "select * from '/etc/passwd'",
    "select * from '{quarantine}/**/*.parquet'",
    "select * from read_parquet('{quarantine}/**/*.parquet')",
    "select * from parquet_metadata('{quarantine}/kind=passages/x.parquet')",
    "select * from sniff_csv('/etc/passwd')",
    "with f as (select * from read_text('{secret}')) select content from f",
    "select (select content from read_text('{secret}')) as c",
    "select * from star_ratings, lateral read_text(star_ratings.site_id)",
    "select * from query('select * from read_text(''{secret}'')')",
]
WRITE_PROBES = [
    "copy (select * from star_ratings) to '{out}/x.csv'",
    "export database '{out}/exported'",
    "import database '{out}/exported'",
    "create table memory.main.t as select 1",
]
DATABASE_PROBES = [
    "attach '{out}/x.duckdb' as x",
    "attach ':memory:' as m",
    "detach serving",
    "use memory",
]
SETTING_PROBES = [
    "set memory_limit = '1MB'",
    "set threads = 1",
    "reset memory_limit",
    "pragma memory_limit = '1MB'",
    "set enable_external_access = true",
    "install httpfs",
    "load httpfs",
    "call pragma_version()",
]
MULTI_STATEMENT_PROBES = [
    "select 1; select 2",
    "select count(*) from star_ratings; copy (select 1) to '{out}/y.csv'",
    "select 1; set memory_limit = '1MB'",
]
ALL_PROBES = FILE_PROBES + WRITE_PROBES + DATABASE_PROBES + SETTING_PROBES + MULTI_STATEMENT_PROBES
SANDBOX_SETTINGS = {
    "enable_external_access": False,
    "lock_configuration": True,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
}


def _sql_lab(client: Client, database_id: int, sql: str):
    return client.post(
        "/api/v1/sqllab/execute/",
        json={"database_id": database_id, "sql": sql, "runAsync": False, "schema": "main"},
    )


# -- layer 1: the DuckDB sandbox, on the serving connection itself ------------------------
@pytest.fixture()
def sandboxed(tmp_path: Path) -> tuple[duckdb.DuckDBPyConnection, Path]:
    """A serving file beside a secret, opened the way every Superset worker opens it."""
    serving = tmp_path / "serving.duckdb"
    with duckdb.connect(str(serving)) as con:
        con.execute("create table star_ratings as select 'xihoulou' as site_id, 4 as stars")
    (tmp_path / "secret_key").write_text("not-for-sql")
    (tmp_path / "out").mkdir()
    (tmp_path / "quarantine" / "kind=passages").mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute(f"copy (select 'raw record' as r) to '{tmp_path / 'quarantine' / 'kind=passages' / 'x.parquet'}'")
    return serving_connection.serving_cursor(str(serving)), tmp_path


# DuckDB alone lets an in-memory table, `USE` and `CALL pragma_version()` through: the filter refuses them.
@pytest.mark.parametrize("probe", FILE_PROBES + WRITE_PROBES[:3] + DATABASE_PROBES[:1] + SETTING_PROBES[:-1])
def test_the_serving_connection_refuses_files_settings_and_extensions(sandboxed, probe: str) -> None:
    cursor, folder = sandboxed
    sql = probe.format(secret=folder / "secret_key", quarantine=folder / "quarantine", out=folder / "out")
    with pytest.raises(duckdb.Error):
        cursor.execute(sql).fetchall()
    assert sorted(p.name for p in (folder / "out").iterdir()) == []


def test_the_sandbox_holds_for_every_cursor_and_after_a_publish(sandboxed) -> None:
    cursor, folder = sandboxed
    serving = folder / "serving.duckdb"
    settings = "select name, value from duckdb_settings() where name in ({})".format(
        ", ".join(f"'{name}'" for name in SANDBOX_SETTINGS)
    )
    expected = {name: str(value).lower() for name, value in SANDBOX_SETTINGS.items()}
    assert dict(cursor.execute(settings).fetchall()) == expected
    memory = cursor.execute("select current_setting('memory_limit')").fetchone()
    with pytest.raises(duckdb.Error):
        cursor.execute("set memory_limit = '1MB'")
    other = serving_connection.serving_cursor(str(serving))
    assert other.execute("select current_setting('memory_limit')").fetchone() == memory
    # A publish renames a new file into place: the next cursor attaches it, sandboxed again.
    new = folder / "new.duckdb"
    with duckdb.connect(str(new)) as con:
        con.execute("create table star_ratings as select 'vanke_meili' as site_id, 5 as stars")
    os.replace(new, serving)
    after = serving_connection.serving_cursor(str(serving))
    assert after.execute("select site_id from star_ratings").fetchall() == [("vanke_meili",)]
    assert dict(after.execute(settings).fetchall()) == expected
    with pytest.raises(duckdb.Error):
        after.execute(f"select * from read_text('{folder / 'secret_key'}')").fetchall()


def test_disallowed_functions_name_the_file_readers_not_ordinary_functions() -> None:
    disallowed = serving_connection.sql_lab_disallowed_functions()
    assert {"read_text", "read_blob", "read_csv", "read_parquet", "glob", "query", "query_table"} <= disallowed
    assert {"sniff_csv", "parquet_metadata", "json_execute_serialized_sql"} <= disallowed
    assert not {"repeat", "histogram", "range", "unnest", "sum", "date_trunc", "current_setting"} & disallowed


# -- layer 2: SQL Lab's statement filter, on a real Superset ------------------------------
@pytest.fixture(scope="module")
def analyst(superset: RunningSuperset) -> Client:
    return superset.client("analyst")


@pytest.fixture(scope="module")
def serving_id(superset: RunningSuperset, admin: Client) -> int:
    return superset.database_id(admin)


@pytest.mark.superset
@pytest.mark.parametrize("probe", ALL_PROBES)
def test_sql_lab_refuses_every_probe(superset: RunningSuperset, analyst: Client, serving_id: int, probe: str) -> None:
    """Refused by the statement filter itself (not only by DuckDB behind it), and nothing leaks."""
    paths = superset.serving.pipeline.paths
    sql = probe.format(secret=superset.instance.secrets / "secret_key", quarantine=paths.quarantine, out=paths.root)
    reply = _sql_lab(analyst, serving_id, sql)
    assert reply.status_code != 200, reply.text[:300]
    errors = reply.json().get("errors") or [{}]
    assert errors[0].get("extra", {}).get("guard") == SQL_LAB_GUARD, reply.text[:500]
    secrets = [superset.instance.env["SUPERSET_SECRET_KEY"], *superset.instance.logins().values()]
    assert not [s for s in secrets if s in reply.text]
    assert not list(paths.root.glob("x.*")) and not list(paths.root.glob("y.*"))
    assert not (paths.root / "exported").exists()


@pytest.mark.superset
def test_sql_lab_answers_queries_inside_the_sandbox(
    superset: RunningSuperset, analyst: Client, serving_id: int
) -> None:
    names = ", ".join(f"current_setting('{name}') as {name}" for name in SANDBOX_SETTINGS)
    reply = _sql_lab(analyst, serving_id, f"select {names}")
    assert reply.status_code == 200, reply.text[:300]
    assert reply.json()["data"] == [SANDBOX_SETTINGS]
    reply = _sql_lab(analyst, serving_id, "select site_id, count(*) as n from star_ratings group by all order by 1")
    assert reply.status_code == 200, reply.text[:300]
    expected = superset.serving.query("select site_id, count(*) from star_ratings group by all order by 1")
    assert [(r["site_id"], r["n"]) for r in reply.json()["data"]] == expected
    reply = _sql_lab(analyst, serving_id, "select range as i, repeat('a', 2) as s from range(3)")
    assert reply.status_code == 200, reply.text[:300]


@pytest.mark.superset
def test_after_the_probes_every_role_s_dashboards_still_answer(
    superset: RunningSuperset, analyst: Client, serving_id: int
) -> None:
    """`SET memory_limit='1MB'` from one analyst once broke every other user's charts: after
    every setting probe, each chart of each dashboard answers for every role, uncached."""
    for probe in SETTING_PROBES + DATABASE_PROBES[1:]:
        _sql_lab(analyst, serving_id, probe)
    failures = []
    for username in superset.usernames():
        client = superset.client(username)
        dashboards = client.dashboards()
        assert len(dashboards) == 5, (username, [d["dashboard_title"] for d in dashboards])
        for dashboard in dashboards:
            charts = client.get(f"/api/v1/dashboard/{dashboard['id']}/charts").json()["result"]
            for chart in charts:
                reply = client.chart_data(chart["id"], force=True)
                result = reply.json().get("result", [{}])[0] if reply.status_code == 200 else {}
                if reply.status_code != 200 or result.get("error"):
                    failures.append(
                        f"{username} {dashboard['dashboard_title']}/{chart['slice_name']}: {reply.text[:200]}"
                    )
    assert not failures, "\n".join(failures[:10])
    reply = _sql_lab(
        analyst, serving_id, "select current_setting('memory_limit') as m, current_setting('threads') as t"
    )
    assert reply.json()["data"][0]["m"] != "1.0 MiB" and reply.json()["data"][0]["t"] != 1
