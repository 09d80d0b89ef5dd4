"""The deterministic synthetic world: people, devices and events of every site, per local day.

Every (seed, site, kind, day) draws from its own random stream, so any day can be made
without making the days before it, and a month of one site costs only that month. The
numbers that make sites differ live in simulator/profiles.yml; counts come from the
registry. Records are canonical (kinds.yml names plus the clear-text personal fields a
vendor sends); vendor encodings are applied in simulator/encode.py.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import yaml

from ingestion.registry import Registry, Site, load_registry
from simulator.faults import FaultRule, FaultSet, load_rules

HERE = Path(__file__).resolve().parent
PROFILES_FILE = HERE / "profiles.yml"
NAMES_FILE = HERE / "data" / "names.yml"

# Column of each kind that decides its local day (as in config/kinds.yml).
DAY_COLUMN = {
    "passages": "event_time",
    "visitors": "expected_time",
    "vehicles": "event_time",
    "alerts": "raised_time",
    "fire_alarms": "raised_time",
    "device_status": "hour_start",
    "service_cases": "applied_time",
    "register": "snapshot_date",
    "activities": "start_time",
    "disclosures": "due_date",
    "surveys": "answered_date",
}
ID_COLUMN = {
    "passages": "event_id",
    "visitors": "appointment_id",
    "vehicles": "event_id",
    "alerts": "alert_id",
    "fire_alarms": "alarm_id",
    "device_status": "device_id",
    "service_cases": "case_id",
    "register": "person_id",
    "activities": "activity_id",
    "disclosures": "disclosure_id",
    "surveys": "response_id",
}
ID_PREFIX = {
    "passages": "P",
    "visitors": "V",
    "vehicles": "C",
    "alerts": "A",
    "fire_alarms": "F",
    "service_cases": "S",
    "activities": "ACT",
    "disclosures": "D",
    "surveys": "Q",
}
COLUMNS = {
    "passages": [
        "event_id",
        "event_time",
        "gate_id",
        "direction",
        "method",
        "person_type",
        "person_id",
        "person_name",
        "id_card",
        "face_url",
        "appointment_id",
        "temperature_c",
        "tailgating",
    ],
    "visitors": [
        "appointment_id",
        "created_time",
        "expected_time",
        "arrival_time",
        "gate_id",
        "visitor_name",
        "visitor_phone",
        "visitor_id_card",
        "host_household_id",
    ],
    "vehicles": ["event_id", "event_time", "gate_id", "direction", "plate_no", "plate_province", "vehicle_class"],
    "alerts": ["alert_id", "alert_type", "device_id", "raised_time", "acknowledged_time", "closed_time"],
    "fire_alarms": [
        "alarm_id",
        "sensor_id",
        "alarm_type",
        "raised_time",
        "acknowledged_time",
        "closed_time",
        "is_false_alarm",
    ],
    "device_status": ["device_id", "device_type", "key_point_id", "hour_start", "online"],
    "service_cases": [
        "case_id",
        "item_code",
        "item_name",
        "channel",
        "applied_time",
        "completed_time",
        "promised_days",
        "rating",
        "applicant_elderly",
        "applicant_name",
        "applicant_id_card",
        "applicant_phone",
    ],
    "register": [
        "snapshot_date",
        "person_id",
        "id_card",
        "name",
        "phone",
        "household_id",
        "building",
        "unit",
        "room",
        "birth_date",
        "age_band",
        "is_elderly",
        "lives_alone",
        "last_verified_date",
    ],
    "activities": ["activity_id", "start_time", "title", "category", "participants"],
    "disclosures": ["disclosure_id", "category", "due_date", "published_date"],
    "surveys": ["response_id", "answered_date", "question_id", "score", "respondent_phone"],
}
DATE_COLUMNS = frozenset(
    {"snapshot_date", "birth_date", "last_verified_date", "due_date", "published_date", "answered_date"}
)
# Kinds whose events may arrive late (the others are snapshots or planned dates).
LATE_KINDS = frozenset({"passages", "visitors", "vehicles", "alerts", "fire_alarms", "device_status", "service_cases"})
MALFORMED_REASONS = {
    "passages": ["bad_timestamp", "missing_gate", "zero_temperature"],
    "visitors": ["bad_timestamp"],
    "vehicles": ["bad_timestamp", "missing_gate"],
    "alerts": ["bad_timestamp", "negative_duration"],
    "fire_alarms": ["bad_timestamp", "negative_duration"],
    "device_status": ["bad_timestamp"],
    "service_cases": ["bad_timestamp", "negative_duration"],
    "register": ["invalid_id_checksum", "bad_timestamp"],
    "activities": ["bad_timestamp"],
    "disclosures": ["bad_timestamp"],
    "surveys": ["bad_timestamp"],
}
ALERT_TYPES = ["tailgating", "fever", "abnormal_behaviour", "loitering", "fire_lane_obstruction"]
FIRE_TYPES = ["smoke", "heat", "gas", "water_pressure"]
FIRE_TYPE_P = [0.7, 0.15, 0.1, 0.05]
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
FEVER_C = 37.3
ELDERLY_CERT_CODE = "370214000001"
CATALOGUE_SIZE = 734
NAT = np.datetime64("NaT", "s")

Batch = dict[str, np.ndarray]


def id_check_digit(first17: str) -> str:
    """GB 11643 check digit of the first 17 digits of an ID-card number."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def id_card_valid(number: str) -> bool:
    return len(number) == 18 and number[:17].isdigit() and id_check_digit(number[:17]) == number[17]


def stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def day_start(day: date) -> np.datetime64:
    return np.datetime64(day.isoformat(), "s")


def add_working_days(day: date, n: int) -> date:
    """The date n weekdays after `day` (n=0: the same day)."""
    current = day
    while n > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            n -= 1
    return current


def working_days_between(applied: date, completed: date) -> int:
    """Weekdays d with applied < d <= completed (the truth's definition)."""
    count, current = 0, applied
    while current < completed:
        current += timedelta(days=1)
        if current.weekday() < 5:
            count += 1
    return count


