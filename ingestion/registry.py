"""The pilot registry (config/pilots.yml): which sites exist and how each source kind reaches us.

Validated with pydantic so that a bad registry fails early with the site and field named,
instead of failing deep inside a connector.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from ingestion.protocols import PROTOCOLS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"
DEFAULT_REGISTRY = CONFIG_DIR / "pilots.yml"
KINDS_FILE = CONFIG_DIR / "kinds.yml"

SOURCE_KINDS = (
    "passages",
    "visitors",
    "vehicles",
    "alerts",
    "fire_alarms",
    "device_status",
    "service_cases",
    "register",
    "activities",
    "disclosures",
    "surveys",
)
SourceKind = Literal[
    "passages",
    "visitors",
    "vehicles",
    "alerts",
    "fire_alarms",
    "device_status",
    "service_cases",
    "register",
    "activities",
    "disclosures",
    "surveys",
]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]


def __getattr__(name: str) -> Any:
    """`SHAPE_KINDS` (protocol -> kinds its committed vendors deliver), read from config/vendors/
    when first asked for: the kinds are the vendor files' `kinds:`, not a set in code."""
    if name == "SHAPE_KINDS":
        from ingestion.vendors import protocol_kinds

        return protocol_kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_ENV_PATTERN = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: str, environ: dict[str, str] | None = None) -> str:
    """Expand `${VAR}` and `${VAR:-default}`; an unset variable without default is an error."""
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is None:
            raise KeyError(f"environment variable {name} is not set")
        return default

    return _ENV_PATTERN.sub(substitute, value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Source(_Strict):
    """A site's source: `shape` is the protocol; `vendor` the vendor file (default: the protocol's)."""

    vendor: Slug | None = None

    @property
    def vendor_name(self) -> str:
        return self.vendor or self.shape  # type: ignore[attr-defined]


class IscConnection(_Source):
    shape: Literal["isc_openapi"]
    base_url: str
    app_key_env: EnvName
    app_secret_env: EnvName
    page_size: int = Field(1000, ge=1, le=1000)


class RestConnection(_Source):
    shape: Literal["token_rest"]
    base_url: str
    client_id_env: EnvName
    client_secret_env: EnvName
    page_size: int = Field(1000, ge=1, le=5000)


class FileDrop(_Source):
    shape: Literal["gov_export", "manual_xlsx", "alarm_jsonl"]
    drop_dir: str
    format: Literal["csv", "xlsx", "jsonl"] | None = None

    @model_validator(mode="after")
    def _format_fits_shape(self) -> FileDrop:
        allowed = PROTOCOLS[self.shape].formats
        if self.format is not None and self.format not in allowed:
            raise ValueError(f"format {self.format!r} does not fit shape {self.shape} (allowed: {sorted(allowed)})")
        return self

    @property
    def file_format(self) -> str:
        return self.format or PROTOCOLS[self.shape].formats[0]


Source = Annotated[IscConnection | RestConnection | FileDrop, Field(discriminator="shape")]


class Street(_Strict):
    street_id: Slug
    name_zh: str
    name_en: str


class Site(_Strict):
    site_id: Slug
    name_zh: str
    name_en: str
    street_id: Slug
    kind: Literal["community", "block"]
    sample: bool
    profile: str = Field(description="behaviour profile the simulator uses; the platform ignores it")
    residents: int = Field(gt=0)
    households: int = Field(gt=0)
    area_m2: float = Field(gt=0)
    pedestrian_entrances: int = Field(ge=0)
    smart_gate_entrances: int = Field(ge=0)
    vehicle_entrances: int = Field(ge=0)
    key_points: int = Field(ge=0)
    cameras: int = Field(ge=0)
    fire_sensors: int = Field(ge=0)
    iot_devices: int = Field(ge=0)
    gigabit_household_share: float = Field(ge=0, le=1)
    coverage_5g_area_share: float = Field(ge=0, le=1)
    sources: dict[SourceKind, Source]

    @model_validator(mode="before")
    @classmethod
    def _protocol_of_vendor(cls, data: Any) -> Any:
        """A source naming only its vendor speaks the protocol of the vendor's file."""
        if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
            return data
        from ingestion.vendors import vendor_protocol

        sources = {}
        for kind, source in data["sources"].items():
            if isinstance(source, dict) and source.get("vendor") and "shape" not in source:
                try:
                    source = {**source, "shape": vendor_protocol(source["vendor"])}
                except ValueError as exc:
                    raise ValueError(f"sources.{kind}.vendor: {exc}") from None
            sources[kind] = source
        return {**data, "sources": sources}

    @model_validator(mode="after")
    def _consistent(self) -> Site:
        if self.households > self.residents:
            raise ValueError(f"households ({self.households}) exceed residents ({self.residents})")
        if self.smart_gate_entrances > self.pedestrian_entrances:
            raise ValueError(
                f"smart_gate_entrances ({self.smart_gate_entrances}) exceed pedestrian_entrances ({self.pedestrian_entrances})"
            )
        from ingestion.vendors import load_vendor

        for kind, source in self.sources.items():
            try:
                vendor = load_vendor(source.vendor_name)
            except ValueError as exc:
                raise ValueError(f"sources.{kind}: {exc}") from None
            if vendor.shape != source.shape:
                raise ValueError(
                    f"sources.{kind}: vendor {source.vendor_name} speaks protocol {vendor.shape}, not {source.shape}"
                )
            if kind not in vendor.kinds:
                raise ValueError(
                    f"sources.{kind}: vendor {source.vendor_name} ({vendor.origin}) cannot deliver {kind}"
                    f" (its kinds: {', '.join(vendor.kinds)})"
                )
        return self

    def source(self, kind: str) -> IscConnection | RestConnection | FileDrop | None:
        return self.sources.get(kind)  # type: ignore[call-overload]

    def resolve(self, template: str, environ: dict[str, str] | None = None) -> str:
        """A connection string with `${ENV}` expanded and `{site_id}` filled in."""
        return expand_env(template, environ).replace("{site_id}", self.site_id)


class District(_Strict):
    id: Slug
    name_zh: str
    name_en: str
    city_zh: str


class Registry(_Strict):
    version: int
    district: District
    streets: list[Street]
    connections: dict[str, dict[str, Any]] = Field(default_factory=dict, description="YAML anchors only")
    sites: list[Site] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_and_linked(self) -> Registry:
        street_ids = {s.street_id for s in self.streets}
        seen: set[str] = set()
        for site in self.sites:
            if site.site_id in seen:
                raise ValueError(f"site {site.site_id}: site_id appears twice")
            seen.add(site.site_id)
            if site.street_id not in street_ids:
                raise ValueError(
                    f"site {site.site_id}: street_id {site.street_id!r} is not in streets {sorted(street_ids)}"
                )
        return self

    def site(self, site_id: str) -> Site:
        for site in self.sites:
            if site.site_id == site_id:
                return site
        raise KeyError(f"unknown site {site_id!r}; known: {', '.join(s.site_id for s in self.sites)}")

    def street(self, street_id: str) -> Street:
        return next(s for s in self.streets if s.street_id == street_id)


class RegistryError(ValueError):
    """The registry file is unreadable or invalid; the message names the site and field."""


def _describe(error: ValidationError, raw: dict[str, Any]) -> str:
    lines = []
    for err in error.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc)
        if len(loc) >= 2 and loc[0] == "sites" and isinstance(loc[1], int):
            sites = raw.get("sites") or []
            site_id = sites[loc[1]].get("site_id", f"#{loc[1]}") if loc[1] < len(sites) else f"#{loc[1]}"
            field = ".".join(str(p) for p in loc[2:]) or "(site)"
            where = f"site {site_id}: field {field}"
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)


