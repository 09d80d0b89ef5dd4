"""Personal information at the edge: keyed pseudonyms, derived attributes, detection, redaction.

Clear-text ID-card numbers, phones, names, plates and face references never reach a landed
file. Each becomes HMAC-SHA256(key, "<entity>:<value>") (hex, first 32 characters, i.e.
128 bits) with the key from $SMARTCOMM_PSEUDONYM_KEY, so keys are stable across runs and
kinds (the same ID card gives the same person key in the register and at the gate) but
cannot be reversed without the key. Which fields feed which key is configuration:
config/vendors/_personal_data.yml.

`redact()` is the one redaction of everything the platform keeps beside the landed data:
quarantined raw records of any shape and their reasons, load-audit errors, alerts and log
lines (ingestion.hardening). `personal_spans()` is what it and the PII scanner look for.
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

from core.demo import DEMO_ENV, demo_mode, is_demo_value
from ingestion.registry import CONFIG_DIR, read_yaml

PSEUDONYM_KEY_ENV = "SMARTCOMM_PSEUDONYM_KEY"
PERSONAL_DATA_FILE = CONFIG_DIR / "vendors" / "_personal_data.yml"
KEY_HEX_CHARS = 32
# Outside demo mode a key is at least this many bytes with at least MIN_KEY_DISTINCT different
# ones: 32 random bytes as hex (64 characters) or urlsafe base64 (43) both pass, a word does not.
MIN_KEY_BYTES = 32
MIN_KEY_DISTINCT = 8
# What the landing zone records of its key (ingestion/landing_key.py): HMAC of this label.
FINGERPRINT_LABEL = b"smartcomm:landing-zone-pseudonym-key-fingerprint:v1"

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
CJK = "\u4e00-\u9fff"
# Boundaries exclude letters too, so hex pseudonyms never look like phone or ID numbers, and
# the digits after a decimal point (a DOUBLE's `29.376111111111111` is no ID number).
_L, _R = r"(?<![0-9A-Za-z])(?<!\d\.)", r"(?![0-9A-Za-z])"
_YYMMDD = r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
# 18 characters (any checksum: a bad one is still somebody's number) or the 15-digit first
# generation (area, YYMMDD, sequence); an 18-digit one must also carry a plausible birth date
# or a valid checksum (id_like), so ordinary long numbers are not taken for IDs.
ID_CARD_PATTERN = re.compile(rf"{_L}(?:\d{{17}}[0-9Xx]|[1-9]\d{{5}}{_YYMMDD}\d{{3}}){_R}")
_ID18_SHAPE = re.compile(rf"[1-9]\d{{5}}(?:18|19|20){_YYMMDD}\d{{3}}[0-9Xx]")
_SEP = r"[- \t\u00a0]"
MOBILE_PATTERN = re.compile(rf"{_L}(?:(?:\+|00)?86{_SEP}?)?1[3-9]\d(?:{_SEP}?\d{{4}}){{2}}{_R}")
PLATE_PATTERN = re.compile(rf"[{PROVINCES}][A-Z][·•・．.\- ]?[A-HJ-NP-Z0-9]{{5,6}}")
_CJK_RUN = re.compile(rf"[{CJK}]+(?:[·•][{CJK}]+)*")
_QUOTED = re.compile(rf"(?<=['\"“‘「『])[{CJK}·•]{{2,12}}(?=['\"”’」』])")
_NAME_GAP = re.compile(r"[\s:：=,，]*")
# `key: value` / `"key": "value"` inside a raw line (a broken JSON line, a CSV-ish string)
_KEYED = re.compile(
    rf"""["']?([A-Za-z_][\w.-]*|[{CJK}][{CJK}\w()（）]*)["']?\s*[:=：]\s*("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;，；}}\]]+)"""
)
# What a redacted value looks like (it is never a hit again)
TOKEN_PATTERN = re.compile(r"<(?:pseudonym:[0-9a-f]{32}|[a-z_]+)>")


class PseudonymKeyError(RuntimeError):
    """The pseudonym key cannot be used: landing refuses to run, saying why and what to do."""


