"""The project's DAGs, unchanged, on Airflow's CeleryExecutor with two workers.

deploy/cluster.py starts Redis, the API server, scheduler, DAG processor and two Celery
workers (each named by deploy/hostname.py) on free loopback ports, with the registry cut to
two sites. Unpausing the sites' ingest DAGs makes the scheduler run the last complete local
day, as in production; their landing Assets trigger `evaluate_district` (GX, dbt, publish).
The test waits for all of it through the REST API and checks that both workers ran tasks
and that the published ratings name both sites.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import httpx
import pendulum
import pytest
import yaml

from deploy.cluster import Settings, down, up
from ingestion.paths import data_paths
from ingestion.registry import DEFAULT_REGISTRY
from tests.scale.conftest import SITES, cluster_settings, require_scale_environment

# Starts the Airflow half of the stack and runs a day's pipeline: minutes, beyond the suite's default timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

DAGS = [f"ingest_{site}" for site in SITES]
FINISHED = {"success", "failed"}


@dataclass
class AirflowApi:
    settings: Settings
    http: httpx.Client

    @classmethod
    def connect(cls, settings: Settings) -> AirflowApi:
        token = httpx.post(
            f"{settings.airflow_url}/auth/token",
            json={"username": "admin", "password": settings.admin_password()},
            timeout=30,
        )
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        return cls(settings, httpx.Client(base_url=f"{settings.airflow_url}/api/v2", headers=headers, timeout=60))

    def wait_for_dag(self, dag_id: str, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while self.get_status(f"/dags/{dag_id}") != 200:
            assert time.monotonic() < deadline, f"{dag_id} was not parsed within {timeout_s:.0f} s"
            time.sleep(2)

    def get_status(self, path: str) -> int:
        try:
            return self.http.get(path).status_code
        except httpx.TimeoutException:
            return 0

    def unpause(self, dag_id: str) -> None:
        self.http.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def get(self, path: str, **params) -> dict:
        """GET with patience: the API server shares a SQLite DB with a busy scheduler."""
        for attempt in range(5):
            try:
                response = self.http.get(path, params=params)
                response.raise_for_status()
                return response.json()
            except httpx.TimeoutException:
                if attempt == 4:
                    raise
                time.sleep(5)
        raise AssertionError("unreachable")

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]

    def wait_for_runs(self, dag_id: str, timeout_s: float) -> list[dict]:
        """At least one run of the DAG, all finished."""
        deadline = time.monotonic() + timeout_s
        while True:
            runs = self.runs(dag_id)
            if runs and all(run["state"] in FINISHED for run in runs):
                return runs
            assert time.monotonic() < deadline, f"{dag_id}: runs not finished in {timeout_s:.0f} s: {runs}"
            time.sleep(5)


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory: pytest.TempPathFactory, simulator) -> Iterator[Settings]:
    """The Airflow half of the stack, its tasks pointed at the test simulator and a 2-site registry."""
    require_scale_environment(celery=True)
    root = tmp_path_factory.mktemp("celery")
    registry = yaml.safe_load(DEFAULT_REGISTRY.read_text(encoding="utf-8"))
    registry["sites"] = [site for site in registry["sites"] if site["site_id"] in SITES]
    registry_file = root / "pilots.yml"
    registry_file.write_text(yaml.safe_dump(registry, allow_unicode=True), encoding="utf-8")
    settings = cluster_settings(root / "state", root / "data")
    patch = pytest.MonkeyPatch()
    for key, value in {**simulator.env, "SMARTCOMM_REGISTRY": str(registry_file)}.items():
        patch.setenv(key, value)
    try:
        up(settings, ["airflow"])
        yield settings
    finally:
        down(settings)
        patch.undo()


def test_one_day_for_two_sites_runs_on_both_celery_workers(celery_stack: Settings, simulator) -> None:
    # The scheduler runs the last complete local day once a DAG is unpaused (catchup off).
    today = pendulum.now("Asia/Shanghai").date()
    day = today - dt.timedelta(days=1)
    for site in SITES:
        simulator.control.drop_files((day - dt.timedelta(days=2)).isoformat(), today.isoformat(), site=site)

    api = AirflowApi.connect(celery_stack)
    for dag_id in [*DAGS, "evaluate_district"]:
        api.wait_for_dag(dag_id)
    api.unpause("evaluate_district")
    for dag_id in DAGS:
        api.unpause(dag_id)

    hostnames: dict[str, set[str]] = {}
    for dag_id in DAGS:
        runs = api.wait_for_runs(dag_id, timeout_s=900)
        assert [run["state"] for run in runs] == ["success"], f"{dag_id}: {runs}"
        assert pendulum.parse(runs[0]["data_interval_start"]).in_tz("Asia/Shanghai").date() == day
        for task in api.task_instances(dag_id, runs[0]["dag_run_id"]):
            hostnames.setdefault(task["hostname"], set()).add(f"{dag_id}.{task['task_id']}")

    evaluations = api.wait_for_runs("evaluate_district", timeout_s=1200)
    assert all(run["state"] == "success" for run in evaluations), evaluations
    for run in evaluations:
        for task in api.task_instances("evaluate_district", run["dag_run_id"]):
            if task["state"] == "success":
                hostnames.setdefault(task["hostname"], set()).add(f"evaluate_district.{task['task_id']}")

    assert {"worker-1", "worker-2"} <= set(hostnames), f"tasks per worker: {hostnames}"

    serving = data_paths(celery_stack["SMARTCOMM_DATA_DIR"]).serving_db
    with duckdb.connect(str(serving), read_only=True) as con:
        rated = {row[0] for row in con.execute("select distinct site_id from star_ratings").fetchall()}
    assert set(SITES) <= rated, f"published ratings name {rated}"
