"""Personal information at the edge: keyed pseudonyms, derived attributes, redaction, scanning.

Clear-text ID-card numbers, phones, names, plates and face references never reach a landed
file. Each becomes HMAC-SHA256(key, "<entity>:<value>") (hex, first 32 characters, i.e.
128 bits) with the key from $SMARTCOMM_PSEUDONYM_KEY, so keys are stable across runs and
kinds (the same ID card gives the same person key in the register and at the gate) but
cannot be reversed without the key. Which fields feed which key is configuration:
config/vendors/_personal_data.yml.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.registry import CONFIG_DIR, read_yaml

PSEUDONYM_KEY_ENV = "SMARTCOMM_PSEUDONYM_KEY"
PERSONAL_DATA_FILE = CONFIG_DIR / "vendors" / "_personal_data.yml"
KEY_HEX_CHARS = 32

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# Boundaries exclude letters too, so hex pseudonyms never look like phone numbers.
ID_CARD_PATTERN = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
MOBILE_PATTERN = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[- ]?)?1[3-9]\d{9}(?![0-9A-Za-z])")
PLATE_PATTERN = re.compile(rf"[{PROVINCES}][A-Z][A-HJ-NP-Z0-9]{{5,6}}")


class PseudonymKeyMissing(RuntimeError):
    """No pseudonym key: landing would have to write clear text, so it refuses to run."""


def id_card_valid(number: str) -> bool:
    """GB 11643 checksum of an 18-character resident ID number."""
    number = number.strip().upper()
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17]


def birth_date_from_id_card(number: str) -> dt.date:
    digits = number.strip()[6:14]
    return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))


def age_at(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def age_band(age: int) -> str:
    if age < 18:
        return "0-17"
    if age < 35:
        return "18-34"
    if age < 60:
        return "35-59"
    if age < 80:
        return "60-79"
    return "80+"


def plate_province(plate: str) -> str | None:
    plate = plate.strip()
    return plate[0] if plate and plate[0] in PROVINCES else None


def find_personal_data(text: str) -> list[str]:
    """Clear-text ID numbers (valid checksum), mobile numbers and plates found in `text`."""
    hits = [m.group(0) for m in ID_CARD_PATTERN.finditer(text) if id_card_valid(m.group(0))]
    hits += [m.group(0) for m in MOBILE_PATTERN.finditer(text)]
    hits += [m.group(0) for m in PLATE_PATTERN.finditer(text)]
    return hits


@dataclass(frozen=True)
class PseudonymRule:
    column: str
    entity: str
    sources: tuple[str, ...]
    validate: str | None


@dataclass(frozen=True)
class DerivedRule:
    column: str
    rule: str
    sources: tuple[str, ...]
    at: str | None


@dataclass(frozen=True)
class PersonalDataPolicy:
    pseudonyms: dict[str, tuple[PseudonymRule, ...]]
    derived: dict[str, tuple[DerivedRule, ...]]
    personal_fields: frozenset[str]

    def consumed_fields(self, kind: str) -> frozenset[str]:
        """Every input field the kind's pseudonyms and derivations read (all dropped afterwards)."""
        names: set[str] = set(self.personal_fields)
        for rule in self.pseudonyms.get(kind, ()):
            names.update(rule.sources)
        for rule in self.derived.get(kind, ()):
            names.update(rule.sources)
        return frozenset(names)


@cache
def personal_data_policy() -> PersonalDataPolicy:
    raw = read_yaml(PERSONAL_DATA_FILE)
    pseudonyms = {
        kind: tuple(
            PseudonymRule(col, spec["entity"], tuple(spec["from"]), spec.get("validate")) for col, spec in cols.items()
        )
        for kind, cols in (raw.get("pseudonyms") or {}).items()
    }
    derived = {
        kind: tuple(DerivedRule(col, spec["rule"], tuple(spec["from"]), spec.get("at")) for col, spec in cols.items())
        for kind, cols in (raw.get("derived") or {}).items()
    }
    return PersonalDataPolicy(pseudonyms, derived, frozenset(raw.get("personal_fields") or ()))


