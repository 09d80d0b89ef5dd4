"""What a vendor API lists for a time window: day listings (late rows shifted by 24 h),
encoded once per day and cached as JSON bytes per row, so paging is a slice and a join.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from simulator.encode import encode_fields, json_rows
from simulator.world import DAY_COLUMN, LATE_KINDS, World, batch_len

EPOCH_DAY0 = date(1970, 1, 1)


@dataclass
class DayListing:
    """One day's rows as a single JSON blob: row i is blob[offsets[i]:offsets[i + 1] - 1].

    One allocation per day instead of one per row keeps the heap unfragmented, so memory
    goes back to the system when a day leaves the cache.
    """

    listed: np.ndarray  # int64 local seconds since 1970-01-01 00:00 (naive), sorted
    blob: bytes  # the rows' JSON objects, each followed by b","
    offsets: np.ndarray  # int64, len(rows) + 1

    def __len__(self) -> int:
        return len(self.listed)

    def chunk(self, lo: int, hi: int) -> bytes:
        """Rows lo..hi-1 as comma-separated JSON objects (no trailing comma)."""
        return self.blob[int(self.offsets[lo]) : int(self.offsets[hi]) - 1] if hi > lo else b""


def _trim_heap() -> None:
    """Hand freed memory back to the OS (glibc keeps it otherwise; see bench notes)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def local_seconds(day: date) -> int:
    return (day - EPOCH_DAY0).days * 86400


class Lister:
    """Per (shape, site, kind, day) listings with an LRU cache bounded in rows."""

    def __init__(self, world: World, max_rows: int = 1_000_000) -> None:
        self.world = world
        self.max_rows = max_rows
        self._cache: OrderedDict[tuple[Any, ...], DayListing] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()
        self._building: dict[tuple[Any, ...], threading.Lock] = {}

    def names(self, site_id: str) -> dict[str, dict[str, str]]:
        sw = self.world.site_world(site_id)
        return {
            "gates": dict(zip(sw.gate_ids, sw.gate_names, strict=True)),
            "vehicle_gates": dict(zip(sw.vehicle_gate_ids, sw.vehicle_gate_names, strict=True)),
        }

    def day(self, shape: str, site_id: str, kind: str, day: date) -> DayListing:
        faults = self.world.faults
        variant = faults.schema_drift(site_id, kind)
        key = (
            shape,
            site_id,
            kind,
            day,
            variant,
            faults.data_key(site_id, kind, day),
            faults.data_key(site_id, kind, day - timedelta(days=1)),
        )
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None:
                    return hit
            listing = self._build(shape, site_id, kind, day, variant)
            if len(listing) > 20_000:
                _trim_heap()
            with self._lock:
                self._cache[key] = listing
                self._rows += len(listing)
                self._building.pop(key, None)
                while self._rows > self.max_rows and len(self._cache) > 1:
                    _, old = self._cache.popitem(last=False)
                    self._rows -= len(old)
        return listing

    def _build(self, shape: str, site_id: str, kind: str, day: date, variant: str | None) -> DayListing:
        world, col = self.world, DAY_COLUMN[kind]
        names = self.names(site_id)
        listed_parts: list[np.ndarray] = []
        rows: list[bytes] = []
        current = world.with_faults(site_id, kind, day)
        if batch_len(current):
            keep = ~current["_late"]
            sub = {c: v[keep] for c, v in current.items()}
            listed_parts.append(sub[col].astype("datetime64[s]").astype("int64"))
            rows += json_rows(encode_fields(shape, kind, sub, names, variant))
        if kind in LATE_KINDS and world.faults.data_rate("late_events", site_id, kind, day - timedelta(days=1)) > 0:
            previous = world.with_faults(site_id, kind, day - timedelta(days=1))
            if batch_len(previous) and previous["_late"].any():
                sub = {c: v[previous["_late"]] for c, v in previous.items()}
                listed_parts.append(sub[col].astype("datetime64[s]").astype("int64") + 86400)
                rows += json_rows(encode_fields(shape, kind, sub, names, variant))
        if not rows:
            return DayListing(np.empty(0, dtype="int64"), b"", np.zeros(1, dtype="int64"))
        listed = np.concatenate(listed_parts)
        order = np.argsort(listed, kind="stable")
        ordered = [rows[i] for i in order.tolist()]
        offsets = np.zeros(len(ordered) + 1, dtype="int64")
        np.cumsum([len(r) + 1 for r in ordered], out=offsets[1:])
        return DayListing(listed[order], b",".join(ordered) + b",", offsets)

    def window(self, shape: str, site_id: str, kind: str, start_s: int, end_s: int) -> Window:
        """Rows listed in [start_s, end_s) (local seconds)."""
        segments: list[tuple[DayListing, int, int]] = []
        if end_s > start_s:
            first = EPOCH_DAY0 + timedelta(days=start_s // 86400)
            last = EPOCH_DAY0 + timedelta(days=(end_s - 1) // 86400)
            day = first
            while day <= last:
                listing = self.day(shape, site_id, kind, day)
                lo = int(np.searchsorted(listing.listed, start_s, "left"))
                hi = int(np.searchsorted(listing.listed, end_s, "left"))
                if hi > lo:
                    segments.append((listing, lo, hi))
                day += timedelta(days=1)
        return Window(segments)


class Window:
    """The rows of one query window, addressable by offset."""

    def __init__(self, segments: list[tuple[DayListing, int, int]]) -> None:
        self.segments = segments
        self.total = sum(hi - lo for _, lo, hi in segments)

    def slice(self, offset: int, limit: int) -> list[bytes]:
        """Rows offset..offset+limit-1 as non-empty chunks of comma-separated JSON objects."""
        out: list[bytes] = []
        wanted = limit
        for listing, lo, hi in self.segments:
            size = hi - lo
            if offset >= size:
                offset -= size
                continue
            take = min(wanted, size - offset)
            out.append(listing.chunk(lo + offset, lo + offset + take))
            wanted -= take
            offset = 0
            if wanted <= 0:
                break
        return out

    def count(self, offset: int, limit: int) -> int:
        return max(0, min(limit, self.total - offset))
