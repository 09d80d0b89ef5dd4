"""Ground truth: the exact figures a correct platform must find (README "Ground truth").

Figures count the records whose true local day is in the range, minus the malformed ones
(which the platform must quarantine). Computed day by day, so memory stays flat with the
length of the range.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import Any

import numpy as np

from simulator.world import DAY_COLUMN, ID_COLUMN, LATE_KINDS, Batch, World, batch_len, day_range, working_days_between

# Per-day breakdown of each kind's main category (truth key `by_day_<column>`).
BY_DAY_COLUMN = {
    "passages": "method",
    "visitors": "gate_id",
    "vehicles": "direction",
    "alerts": "alert_type",
    "fire_alarms": "alarm_type",
    "service_cases": "channel",
    "activities": "category",
    "disclosures": "category",
    "surveys": "question_id",
}


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q * 100, method="linear"))


def _minutes(later: np.ndarray, earlier: np.ndarray) -> list[float]:
    ok = ~np.isnat(later) & ~np.isnat(earlier)
    return ((later[ok] - earlier[ok]).astype("int64") / 60.0).tolist()


def _count(values: np.ndarray) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(Counter(values.tolist()).items(), key=lambda kv: str(kv[0]))}


def _record_key(kind: str, b: Batch, i: int) -> dict[str, Any]:
    key: dict[str, Any] = {"id": str(b[ID_COLUMN[kind]][i])}
    if kind == "device_status":
        key["hour_start"] = str(b["hour_start"][i].astype("datetime64[s]")).replace("T", " ")
    elif kind == "surveys":
        key["question_id"] = str(b["question_id"][i])
    elif kind == "register":
        key["id_card"] = str(b["id_card"][i])
    return key


class _Accumulator:
    """Running sums for one kind; `add` takes one day's clean rows."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.sums: Counter[str] = Counter()
        self.lists: dict[str, list[float]] = defaultdict(list)
        self.nested: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))

    def add(self, b: Batch, day: date) -> None:
        k, n = self.kind, batch_len(b)
        if not n:
            return
        column = BY_DAY_COLUMN.get(k)
        if column:
            self.nested[f"by_day_{column}"][day.isoformat()].update(b[column].tolist())
        if k == "device_status":
            per_day = self.nested["by_day_device_type"]
            for t in np.unique(b["device_type"]).tolist():
                sel = b["device_type"] == t
                per_day[day.isoformat()][f"{t}_hours"] += int(sel.sum())
                per_day[day.isoformat()][f"{t}_online_hours"] += int(b["online"][sel].sum())
        if k == "passages":
            self.counts["by_method"].update(b["method"].tolist())
            self.counts["by_direction"].update(b["direction"].tolist())
            self.counts["by_person_type"].update(b["person_type"].tolist())
            self.counts["by_gate"].update(b["gate_id"].tolist())
            entry = (b["direction"] == "in") & (b["person_type"] == "visitor")
            self.sums["tailgating"] += int(b["tailgating"].sum())
            self.sums["visitor_entries"] += int(entry.sum())
            self.sums["appointed_visitor_entries"] += int((entry & (b["appointment_id"] != None)).sum())  # noqa: E711
            self.sums["contact_free"] += int(np.isin(b["method"], ["face", "qr_visitor"]).sum())
            temp = b["temperature_c"]
            self.sums["temperature_measured"] += int((~np.isnan(temp)).sum())
            self.sums["fever"] += int((np.nan_to_num(temp) >= 37.3).sum())
        elif k == "visitors":
            self.sums["appointments"] += n
            self.sums["arrived"] += int((~np.isnat(b["arrival_time"])).sum())
        elif k == "vehicles":
            self.counts["by_direction"].update(b["direction"].tolist())
            self.counts["by_class"].update(b["vehicle_class"].tolist())
        elif k in ("alerts", "fire_alarms"):
            type_col = "alert_type" if k == "alerts" else "alarm_type"
            self.counts["by_type"].update(b[type_col].tolist())
            self.sums["raised"] += n
            acked = ~np.isnat(b["acknowledged_time"])
            closed = ~np.isnat(b["closed_time"])
            self.sums["acknowledged"] += int(acked.sum())
            self.sums["closed"] += int(closed.sum())
            self.lists["ack_minutes"] += _minutes(b["acknowledged_time"], b["raised_time"])
            if k == "alerts":
                self.counts["closed_by_type"].update(b[type_col][closed].tolist())
                fever = b[type_col] == "fever"
                ack_min = np.where(acked, (b["acknowledged_time"] - b["raised_time"]).astype("int64") / 60.0, np.inf)
                self.sums["fever_followed_up_30min"] += int((fever & (ack_min <= 30)).sum())
            else:
                self.sums["false_alarms"] += int((b["is_false_alarm"] == True).sum())  # noqa: E712
        elif k == "device_status":
            online = b["online"]
            self.sums["device_hours"] += n
            self.sums["online_hours"] += int(online.sum())
            for t in np.unique(b["device_type"]).tolist():
                sel = b["device_type"] == t
                self.nested["by_type"][t]["device_hours"] += int(sel.sum())
                self.nested["by_type"][t]["online_hours"] += int(online[sel].sum())
            cams = (b["device_type"] == "camera") & (b["key_point_id"] != None)  # noqa: E711
            for kp, on in zip(b["key_point_id"][cams].tolist(), online[cams].tolist(), strict=True):
                self.nested["by_key_point"][kp]["camera_hours"] += 1
                self.nested["by_key_point"][kp]["online_hours"] += int(on)
            for kp, dev in zip(b["key_point_id"][cams].tolist(), b["device_id"][cams].tolist(), strict=True):
                self.nested["_cams"][kp][dev] = 1
        elif k == "service_cases":
            self.sums["cases"] += n
            self.counts["by_channel"].update(b["channel"].tolist())
            for i in range(n):
                completed = b["completed_time"][i]
                if np.isnat(completed):
                    continue
                applied = b["applied_time"][i]
                self.sums["completed"] += 1
                wd = working_days_between(applied.astype(object).date(), completed.astype(object).date())
                self.lists["completion_working_days"].append(wd)
                if wd <= int(b["promised_days"][i]):
                    self.sums["on_time"] += 1
                if b["item_code"][i] == "370214000001":
                    self.sums["elderly_certificates_issued"] += 1
                    hours = (completed - applied).astype("int64") / 3600
                    if b["channel"][i] == "home_delivery" and hours <= 72:
                        self.sums["elderly_certificates_home_within_3d"] += 1
            ratings = [r for r in b["rating"].tolist() if r is not None]
            self.sums["rated"] += len(ratings)
            self.sums["ratings_ge4"] += sum(1 for r in ratings if r >= 4)
        elif k == "register":
            snap = b["snapshot_date"][0].astype("datetime64[D]")
            verified = b["last_verified_date"].astype("datetime64[D]")
            fresh = ~np.isnat(verified) & ((snap - verified).astype("int64") <= 30)
            entry = self.nested["snapshots"][str(snap)]
            entry["rows"] += n
            entry["verified_within_30d"] += int(fresh.sum())
            entry["elderly"] += int(b["is_elderly"].sum())
            entry["lives_alone"] += int((b["lives_alone"] == True).sum())  # noqa: E712
        elif k == "activities":
            self.sums["activities"] += n
            self.sums["participants"] += int(b["participants"].sum())
        elif k == "disclosures":
            self.sums["due"] += n
            published = b["published_date"]
            self.sums["published"] += int((~np.isnat(published)).sum())
            self.sums["published_on_time"] += int((~np.isnat(published) & (published <= b["due_date"])).sum())
        elif k == "surveys":
            self.sums["answers"] += n
            self.sums["responses"] += len(set(b["response_id"].tolist()))
            self.sums["_score_total"] += int(b["score"].sum())
            self.counts["score_counts"].update(str(s) for s in b["score"].tolist())

    def result(self, registry_site: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, counter in self.counts.items():
            out[key] = dict(sorted(counter.items()))
        for key, value in self.sums.items():
            if not key.startswith("_"):
                out[key] = int(value)
        k = self.kind
        defaults = {
            "passages": [
                "tailgating",
                "visitor_entries",
                "appointed_visitor_entries",
                "contact_free",
                "temperature_measured",
                "fever",
            ],
            "visitors": ["appointments", "arrived"],
            "alerts": ["raised", "acknowledged", "closed", "fever_followed_up_30min"],
            "fire_alarms": ["raised", "acknowledged", "closed", "false_alarms"],
            "device_status": ["device_hours", "online_hours"],
            "service_cases": [
                "cases",
                "completed",
                "on_time",
                "rated",
                "ratings_ge4",
                "elderly_certificates_issued",
                "elderly_certificates_home_within_3d",
            ],
            "activities": ["activities", "participants"],
            "disclosures": ["due", "published", "published_on_time"],
            "surveys": ["answers", "responses"],
        }
        for key in defaults.get(k, []):
            out.setdefault(key, 0)
        if k in ("alerts", "fire_alarms"):
            values = sorted(self.lists["ack_minutes"])
            out["ack_minutes"] = {"p50": _percentile(values, 0.5), "p90": _percentile(values, 0.9), "values": values}
        if k == "service_cases":
            values = sorted(self.lists["completion_working_days"])
            out["completion_working_days"] = {"median": _percentile(values, 0.5), "values": values}
        if k == "device_status":
            out["by_type"] = {t: dict(c) for t, c in sorted(self.nested["by_type"].items())}
            cams = self.nested["_cams"]
            out["by_key_point"] = {
                kp: {**dict(c), "cameras": len(cams[kp])} for kp, c in sorted(self.nested["by_key_point"].items())
            }
            out["key_points_total"] = registry_site.key_points
            out["key_points_with_camera"] = len(out["by_key_point"])
        for key, per_day in self.nested.items():
            if key.startswith("by_day_"):
                out[key] = {d: dict(sorted(c.items())) for d, c in sorted(per_day.items())}
        if k == "register":
            out["snapshots"] = {d: dict(c) for d, c in sorted(self.nested["snapshots"].items())}
        if k == "surveys":
            out["mean_score"] = (self.sums["_score_total"] / self.sums["answers"]) if self.sums["answers"] else None
        return out


def truth(world: World, site_id: str, kind: str, start: date, end: date) -> dict[str, Any]:
    """Exact figures for (site, kind) over the local days start..end inclusive."""
    site = world.site(site_id)
    acc = _Accumulator(kind)
    by_day: dict[str, int] = {}
    malformed: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []
    served = 0
    before = start - timedelta(days=1)
    late_before = kind in LATE_KINDS and world.faults.data_rate("late_events", site_id, kind, before) > 0
    previous = world.with_faults(site_id, kind, before) if late_before else None
    for day in day_range(start, end):
        b = world.with_faults(site_id, kind, day)
        n = batch_len(b)
        bad = b["_malformed"] != None  # noqa: E711
        clean = {c: v[~bad] for c, v in b.items()} if n else b
        acc.add(clean, day)
        by_day[day.isoformat()] = int(n - bad.sum()) if n else 0
        for i in np.flatnonzero(bad).tolist():
            malformed.append({**_record_key(kind, b, i), "day": day.isoformat(), "reason": b["_malformed"][i]})
        if n:
            for i in np.flatnonzero(b["_late"]).tolist():
                late.append(
                    {
                        **_record_key(kind, b, i),
                        "day": day.isoformat(),
                        "listed_day": (day + timedelta(days=1)).isoformat(),
                    }
                )
            served += int((~b["_late"]).sum())
        if previous is not None and batch_len(previous):
            served += int(previous["_late"].sum())
        previous = b
    result: dict[str, Any] = {
        "site": site_id,
        "kind": kind,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "seed": world.seed,
        "served": world.serves(site_id, kind),
        "shape": site.sources[kind].shape if world.serves(site_id, kind) else None,
        "day_column": DAY_COLUMN[kind],
        "rows": sum(by_day.values()),
        "by_day": by_day,
    }
    result.update(acc.result(site))
    result["malformed"] = malformed
    result["late"] = late
    result["served_rows"] = served
    result["episodes"] = world.episodes(site_id, start, end) if world.serves(site_id, kind) else []
    return result
