"""Fixtures for the data-quality tests: one GX context per test session, landed data in tmp dirs.

Partitions are written by the real landing writer (`ingestion.landing.land_records`), so the
suites are checked against exactly what ingestion produces; faults that ingestion would
never write (a truncated or doubled file, a renamed column) are made on disk afterwards,
the way they would reach the landing zone.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

SITE = "cy_commerce_block"  # 900 residents: about 2,700 passages a day keeps the tests fast
FIRST_DAY = dt.date(2026, 1, 1)


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCOMM_PSEUDONYM_KEY", "test-pseudonym-key")


@pytest.fixture(scope="session")
def gx_engine(tmp_path_factory: pytest.TempPathFactory):
    from expectations.engine import GxEngine

    return GxEngine(tmp_path_factory.mktemp("gx"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def validator(gx_engine, data_dir: Path):
    from expectations.landing import LandingValidator

    return LandingValidator(data_dir=data_dir, engine=gx_engine)


def passages(site_residents: int, day: dt.date, seed: int, per_resident: float = 3.0) -> list[dict]:
    """Canonical passage records of one local day (clear-text person id, as a connector hands them over)."""
    rng = random.Random(f"{seed}-{day}")
    start = dt.datetime.combine(day, dt.time())
    rows = []
    for i in range(int(site_residents * per_resident * rng.uniform(0.9, 1.1))):
        visitor = rng.random() < 0.03
        rows.append(
            {
                "event_id": f"P{day:%Y%m%d}{i:06d}",
                "event_time": start + dt.timedelta(seconds=rng.randrange(86400)),
                "gate_id": f"G{rng.randrange(1, 4)}",
                "direction": rng.choice(["in", "out"]),
                "method": "qr_visitor" if visitor else rng.choice(["face", "face", "card"]),
                "person_type": "visitor" if visitor else "resident",
                "person_id": None if visitor else f"R{rng.randrange(site_residents):05d}",
                "appointment_id": f"A{day:%Y%m%d}{i:06d}" if visitor else None,
                "temperature_c": round(rng.uniform(36.0, 37.2), 1),
                "tailgating": rng.random() < 0.001,
            }
        )
    return rows


def alerts(day: dt.date, seed: int, count: int = 20) -> list[dict]:
    rng = random.Random(f"alerts-{seed}-{day}")
    start = dt.datetime.combine(day, dt.time())
    rows = []
    for i in range(count):
        raised = start + dt.timedelta(seconds=rng.randrange(80000))
        rows.append(
            {
                "alert_id": f"A{day:%Y%m%d}{i:04d}",
                "alert_type": rng.choice(["tailgating", "fever", "loitering"]),
                "device_id": f"CAM{rng.randrange(50):03d}",
                "raised_time": raised,
                "acknowledged_time": raised + dt.timedelta(minutes=rng.randrange(1, 20)),
                "closed_time": raised + dt.timedelta(minutes=rng.randrange(20, 120)),
            }
        )
    return rows


@pytest.fixture
def land(data_dir: Path) -> Callable[..., object]:
    """land(kind, day, records, site=SITE): the real landing writer into the test's data dir."""
    from ingestion.landing import land_records
    from ingestion.paths import data_paths

    def _land(kind: str, day: dt.date, records: list[dict], site: str = SITE):
        return land_records(
            kind, site, day, records, source_shape="isc_openapi", run_id="test-run", paths=data_paths(data_dir)
        )

    return _land


@pytest.fixture(scope="session")
def _clean_week_template(tmp_path_factory: pytest.TempPathFactory, registry) -> tuple[Path, list[dt.date]]:
    """Eight clean days of passages and alerts for SITE, landed once per session."""
    from ingestion.landing import land_records
    from ingestion.paths import data_paths

    root = tmp_path_factory.mktemp("clean_week") / "data"
    residents = registry.site(SITE).residents
    days = [FIRST_DAY + dt.timedelta(days=i) for i in range(8)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMARTCOMM_PSEUDONYM_KEY", "test-pseudonym-key")
        for day in days:
            for kind, records in (("passages", passages(residents, day, seed=7)), ("alerts", alerts(day, seed=7))):
                land_records(
                    kind, SITE, day, records, source_shape="isc_openapi", run_id="test-run", paths=data_paths(root)
                )
    return root, days


@pytest.fixture
def clean_week(_clean_week_template, data_dir: Path) -> list[dt.date]:
    """The clean week copied into this test's data dir (tests may damage it); returns the days."""
    template, days = _clean_week_template
    shutil.copytree(template, data_dir, dirs_exist_ok=True)
    return days
