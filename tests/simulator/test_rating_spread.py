"""The profiles make ratings spread from 1 to 5 stars under the default model (indicators.md).

A rough re-computation from the simulator's truth, with the default thresholds and weights
read from the dbt seeds: only to check the simulator's tuning, not the platform's scoring
(the gate rule is left out; data timeliness is taken as met). Slow: a site-month each.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from simulator.world import World

SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds"
START, END = date(2026, 3, 1), date(2026, 3, 31)


def _csv(name: str) -> list[dict[str, str]]:
    with (SEEDS / name).open(encoding="utf-8") as handle:
        return (
            [r for r in csv.DictReader(handle) if r["framework_id"] == "default"]
            if "framework" in name
            else list(csv.DictReader(handle))
        )


def score(value: float | None, t: list[float], zero_at: float) -> float:
    """Star-anchored linear score: k-star threshold = 20k points (indicators.md)."""
    if value is None:
        return 0.0
    lower = t[0] > t[-1]
    sign = -1 if lower else 1
    v, ts, z = sign * value, [sign * x for x in t], sign * zero_at
    if v >= ts[4]:
        return 100.0
    if v < ts[0]:
        return max(0.0, 20 * (v - z) / (ts[0] - z)) if ts[0] != z else 0.0
    for k in range(4):
        if ts[k] <= v < ts[k + 1]:
            return 20 * (k + 1) + 20 * (v - ts[k]) / (ts[k + 1] - ts[k])
    return 100.0


def indicators(world: World, site_id: str) -> tuple[dict[str, float | None], float | None]:
    site = world.site(site_id)

    def t(kind: str) -> dict | None:
        return world.truth(site_id, kind, START, END) if world.serves(site_id, kind) else None

    def ratio(a: float, b: float) -> float | None:
        return a / b if b else None

    out: dict[str, float | None] = {}
    dev = t("device_status")
    if dev:
        covered = sum(1 for kp in dev["by_key_point"].values() if kp["online_hours"] / kp["camera_hours"] >= 0.5)
        out["keypoint_camera_coverage"] = covered / site.key_points
        cam = dev["by_type"].get("camera", {})
        out["camera_online_rate"] = ratio(cam.get("online_hours", 0), cam.get("device_hours", 0))
        out["iot_online_rate"] = ratio(dev["online_hours"], dev["device_hours"])
        fire = dev["by_type"].get("fire_sensor", {})
        out["fire_sensor_online_rate"] = ratio(fire.get("online_hours", 0), fire.get("device_hours", 0))
    out["smart_gate_coverage"] = ratio(site.smart_gate_entrances, site.pedestrian_entrances)
    reg = t("register")
    if reg:
        snap = reg["snapshots"][str(START)]
        out["register_freshness"] = ratio(snap["verified_within_30d"], snap["rows"])
    alerts = t("alerts")
    if alerts:
        sys_alerts = ("tailgating", "fever", "abnormal_behaviour")
        raised = sum(alerts["by_type"].get(a, 0) for a in sys_alerts)
        closed = sum(alerts["closed_by_type"].get(a, 0) for a in sys_alerts)
        out["alert_closure_rate"] = ratio(closed, raised)
        out["fever_followup_rate"] = ratio(alerts["fever_followed_up_30min"], alerts["by_type"].get("fever", 0))
    out["data_timeliness"] = 1.0
    cases = t("service_cases")
    if cases:
        ch = cases["by_channel"]
        out["self_service_share"] = ratio(ch.get("terminal", 0) + ch.get("online", 0), cases["cases"])
        out["ontime_completion_rate"] = ratio(cases["on_time"], cases["completed"])
        out["median_completion_days"] = cases["completion_working_days"]["median"]
        out["satisfaction_rate"] = ratio(cases["ratings_ge4"], cases["rated"])
        out["elderly_home_delivery_share"] = ratio(
            cases["elderly_certificates_home_within_3d"], cases["elderly_certificates_issued"]
        )
    passages = t("passages")
    if passages and passages["rows"]:
        out["contact_free_passage_share"] = ratio(passages["contact_free"], passages["rows"])
        out["visitor_qr_share"] = ratio(passages["appointed_visitor_entries"], passages["visitor_entries"])
        out["tailgating_per_10k"] = (
            10000 * alerts["by_type"].get("tailgating", 0) / passages["rows"] if alerts else None
        )
    fire_alarms = t("fire_alarms")
    if fire_alarms:
        out["alarm_ack_p90_minutes"] = fire_alarms["ack_minutes"]["p90"]
    surveys = t("surveys")
    survey = (surveys["mean_score"] - 1) / 4 * 100 if surveys and surveys["answers"] else None
    return out, survey


def stars(world: World, site_id: str) -> tuple[int, float]:
    thresholds = {r["indicator_id"]: r for r in _csv("framework_thresholds.csv")}
    weights = _csv("framework_weights.csv")
    dims = {r["item_id"]: float(r["weight"]) for r in weights if r["weight_of"] == "dimension"}
    values, survey = indicators(world, site_id)
    dim_scores: dict[str, list[tuple[float, float]]] = {d: [] for d in dims}
    for r in weights:
        if r["weight_of"] != "indicator":
            continue
        th = thresholds[r["item_id"]]
        s = score(values.get(r["item_id"]), [float(th[f"star_{k}"]) for k in range(1, 6)], float(th["zero_at"]))
        dim_scores[r["dimension_id"]].append((s, float(r["weight"])))
    objective = sum(dims[d] * sum(s * w for s, w in v) / sum(w for _, w in v) for d, v in dim_scores.items()) / sum(
        dims.values()
    )
    total = objective if survey is None else 0.8 * objective + 0.2 * survey
    band = 5 if total >= 90 else 4 if total >= 80 else 3 if total >= 70 else 2 if total >= 60 else 1
    return band, total


@pytest.mark.slow
def test_profiles_spread_the_ratings():
    world = World(seed=7, anomalies_per_quarter=0)
    result = {s.site_id: stars(world, s.site_id) for s in world.registry.sites}
    for site_id, (band, total) in result.items():
        print(f"{site_id:20s} {world.site(site_id).profile:20s} {total:5.1f} {band}★")
    by_profile = {world.site(s).profile: band for s, (band, _) in result.items()}
    assert by_profile["modern_estate"] == 5
    assert by_profile["older_estate"] == 1
    assert by_profile["weak_response"] <= 2
    assert by_profile["service_hub"] >= 4 and by_profile["integrated_sensing"] >= 4
    assert len({band for band, _ in result.values()}) >= 4
