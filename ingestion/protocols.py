"""Protocols: the transports the platform speaks, each with its connector class.

A protocol is code (a new one needs a new connector); a vendor is configuration: one file
under config/vendors/ naming its protocol and its field names, codes, time formats, file
pattern or endpoints (`ingestion.vendors`). The landed `_source_shape` column is the
protocol name, so dbt staging (one model per protocol and kind) never sees vendor names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProtocolSpec:
    """What a vendor file of this protocol must provide and which kinds the transport can carry."""

    name: str
    title: str
    connector: str  # "module:Class", imported when a connector is made
    carries: frozenset[str] | None = None  # None: any kind of config/kinds.yml
    formats: tuple[str, ...] = ()  # file formats a site's source may name (first: the default)
    required: tuple[str, ...] = ()  # vendor-level settings the connector reads without a default
    kind_required: tuple[str, ...] = ()  # settings every kind entry needs
    placeholders: tuple[str, ...] = ()  # what the connector fills into file_pattern

    def cannot_carry(self, kind: str) -> bool:
        return self.carries is not None and kind not in self.carries


PROTOCOLS: dict[str, ProtocolSpec] = {
    spec.name: spec
    for spec in (
        ProtocolSpec(
            "isc_openapi",
            "ISC-style security platform OpenAPI: signed POST, pageNo paging",
            "ingestion.connectors.isc:IscConnector",
            # a security platform: gates, visitors, cars, video and fire alarms, device heartbeats
            carries=frozenset({"passages", "visitors", "vehicles", "alerts", "fire_alarms", "device_status"}),
            kind_required=("endpoint",),
        ),
        ProtocolSpec(
            "token_rest",
            "token REST platform: OAuth2 client credentials, cursor paging",
            "ingestion.connectors.rest:RestConnector",
        ),
        ProtocolSpec(
            "gov_export",
            "government service platform export: one CSV or XLSX file per local day",
            "ingestion.connectors.files:GovExportConnector",
            carries=frozenset({"service_cases"}),  # the platform exports its cases (办件), nothing else
            formats=("csv", "xlsx"),
            required=("file_pattern",),
            placeholders=("yyyymmdd", "format"),
        ),
        ProtocolSpec(
            "manual_xlsx",
            "grid workers' monthly workbooks",
            "ingestion.connectors.files:ManualXlsxConnector",
            formats=("xlsx",),
            required=("file_pattern",),
            placeholders=("kind", "yyyy_mm"),
        ),
        ProtocolSpec(
            "alarm_jsonl",
            "alarm push of IoT and AI-video platforms: JSON lines per local hour",
            "ingestion.connectors.files:AlarmJsonlConnector",
            carries=frozenset({"alerts", "fire_alarms"}),  # alarms with raise/ack/close times
            formats=("jsonl",),
            required=("file_pattern",),
            placeholders=("kind", "yyyymmddhh"),
        ),
    )
}


def protocol(name: str) -> ProtocolSpec:
    """The protocol of that name; KeyError lists the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise KeyError(f"unknown protocol {name!r} (known: {', '.join(sorted(PROTOCOLS))})") from None
