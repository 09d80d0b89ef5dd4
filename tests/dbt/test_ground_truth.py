"""indicator_values against the simulator's ground truth, for every site and the district.

The expected figures are computed here from `World.truth` (the simulator's own count of
what it generated), independently of the SQL: counts must match exactly, ratios within 1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.dbt.conftest import MONTH_END, MONTH_START, BuiltMonth

MANAGED_ALERT_TYPES = ("tailgating", "fever", "abnormal_behaviour")
WORKING_CAMERA_MIN_ONLINE_SHARE = 0.5  # dbt_project.yml vars.working_camera_min_online_share
COUNT_INDICATORS_WITHOUT_NUMERATOR = {"median_completion_days", "alarm_ack_p90_minutes"}


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> tuple[float, float, float | None]:
    return numerator, denominator, (numerator / denominator * scale) if denominator else None


def _site_truth(built: BuiltMonth, site) -> dict[str, dict]:
    return {
        kind: built.world.truth(site.site_id, kind, MONTH_START, MONTH_END)
        for kind in site.sources
        if kind in {"passages", "alerts", "fire_alarms", "device_status", "service_cases", "register", "surveys"}
    }


def _pieces(site, truth: dict[str, dict]) -> dict[str, tuple]:
    """(numerator, denominator) per ratio indicator and raw lists per distribution indicator."""
    out: dict[str, tuple] = {}
    days = (MONTH_END - MONTH_START).days + 1
    out["data_timeliness"] = (len(site.sources) * days, len(site.sources) * days)
    out["smart_gate_coverage"] = (site.smart_gate_entrances, site.pedestrian_entrances)
    out["gigabit_household_share"] = (site.gigabit_household_share * site.households, site.households)
    out["coverage_5g_area_share"] = (site.coverage_5g_area_share * site.area_m2, site.area_m2)
    if ds := truth.get("device_status"):
        by_type = ds["by_type"]
        cams = by_type.get("camera", {"device_hours": 0, "online_hours": 0})
        fire = by_type.get("fire_sensor", {"device_hours": 0, "online_hours": 0})
        covered = sum(
            1
            for kp in ds["by_key_point"].values()
            if kp["online_hours"] / kp["camera_hours"] >= WORKING_CAMERA_MIN_ONLINE_SHARE
        )
        out["keypoint_camera_coverage"] = (covered, site.key_points) if ds["device_hours"] else (None, 0)
        out["camera_online_rate"] = (cams["online_hours"], cams["device_hours"])
        out["iot_online_rate"] = (ds["online_hours"], ds["device_hours"])
        out["fire_sensor_online_rate"] = (fire["online_hours"], fire["device_hours"])
        out["keypoint_camera_online_rate"] = (
            sum(kp["online_hours"] for kp in ds["by_key_point"].values()),
            sum(kp["camera_hours"] for kp in ds["by_key_point"].values()),
        )
    if reg := truth.get("register"):
        snapshots = reg.get("snapshots", {})
        if snapshots:
            latest = snapshots[max(snapshots)]
            out["register_freshness"] = (latest["verified_within_30d"], latest["rows"])
    if al := truth.get("alerts"):
        raised = sum(al["by_type"].get(t, 0) for t in MANAGED_ALERT_TYPES)
        closed = sum(al.get("closed_by_type", {}).get(t, 0) for t in MANAGED_ALERT_TYPES)
        out["alert_closure_rate"] = (closed, raised)
        out["fever_followup_rate"] = (al["fever_followed_up_30min"], al["by_type"].get("fever", 0))
    if pa := truth.get("passages"):
        out["contact_free_passage_share"] = (pa["contact_free"], pa["rows"])
        out["visitor_qr_share"] = (pa["appointed_visitor_entries"], pa["visitor_entries"])
        tailgating_alerts = truth["alerts"]["by_type"].get("tailgating", 0) if "alerts" in truth else 0
        out["tailgating_per_10k"] = (tailgating_alerts, pa["rows"])
    if sc := truth.get("service_cases"):
        channels = sc.get("by_channel", {})
        out["self_service_share"] = (channels.get("terminal", 0) + channels.get("online", 0), sc["cases"])
        out["ontime_completion_rate"] = (sc["on_time"], sc["completed"])
        out["satisfaction_rate"] = (sc["ratings_ge4"], sc["rated"])
        out["elderly_home_delivery_share"] = (
            sc["elderly_certificates_home_within_3d"],
            sc["elderly_certificates_issued"],
        )
        out["median_completion_days"] = ("values", sc["completion_working_days"]["values"])
    if fa := truth.get("fire_alarms"):
        out["alarm_ack_p90_minutes"] = ("values", fa["ack_minutes"]["values"])
    return out


def _expected(pieces: dict[str, tuple]) -> dict[str, tuple]:
    """indicator -> (numerator, denominator, value) with the catalogue's definitions."""
    expected = {}
    for indicator, (numerator, denominator) in pieces.items():
        if numerator == "values":
            values = np.asarray(denominator, dtype=float)
            q = 50 if indicator == "median_completion_days" else 90
            value = float(np.percentile(values, q, method="linear")) if len(values) else None
            expected[indicator] = (None, len(values), value)
        elif numerator is None or not denominator:
            expected[indicator] = (None if numerator is None else numerator, denominator or 0, None)
        else:
            scale = 10000.0 if indicator == "tailgating_per_10k" else 1.0
            expected[indicator] = _ratio(numerator, denominator, scale)
    return expected


