"""A real Airflow (`airflow standalone`, as `make airflow` starts it): trigger an ingest DAG over the
public REST API (/api/v2, JWT from /auth/token), let the asset trigger `evaluate_district`, wait."""

from __future__ import annotations

import time

import duckdb
import httpx
import pytest

from pipeline.airflow_server import start_airflow
from tests.e2e.conftest import E2E, MONTH_START

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
SITE = "lt_airport_block"
END_DAY = "2026-03-03"


def _runs(client: httpx.Client, dag_id: str) -> list[dict]:
    response = client.get(f"/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": 50})
    response.raise_for_status()
    return response.json()["dag_runs"]


def _wait(condition, what: str, timeout_s: float = 900):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(5)
    raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")


def test_real_airflow_runs_the_pipeline_over_the_rest_api(e2e: E2E, tmp_path) -> None:
    chain = e2e.chain("airflow")
    env = {**chain.env, "AIRFLOW_HOME": str(tmp_path / "airflow_home")}
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)  # standalone migrates its own SQLite DB
    with start_airflow(env) as airflow, airflow.client() as client:
        for dag_id in (f"ingest_{SITE}", "evaluate_district"):
            deadline = time.monotonic() + 180
            while client.get(f"/dags/{dag_id}").status_code == 404:  # the DAG processor is parsing
                assert time.monotonic() < deadline, f"{dag_id} never appeared"
                time.sleep(3)
            client.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        conf = {"start_day": MONTH_START.isoformat(), "end_day": END_DAY, "resume": False}
        triggered = client.post(f"/dags/ingest_{SITE}/dagRuns", json={"logical_date": None, "conf": conf})
        assert triggered.status_code == 200, triggered.text
        run_id = triggered.json()["dag_run_id"]

        def ingest_done() -> dict | None:
            run = next(r for r in _runs(client, f"ingest_{SITE}") if r["dag_run_id"] == run_id)
            return run if run["state"] in ("success", "failed") else None

        ingest = _wait(ingest_done, "the triggered ingest run")
        assert ingest["state"] == "success", ingest

        def evaluated_after_ingest() -> list[dict] | None:
            # The asset events trigger evaluate_district; wait until it is idle after our run landed.
            runs = _runs(client, "evaluate_district")
            if any(r["state"] in ("queued", "running") for r in runs):
                return None
            after = [r for r in runs if r["run_type"] == "asset_triggered" and r["end_date"] > ingest["end_date"]]
            return after or None

        evaluations = _wait(evaluated_after_ingest, "evaluate_district after the ingest run")
        assert all(r["state"] == "success" for r in evaluations), evaluations

    with duckdb.connect(str(chain.paths.serving_db), read_only=True) as con:
        sites = {
            r[0]
            for r in con.execute("select distinct site_id from star_ratings where month = ?", [MONTH_START]).fetchall()
        }
    assert SITE in sites and "district" in sites
