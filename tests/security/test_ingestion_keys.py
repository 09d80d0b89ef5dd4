"""Issue 19, item 3: demo secrets only in demo mode; the landing zone keeps its key.

Outside demo mode (SMARTCOMM_DEMO not 1) the pseudonym key must come from the environment,
be at least 32 random bytes and never the committed demo key; the vendor credentials must not
be the demo ones; and a landing zone refuses a key other than the one it was written with.
Demo mode relaxes only the first two (any non-empty key, the demo credentials)."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import stat

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.demo import demo_values
from ingestion.cli import main
from ingestion.http import FetchError
from ingestion.landing import land_records
from ingestion.landing_key import key_file
from ingestion.paths import DataPaths, data_paths
from ingestion.pii import Pseudonymizer, PseudonymKeyMismatch, PseudonymKeyRefused
from ingestion.pull import pull
from pipeline.demo import demo_environment
from tests.ingestion.test_against_simulator import FAST
from tests.ingestion.test_landing import passage

DAY = dt.date(2026, 3, 2)
DEMO_KEY = demo_values()["SMARTCOMM_PSEUDONYM_KEY"]


@pytest.fixture
def production(tmp_path, monkeypatch) -> DataPaths:
    """Outside demo mode, a private data directory and a proper key."""
    monkeypatch.setenv("SMARTCOMM_DEMO", "0")
    monkeypatch.setenv("SMARTCOMM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMARTCOMM_PSEUDONYM_KEY", secrets.token_urlsafe(32))
    return data_paths()


def land(paths: DataPaths, key: str | None = None, event: str = "e1"):
    pseudonymizer = Pseudonymizer(key) if key else None
    return land_records(
        "passages", "s1", DAY, [passage(event)], source_shape="c", run_id="r", paths=paths, pseudonymizer=pseudonymizer
    )


def test_demo_key_outside_demo_mode_refuses_to_land(production, monkeypatch, capsys):
    monkeypatch.setenv("SMARTCOMM_PSEUDONYM_KEY", DEMO_KEY)
    with pytest.raises(PseudonymKeyRefused, match=r"committed demo key of config/demo\.env.*SMARTCOMM_DEMO=1"):
        land(production)
    assert not production.landing.exists()
    code = main(
        ["pull", "--site", "cy_commerce_block", "--kind", "passages", "--start", "2026-01-05", "--end", "2026-01-05"]
    )
    assert code == 2 and "committed demo key" in capsys.readouterr().out
    assert not production.landing.exists() and not production.state_db.exists()


@pytest.mark.parametrize("key", ["short-key", "a" * 64, "0123456789abcdef0123456789abcde"])
def test_short_or_uniform_key_outside_demo_mode_refuses_to_land(production, monkeypatch, key):
    monkeypatch.setenv("SMARTCOMM_PSEUDONYM_KEY", key)
    with pytest.raises(PseudonymKeyRefused, match="at least 32 random bytes"):
        land(production)
    assert not production.landing.exists()


def test_demo_mode_accepts_any_non_empty_key(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTCOMM_DEMO", "1")
    for key in ("short-key", DEMO_KEY):
        result = land(data_paths(tmp_path / key), key=key)
        assert result.rows_landed == 1


def test_landing_records_the_key_fingerprint_never_the_key(production):
    land(production)
    path = key_file(production)
    text = path.read_text(encoding="utf-8")
    key = os.environ["SMARTCOMM_PSEUDONYM_KEY"]
    assert key not in text and json.loads(text)["fingerprint"] == Pseudonymizer().fingerprint()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_another_key_than_the_landing_zones_fails_loudly(production, monkeypatch, capsys):
    first = land(production)
    before = first.partitions[0].read_bytes()
    monkeypatch.setenv("SMARTCOMM_PSEUDONYM_KEY", secrets.token_urlsafe(32))
    with pytest.raises(PseudonymKeyMismatch, match=r"pseudonyms would not join.*fresh data directory"):
        land(production, event="e2")
    assert first.partitions[0].read_bytes() == before  # nothing rewritten with the other key
    code = main(
        ["pull", "--site", "cy_commerce_block", "--kind", "passages", "--start", "2026-01-05", "--end", "2026-01-05"]
    )
    out = capsys.readouterr().out
    assert code == 2 and "is not the key the landing zone" in out and "rotate" in out
    assert main(["pseudonym-key", "check"]) == 1


def test_a_landing_zone_without_a_fingerprint_is_adopted_only_on_purpose(production, monkeypatch):
    part = production.partition("passages", "s1", DAY.isoformat()) / "data.parquet"
    part.parent.mkdir(parents=True)
    pq.write_table(pa.table({"event_id": ["old"]}), part)  # landed before fingerprints existed
    with pytest.raises(PseudonymKeyMismatch, match="pseudonym-key adopt"):
        land(production)
    assert main(["pseudonym-key", "adopt"]) == 0
    assert land(production).rows_landed == 1
    assert main(["pseudonym-key", "check"]) == 0
    monkeypatch.setenv("SMARTCOMM_DEMO", "1")  # demo mode adopts an old demo landing zone by itself
    other = data_paths(production.root.parent / "old_demo")
    old = other.partition("passages", "s1", DAY.isoformat()) / "data.parquet"
    old.parent.mkdir(parents=True)
    pq.write_table(pa.table({"event_id": ["old"]}), old)
    assert land(other, key="short-key").rows_landed == 1 and key_file(other).exists()


def test_new_key_command_gives_a_key_production_accepts(production, monkeypatch, capsys):
    assert main(["pseudonym-key", "new"]) == 0
    key = capsys.readouterr().out.strip()
    monkeypatch.setenv("SMARTCOMM_PSEUDONYM_KEY", key)
    assert land(production).rows_landed == 1


@pytest.mark.parametrize(
    ("site", "own", "refused"),
    [
        ("cy_commerce_block", {}, "SMARTCOMM_ISC_APP_KEY"),
        ("cy_commerce_block", {"SMARTCOMM_ISC_APP_KEY": "own-app-key"}, "SMARTCOMM_ISC_APP_SECRET"),
        ("lt_airport_block", {}, "SMARTCOMM_REST_CLIENT_ID"),
        ("lt_airport_block", {"SMARTCOMM_REST_CLIENT_ID": "own-client"}, "SMARTCOMM_REST_CLIENT_SECRET"),
    ],
)
def test_demo_vendor_credentials_are_refused_outside_demo_mode(simulator, production, monkeypatch, site, own, refused):
    for name, value in {**simulator.env, **own}.items():
        if name != "SMARTCOMM_PSEUDONYM_KEY":
            monkeypatch.setenv(name, value)  # the demo credentials, against the real simulator
    with pytest.raises(FetchError, match=rf"{refused} holds a committed demo value.*SMARTCOMM_DEMO=1") as failure:
        pull(site, "passages", DAY, DAY, policy=FAST)
    assert site in str(failure.value) and "passages" in str(failure.value)
    if not own:
        monkeypatch.setenv("SMARTCOMM_DEMO", "1")  # the same run in demo mode lands
        assert pull(site, "passages", DAY, DAY, policy=FAST).outcome == "success"


def test_demo_environment_fills_in_demo_secrets_only_in_demo_mode(tmp_path, monkeypatch):
    for name in demo_values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMARTCOMM_DEMO", "0")
    env = demo_environment(tmp_path)
    assert not set(demo_values()) & set(env)
    monkeypatch.setenv("SMARTCOMM_DEMO", "1")
    env = demo_environment(tmp_path)
    assert {name: env[name] for name in demo_values()} == demo_values()