def _pool(per_site: list[dict[str, tuple]]) -> dict[str, tuple]:
    pooled: dict[str, list] = {}
    for pieces in per_site:
        for indicator, (numerator, denominator) in pieces.items():
            if numerator == "values":
                pooled.setdefault(indicator, ["values", []])[1].extend(denominator)
            elif numerator is not None and denominator:
                entry = pooled.setdefault(indicator, [0, 0])
                entry[0] += numerator
                entry[1] += denominator
    return {k: tuple(v) for k, v in pooled.items()}


@pytest.fixture(scope="module")
def expected_values(built_month: BuiltMonth) -> dict[tuple[str, str], tuple]:
    expected: dict[tuple[str, str], tuple] = {}
    all_pieces = []
    for site in built_month.registry.sites:
        pieces = _pieces(site, _site_truth(built_month, site))
        all_pieces.append(pieces)
        for indicator, figures in _expected(pieces).items():
            expected[(site.site_id, indicator)] = figures
    for indicator, figures in _expected(_pool(all_pieces)).items():
        expected[("district", indicator)] = figures
    return expected


@pytest.fixture(scope="module")
def actual_values(built_month: BuiltMonth) -> dict[tuple[str, str], tuple]:
    rows = built_month.query(
        "select site_id, indicator_id, numerator, denominator, value, assessable, month from indicator_values"
    )
    assert {row[6] for row in rows} == {MONTH_START}, "one local month was landed"
    return {(r[0], r[1]): (r[2], r[3], r[4], r[5]) for r in rows}


def test_every_site_and_indicator_has_a_row(built_month: BuiltMonth, actual_values) -> None:
    catalogue = {r[0] for r in built_month.query("select indicator_id from dim_indicator")}
    sites = {s.site_id for s in built_month.registry.sites} | {"district"}
    assert set(actual_values) == {(s, i) for s in sites for i in catalogue}


def test_indicator_values_match_the_simulator_truth(expected_values, actual_values) -> None:
    mismatches = []
    for key, (numerator, denominator, value) in sorted(expected_values.items()):
        got_numerator, got_denominator, got_value, assessable = actual_values[key]
        if value is None:
            if assessable or got_value is not None:
                mismatches.append(
                    f"{key}: expected not assessable, got {got_value} ({got_numerator}/{got_denominator})"
                )
            continue
        if not assessable:
            mismatches.append(f"{key}: expected {value}, got not assessable")
            continue
        if key[1] in {"gigabit_household_share", "coverage_5g_area_share"}:
            numerator_ok = abs(got_numerator - numerator) <= 1e-9 * max(1.0, abs(numerator))
        elif key[1] in COUNT_INDICATORS_WITHOUT_NUMERATOR:
            numerator_ok = got_numerator is None
        else:
            numerator_ok = got_numerator == numerator
        if not numerator_ok or got_denominator != denominator or abs(got_value - value) > 1e-9:
            mismatches.append(
                f"{key}: expected {numerator}/{denominator} = {value!r}, got {got_numerator}/{got_denominator} = {got_value!r}"
            )
    assert not mismatches, "\n".join(mismatches)


def test_not_assessable_where_a_site_has_no_such_system(expected_values, actual_values) -> None:
    # The older estate has no gates, cameras or fire sensors: those indicators have no evidence.
    for indicator in ("contact_free_passage_share", "camera_online_rate", "alarm_ack_p90_minutes"):
        assert actual_values[("cy_old_estate", indicator)][3] is False
    assert sum(1 for v in actual_values.values() if v[3]) > 0.8 * len(actual_values)


def test_survey_score_matches_the_truth_mean(built_month: BuiltMonth) -> None:
    rows = dict(
        built_month.query(
            "select site_id, survey_score from star_ratings where framework_id = 'default' and site_id <> 'district'"
        )
    )
    checked = 0
    for site in built_month.registry.sites:
        if "surveys" not in site.sources:
            continue
        mean = built_month.world.truth(site.site_id, "surveys", MONTH_START, MONTH_END)["mean_score"]
        if mean is None:
            assert rows[site.site_id] is None
        else:
            assert rows[site.site_id] == pytest.approx(100 * (mean - 1) / 4, abs=1e-9)
            checked += 1
    assert checked >= 5


def test_landing_was_clean_for_the_indicator_kinds(built_month: BuiltMonth) -> None:
    # Visitors are not used by any indicator; every other kind landed without quarantine.
    assert set(built_month.figures.quarantined) <= {"visitors"}
