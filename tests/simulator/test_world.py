"""The synthetic world: determinism, day independence, canonical columns, truth consistency."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from ingestion.registry import load_kinds
from simulator.cli import build_parser
from simulator.world import COLUMNS, World, id_card_valid

DAY = date(2026, 2, 3)
PERSONAL = {
    "person_id",
    "person_name",
    "id_card",
    "face_url",
    "visitor_name",
    "visitor_phone",
    "visitor_id_card",
    "host_household_id",
    "plate_no",
    "applicant_name",
    "applicant_id_card",
    "applicant_phone",
    "name",
    "phone",
    "household_id",
    "unit",
    "room",
    "birth_date",
    "respondent_phone",
}


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=3)


def test_canonical_columns_are_the_contract_plus_personal_fields():
    kinds = load_kinds()["kinds"]
    for kind, columns in COLUMNS.items():
        contract = set(kinds[kind]["columns"])
        pseudonyms = {c for c, spec in kinds[kind]["columns"].items() if spec.get("pii_pseudonym")}
        missing = contract - pseudonyms - set(columns)
        assert not missing, f"{kind}: canonical records lack {missing}"
        extra = set(columns) - contract
        assert extra <= PERSONAL, f"{kind}: unexpected columns {extra - PERSONAL}"


def test_same_seed_same_day_independently_of_history(world):
    fresh = World(seed=3)
    alone = fresh.generate("vanke_meili", "passages", DAY)  # nothing generated before
    for day in (DAY - timedelta(days=2), DAY - timedelta(days=1)):
        world.generate("vanke_meili", "passages", day)
    assert world.generate("vanke_meili", "passages", DAY).equals(alone)
    assert not World(seed=4).generate("vanke_meili", "passages", DAY).equals(alone)


def test_id_cards_are_valid_and_people_are_consistent(world):
    register = world.records("xiaozhaizi", "register", date(2026, 2, 1))
    assert len(register) == world.site("xiaozhaizi").residents
    assert all(id_card_valid(r["id_card"]) for r in register)
    assert all(r["birth_date"].strftime("%Y%m%d") == r["id_card"][6:14] for r in register[:200])
    assert all(r["phone"].startswith("1") and len(r["phone"]) == 11 for r in register)
    households = {r["household_id"] for r in register}
    assert len(households) == world.site("xiaozhaizi").households


def test_daily_and_weekly_rhythm(world):
    weekday = world.records("vanke_meili", "passages", date(2026, 3, 4))  # a Wednesday
    sunday = world.records("vanke_meili", "passages", date(2026, 3, 8))
    festival = world.records("vanke_meili", "passages", date(2026, 2, 17))
    assert len(festival) < 0.7 * len(weekday)
    hours = Counter(r["event_time"].hour for r in weekday)
    assert hours[8] > 5 * hours[3] and hours[18] > 5 * hours[3]
    assert len(sunday) < len(weekday)


def test_visitor_passages_match_arrived_appointments(world):
    visitors = world.records("lt_harbour", "visitors", DAY)
    passages = world.records("lt_harbour", "passages", DAY)
    arrived = {v["appointment_id"] for v in visitors if v["arrival_time"]}
    used = {p["appointment_id"] for p in passages if p["appointment_id"]}
    assert arrived == used


def test_truth_agrees_with_the_canonical_records(world):
    records = world.records("vanke_meili", "passages", DAY)
    truth = world.truth("vanke_meili", "passages", DAY, DAY)
    assert truth["rows"] == len(records)
    assert truth["by_method"] == dict(sorted(Counter(r["method"] for r in records).items()))
    cases = world.records("xihoulou", "service_cases", DAY)
    case_truth = world.truth("xihoulou", "service_cases", DAY, DAY)
    assert case_truth["cases"] == len(cases)
    assert case_truth["completed"] == sum(1 for c in cases if c["completed_time"])
    alerts = world.records("lt_xincun", "alerts", DAY)
    alert_truth = world.truth("lt_xincun", "alerts", DAY, DAY)
    assert alert_truth["closed"] == sum(1 for a in alerts if a["closed_time"])


def test_gate_outage_episode_silences_its_gate():
    world = World(seed=3, anomalies_per_quarter=12)
    outages = [
        e for e in world.episodes("vanke_meili", date(2026, 1, 1), date(2026, 3, 31)) if e["type"] == "gate_outage"
    ]
    assert outages
    episode = outages[0]
    start, end = datetime.fromisoformat(episode["start"]), datetime.fromisoformat(episode["end"])
    passages = world.records("vanke_meili", "passages", start.date())
    at_gate = [p for p in passages if p["gate_id"] == episode["detail"]["gate_id"]]
    assert at_gate and not [p for p in at_gate if start <= p["event_time"] < end]
    assert World(seed=3, anomalies_per_quarter=0).episodes("vanke_meili", date(2026, 1, 1), date(2026, 3, 31)) == []


def test_older_estate_has_no_gates_or_devices(world):
    site = world.site("cy_old_estate")
    assert not world.serves("cy_old_estate", "passages") and not world.serves("cy_old_estate", "device_status")
    assert site.sources["register"].shape == "manual_xlsx"
    truth = world.truth("cy_old_estate", "passages", DAY, DAY)
    assert truth["served"] is False and truth["rows"] == 0


def test_cli_truth_prints_json(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator",
            "truth",
            "--seed",
            "3",
            "--site",
            "lt_jiayuan",
            "--kind",
            "fire_alarms",
            "--start",
            str(DAY),
            "--end",
            str(DAY),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(out.stdout)
    assert result["rows"] == World(seed=3).truth("lt_jiayuan", "fire_alarms", DAY, DAY)["rows"]


def test_every_cli_command_has_an_example():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        assert "Example: python -m simulator" in (sub.description or ""), name


def test_demo_faults_are_low_rate_malformed_and_late_only():
    rules = yaml.safe_load(Path("simulator/faults/demo.yml").read_text(encoding="utf-8"))["faults"]
    assert {r["fault"] for r in rules} == {"malformed_rows", "late_events"}
    assert all(r["params"]["rate"] <= 0.001 for r in rules)


def test_truth_per_day_breakdowns_add_up(world):
    start, end = DAY, DAY + timedelta(days=2)
    truth = world.truth("lt_jiayuan", "passages", start, end)
    per_day = truth["by_day_method"]
    assert sorted(per_day) == [str(start), str(start + timedelta(days=1)), str(end)]
    totals = Counter()
    for day, counts in per_day.items():
        totals.update(counts)
        records = world.records("lt_jiayuan", "passages", date.fromisoformat(day))
        assert counts == dict(sorted(Counter(r["method"] for r in records).items()))
    assert dict(totals) == truth["by_method"]
    devices = world.truth("lt_jiayuan", "device_status", start, start)
    assert (
        devices["by_day_device_type"][str(start)]["camera_online_hours"] == devices["by_type"]["camera"]["online_hours"]
    )
