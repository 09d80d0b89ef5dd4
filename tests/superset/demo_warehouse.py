"""A warehouse with the marts' shapes (issue 5) filled with seeded data, for Superset tests.

Used while the dbt project cannot yet build the marts from simulator data: the Superset
layer is tested against a real DuckDB file whose contents are the ground truth that the
charts must reproduce. 10 sites x 12 months from config/pilots.yml.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from ingestion.registry import Registry, load_registry

INDICATORS = [
    # id, dimension, direction, core, name_zh, unit, (1..5 star thresholds)
    ("camera_coverage", "infrastructure", "higher", True, "重点部位摄像头覆盖率", "%", (60, 75, 85, 90, 98)),
    ("camera_online_rate", "infrastructure", "higher", False, "摄像头在线率", "%", (70, 80, 90, 95, 99)),
    ("smart_gate_coverage", "infrastructure", "higher", False, "智能门禁覆盖率", "%", (30, 50, 70, 90, 100)),
    ("iot_online_rate", "infrastructure", "higher", False, "物联设备在线率", "%", (70, 80, 90, 95, 99)),
    ("register_freshness", "management", "higher", True, "人口房屋信息新鲜度", "%", (60, 75, 85, 92, 98)),
    ("alert_closure_rate", "management", "higher", False, "告警闭环率", "%", (70, 80, 90, 95, 99)),
    ("data_timeliness", "management", "higher", False, "数据及时率", "%", (80, 90, 95, 98, 99.5)),
    ("self_service_share", "convenience", "higher", True, "自助办理占比", "%", (20, 35, 50, 65, 80)),
    ("contact_free_share", "convenience", "higher", False, "无接触通行占比", "%", (50, 65, 80, 90, 97)),
    ("visitor_appointment_share", "convenience", "higher", False, "访客预约占比", "%", (20, 40, 60, 75, 90)),
    ("on_time_rate", "public_service", "higher", True, "按时办结率", "%", (90, 93, 96, 98, 99.5)),
    ("median_completion_days", "public_service", "lower", False, "办结时长中位数", "天", (10, 7, 5, 3, 1)),
    ("satisfaction_rate", "public_service", "higher", False, "满意率", "%", (60, 70, 80, 88, 95)),
    ("elderly_delivery_share", "public_service", "higher", False, "老年证送证上门率", "%", (50, 70, 85, 95, 99)),
    ("alarm_ack_p90", "safety", "lower", True, "告警响应时长P90", "分钟", (10, 5, 3, 2, 1)),
    ("fire_sensor_online_rate", "safety", "higher", False, "消防传感器在线率", "%", (80, 90, 95, 98, 99.5)),
    ("tailgating_rate", "safety", "lower", False, "尾随率（每万人次）", "次", (20, 10, 5, 2, 1)),
    ("fever_followup_rate", "safety", "higher", False, "发热跟进率", "%", (70, 80, 90, 95, 99)),
]
DIMENSIONS = {"infrastructure": 15, "management": 20, "convenience": 25, "public_service": 20, "safety": 20}
FRAMEWORKS = [("default", "默认星级模型", "star"), ("db37_community_2020", "DB37/T 3890 社区", "star")]
METHODS = ["face", "qr_visitor", "card", "manual"]
CHANNELS = ["terminal", "online", "counter", "home_delivery"]
ALERT_TYPES = ["tailgating", "fever", "abnormal_behaviour", "fire_lane"]
DEVICE_TYPES = ["camera", "gate", "fire_sensor", "iot"]


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple]) -> None:
    """Bulk insert through a DataFrame (DuckDB's executemany is row by row and slow)."""
    columns = [r[0] for r in con.execute(f"describe {table}").fetchall()]
    frame = pd.DataFrame(rows, columns=columns)  # noqa: F841 (read by DuckDB below)
    con.execute(f"insert into {table} select * from frame")


def _score(value: float, thresholds: tuple[float, ...], direction: str) -> tuple[float, int]:
    sign = 1 if direction == "higher" else -1
    v, th = sign * value, [sign * t for t in thresholds]
    if v >= th[4]:
        return 100.0, 5
    if v < th[0]:
        floor = th[0] - (th[1] - th[0]) * 2
        return max(0.0, 20 * (v - floor) / (th[0] - floor)), 0
    for k in range(4):
        if th[k] <= v < th[k + 1]:
            return 20 * (k + 1) + 20 * (v - th[k]) / (th[k + 1] - th[k]), k + 1
    raise AssertionError


def _stars(total: float) -> int:
    return 5 if total >= 90 else 4 if total >= 80 else 3 if total >= 70 else 2 if total >= 60 else 1


def build_demo_warehouse(path: Path, months: int = 12, seed: int = 7, registry: Registry | None = None) -> Path:
    """Write a warehouse DuckDB file with every mart the dashboards read."""
    registry = registry or load_registry()
    rng = random.Random(seed)
    month_starts = [date(2025 + (m // 12), m % 12 + 1, 1) for m in range(months)]
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        _build(con, registry, rng, month_starts)
    finally:
        con.close()
    return path


def _build(con: duckdb.DuckDBPyConnection, registry: Registry, rng: random.Random, months: list[date]) -> None:
    sites = registry.sites
    con.execute(
        "create table dim_street (street_id varchar primary key, street_name_zh varchar, street_name_en varchar)"
    )
    _insert(con, "dim_street", [(s.street_id, s.name_zh, s.name_en) for s in registry.streets])
    con.execute(
        "create table dim_site (site_id varchar primary key, site_name_zh varchar, site_name_en varchar,"
        " street_id varchar, site_kind varchar, is_sample boolean, residents integer)"
    )
    _insert(
        con,
        "dim_site",
        [(s.site_id, s.name_zh, s.name_en, s.street_id, s.kind, s.sample, s.residents) for s in sites],
    )
    con.execute(
        "create table dim_indicator (indicator_id varchar, indicator_name_zh varchar, dimension_id varchar,"
        " direction varchar, unit varchar, is_core boolean)"
    )
    _insert(con, "dim_indicator", [(i[0], i[4], i[1], i[2], i[5], i[3]) for i in INDICATORS])
    con.execute("create table dim_framework (framework_id varchar, framework_name_zh varchar, framework_kind varchar)")
    _insert(con, "dim_framework", FRAMEWORKS)

    # Each site has a quality level that drifts upward over the year.
    quality = {s.site_id: rng.uniform(0.35, 0.95) for s in sites}
    iv, isc, ds, sr, gaps = [], [], [], [], []
    for m_index, month in enumerate(months):
        for site in [*sites, None]:
            site_id = site.site_id if site else "district"
            q = (
                sum(quality.values()) / len(quality)
                if site is None
                else min(1.0, quality[site.site_id] + 0.01 * m_index)
            )
            na = site is not None and site.profile == "older_estate"
            for ind_id, dim, direction, _core, _name, _unit, th in INDICATORS:
                assessable = not (na and dim in ("infrastructure", "safety"))
                lo, hi = (th[0] * 0.8, th[4]) if direction == "higher" else (th[0] * 1.5, th[4])
                value = round(lo + (hi - lo) * min(1.0, max(0.0, q + rng.uniform(-0.15, 0.15))), 3)
                denominator = rng.randint(200, 5000)
                numerator = (
                    round(value / 100 * denominator)
                    if ind_id.endswith(("rate", "share", "coverage", "freshness", "timeliness"))
                    else None
                )
                iv.append(
                    (
                        site_id,
                        month,
                        ind_id,
                        value if assessable else None,
                        numerator,
                        denominator if numerator is not None else None,
                        assessable,
                        "passages",
                    )
                )
                for fw, _fname, _k in FRAMEWORKS:
                    score, stars = _score(value, th, direction) if assessable else (0.0, 0)
                    isc.append(
                        (site_id, month, fw, ind_id, value if assessable else None, round(score, 4), stars, assessable)
                    )
            for fw, _fname, _k in FRAMEWORKS:
                rows = [r for r in isc[-len(INDICATORS) * len(FRAMEWORKS) :] if r[2] == fw]
                dims = {}
                for dim in DIMENSIONS:
                    scores = [r[5] for r, ind in zip(rows, INDICATORS, strict=True) if ind[1] == dim]
                    dims[dim] = sum(scores) / len(scores)
                    ds.append((site_id, month, fw, dim, round(dims[dim], 4)))
                objective = sum(dims[d] * w for d, w in DIMENSIONS.items()) / 100
                survey = round(60 + 35 * q, 2)
                total = round(0.8 * objective + 0.2 * survey + (2.0 if site_id == "vanke_meili" else 0.0), 4)
                band = _stars(total)
                na_count = sum(1 for r in rows if not r[7])
                gate = band > 1 and na_count > 4
                stars = band - 1 if gate else band
                coverage = round(1 - na_count / len(rows), 4)
                sr.append(
                    (
                        site_id,
                        month,
                        fw,
                        round(objective, 4),
                        survey,
                        2.0 if site_id == "vanke_meili" else 0.0,
                        0.0,
                        total,
                        band,
                        gate,
                        stars,
                        coverage,
                        na_count,
                    )
                )
                if stars < 5:
                    ranked = sorted(
                        [(r, ind) for r, ind in zip(rows, INDICATORS, strict=True) if r[6] <= stars and r[7]],
                        key=lambda p: p[0][5],
                    )[:3]
                    for rank, (r, ind) in enumerate(ranked, start=1):
                        needed = ind[6][min(4, stars)]
                        gaps.append(
                            (
                                site_id,
                                month,
                                fw,
                                stars,
                                stars + 1,
                                rank,
                                ind[0],
                                r[4],
                                float(needed),
                                round(rng.uniform(0.5, 4), 2),
                            )
                        )
    con.execute(
        "create table indicator_values (site_id varchar, month date, indicator_id varchar, value double,"
        " numerator bigint, denominator bigint, assessable boolean, source_kinds varchar)"
    )
    _insert(con, "indicator_values", iv)
    con.execute(
        "create table indicator_scores (site_id varchar, month date, framework_id varchar, indicator_id varchar,"
        " value double, score double, indicator_stars integer, assessable boolean)"
    )
    _insert(con, "indicator_scores", isc)
    con.execute(
        "create table dimension_scores (site_id varchar, month date, framework_id varchar, dimension_id varchar, dimension_score double)"
    )
    _insert(con, "dimension_scores", ds)
    con.execute(
        "create table star_ratings (site_id varchar, month date, framework_id varchar, objective_score double,"
        " survey_score double, bonus double, deductions double, total_score double, band_stars integer,"
        " gate_capped boolean, stars integer, coverage double, not_assessable_count integer)"
    )
    _insert(con, "star_ratings", sr)
    con.execute(
        """create table district_ratings as
           select month, framework_id,
                  max(total_score) filter (where site_id = 'district') as pooled_total_score,
                  max(stars) filter (where site_id = 'district') as pooled_stars,
                  avg(total_score) filter (where site_id <> 'district') as site_weighted_total_score,
                  round(avg(stars) filter (where site_id <> 'district'))::integer as site_weighted_stars
           from star_ratings group by all"""
    )
    con.execute(
        "create table next_star_gaps (site_id varchar, month date, framework_id varchar, current_stars integer,"
        " target_stars integer, gap_rank integer, indicator_id varchar, current_value double, value_needed double,"
        " points_gained double)"
    )
    _insert(con, "next_star_gaps", gaps)
    _facts(con, sites, rng, months)


def _facts(con: duckdb.DuckDBPyConnection, sites, rng: random.Random, months: list[date]) -> None:
    passages, cases, alerts, devices = [], [], [], []
    end = months[-1].replace(day=28) + timedelta(days=4)
    last_day = end.replace(day=1) - timedelta(days=1)
    days = [months[0] + timedelta(days=d) for d in range((last_day - months[0]).days + 1)]
    for site in sites:
        has_gates = site.smart_gate_entrances > 0
        for day in days[::3]:
            for hour in range(24):
                base = site.residents * 3 / 24 * (1.6 if hour in (7, 8, 18, 19) else 0.2 if hour < 6 else 1.0) / 10
                for method in METHODS if has_gates else ["manual", "card"]:
                    share = {"face": 0.6, "qr_visitor": 0.05, "card": 0.2, "manual": 0.15}[method]
                    passages.append((site.site_id, day, hour, method, int(base * share * rng.uniform(0.8, 1.2))))
            for c in range(rng.randint(1, 4)):
                channel = rng.choice(CHANNELS)
                days_taken = rng.randint(0, 9)
                promised = rng.choice([3, 5, 7])
                applied = datetime(day.year, day.month, day.day, rng.randint(8, 17))
                cases.append(
                    (
                        f"{site.site_id}-{day}-{c}",
                        site.site_id,
                        day,
                        channel,
                        applied,
                        applied + timedelta(days=days_taken),
                        days_taken,
                        promised,
                        days_taken <= promised,
                        rng.randint(2, 5),
                    )
                )
            if has_gates:
                for a in range(rng.randint(0, 3)):
                    raised = datetime(day.year, day.month, day.day, rng.randint(0, 23), rng.randint(0, 59))
                    ack = rng.expovariate(1 / (4 if site.profile != "weak_response" else 12))
                    alerts.append(
                        (
                            f"{site.site_id}-{day}-{a}",
                            site.site_id,
                            day,
                            rng.choice(ALERT_TYPES),
                            raised,
                            raised + timedelta(minutes=ack),
                            round(ack, 2),
                            rng.random() < 0.9,
                        )
                    )
            for device_type in DEVICE_TYPES:
                expected = {
                    "camera": site.cameras,
                    "gate": site.smart_gate_entrances,
                    "fire_sensor": site.fire_sensors,
                    "iot": site.iot_devices,
                }[device_type] * 24
                if expected:
                    rate = rng.uniform(0.7, 1.0) if site.profile == "weak_response" else rng.uniform(0.93, 1.0)
                    devices.append((site.site_id, day, device_type, expected, int(expected * rate)))
    con.execute(
        "create table fct_passages (site_id varchar, local_date date, local_hour integer, method varchar, passages bigint)"
    )
    _insert(con, "fct_passages", passages)
    con.execute(
        "create table fct_service_cases (case_id varchar, site_id varchar, applied_date date, channel varchar,"
        " applied_at timestamp, completed_at timestamp, completion_days integer, promised_days integer,"
        " on_time boolean, rating integer)"
    )
    _insert(con, "fct_service_cases", cases)
    con.execute(
        "create table fct_alerts (alert_id varchar, site_id varchar, local_date date, alert_type varchar,"
        " raised_at timestamp, acknowledged_at timestamp, ack_minutes double, closed boolean)"
    )
    _insert(con, "fct_alerts", alerts)
    con.execute(
        "create table fct_device_hours (site_id varchar, local_date date, device_type varchar, device_hours bigint, online_hours bigint)"
    )
    _insert(con, "fct_device_hours", devices)


def add_quality_tables(warehouse: Path, state_db: Path, months: int = 12, seed: int = 11) -> None:
    """dq_results (warehouse) and load_audit (state) in the shapes expectations/ and ingestion/ write."""
    rng = random.Random(seed)
    registry = load_registry()
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(
            """create table dq_results (run_id varchar, validated_at_utc timestamp, layer varchar, site_id varchar,
               kind varchar, partition_date date, suite varchar, expectation varchar, expectation_type varchar,
               column_name varchar, severity varchar, success boolean, observed_value varchar,
               unexpected_count bigint, unexpected_percent double, unexpected_examples varchar, description varchar)"""
        )
        rows = []
        for site in registry.sites:
            for kind in site.sources:
                for d in range(0, 28, 7):
                    day = date(2025, months, 1) + timedelta(days=d)
                    for exp, severity in (
                        ("not_null:event_time", "critical"),
                        ("row_count_min", "warning"),
                        ("values_in_set:method", "info"),
                    ):
                        ok = rng.random() > 0.08
                        rows.append(
                            (
                                f"run-{day}",
                                datetime(day.year, day.month, day.day, 3),
                                "landing",
                                site.site_id,
                                kind,
                                day,
                                f"landing_{kind}",
                                exp,
                                "ExpectColumnValuesToNotBeNull",
                                None,
                                severity,
                                ok,
                                None,
                                0 if ok else rng.randint(1, 50),
                                None,
                                None,
                                None,
                            )
                        )
        _insert(con, "dq_results", rows)
    finally:
        con.close()
    state_db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(state_db))
    try:
        con.execute(
            """create table load_audit (run_id varchar, site_id varchar, kind varchar, source_shape varchar,
               interval_start date, interval_end date, rows_fetched bigint, rows_landed bigint,
               rows_deduplicated bigint, rows_quarantined bigint, retries integer, duration_s double,
               outcome varchar, error varchar, started_at_utc timestamp, finished_at_utc timestamp)"""
        )
        rows = []
        for site in registry.sites:
            for kind, source in site.sources.items():
                for d in range(0, 28, 7):
                    day = date(2025, months, 1) + timedelta(days=d)
                    fetched = rng.randint(100, 20000)
                    quarantined = rng.randint(0, 30)
                    ok = rng.random() > 0.05
                    started = datetime(day.year, day.month, day.day, 2)
                    rows.append(
                        (
                            f"run-{day}",
                            site.site_id,
                            kind,
                            source.shape,
                            day,
                            day + timedelta(days=1),
                            fetched,
                            fetched - quarantined,
                            0,
                            quarantined,
                            0,
                            rng.uniform(0.5, 20),
                            "success" if ok else "failed",
                            None if ok else "HTTP 503 after 5 retries",
                            started,
                            started + timedelta(seconds=30),
                        )
                    )
        _insert(con, "load_audit", rows)
    finally:
        con.close()


def add_quarantine(quarantine_dir: Path, seed: int = 13) -> int:
    """Quarantine files in the layout ingestion writes (<kind>/site=/date=/quarantine.parquet)."""
    rng = random.Random(seed)
    reasons = [
        "event_time: cannot read '2025-13-01 25:00'",
        "gate: unknown gate 'G99'",
        "temperature: 0 is not a body temperature",
        "id_card: checksum does not match",
        "duration: negative",
    ]
    total = 0
    for site in load_registry().sites[:6]:
        for kind in list(site.sources)[:3]:
            day = date(2025, 12, rng.randint(1, 28))
            rows = [(site.site_id, kind, day, rng.choice(reasons), "{}") for _ in range(rng.randint(1, 12))]
            target = quarantine_dir / kind / f"site={site.site_id}" / f"date={day}"
            target.mkdir(parents=True, exist_ok=True)
            frame = pd.DataFrame(rows, columns=["site_id", "kind", "day", "reason", "raw_record"])
            frame.to_parquet(target / "quarantine.parquet", index=False)
            total += len(rows)
    return total
