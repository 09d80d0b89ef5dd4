"""Fault rules: what goes wrong, where and how often (README "Faults").

A rule is data (YAML file or control API JSON). Data faults change what is generated and
are reported by the truth; request faults disturb single HTTP replies; file faults
disturb dropped files.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

REQUEST_FAULTS = frozenset(
    {
        "rate_limit",
        "server_error",
        "slow",
        "reset_mid_body",
        "error_code",
        "token_expired",
        "duplicate_rows",
        "total_drift",
    }
)
# Faults that only mean something from the second page on (they never fire on page 1).
PAGE_FAULTS = frozenset({"duplicate_rows", "total_drift"})
DATA_FAULTS = frozenset({"late_events", "malformed_rows", "invalid_id_checksum"})
FILE_FAULTS = frozenset({"truncated_file", "wrong_encoding", "duplicate_file", "missing_file"})
SHAPE_FAULTS = frozenset({"schema_drift"})
ALL_FAULTS = REQUEST_FAULTS | DATA_FAULTS | FILE_FAULTS | SHAPE_FAULTS
RULE_KEYS = frozenset({"fault", "site", "kind", "count", "every", "rate", "after_page", "params", "days"})


class FaultError(ValueError):
    """A fault rule is malformed; the message names the rule and the field."""


@dataclass
class FaultRule:
    fault: str
    site: str = "*"
    kind: str = "*"
    count: int | None = None
    every: int | None = None
    rate: float | None = None
    after_page: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    days: frozenset[str] | None = None
    seen: int = 0

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> FaultRule:
        if not isinstance(raw, dict) or "fault" not in raw:
            raise FaultError(f"a fault rule needs a mapping with 'fault': {raw!r}")
        unknown = set(raw) - RULE_KEYS
        if unknown:
            raise FaultError(f"fault {raw['fault']!r}: unknown keys {sorted(unknown)} (allowed {sorted(RULE_KEYS)})")
        if raw["fault"] not in ALL_FAULTS:
            raise FaultError(f"unknown fault {raw['fault']!r}; known: {', '.join(sorted(ALL_FAULTS))}")
        days = raw.get("days")
        return cls(
            fault=raw["fault"],
            site=str(raw.get("site", "*")),
            kind=str(raw.get("kind", "*")),
            count=raw.get("count"),
            every=raw.get("every"),
            rate=raw.get("rate"),
            after_page=int(raw.get("after_page", 0)),
            params=dict(raw.get("params") or {}),
            days=frozenset(str(d) for d in days) if days else None,
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fault": self.fault, "site": self.site, "kind": self.kind}
        for key in ("count", "every", "rate"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.after_page:
            out["after_page"] = self.after_page
        if self.params:
            out["params"] = self.params
        if self.days:
            out["days"] = sorted(self.days)
        return out

    def matches(self, site: str, kind: str, day: date | None = None) -> bool:
        if self.site not in ("*", site) or self.kind not in ("*", kind):
            return False
        return not (self.days is not None and day is not None and day.isoformat() not in self.days)


def load_rules(source: str | Path | list[dict[str, Any]] | dict[str, Any] | None) -> list[FaultRule]:
    """Rules from a YAML file path, a `{"faults": [...]}` mapping, one rule, or a list."""
    if source is None:
        return []
    raw = yaml.safe_load(Path(source).read_text(encoding="utf-8")) or {} if isinstance(source, (str, Path)) else source
    if isinstance(raw, dict) and "faults" in raw:
        raw = raw["faults"] or []
    if isinstance(raw, dict):
        raw = [raw]
    return [FaultRule.parse(r) for r in raw]


class FaultSet:
    """The active rules. Thread-safe; `version` changes whenever data faults change."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self._rules: list[FaultRule] = list(rules or [])
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.version = 0

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_dict() for r in self._rules]

    def add(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules.extend(rules)
            self.version += 1

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self.version += 1

    def data_rate(self, fault: str, site: str, kind: str, day: date) -> float:
        """Summed `params.rate` of the matching data-fault rules."""
        with self._lock:
            return sum(
                float(r.params.get("rate", 0.0)) for r in self._rules if r.fault == fault and r.matches(site, kind, day)
            )

    def data_key(self, site: str, kind: str, day: date) -> tuple[float, float, float]:
        return tuple(
            self.data_rate(f, site, kind, day) for f in ("late_events", "malformed_rows", "invalid_id_checksum")
        )  # type: ignore[return-value]

    def schema_drift(self, site: str, kind: str) -> str | None:
        with self._lock:
            for rule in self._rules:
                if rule.fault == "schema_drift" and rule.matches(site, kind):
                    return str(rule.params.get("variant", "new_field"))
        return None

    def _fires(self, rule: FaultRule) -> bool:
        rule.seen += 1
        if rule.every is not None and rule.seen % int(rule.every) != 0:
            return False
        if rule.rate is not None and self._random.random() >= float(rule.rate):
            return False
        if rule.count is not None:
            if rule.count <= 0:
                return False
            rule.count -= 1
        return True

    def take_request_fault(self, site: str, kind: str, page: int, allowed: frozenset[str]) -> FaultRule | None:
        """The first request fault that fires for this request (counts are consumed)."""
        with self._lock:
            for rule in self._rules:
                if rule.fault not in allowed or not rule.matches(site, kind):
                    continue
                first_eligible = max(rule.after_page, 1) if rule.fault in PAGE_FAULTS else rule.after_page
                if page <= first_eligible:
                    continue
                if self._fires(rule):
                    if rule.count == 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def take_file_fault(self, fault: str, site: str, kind: str, day: date) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.fault == fault and rule.matches(site, kind, day) and self._fires(rule):
                    if rule.count == 0:
                        self._rules.remove(rule)
                    return rule
        return None
