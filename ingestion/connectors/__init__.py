"""Connectors: one per protocol, generic over kinds and vendors (the mapping is the vendor's
file in config/vendors/).

A connector turns a range of local listing days into `Unit`s (a query window, a file, a
workbook) and yields the raw vendor records of each unit as pages (lists of dicts). It
knows the transport and the envelope, never the canonical columns: `ingestion.mapping`
does that. `make_connector()` picks the class the source's protocol names (`ingestion.protocols`).
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.demo import DEMO_ENV, demo_mode, is_demo_value
from ingestion.http import FetchError, RetryCounter, RetryPolicy
from ingestion.mapping import ShapeMapping
from ingestion.protocols import protocol
from ingestion.registry import Site


@dataclass(frozen=True)
class Unit:
    """One thing to read: a query window or a file. `day` is its local listing day; `covers`
    the local days a file lists when they are more than `day` (a monthly workbook's month)."""

    day: dt.date
    label: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    files: tuple[Any, ...] = field(default_factory=tuple)
    covers: tuple[dt.date, dt.date] | None = None


class NotDelivered(Exception):
    """A file-based source has not delivered some days yet (never written as empty)."""

    def __init__(self, days: list[dt.date], detail: str) -> None:
        super().__init__(detail)
        self.days = days


class Connector(Protocol):
    retry: RetryCounter

    def units(self, first_day: dt.date, last_day: dt.date) -> list[Unit]: ...

    def pages(self, unit: Unit) -> Iterator[list[dict[str, Any]]]: ...

    def close(self) -> None: ...

    def after_landing(self) -> None:
        """Called once the run has landed everything it read (file drops retire their files)."""
        ...


def credential(site_id: str, kind: str, env_name: str) -> str:
    """A vendor secret from the environment variable config/pilots.yml names. The committed
    demo values of config/demo.env are public, so only demo mode (SMARTCOMM_DEMO=1) accepts them."""
    value = os.environ.get(env_name)
    if not value:
        raise FetchError(site_id, kind, f"credential environment variable {env_name} is not set")
    if not demo_mode() and is_demo_value(value):
        raise FetchError(
            site_id,
            kind,
            f"credential {env_name} holds a committed demo value of config/demo.env, accepted only in "
            f"demo mode ({DEMO_ENV}=1): set the vendor's own credential from your secret store",
        )
    return value


def make_connector(site: Site, kind: str, mapping: ShapeMapping, policy: RetryPolicy | None = None) -> Connector:
    """The connector for one site's source of `kind`: the class of the source's protocol, with
    the vendor's mapping."""
    source = site.source(kind)
    if source is None:
        raise KeyError(f"site {site.site_id} has no source for kind {kind!r}")
    policy = policy or RetryPolicy()
    retry = RetryCounter(policy, site.site_id, kind)
    module, name = protocol(source.shape).connector.split(":")
    connector_class = getattr(importlib.import_module(module), name)
    return connector_class(site, kind, source, mapping, retry)