def age_band(age: np.ndarray) -> np.ndarray:
    bands = np.array(["0-17", "18-34", "35-59", "60-79", "80+"], dtype=object)
    return bands[np.searchsorted([18, 35, 60, 80], age, side="right")]


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (
            {**merged[key], **value} if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def _obj(values: Any) -> np.ndarray:
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _empty_batch(kind: str) -> Batch:
    return {col: np.empty(0, dtype=object) for col in COLUMNS[kind]}


def _concat(parts: list[Batch]) -> Batch:
    parts = [p for p in parts if len(next(iter(p.values()))) > 0]
    if not parts:
        return {}
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def batch_len(batch: Batch) -> int:
    return len(next(iter(batch.values()))) if batch else 0


@dataclass(frozen=True)
class Episode:
    """A labelled anomaly episode injected on top of the normal rhythm."""

    site: str
    type: str
    kind: str
    start: datetime
    end: datetime
    detail: tuple[tuple[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "type": self.type,
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "detail": dict(self.detail),
        }

    def window(self, day: date) -> tuple[int, int] | None:
        """Seconds since `day` 00:00 covered by the episode on that day, or None."""
        lo = max(self.start, datetime.combine(day, datetime.min.time()))
        hi = min(self.end, datetime.combine(day + timedelta(days=1), datetime.min.time()))
        if lo >= hi:
            return None
        base = datetime.combine(day, datetime.min.time())
        return int((lo - base).total_seconds()), int((hi - base).total_seconds())


class SiteWorld:
    """The static facts of one site for a seed: residents, households, gates, devices, cars."""

    def __init__(self, seed: int, site: Site, profile: dict[str, Any], names: dict[str, Any]) -> None:
        self.site = site
        self.profile = profile
        rng = np.random.default_rng([seed, stable_hash(site.site_id), 1])
        self._people(rng, names)
        self._places_and_devices(rng)
        self._cars(rng, names)

    def _people(self, rng: np.random.Generator, names: dict[str, Any]) -> None:
        site, prof = self.site, self.profile
        n, h = site.residents, site.households
        household = np.concatenate([np.arange(h), rng.integers(0, h, n - h)])
        rng.shuffle(household)
        self.household_idx = household
        per_building = 60
        building_no = np.arange(h) // per_building + 1
        in_building = np.arange(h) % per_building
        self.hh_id = _obj(f"H{i:05d}" for i in range(h))
        self.hh_building = _obj(f"{b}号楼" for b in building_no)
        self.hh_unit = _obj(f"{u}单元" for u in in_building // 20 + 1)
        self.hh_room = _obj(
            f"{f}{p:02d}" for f, p in zip((in_building % 20) // 2 + 1, in_building % 2 + 1, strict=True)
        )
        elderly = rng.random(n) < prof["elderly_share"]
        child = ~elderly & (rng.random(n) < 0.16)
        age = np.where(
            elderly, rng.integers(60, 95, n), np.where(child, rng.integers(0, 18, n), rng.integers(18, 60, n))
        )
        ref = np.datetime64("2026-01-01", "D")
        self.birth_date = (
            ref
            - (age * 365.25).astype("int64").astype("timedelta64[D]")
            - rng.integers(0, 365, n).astype("timedelta64[D]")
        )
        self.lives_alone = elderly & (rng.random(n) < prof["lives_alone_share_elderly"])
        self.person_id = _obj(f"R{i:06d}" for i in range(n))
        surnames, given = names["surnames"], names["given_chars"]
        sur = rng.integers(0, len(surnames), n)
        g1 = rng.integers(0, len(given), n)
        g2 = np.where(rng.random(n) < 0.65, rng.integers(0, len(given), n), -1)
        self.name = _obj(
            surnames[a] + given[b] + (given[c] if c >= 0 else "") for a, b, c in zip(sur, g1, g2, strict=True)
        )
        regions = names["region_codes"]
        region = rng.integers(0, len(regions), n)
        seq = rng.integers(0, 1000, n)
        births = self.birth_date.astype(str)
        self.id_card = _obj(self._id_number(regions[r], b, s) for r, b, s in zip(region, births, seq, strict=True))
        self.phone = _obj(self.random_phones(rng, n))
        self.elderly_idx = np.flatnonzero(elderly)

    @staticmethod
    def _id_number(region: str, birth_iso: str, seq: int) -> str:
        first = f"{region}{birth_iso.replace('-', '')}{seq:03d}"
        return first + id_check_digit(first)

    @staticmethod
    def random_phones(rng: np.random.Generator, n: int) -> list[str]:
        second = rng.choice(list("3456789"), n)
        rest = rng.integers(0, 10**9, n)
        return [f"1{a}{b:09d}" for a, b in zip(second, rest, strict=True)]

    def random_people(
        self, rng: np.random.Generator, n: int, names: dict[str, Any]
    ) -> tuple[list[str], list[str], list[str]]:
        """Names, ID-card numbers and phones of people who are not residents (visitors)."""
        surnames, given, regions = names["surnames"], names["given_chars"], names["region_codes"]
        sur = rng.integers(0, len(surnames), n)
        g1 = rng.integers(0, len(given), n)
        g2 = rng.integers(0, len(given), n)
        years = rng.integers(1950, 2006, n)
        days = rng.integers(0, 365, n)
        region = rng.integers(0, len(regions), n)
        seq = rng.integers(0, 1000, n)
        pnames = [surnames[a] + given[b] + given[c] for a, b, c in zip(sur, g1, g2, strict=True)]
        cards = [
            self._id_number(regions[r], str(np.datetime64(f"{y}-01-01") + d), s)
            for r, y, d, s in zip(region, years, days, seq, strict=True)
        ]
        return pnames, cards, self.random_phones(rng, n)

    def _places_and_devices(self, rng: np.random.Generator) -> None:
        site, prof = self.site, self.profile
        self.gate_ids = [f"G{i + 1:02d}" for i in range(site.pedestrian_entrances)]
        self.gate_names = [f"{i + 1}号门" for i in range(site.pedestrian_entrances)]
        self.smart_gates = np.arange(site.smart_gate_entrances)
        self.vehicle_gate_ids = [f"VG{i + 1:02d}" for i in range(site.vehicle_entrances)]
        directions = ["北门", "南门", "东门", "西门"]
        self.vehicle_gate_names = [
            f"{directions[i % 4]}车行道{'' if i < 4 else i // 4 + 1}" for i in range(site.vehicle_entrances)
        ]
        self.key_points = [f"KP{i + 1:02d}" for i in range(site.key_points)]
        covered = min(round(site.key_points * prof["key_point_camera_share"]), site.cameras)
        cam_kp: list[str | None] = [self.key_points[i] for i in range(covered)]
        for _ in range(site.cameras - covered):
            cam_kp.append(self.key_points[int(rng.integers(0, covered))] if covered and rng.random() < 0.4 else None)
        devices: list[tuple[str, str, str | None]] = [(f"CAM{i + 1:04d}", "camera", kp) for i, kp in enumerate(cam_kp)]
        devices += [(f"ACS{i + 1:02d}", "gate", None) for i in range(site.smart_gate_entrances)]
        devices += [(f"FS{i + 1:04d}", "fire_sensor", None) for i in range(site.fire_sensors)]
        devices += [(f"IOT{i + 1:04d}", "iot_sensor", None) for i in range(site.iot_devices)]
        devices.sort(key=lambda d: d[0])
        self.device_id = _obj(d[0] for d in devices)
        self.device_type = _obj(d[1] for d in devices)
        self.device_kp = _obj(d[2] for d in devices)
        dead_share = np.array([prof["dead_share"][t] for t in self.device_type], dtype=float)
        self.device_dead = rng.random(len(devices)) < dead_share
        self.cameras = np.flatnonzero(self.device_type == "camera")
        self.fire_sensor_ids = self.device_id[self.device_type == "fire_sensor"]

    def _cars(self, rng: np.random.Generator, names: dict[str, Any]) -> None:
        cars = np.minimum(rng.poisson(self.profile["cars_per_household"], self.site.households), 3)
        self.plates = _obj(self.random_plates(rng, int(cars.sum()), names))

    @staticmethod
    def random_plates(rng: np.random.Generator, n: int, names: dict[str, Any]) -> list[str]:
        prefixes = names["plate_prefixes"]
        alphabet = np.array(list("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"))
        pre = rng.integers(0, len(prefixes), n)
        body = alphabet[rng.integers(0, len(alphabet), (n, 5))]
        return [prefixes[p] + "".join(b) for p, b in zip(pre, body, strict=True)]


class World:
    """The whole simulated district for one seed. Thread-safe for reads."""

    def __init__(
        self,
        seed: int = 7,
        registry: Registry | None = None,
        faults: FaultSet | list[dict[str, Any]] | str | Path | None = None,
        anomalies_per_quarter: int | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> None:
        self.seed = seed
        self.registry = registry or load_registry()
        config = yaml.safe_load(PROFILES_FILE.read_text(encoding="utf-8"))
        self.calendar = config["calendar"]
        self.anomaly_types = config["anomalies"]["types"]
        self.anomalies_per_quarter = (
            config["anomalies"]["per_quarter_default"] if anomalies_per_quarter is None else anomalies_per_quarter
        )
        self._profiles = {name: _merge(config["defaults"], over or {}) for name, over in config["profiles"].items()}
        self.names = yaml.safe_load(NAMES_FILE.read_text(encoding="utf-8"))
        self.faults = faults if isinstance(faults, FaultSet) else FaultSet(load_rules(faults), seed=seed)
        self.start, self.end = start, end
        self._sites: dict[str, SiteWorld] = {}
        self._cache: OrderedDict[tuple[Any, ...], Batch] = OrderedDict()
        self._cache_limit = 32  # day batches (a passages day of a large site is ~20 MB)
        self._lock = threading.RLock()
        self._sf_days = [date.fromisoformat(d) for d in self.calendar["spring_festival"]]

    # ---- static facts -------------------------------------------------------------
    def site(self, site_id: str) -> Site:
        return self.registry.site(site_id)

    def profile(self, site_id: str) -> dict[str, Any]:
        name = self.site(site_id).profile
        if name not in self._profiles:
            raise KeyError(f"site {site_id}: profile {name!r} is not in simulator/profiles.yml")
        return self._profiles[name]

    def site_world(self, site_id: str) -> SiteWorld:
        if site_id not in self._sites:
            self._sites[site_id] = SiteWorld(self.seed, self.site(site_id), self.profile(site_id), self.names)
        return self._sites[site_id]

    @cached_property
    def catalogue(self) -> list[tuple[str, str, int]]:
        """The 734 service items: (code, name, promised working days)."""
        items = [
            (base, days, variant)
            for base, days in self.names["service_bases"]
            for variant in self.names["service_variants"]
        ]
        items.sort(key=lambda it: self.names["service_variants"].index(it[2]))
        return [
            (f"37021400{i + 1:04d}", base + variant, days)
            for i, (base, days, variant) in enumerate(items[:CATALOGUE_SIZE])
        ]

    def serves(self, site_id: str, kind: str) -> bool:
        return kind in self.site(site_id).sources

    def in_range(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)

    # ---- rhythm -------------------------------------------------------------------
    def day_factor(self, day: date) -> float:
        factor = self.calendar["weekday_factor"][day.weekday()]
        for sf in self._sf_days:
            if (
                -self.calendar["spring_festival_days_before"]
                <= (day - sf).days
                <= self.calendar["spring_festival_days_after"]
            ):
                factor *= self.calendar["spring_festival_factor"]
        return factor

    def hour_weights(self, day: date) -> np.ndarray:
        key = "hour_weights_weekend" if day.weekday() >= 5 else "hour_weights_weekday"
        weights = np.asarray(self.calendar[key], dtype=float)
        return weights / weights.sum()

    def expected_passages(self, site_id: str, day: date) -> float:
        site, prof = self.site(site_id), self.profile(site_id)
        if not site.pedestrian_entrances:
            return 0.0
        return site.residents * prof["passages_per_resident_day"] * self.day_factor(day)

    def _rng(self, site_id: str, kind: str, day: date, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, stable_hash(site_id), stable_hash(kind), day.toordinal(), salt])

    def _times(self, rng: np.random.Generator, n: int, day: date, weights: np.ndarray | None = None) -> np.ndarray:
        """n sorted random instants in the local day, following the hourly weights."""
        weights = self.hour_weights(day) if weights is None else weights
        hours = rng.choice(24, size=n, p=weights)
        seconds = hours * 3600 + rng.integers(0, 3600, n)
        seconds.sort()
        return day_start(day) + seconds.astype("timedelta64[s]")

    # ---- episodes -----------------------------------------------------------------
    def _quarter_episodes(self, site_id: str, year: int, quarter: int) -> list[Episode]:
        key = ("episodes", site_id, year, quarter)
        if key in self._cache:
            return self._cache[key]  # type: ignore[return-value]
        site, sw = self.site(site_id), self.site_world(site_id)
        available = [t for t, spec in self.anomaly_types.items() if spec["needs"] in site.sources]
        if "gate_outage" in available and not len(sw.smart_gates):
            available = [t for t in available if t not in ("gate_outage", "tailgating_burst")]
        episodes: list[Episode] = []
        if available and self.anomalies_per_quarter > 0:
            rng = np.random.default_rng([self.seed, stable_hash(site_id), stable_hash("episodes"), year, quarter])
            q_start = datetime(year, 3 * quarter - 2, 1)
            q_end = datetime(year + (quarter == 4), 1 if quarter == 4 else 3 * quarter + 1, 1)
            span = (q_end - q_start).total_seconds() - 86400
            order = [str(t) for t in rng.permutation(available)]  # a mix: every type before any repeats
            for number in range(self.anomalies_per_quarter):
                kind_of = order[number % len(order)]
                lo, hi = self.anomaly_types[kind_of]["hours"]
                hours = float(rng.uniform(lo, hi))
                day_offset = timedelta(days=int(rng.integers(0, int(span // 86400) - 1)))
                if kind_of == "night_entries":
                    start = q_start + day_offset
                else:  # daytime starts, so an outage or spike is visible against the rhythm
                    start = q_start + day_offset + timedelta(minutes=int(rng.integers(7 * 60, 19 * 60)))
                end = start + timedelta(minutes=round(hours * 60))
                detail: dict[str, Any] = {}
                if kind_of in ("gate_outage", "crowd_spike", "tailgating_burst", "night_entries", "fever_cluster"):
                    pool = sw.smart_gates if len(sw.smart_gates) else np.arange(len(sw.gate_ids))
                    detail["gate_id"] = sw.gate_ids[int(rng.choice(pool))]
                if kind_of == "crowd_spike":
                    detail["factor"] = round(float(rng.uniform(3, 6)), 2)
                if kind_of in ("night_entries", "fever_cluster"):
                    detail["events"] = int(rng.integers(8, 20))
                if kind_of == "alarm_storm":
                    detail["alarms"] = int(rng.integers(20, 50))
                    sensors = sw.fire_sensor_ids
                    detail["sensors"] = (
                        sorted(str(s) for s in rng.choice(sensors, min(3, len(sensors)), replace=False))
                        if len(sensors)
                        else []
                    )
                if kind_of == "tailgating_burst":
                    detail["share"] = round(float(rng.uniform(0.1, 0.25)), 3)
                if kind_of == "device_outage_cascade":
                    types = [t for t in ("camera", "iot_sensor", "fire_sensor") if (sw.device_type == t).any()]
                    detail["device_type"] = str(rng.choice(types)) if types else "camera"
                    detail["share"] = round(float(rng.uniform(0.3, 0.6)), 2)
                episodes.append(
                    Episode(
                        site_id,
                        kind_of,
                        self.anomaly_types[kind_of]["needs"],
                        start,
                        end,
                        tuple(sorted(detail.items())),
                    )
                )
        episodes.sort(key=lambda e: e.start)
        self._remember(key, episodes)  # type: ignore[arg-type]
        return episodes

    def episodes(self, site_id: str, start: date, end: date) -> list[dict[str, Any]]:
        """Labelled anomaly episodes overlapping the local days start..end (inclusive)."""
        with self._lock:
            return self._episodes(site_id, start, end)

    def _episodes(self, site_id: str, start: date, end: date) -> list[dict[str, Any]]:
        lo = datetime.combine(start, datetime.min.time())
        hi = datetime.combine(end + timedelta(days=1), datetime.min.time())
        found = []
        for year in range(start.year, end.year + 1):
            for quarter in range(1, 5):
                for ep in self._quarter_episodes(site_id, year, quarter):
                    if ep.start < hi and ep.end > lo:
                        found.append(ep.as_dict())
        return found

    def _day_episodes(self, site_id: str, day: date, types: tuple[str, ...]) -> list[tuple[Episode, tuple[int, int]]]:
        out = []
        for d in (day - timedelta(days=14), day):  # backlogs may start up to two weeks earlier
            quarter = (d.month - 1) // 3 + 1
            for ep in self._quarter_episodes(site_id, d.year, quarter):
                if ep.type in types:
                    window = ep.window(day)
                    if window and (ep, window) not in out:
                        out.append((ep, window))
        return out

    # ---- generation ---------------------------------------------------------------
    def _remember(self, key: tuple[Any, ...], value: Batch) -> None:
        self._cache[key] = value
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_limit:
            self._cache.popitem(last=False)

    def raw(self, site_id: str, kind: str, day: date) -> Batch:
        """The true records of (site, kind, day) as numpy columns, sorted by time, with ids."""
        with self._lock:
            return self._raw(site_id, kind, day)

    def _raw(self, site_id: str, kind: str, day: date) -> Batch:
        key = ("raw", site_id, kind, day)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if not self.serves(site_id, kind) or not self.in_range(day):
            batch = _empty_batch(kind)
        else:
            batch = getattr(self, f"_gen_{kind}")(site_id, day)
            if not batch:
                batch = _empty_batch(kind)
        self._remember(key, batch)
        return batch

    def with_faults(self, site_id: str, kind: str, day: date) -> Batch:
        """raw() plus `_late` (bool) and `_malformed` (reason or None) from the data faults."""
        with self._lock:
            return self._with_faults(site_id, kind, day)

    def _with_faults(self, site_id: str, kind: str, day: date) -> Batch:
        late_rate, bad_rate, id_rate = self.faults.data_key(site_id, kind, day)
        key = ("faults", site_id, kind, day, late_rate, bad_rate, id_rate)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        batch = dict(self.raw(site_id, kind, day))
        n = batch_len(batch)
        rng = self._rng(site_id, kind, day, salt=99)
        late_draw, bad_draw, id_draw, pick = rng.random(n), rng.random(n), rng.random(n), rng.random(n)
        late = (late_draw < late_rate) if kind in LATE_KINDS else np.zeros(n, dtype=bool)
        malformed = np.full(n, None, dtype=object)
        reasons = MALFORMED_REASONS[kind]
        for i in np.flatnonzero(bad_draw < bad_rate):
            malformed[i] = self._reason(batch, kind, int(i), reasons, pick[i])
        if kind == "register":
            malformed[(id_draw < id_rate)] = "invalid_id_checksum"
        batch["_late"] = late
        batch["_malformed"] = malformed
        self._remember(key, batch)
        return batch

    @staticmethod
    def _reason(batch: Batch, kind: str, i: int, reasons: list[str], pick: float) -> str:
        usable = []
        for reason in reasons:
            if reason == "zero_temperature" and np.isnan(batch["temperature_c"][i]):
                continue
            if reason == "missing_gate" and batch["gate_id"][i] is None:
                continue
            if reason == "negative_duration":
                col = "completed_time" if kind == "service_cases" else "acknowledged_time"
                if np.isnat(batch[col][i]):
                    continue
            usable.append(reason)
        return usable[int(pick * len(usable))]

    def generate(self, site_id: str, kind: str, day: date, with_faults: bool = False) -> pa.Table:
        """The canonical true records of one local day as a pyarrow Table."""
        batch = self.with_faults(site_id, kind, day) if with_faults else self.raw(site_id, kind, day)
        columns = COLUMNS[kind] + (["_late", "_malformed"] if with_faults else [])
        arrays = {}
        for col in columns:
            values = batch[col]
            if col in DATE_COLUMNS:
                arrays[col] = pa.array(
                    values.astype("datetime64[D]") if values.dtype != object else values,
                    type=pa.date32(),
                    from_pandas=True,
                )
            elif values.dtype == object:
                arrays[col] = pa.array(values.tolist(), from_pandas=True)
            else:
                arrays[col] = pa.array(values, from_pandas=True)
        return pa.table(arrays)

    def truth(self, site_id: str, kind: str, start: date, end: date) -> dict[str, Any]:
        """Exact figures for the local days start..end inclusive (simulator/truth.py)."""
        from simulator.truth import truth

        return truth(self, site_id, kind, start, end)

    def records(self, site_id: str, kind: str, day: date) -> list[dict[str, Any]]:
        """The canonical true records of one local day as a list of dicts."""
        return self.generate(site_id, kind, day).to_pylist()

    def _ids(self, kind: str, day: date, n: int) -> np.ndarray:
        prefix = f"{ID_PREFIX[kind]}{day:%Y%m%d}"
        return _obj(f"{prefix}{i:06d}" for i in range(n))

    # -- visitors: appointments expected that day; arrivals feed the passages -------------
    def _gen_visitors(self, site_id: str, day: date) -> Batch:
        sw, prof = self.site_world(site_id), self.profile(site_id)
        if not len(sw.smart_gates):
            return {}
        rng = self._rng(site_id, "visitors", day)
        expected = self.expected_passages(site_id, day) * prof["visitor_share"] * prof["appointed_visitor_share"]
        n = int(rng.poisson(expected / (1 - prof["appointment_no_show"])))
        weights = self.hour_weights(day).copy()
        weights[:6] = 0.0
        weights /= weights.sum()
        expected_time = self._times(rng, n, day, weights)
        created = expected_time - rng.integers(600, 3 * 86400, n).astype("timedelta64[s]")
        arrived = rng.random(n) >= prof["appointment_no_show"]
        offset = np.clip(rng.normal(0, 1200, n), -3600, 3600).astype("int64")
        arrival = expected_time + offset.astype("timedelta64[s]")
        lo, hi = day_start(day), day_start(day + timedelta(days=1)) - np.timedelta64(1, "s")
        arrival = np.clip(arrival, lo, hi)
        arrival = np.where(arrived, arrival, NAT)
        gates = rng.choice(sw.smart_gates, n) if n else np.empty(0, dtype=int)
        gate_id = _obj(sw.gate_ids[g] for g in gates)
        names, cards, phones = sw.random_people(rng, n, self.names)
        host = sw.hh_id[rng.integers(0, len(sw.hh_id), n)]
        return {
            "appointment_id": self._ids("visitors", day, n),
            "created_time": created,
            "expected_time": expected_time,
            "arrival_time": arrival,
            "gate_id": gate_id,
            "visitor_name": _obj(names),
            "visitor_phone": _obj(phones),
            "visitor_id_card": _obj(cards),
            "host_household_id": host,
        }

    # -- passages ---------------------------------------------------------------------
    def _passage_group(
        self,
        n: int,
        times: np.ndarray,
        gate: np.ndarray,
        direction: np.ndarray,
        method: np.ndarray,
        person_type: str,
        person: np.ndarray | None = None,
    ) -> Batch:
        return {
            "event_time": times,
            "gate": gate,
            "direction": direction,
            "method": method,
            "person_type": np.full(n, person_type, dtype=object),
            "person": np.full(n, -1) if person is None else person,
            "temperature_c": np.full(n, np.nan),
            "tailgating": np.zeros(n, dtype=bool),
            "visitor_row": np.full(n, -1),
        }

    def _gen_passages(self, site_id: str, day: date) -> Batch:
        site, sw, prof = self.site(site_id), self.site_world(site_id), self.profile(site_id)
        if not site.pedestrian_entrances:
            return {}
        rng = self._rng(site_id, "passages", day)
        expected = self.expected_passages(site_id, day)
        n_gates = len(sw.gate_ids)
        smart = np.zeros(n_gates, dtype=bool)
        smart[sw.smart_gates] = True
        out_share = np.asarray(self.calendar["out_share_by_hour"])
        groups: list[Batch] = []

        def directions(times: np.ndarray) -> np.ndarray:
            hours = ((times - day_start(day)).astype("int64") // 3600).clip(0, 23)
            return np.where(rng.random(len(times)) < out_share[hours], "out", "in").astype(object)

        def resident_methods(gates: np.ndarray) -> np.ndarray:
            r = rng.random(len(gates))
            at_smart = np.where(r < prof["face_share_smart_gate"], "face", "card")
            at_plain = np.where(r < prof["card_share_plain_gate"], "card", "manual")
            return np.where(smart[gates], at_smart, at_plain).astype(object)

        # residents and strangers
        n_total = int(rng.poisson(expected * (1 - prof["visitor_share"])))
        n_unknown = int(rng.binomial(n_total, prof["unknown_share"] / (1 - prof["visitor_share"])))
        n_res = n_total - n_unknown
        times = self._times(rng, n_res, day)
        gates = rng.integers(0, n_gates, n_res)
        groups.append(
            self._passage_group(
                n_res,
                times,
                gates,
                directions(times),
                resident_methods(gates),
                "resident",
                rng.integers(0, site.residents, n_res),
            )
        )
        times = self._times(rng, n_unknown, day)
        groups.append(
            self._passage_group(
                n_unknown,
                times,
                rng.integers(0, n_gates, n_unknown),
                directions(times),
                np.full(n_unknown, "manual", dtype=object),
                "unknown",
            )
        )
        # visitors: QR arrivals from the appointments, and walk-ins registered by the guard
        vis = self.raw(site_id, "visitors", day)
        arrived = np.flatnonzero(~np.isnat(vis["arrival_time"])) if batch_len(vis) else np.empty(0, dtype=int)
        if len(arrived):
            gate_index = {g: i for i, g in enumerate(sw.gate_ids)}
            group = self._passage_group(
                len(arrived),
                vis["arrival_time"][arrived],
                np.array([gate_index[g] for g in vis["gate_id"][arrived]]),
                np.full(len(arrived), "in", dtype=object),
                np.full(len(arrived), "qr_visitor", dtype=object),
                "visitor",
            )
            group["visitor_row"] = arrived
            groups.append(group)
        n_walk = int(rng.poisson(expected * prof["visitor_share"] * (1 - prof["appointed_visitor_share"])))
        times = self._times(rng, n_walk, day)
        groups.append(
            self._passage_group(
                n_walk,
                times,
                rng.integers(0, n_gates, n_walk),
                np.full(n_walk, "in", dtype=object),
                np.full(n_walk, "manual", dtype=object),
                "visitor",
            )
        )
        # anomaly episodes that add passages
        for ep, (lo, hi) in self._day_episodes(site_id, day, ("crowd_spike", "night_entries", "fever_cluster")):
            detail = dict(ep.detail)
            gate = sw.gate_ids.index(detail["gate_id"])
            if ep.type == "crowd_spike":
                per_second = expected / n_gates / 86400 * 2.5
                k = int(rng.poisson(per_second * (hi - lo) * (detail["factor"] - 1)))
                t = day_start(day) + np.sort(rng.integers(lo, hi, k)).astype("timedelta64[s]")
                g = np.full(k, gate)
                groups.append(
                    self._passage_group(
                        k, t, g, directions(t), resident_methods(g), "resident", rng.integers(0, site.residents, k)
                    )
                )
            elif ep.type == "night_entries":
                k = detail["events"]
                t = day_start(day) + np.sort(rng.integers(lo, hi, k)).astype("timedelta64[s]")
                kinds = np.where(rng.random(k) < 0.5, "visitor", "unknown")
                for ptype in ("visitor", "unknown"):
                    sel = kinds == ptype
                    m = int(sel.sum())
                    groups.append(
                        self._passage_group(
                            m,
                            t[sel],
                            np.full(m, gate),
                            np.full(m, "in", dtype=object),
                            np.full(m, "manual", dtype=object),
                            ptype,
                        )
                    )
            elif ep.type == "fever_cluster" and prof["temperature_measured"]:
                k = detail["events"]
                t = day_start(day) + np.sort(rng.integers(lo, hi, k)).astype("timedelta64[s]")
                group = self._passage_group(
                    k,
                    t,
                    np.full(k, gate),
                    np.full(k, "in", dtype=object),
                    np.full(k, "face", dtype=object),
                    "resident",
                    rng.integers(0, site.residents, k),
                )
                group["temperature_c"] = np.round(rng.uniform(37.5, 39.0, k), 1)
                groups.append(group)
        batch = _concat(groups)
        if not batch:
            return {}
        n = batch_len(batch)
        # anomaly episodes that remove or flag passages
        seconds = (batch["event_time"] - day_start(day)).astype("int64")
        keep = np.ones(n, dtype=bool)
        tail_p = np.where(smart[batch["gate"]], prof["tailgating_per_10k"] / 10000.0, 0.0)
        for ep, (lo, hi) in self._day_episodes(site_id, day, ("gate_outage", "tailgating_burst")):
            detail = dict(ep.detail)
            at_gate = (batch["gate"] == sw.gate_ids.index(detail["gate_id"])) & (seconds >= lo) & (seconds < hi)
            if ep.type == "gate_outage":
                keep &= ~at_gate
            else:
                tail_p = np.where(at_gate, detail["share"], tail_p)
        measured = (
            smart[batch["gate"]] & np.isin(batch["method"], ["face", "qr_visitor"]) & prof["temperature_measured"]
        )
        normal = np.round(np.clip(rng.normal(36.45, 0.22, n), 35.8, 37.2), 1)
        fever = np.round(rng.uniform(37.3, 38.8, n), 1)
        temp = np.where(rng.random(n) < prof["fever_rate"], fever, normal)
        batch["temperature_c"] = np.where(
            np.isnan(batch["temperature_c"]), np.where(measured, temp, np.nan), batch["temperature_c"]
        )
        batch["tailgating"] = (rng.random(n) < tail_p) & smart[batch["gate"]]
        batch = {k: v[keep] for k, v in batch.items()}
        order = np.argsort(batch["event_time"], kind="stable")
        batch = {k: v[order] for k, v in batch.items()}
        n = batch_len(batch)
        ids = self._ids("passages", day, n)
        person = batch["person"]
        is_res = person >= 0
        res_idx = np.where(is_res, person, 0)
        vrow = batch["visitor_row"]
        is_vis = vrow >= 0
        v_idx = np.where(is_vis, vrow, 0)
        person_id = np.where(is_res, sw.person_id[res_idx], None)
        person_name = np.where(is_res, sw.name[res_idx], None)
        id_card = np.where(is_res, sw.id_card[res_idx], None)
        appointment = np.full(n, None, dtype=object)
        if is_vis.any():
            person_id = np.where(is_vis, _obj("VS" + a for a in vis["appointment_id"][v_idx]), person_id)
            person_name = np.where(is_vis, vis["visitor_name"][v_idx], person_name)
            id_card = np.where(is_vis, vis["visitor_id_card"][v_idx], id_card)
            appointment = np.where(is_vis, vis["appointment_id"][v_idx], appointment)
        with_face = np.isin(batch["method"], ["face", "qr_visitor"])
        face_url = _obj(
            f"http://isc.local/pic/{site_id}/{e}.jpg" if f else None for e, f in zip(ids, with_face, strict=True)
        )
        gate_ids = np.asarray(sw.gate_ids, dtype=object)
        return {
            "event_id": ids,
            "event_time": batch["event_time"],
            "gate_id": gate_ids[batch["gate"]],
            "direction": batch["direction"],
            "method": batch["method"],
            "person_type": batch["person_type"],
            "person_id": person_id.astype(object),
            "person_name": person_name.astype(object),
            "id_card": id_card.astype(object),
            "face_url": face_url,
            "appointment_id": appointment.astype(object),
            "temperature_c": batch["temperature_c"],
            "tailgating": batch["tailgating"],
        }

    # -- vehicles ---------------------------------------------------------------------
    def _gen_vehicles(self, site_id: str, day: date) -> Batch:
        site, sw, prof = self.site(site_id), self.site_world(site_id), self.profile(site_id)
        if not site.vehicle_entrances:
            return {}
        rng = self._rng(site_id, "vehicles", day)
        n = int(rng.poisson(site.households * prof["vehicles_per_household_day"] * self.day_factor(day)))
        times = self._times(rng, n, day)
        r = rng.random(n)
        vclass = np.where(
            r < prof["visitor_vehicle_share"],
            "visitor",
            np.where(r < prof["visitor_vehicle_share"] + prof["unknown_vehicle_share"], "unknown", "resident"),
        ).astype(object)
        plates = (
            sw.plates[rng.integers(0, len(sw.plates), n)]
            if len(sw.plates)
            else _obj(sw.random_plates(rng, n, self.names))
        )
        guests = vclass != "resident"
        if guests.any():
            plates = plates.copy()
            plates[guests] = _obj(sw.random_plates(rng, int(guests.sum()), self.names))
        out_share = np.asarray(self.calendar["out_share_by_hour"])
        hours = ((times - day_start(day)).astype("int64") // 3600).clip(0, 23)
        return {
            "event_id": self._ids("vehicles", day, n),
            "event_time": times,
            "gate_id": np.asarray(sw.vehicle_gate_ids, dtype=object)[rng.integers(0, site.vehicle_entrances, n)],
            "direction": np.where(rng.random(n) < out_share[hours], "out", "in").astype(object),
            "plate_no": plates,
            "plate_province": _obj(p[0] for p in plates),
            "vehicle_class": vclass,
        }

    # -- alerts and fire alarms: raised, acknowledged, closed ------------------------------
    def _handling(
        self,
        rng: np.random.Generator,
        raised: np.ndarray,
        ack: dict[str, float],
        unack: float,
        closed: float,
        close: dict[str, float],
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(raised)
        ack_s = np.round(rng.lognormal(np.log(ack["median"] * 60), ack["sigma"], n)).astype("int64") + 1
        acknowledged = raised + ack_s.astype("timedelta64[s]")
        acked = rng.random(n) >= unack
        acknowledged = np.where(acked, acknowledged, NAT)
        p_close = min(1.0, closed / max(1e-9, 1 - unack))
        close_s = np.round(rng.lognormal(np.log(close["median"] * 60), close["sigma"], n)).astype("int64") + 1
        closed_time = np.where(acked & (rng.random(n) < p_close), acknowledged + close_s.astype("timedelta64[s]"), NAT)
        return acknowledged, closed_time

    def _gen_alerts(self, site_id: str, day: date) -> Batch:
        site, sw, prof = self.site(site_id), self.site_world(site_id), self.profile(site_id)
        rng = self._rng(site_id, "alerts", day)
        expected = self.expected_passages(site_id, day)
        counts = {
            "tailgating": rng.poisson(expected * prof["tailgating_per_10k"] / 10000) if len(sw.smart_gates) else 0,
            "fever": rng.poisson(expected * prof["fever_rate"] * 0.8)
            if prof["temperature_measured"] and len(sw.smart_gates)
            else 0,
        }
        for t, rate in prof["alerts_per_day_per_100_cameras"].items():
            counts[t] = rng.poisson(rate * site.cameras / 100) if site.cameras else 0
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        flat = np.full(24, 1 / 24)
        acs = [f"ACS{g + 1:02d}" for g in sw.smart_gates]
        cams = sw.device_id[sw.cameras]
        for t in ALERT_TYPES:
            k = int(counts.get(t, 0))
            if not k:
                continue
            times = self._times(rng, k, day, self.hour_weights(day) if t in ("tailgating", "fever") else flat)
            pool = acs if t in ("tailgating", "fever") else cams
            devices = (
                _obj(pool[i] for i in rng.integers(0, len(pool), k)) if len(pool) else np.full(k, None, dtype=object)
            )
            parts.append((np.full(k, t, dtype=object), devices, times))
        for ep, (lo, hi) in self._day_episodes(site_id, day, ("tailgating_burst", "fever_cluster")):
            detail = dict(ep.detail)
            t = "tailgating" if ep.type == "tailgating_burst" else "fever"
            k = int(detail.get("events", 0)) if t == "fever" else int(rng.integers(6, 15))
            if t == "fever" and not prof["temperature_measured"]:
                continue
            gate_no = int(detail["gate_id"][1:])
            times = day_start(day) + np.sort(rng.integers(lo, hi, k)).astype("timedelta64[s]")
            parts.append((np.full(k, t, dtype=object), np.full(k, f"ACS{gate_no:02d}", dtype=object), times))
        if not parts:
            return {}
        types = np.concatenate([p[0] for p in parts])
        devices = np.concatenate([p[1] for p in parts])
        raised = np.concatenate([p[2] for p in parts])
        order = np.argsort(raised, kind="stable")
        types, devices, raised = types[order], devices[order], raised[order]
        ack, closed = self._handling(
            rng,
            raised,
            prof["alert_ack_minutes"],
            prof["alert_unacknowledged_share"],
            prof["alert_closed_share"],
            prof["alert_close_minutes"],
        )
        return {
            "alert_id": self._ids("alerts", day, len(raised)),
            "alert_type": types,
            "device_id": devices,
            "raised_time": raised,
            "acknowledged_time": ack,
            "closed_time": closed,
        }

    def _gen_fire_alarms(self, site_id: str, day: date) -> Batch:
        sw, prof = self.site_world(site_id), self.profile(site_id)
        sensors = sw.fire_sensor_ids
        if not len(sensors):
            return {}
        rng = self._rng(site_id, "fire_alarms", day)
        n = int(rng.poisson(len(sensors) * prof["fire_alarms_per_sensor_day"]))
        raised = self._times(rng, n, day, np.full(24, 1 / 24))
        sensor = sensors[rng.integers(0, len(sensors), n)]
        types = np.asarray(FIRE_TYPES, dtype=object)[rng.choice(4, n, p=FIRE_TYPE_P)]
        for ep, (lo, hi) in self._day_episodes(site_id, day, ("alarm_storm",)):
            detail = dict(ep.detail)
            if not detail["sensors"]:
                continue
            total = detail["alarms"]
            span = (ep.end - ep.start).total_seconds()
            k = round(total * (hi - lo) / span)
            t = day_start(day) + rng.integers(lo, hi, k).astype("timedelta64[s]")
            raised = np.concatenate([raised, t])
            sensor = np.concatenate(
                [sensor, np.asarray(detail["sensors"], dtype=object)[rng.integers(0, len(detail["sensors"]), k)]]
            )
            types = np.concatenate([types, np.full(k, "smoke", dtype=object)])
        order = np.argsort(raised, kind="stable")
        raised, sensor, types = raised[order], sensor[order], types[order]
        n = len(raised)
        ack, closed = self._handling(
            rng,
            raised,
            prof["fire_ack_minutes"],
            prof["fire_unacknowledged_share"],
            prof["fire_closed_share"],
            prof["fire_close_minutes"],
        )
        false = rng.random(n) < prof["fire_false_share"]
        return {
            "alarm_id": self._ids("fire_alarms", day, n),
            "sensor_id": sensor,
            "alarm_type": types,
            "raised_time": raised,
            "acknowledged_time": ack,
            "closed_time": closed,
            "is_false_alarm": np.where(np.isnat(closed), None, false).astype(object),
        }

    # -- device heartbeats ------------------------------------------------------------
    def _gen_device_status(self, site_id: str, day: date) -> Batch:
        sw, prof = self.site_world(site_id), self.profile(site_id)
        m = len(sw.device_id)
        if not m:
            return {}
        rng = self._rng(site_id, "device_status", day)
        online = np.ones((24, m), dtype=bool)
        mean_len = prof["outage_hours_mean"]
        lam = np.array([prof["offline_share"][t] * 24 / mean_len for t in sw.device_type])
        blocks = rng.poisson(lam)
        for dev in np.flatnonzero(blocks):
            for _ in range(blocks[dev]):
                start = int(rng.integers(0, 24))
                length = int(rng.geometric(1 / mean_len))
                online[start : start + length, dev] = False
        online[:, sw.device_dead] = False
        for ep, (lo, hi) in self._day_episodes(site_id, day, ("gate_outage", "device_outage_cascade")):
            detail = dict(ep.detail)
            h0, h1 = lo // 3600, (hi + 3599) // 3600
            if ep.type == "gate_outage":
                cols = np.flatnonzero(sw.device_id == f"ACS{int(detail['gate_id'][1:]):02d}")
            else:
                of_type = np.flatnonzero(sw.device_type == detail["device_type"])
                pick = np.random.default_rng([self.seed, stable_hash(site_id), stable_hash(ep.start.isoformat())])
                cols = of_type[pick.random(len(of_type)) < detail["share"]]
            online[h0:h1, cols] = False
        hours = day_start(day) + (np.arange(24) * 3600).astype("timedelta64[s]")
        return {
            "device_id": np.tile(sw.device_id, 24),
            "device_type": np.tile(sw.device_type, 24),
            "key_point_id": np.tile(sw.device_kp, 24),
            "hour_start": np.repeat(hours, m),
            "online": online.reshape(-1),
        }

    # -- government service cases -----------------------------------------------------
    def _gen_service_cases(self, site_id: str, day: date) -> Batch:
        site, sw, prof = self.site(site_id), self.site_world(site_id), self.profile(site_id)
        rng = self._rng(site_id, "service_cases", day)
        rate = site.residents / 1000 * prof["cases_per_1000_residents_day"]
        if day.weekday() >= 5:
            rate *= prof["weekend_case_factor"]
        n = int(rng.poisson(rate))
        if not n:
            return {}
        weights = np.asarray(self.calendar["hour_weights_weekday"], dtype=float)
        weights[:8] = weights[:8] * 0.1
        weights /= weights.sum()
        applied = self._times(rng, n, day, weights)
        channels = list(prof["channel_mix"])
        channel = np.asarray(channels, dtype=object)[
            rng.choice(
                len(channels), n, p=np.asarray(list(prof["channel_mix"].values())) / sum(prof["channel_mix"].values())
            )
        ]
        elderly = rng.random(n) < prof["elderly_applicant_share"]
        applicant = np.where(
            elderly & (len(sw.elderly_idx) > 0),
            sw.elderly_idx[rng.integers(0, max(1, len(sw.elderly_idx)), n)] if len(sw.elderly_idx) else 0,
            rng.integers(0, site.residents, n),
        )
        cert = elderly & (rng.random(n) < prof["elderly_certificate_share"])
        item = np.where(cert, 0, rng.integers(1, CATALOGUE_SIZE, n))
        cat = self.catalogue
        channel = np.where(
            cert, np.where(rng.random(n) < prof["elderly_cert_home_share"], "home_delivery", "counter"), channel
        ).astype(object)
        promised = np.array([cat[i][2] for i in item])
        backlog = np.zeros(n, dtype=bool)
        seconds = (applied - day_start(day)).astype("int64")
        for _ep, (lo, hi) in self._day_episodes(site_id, day, ("case_backlog",)):
            backlog |= (seconds >= lo) & (seconds < hi)
        completed = np.full(n, NAT)
        done = rng.random(n) < prof["case_completed_share"]
        on_time = rng.random(n) < prof["case_on_time_share"]
        fast = rng.geometric(1 / (prof["completion_wd_mean"] + 1), n) - 1
        slow = promised + rng.integers(1, 12, n)
        within_3d = rng.random(n) < prof["elderly_cert_within_3d_share"]
        cert_hours = np.where(within_3d, rng.uniform(3, 71, n), rng.uniform(80, 240, n))
        minute_of_day = rng.integers(9 * 60, 17 * 60 + 30, n)
        same_day_s = rng.integers(600, 4 * 3600, n)
        for i in range(n):
            if backlog[i]:
                if rng.random() < 0.7:
                    continue
                wd = int(slow[i] + 5)
            elif not done[i]:
                continue
            elif cert[i]:
                completed[i] = applied[i] + np.timedelta64(int(cert_hours[i] * 3600), "s")
                continue
            else:
                wd = int(min(fast[i], promised[i])) if on_time[i] else int(slow[i])
            applied_day = day
            if wd == 0:
                completed[i] = applied[i] + np.timedelta64(int(same_day_s[i]), "s")
            else:
                done_day = add_working_days(applied_day, wd)
                completed[i] = day_start(done_day) + np.timedelta64(int(minute_of_day[i]) * 60, "s")
        rated = ~np.isnat(completed) & (rng.random(n) < prof["rating_given_share"])
        rating = np.where(rated, rng.choice(5, n, p=prof["rating_probs"]) + 1, 0)
        return {
            "case_id": self._ids("service_cases", day, n),
            "item_code": _obj(cat[i][0] for i in item),
            "item_name": _obj(cat[i][1] for i in item),
            "channel": channel,
            "applied_time": applied,
            "completed_time": completed,
            "promised_days": promised.astype("int64"),
            "rating": np.where(rated, rating, None).astype(object),
            "applicant_elderly": elderly,
            "applicant_name": sw.name[applicant],
            "applicant_id_card": sw.id_card[applicant],
            "applicant_phone": sw.phone[applicant],
        }

    # -- register: a full snapshot on the 1st of every month ------------------------------
    def _gen_register(self, site_id: str, day: date) -> Batch:
        if day.day != 1:
            return {}
        sw, prof = self.site_world(site_id), self.profile(site_id)
        rng = self._rng(site_id, "register", day)
        n = len(sw.person_id)
        snap = np.datetime64(day.isoformat(), "D")
        fresh = rng.random(n) < prof["register_verified_30d_share"]
        back = np.where(fresh, rng.integers(0, 30, n), rng.integers(31, 240, n))
        verified = (snap - back.astype("timedelta64[D]")).astype("datetime64[s]")
        never = ~fresh & (rng.random(n) < 0.03)
        verified = np.where(never, NAT, verified)
        age = ((snap - sw.birth_date).astype("int64") / 365.25).astype("int64")
        hh = sw.household_idx
        return {
            "snapshot_date": np.full(n, snap).astype("datetime64[s]"),
            "person_id": sw.person_id,
            "id_card": sw.id_card,
            "name": sw.name,
            "phone": sw.phone,
            "household_id": sw.hh_id[hh],
            "building": sw.hh_building[hh],
            "unit": sw.hh_unit[hh],
            "room": sw.hh_room[hh],
            "birth_date": sw.birth_date.astype("datetime64[s]"),
            "age_band": age_band(age),
            "is_elderly": age >= 60,
            "lives_alone": sw.lives_alone.astype(object),
            "last_verified_date": verified,
        }

    # -- party building, disclosures, surveys -------------------------------------------
    def _gen_activities(self, site_id: str, day: date) -> Batch:
        prof = self.profile(site_id)
        rng = self._rng(site_id, "activities", day)
        n = int(rng.poisson(prof["activities_per_week"] / 7))
        if not n:
            return {}
        weights = np.zeros(24)
        weights[9:20] = 1.0
        times = self._times(rng, n, day, weights / weights.sum())
        categories = self.names["activity_categories"]
        cat = [categories[i] for i in rng.integers(0, len(categories), n)]
        titles = [
            self.names["activity_titles"][c][int(rng.integers(0, len(self.names["activity_titles"][c])))] for c in cat
        ]
        return {
            "activity_id": self._ids("activities", day, n),
            "start_time": times,
            "title": _obj(titles),
            "category": _obj(cat),
            "participants": rng.poisson(prof["activity_participants_mean"], n).astype("int64") + 3,
        }

    def _gen_disclosures(self, site_id: str, day: date) -> Batch:
        due_days = {5: "party", 10: "finance", 15: "government"}
        if day.day not in due_days:
            return {}
        prof = self.profile(site_id)
        rng = self._rng(site_id, "disclosures", day)
        due = np.datetime64(day.isoformat(), "D")
        r = rng.random()
        if r < prof["disclosure_unpublished_share"]:
            published = NAT
        elif r < prof["disclosure_unpublished_share"] + prof["disclosure_on_time_share"]:
            published = (due - np.timedelta64(int(rng.integers(0, 5)), "D")).astype("datetime64[s]")
        else:
            published = (due + np.timedelta64(int(rng.integers(1, 21)), "D")).astype("datetime64[s]")
        return {
            "disclosure_id": self._ids("disclosures", day, 1),
            "category": np.array([due_days[day.day]], dtype=object),
            "due_date": np.array([due.astype("datetime64[s]")]),
            "published_date": np.array([published]),
        }

    def _gen_surveys(self, site_id: str, day: date) -> Batch:
        if day.month % 3 != 0 or not 15 <= day.day <= 24:
            return {}
        site, sw, prof = self.site(site_id), self.site_world(site_id), self.profile(site_id)
        rng = self._rng(site_id, "surveys", day)
        responses = int(rng.poisson(site.households * prof["survey_households_share"] / 10))
        if not responses:
            return {}
        questions = 10
        n = responses * questions
        response_ids = self._ids("surveys", day, responses)
        phones = np.where(rng.random(responses) < 0.7, sw.phone[rng.integers(0, site.residents, responses)], None)
        return {
            "response_id": np.repeat(response_ids, questions),
            "answered_date": np.full(n, np.datetime64(day.isoformat(), "s")),
            "question_id": np.tile(_obj(f"Q{q + 1:02d}" for q in range(questions)), responses),
            "score": (rng.choice(5, n, p=prof["survey_score_probs"]) + 1).astype("int64"),
            "respondent_phone": np.repeat(phones, questions).astype(object),
        }


def day_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


__all__ = ["COLUMNS", "DAY_COLUMN", "ID_COLUMN", "Episode", "FaultRule", "World", "day_range", "id_card_valid"]