class PseudonymKeyMissing(PseudonymKeyError):
    """No pseudonym key: landing would have to write clear text, so it refuses to run."""


class PseudonymKeyRefused(PseudonymKeyError):
    """The key is the committed demo key, or too short, outside demo mode."""


class PseudonymKeyMismatch(PseudonymKeyError):
    """The key is not the one the landing zone was written with: pseudonyms would stop joining."""


def id_card_valid(number: str) -> bool:
    """GB 11643 checksum of an 18-character resident ID number."""
    number = number.strip().upper()
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17]


def id_like(number: str) -> bool:
    """A 15-digit first-generation number, or 18 characters with a birth date or a valid checksum."""
    return len(number) == 15 or bool(_ID18_SHAPE.fullmatch(number)) or id_card_valid(number)


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
class NameRules:
    """How a Chinese personal name is recognised (config/vendors/_personal_data.yml name_detection)."""

    surnames: frozenset[str]
    compound_surnames: frozenset[str]
    markers: re.Pattern[str] | None


@dataclass(frozen=True)
class PersonalDataPolicy:
    pseudonyms: dict[str, tuple[PseudonymRule, ...]]
    derived: dict[str, tuple[DerivedRule, ...]]
    personal_fields: frozenset[str]
    name_fields: frozenset[str] = frozenset()
    names: NameRules = NameRules(frozenset(), frozenset(), None)

    def consumed_fields(self, kind: str) -> frozenset[str]:
        """Every input field the kind's pseudonyms and derivations read (all dropped afterwards)."""
        names: set[str] = set(self.personal_fields)
        for rule in self.pseudonyms.get(kind, ()):
            names.update(rule.sources)
        for rule in self.derived.get(kind, ()):
            names.update(rule.sources)
        return frozenset(names)

    def is_personal_field(self, name: Any) -> bool:
        """A field never kept in clear, matched by name in any case (Chinese headers included)."""
        return isinstance(name, str) and name.strip().lower() in self._personal_lower

    def is_name_field(self, name: str) -> bool:
        return name.strip().lower() in self._name_lower

    @property
    def _personal_lower(self) -> frozenset[str]:
        return _lowered(self.personal_fields | self.name_fields)

    @property
    def _name_lower(self) -> frozenset[str]:
        return _lowered(self.name_fields)


@cache
def _lowered(names: frozenset[str]) -> frozenset[str]:
    return frozenset(n.strip().lower() for n in names)


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
    detection = raw.get("name_detection") or {}
    markers = sorted(detection.get("markers") or (), key=len, reverse=True)
    names = NameRules(
        frozenset(str(detection.get("surnames") or "").replace(" ", "")),
        frozenset(detection.get("compound_surnames") or ()),
        re.compile("|".join(map(re.escape, markers))) if markers else None,
    )
    return PersonalDataPolicy(
        pseudonyms,
        derived,
        frozenset(raw.get("personal_fields") or ()),
        frozenset(raw.get("name_fields") or ()),
        names,
    )


# -- finding personal data in text ---------------------------------------------------------


def probable_name(text: str) -> bool:
    """A Chinese personal name: surname + one or two given characters, compound surname + one
    or two, or a transliterated name with `·` (e.g. 阿依古丽·买买提)."""
    text = text.strip()
    if not text or not _CJK_RUN.fullmatch(text):
        return False
    if "·" in text or "•" in text:
        return 3 <= len(text) <= 20
    rules = personal_data_policy().names
    if text[:2] in rules.compound_surnames:
        return 3 <= len(text) <= 4
    return 2 <= len(text) <= 3 and text[0] in rules.surnames


def _name_at(text: str, start: int) -> tuple[int, int] | None:
    """The name (if any) at the start of the run of Chinese characters beginning at `start`."""
    run = _CJK_RUN.match(text, start)
    if run is None:
        return None
    found = run.group()
    for n in sorted({len(found), 4, 3, 2}, reverse=True):
        if n <= len(found) and probable_name(found[:n]):
            return start, start + n
    return None