class Pseudonymizer:
    """Keyed HMAC-SHA256 pseudonyms with a small cache (people pass the gate many times a day)."""

    def __init__(self, key: str | bytes | None = None) -> None:
        if key is None:
            key = os.environ.get(PSEUDONYM_KEY_ENV)
        if not key:
            raise PseudonymKeyMissing(
                f"{PSEUDONYM_KEY_ENV} is not set; refusing to land personal data "
                "(for the demo: set -a; . config/demo.env; set +a)"
            )
        self._key = key.encode() if isinstance(key, str) else key
        self._cache: dict[tuple[str, str], str] = {}

    def key_for(self, entity: str, value: Any) -> str:
        text = str(value).strip().upper()
        cache_key = (entity, text)
        found = self._cache.get(cache_key)
        if found is None:
            found = hmac.digest(self._key, f"{entity}:{text}".encode(), hashlib.sha256).hex()[:KEY_HEX_CHARS]
            if len(self._cache) > 500_000:
                self._cache.clear()
            self._cache[cache_key] = found
        return found

    def keys_for(self, entity: str, values: pa.Array) -> pa.Array:
        """key_for() over a string array (nulls stay null): the HMAC runs once per distinct value
        (key_for's cache) and the rows cost no Python. Only the page's own distinct values are
        looked up, so a page costs the same on the first day of a year and on the last."""
        distinct = pc.unique(values.filter(pc.is_valid(values)))
        keys = pa.array([self.key_for(entity, value) for value in distinct.to_pylist()], pa.string())
        return keys.take(pc.index_in(values, value_set=distinct))

    def redact(self, value: Any, field: str = "") -> Any:
        """A raw record fit for quarantine: personal fields and personal-looking text replaced."""
        policy = personal_data_policy()
        if isinstance(value, dict):
            return {
                k: (
                    f"<pseudonym:{self.key_for('redacted', v)}>"
                    if k in policy.personal_fields and v not in (None, "")
                    else self.redact(v, k)
                )
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.redact(v, field) for v in value]
        if isinstance(value, str) and find_personal_data(value):
            return _mask_text(value, self)
        return value


def _mask_text(text: str, pseudonymizer: Pseudonymizer) -> str:
    for hit in sorted(set(find_personal_data(text)), key=len, reverse=True):
        text = text.replace(hit, f"<pseudonym:{pseudonymizer.key_for('redacted', hit)}>")
    return text


def _first_present(record: dict[str, Any], names: Iterable[str]) -> tuple[str, Any] | None:
    for name in names:
        value = record.get(name)
        if value is not None and not (isinstance(value, str) and not value.strip()):
            return name, value
    return None


def _birth_date(field: str, value: Any) -> dt.date:
    from ingestion.timeutil import to_local_date

    if field.endswith("id_card"):
        return birth_date_from_id_card(str(value))
    return to_local_date(value)


def apply_personal_data_policy(
    kind: str, record: dict[str, Any], pseudonymizer: Pseudonymizer, reference_values: dict[str, Any]
) -> dict[str, Any]:
    """The pseudonym and derived columns of one canonical record.

    `reference_values` holds the already-converted contract values (e.g. snapshot_date)
    that derivations are computed against. Raises ValueError with a quarantine reason.
    """
    policy = personal_data_policy()
    out: dict[str, Any] = {}
    for rule in policy.pseudonyms.get(kind, ()):
        found = _first_present(record, rule.sources)
        if found is None:
            out[rule.column] = None
            continue
        field, value = found
        if rule.validate == "id_card":
            for source in rule.sources:
                card = record.get(source)
                if source.endswith("id_card") and card not in (None, "") and not id_card_valid(str(card)):
                    raise ValueError(f"{source}: invalid ID-card checksum")
        out[rule.column] = pseudonymizer.key_for(rule.entity, value)
    for rule in policy.derived.get(kind, ()):
        if record.get(rule.column) not in (None, ""):
            continue  # the vendor already sent the derived, non-identifying attribute
        found = _first_present(record, rule.sources)
        if found is None:
            continue
        field, value = found
        if rule.rule == "plate_province":
            out[rule.column] = plate_province(str(value))
            continue
        try:
            birth = _birth_date(field, value)
        except (ValueError, IndexError) as exc:
            raise ValueError(f"{field}: cannot read a birth date ({exc})") from None
        on = reference_values.get(rule.at) if rule.at else None
        on = on.date() if isinstance(on, dt.datetime) else on
        age = age_at(birth, on or dt.date.today())
        if age < 0 or age > 130:
            raise ValueError(f"{field}: impossible age {age}")
        out[rule.column] = age_band(age) if rule.rule == "age_band" else age >= 60
    return out