def parse_registry(raw: Any, origin: str = "<registry>") -> Registry:
    if not isinstance(raw, dict):
        raise RegistryError(f"{origin}: expected a mapping at the top level")
    try:
        return Registry.model_validate(raw)
    except ValidationError as exc:
        raise RegistryError(f"{origin}: {_describe(exc, raw)}") from None


def read_yaml(path: Path) -> Any:
    """A configuration file, parsed with libyaml when present (pure-Python YAML costs every
    short-lived ingest task about a second of CPU for the registry and mappings)."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_registry(path: Path | str | None = None) -> Registry:
    """Load and validate the registry (default: $SMARTCOMM_REGISTRY or config/pilots.yml)."""
    path = Path(path or os.environ.get("SMARTCOMM_REGISTRY") or DEFAULT_REGISTRY)
    try:
        raw = read_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"{path}: {exc}") from None
    return parse_registry(raw, str(path))


@cache
def load_kinds() -> dict[str, Any]:
    """The landing contract per source kind (config/kinds.yml)."""
    return read_yaml(KINDS_FILE)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description="Validate the pilot registry. Example: python -m ingestion.registry check"
    )
    parser.add_argument("command", choices=["check"])
    parser.add_argument("--file", default=None, help="registry file (default config/pilots.yml)")
    args = parser.parse_args(argv)
    try:
        registry = load_registry(args.file)
    except RegistryError as exc:
        print(f"invalid registry: {exc}")
        return 1
    print(f"registry ok: {len(registry.sites)} sites in {len(registry.streets)} streets")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