def personal_spans(text: str, *, record: bool = False) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every piece of personal data in `text`, non-overlapping.

    Always: ID numbers (15 or 18 characters, any checksum), mobiles (with separators or +86),
    plates (with `·`), and names after a marker word (姓名, 联系人, ...) or inside quotes.
    `record=True` (a vendor's raw record: quarantine) adds every run of Chinese characters that
    is a probable name and the value of every personal field written as `key: value`.
    """
    spans: list[tuple[int, int, str]] = []
    spans += [(m.start(), m.end(), "id_card") for m in ID_CARD_PATTERN.finditer(text) if id_like(m.group())]
    spans += [(m.start(), m.end(), "mobile") for m in MOBILE_PATTERN.finditer(text)]
    spans += [(m.start(), m.end(), "plate") for m in PLATE_PATTERN.finditer(text)]
    if _CJK_RUN.search(text):
        markers = personal_data_policy().names.markers
        for m in markers.finditer(text) if markers else ():
            found = _name_at(text, _NAME_GAP.match(text, m.end()).end())
            if found:
                spans.append((*found, "name"))
        spans += [(m.start(), m.end(), "name") for m in _QUOTED.finditer(text) if probable_name(m.group())]
        if record:
            spans += [(m.start(), m.end(), "name") for m in _CJK_RUN.finditer(text) if probable_name(m.group())]
    if record:
        policy = personal_data_policy()
        for m in _KEYED.finditer(text):
            value = m.group(2)
            quoted = value[:1] in "\"'"
            # a record's field, not prose ("id_card: invalid checksum"): a quoted key or value, or a Chinese key
            keyed = quoted or text[m.start()] in "\"'" or bool(_CJK_RUN.match(m.group(1)))
            start, end = m.start(2) + quoted, m.end(2) - quoted
            personal = keyed and end > start and policy.is_personal_field(m.group(1))
            if personal and not TOKEN_PATTERN.fullmatch(text[start:end]):
                spans.append((start, end, "personal"))
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    kept: list[tuple[int, int, str]] = []
    for span in spans:
        if kept and span[0] < kept[-1][1]:
            if span[1] > kept[-1][1]:
                kept[-1] = (kept[-1][0], span[1], kept[-1][2])
            continue
        kept.append(span)
    return kept


def find_personal_data(text: str, *, record: bool = False) -> list[str]:
    """The clear-text personal data in `text` (see personal_spans)."""
    return [text[a:b] for a, b, _ in personal_spans(text, record=record)]


# -- one redaction for every record and text the platform keeps ------------------------------


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _walk(value: Any, record: bool, on_field: Any, on_text: Any) -> Any:
    """Visit a value of any shape: personal fields by name (`on_field(name, value)`), every text
    and integral number with its personal spans (`on_text(text, spans)`)."""
    policy = personal_data_policy()
    if isinstance(value, dict):
        return {
            k: on_field(k, v) if policy.is_personal_field(k) and not _blank(v) else _walk(v, record, on_field, on_text)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_walk(v, record, on_field, on_text) for v in value]
    if isinstance(value, str):
        return on_text(value, personal_spans(value, record=record))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, float) and not value.is_integer():
        return value
    text = str(int(value))
    spans = personal_spans(text)
    return on_text(text, spans) if spans else value


def _token(kind: str, clear: str, pseudonymizer: Pseudonymizer | None) -> str:
    if pseudonymizer is None:
        return f"<{kind}>"
    return f"<pseudonym:{pseudonymizer.key_for('redacted', clear)}>"


def redact(value: Any, pseudonymizer: Pseudonymizer | None = None, *, record: bool = False) -> Any:
    """`value` without clear personal data, whatever its shape (object, list, text, number).

    Personal fields (by name, config/vendors/_personal_data.yml) and every personal span of a
    text become `<pseudonym:…>` (keyed, so quarantined rows of one person stay comparable) or,
    without a pseudonymizer (load-audit errors, alerts, logs), `<mobile>`, `<id_card>`, ...
    `record=True` for a vendor's raw record (names recognised in any value, see personal_spans).
    """

    def on_field(name: str, clear: Any) -> str:
        text = _as_text(clear)
        return text if TOKEN_PATTERN.fullmatch(text) else _token("personal", text, pseudonymizer)

    def on_text(text: str, spans: list[tuple[int, int, str]]) -> str:
        for start, end, kind in reversed(spans):
            text = text[:start] + _token(kind, text[start:end], pseudonymizer) + text[end:]
        return text

    return _walk(value, record, on_field, on_text)


def personal_data_in(value: Any, *, record: bool = False) -> list[tuple[str, str]]:
    """(kind, clear value) of what redact() would replace in `value`: the scanner's test."""
    hits: list[tuple[str, str]] = []

    def on_field(name: str, clear: Any) -> Any:
        text = _as_text(clear)
        if not TOKEN_PATTERN.fullmatch(text):
            hits.append((f"field {name}", text))
        return clear

    def on_text(text: str, spans: list[tuple[int, int, str]]) -> str:
        hits.extend((kind, text[a:b]) for a, b, kind in spans)
        return text

    _walk(value, record, on_field, on_text)
    return hits


# -- the key ---------------------------------------------------------------------------------


def checked_key(key: str | bytes | None) -> bytes:
    """The key, or PseudonymKeyError. Demo mode (SMARTCOMM_DEMO=1) accepts any non-empty key;
    otherwise it must come from the environment's secret store: never the committed demo key
    of config/demo.env, and at least MIN_KEY_BYTES bytes of random material."""
    if key is None:
        key = os.environ.get(PSEUDONYM_KEY_ENV)
    how = f"set {PSEUDONYM_KEY_ENV} from your secret store (a new one: python -m ingestion pseudonym-key new)"
    if not key:
        raise PseudonymKeyMissing(
            f"{PSEUDONYM_KEY_ENV} is not set; refusing to land personal data: {how}; for the demo, "
            f"{DEMO_ENV}=1 (the Makefile's demo targets set it and load config/demo.env)"
        )
    raw = key.encode() if isinstance(key, str) else key
    if demo_mode():
        return raw
    if is_demo_value(raw):
        raise PseudonymKeyRefused(
            f"{PSEUDONYM_KEY_ENV} is the committed demo key of config/demo.env: anyone with the repository "
            f"could reverse every pseudonym with it, so it is accepted only in demo mode ({DEMO_ENV}=1); {how}"
        )
    if len(raw) < MIN_KEY_BYTES or len(set(raw)) < MIN_KEY_DISTINCT:
        raise PseudonymKeyRefused(
            f"{PSEUDONYM_KEY_ENV} has {len(raw)} bytes ({len(set(raw))} different): outside demo mode the key "
            f"must be at least {MIN_KEY_BYTES} random bytes, or the pseudonyms can be reversed by guessing it; {how}"
        )
    return raw


class Pseudonymizer:
    """Keyed HMAC-SHA256 pseudonyms with a small cache (people pass the gate many times a day)."""

    def __init__(self, key: str | bytes | None = None) -> None:
        self._key = checked_key(key)
        self._cache: dict[tuple[str, str], str] = {}

    def fingerprint(self) -> str:
        """HMAC of a fixed label under the key: identifies the key without revealing it."""
        return hmac.digest(self._key, FINGERPRINT_LABEL, hashlib.sha256).hex()

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
        """A raw record fit for quarantine (redact(record=True) with this key's pseudonyms)."""
        return redact(value, self, record=True)


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
        except (ValueError, IndexError):  # the value is personal: the reason never repeats it
            raise ValueError(f"{field}: cannot read a birth date") from None
        on = reference_values.get(rule.at) if rule.at else None
        on = on.date() if isinstance(on, dt.datetime) else on
        age = age_at(birth, on or dt.date.today())
        if age < 0 or age > 130:
            raise ValueError(f"{field}: impossible age {age}")
        out[rule.column] = age_band(age) if rule.rule == "age_band" else age >= 60
    return out
