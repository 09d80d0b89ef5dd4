"""Issue 19, item 9: smaller doors. http:// only on loopback, alert hooks only from the
platform's own modules, SQL names and paths from configuration quoted, never pasted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
import yaml

from ingestion.http import FetchError, is_loopback
from ingestion.landing import land_records
from ingestion.paths import data_paths
from ingestion.pull import pull
from ingestion.registry import DEFAULT_REGISTRY, parse_registry
from ingestion.views import create_raw_views
from pipeline.alerts import Alert, raise_alerts, recorded_alerts
from tests.ingestion.test_against_simulator import FAST
from tests.ingestion.test_landing import passage

DAY = dt.date(2026, 1, 6)
CALLED: list[str] = []


def registry_with(base_url: str, shape: str):
    """The registry with every source of `shape` pointed at `base_url`."""
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text(encoding="utf-8"))
    for site in raw["sites"]:
        for source in site["sources"].values():
            if source["shape"] == shape:
                source["base_url"] = base_url
    return parse_registry(raw)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "[::1]"])
def test_loopback_hosts_may_use_http(host):
    assert is_loopback(host.strip("[]"))


@pytest.mark.parametrize(
    ("site", "shape", "url"),
    [
        ("cy_commerce_block", "isc_openapi", "http://isc.vendor.example/isc/{site_id}"),
        ("lt_airport_block", "token_rest", "http://10.0.0.8:8700/rest/{site_id}"),
        ("lt_airport_block", "token_rest", "ftp://rest.vendor.example/{site_id}"),
    ],
)
def test_http_to_a_vendor_host_is_refused_before_any_secret_is_sent(paths_env, site, shape, url):
    with pytest.raises(FetchError, match=r"is refused for vendor host .*use https://") as failure:
        pull(site, "passages", DAY, DAY, registry=registry_with(url, shape), policy=FAST)
    assert site in str(failure.value) and "passages" in str(failure.value)


def test_https_and_loopback_http_are_accepted(simulator, paths_env, monkeypatch):
    for name, value in simulator.env.items():
        monkeypatch.setenv(name, value)
    assert pull("lt_airport_block", "passages", DAY, DAY, policy=FAST).outcome == "success"  # http://127.0.0.1
    https = registry_with("https://127.0.0.1:1/rest/{site_id}", "token_rest")  # nothing listens: a transport error
    with pytest.raises(FetchError, match="gave up") as failure:
        pull("lt_airport_block", "passages", DAY, DAY, registry=https, policy=FAST)
    assert "refused for vendor host" not in str(failure.value)


@pytest.fixture
def paths_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SMARTCOMM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMARTCOMM_PSEUDONYM_KEY", "test-pseudonym-key")
    monkeypatch.setenv("SMARTCOMM_ISC_APP_KEY", "k")
    monkeypatch.setenv("SMARTCOMM_ISC_APP_SECRET", "s")
    monkeypatch.setenv("SMARTCOMM_REST_CLIENT_ID", "i")
    monkeypatch.setenv("SMARTCOMM_REST_CLIENT_SECRET", "s")
    return data_paths()


def hook_outside_the_allow_list(alert: Alert) -> None:
    CALLED.append(alert.key)


@pytest.mark.parametrize("spec", ["os:system", "tests.security.test_ingestion_doors:hook_outside_the_allow_list"])
def test_alert_hooks_outside_the_allowed_modules_are_never_imported(tmp_path, spec):
    CALLED.clear()
    alert = Alert("k1", "freshness", "warning", None, "迟到", "late", {})
    assert raise_alerts([alert], state_db=tmp_path / "state" / "state.duckdb", hooks=[spec]) == [alert]
    (record,) = recorded_alerts(tmp_path / "state" / "state.duckdb")
    assert "not under an allowed prefix" in record["hook_errors"] and CALLED == []


def test_allowed_hooks_still_run(tmp_path):
    alert = Alert("k2", "freshness", "warning", None, "迟到", "late", {})
    raise_alerts([alert], state_db=tmp_path / "state" / "state.duckdb", hooks=["pipeline.alerts:jsonl_hook"])
    assert (tmp_path / "alerts" / "alerts.jsonl").read_text(encoding="utf-8").count("\n") == 1
    assert recorded_alerts(tmp_path / "state" / "state.duckdb")[0]["hook_errors"] is None


def test_raw_views_quote_the_schema_and_the_data_directory(tmp_path, monkeypatch):
    root = tmp_path / 'it\'s "odd"; drop table canary; --'
    monkeypatch.setenv("SMARTCOMM_PSEUDONYM_KEY", "test-pseudonym-key")
    paths = data_paths(root)
    land_records("passages", "s1", "2026-03-02", [passage("e1")], source_shape="c", run_id="r", paths=paths)
    con = duckdb.connect(str(tmp_path / "views.duckdb"))
    con.execute("create table canary (x int)")
    schema = 'raw"; drop table canary; --'
    names = create_raw_views(con, paths, schema=schema)
    assert f"{schema}.passages" in names
    assert con.execute('select count(*) from "raw""; drop table canary; --".passages').fetchone() == (1,)
    assert con.execute("select count(*) from canary").fetchone() == (0,)
