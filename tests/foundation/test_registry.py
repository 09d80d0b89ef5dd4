"""The pilot registry validates, and a bad registry fails naming the site and field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from ingestion.registry import (
    DEFAULT_REGISTRY,
    SOURCE_KINDS,
    RegistryError,
    expand_env,
    load_kinds,
    load_registry,
    parse_registry,
)


@pytest.fixture()
def raw() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_REGISTRY.read_text(encoding="utf-8"))


def test_shipped_registry_has_the_ten_pilots(registry):
    assert len(registry.sites) == 10
    kinds = sorted(site.kind for site in registry.sites)
    assert kinds.count("community") == 8 and kinds.count("block") == 2
    assert {s.street_id for s in registry.sites} == {"chengyang", "liuting"}
    named = {s.name_zh: s for s in registry.sites if not s.sample}
    assert set(named) == {"西后楼社区", "万科魅力之城", "小寨子社区", "白沙湾社区"}
    assert named["白沙湾社区"].street_id == "liuting"
    assert named["万科魅力之城"].residents == 6900
    assert all(s.sample for s in registry.sites if s.name_zh not in named)


def test_every_source_uses_a_known_kind_and_no_secret_values(registry, raw):
    for site in registry.sites:
        assert set(site.sources) <= set(SOURCE_KINDS)
    text = DEFAULT_REGISTRY.read_text(encoding="utf-8").lower()
    for word in ("secret:", "password:", "token:"):
        assert word not in text, f"{word} looks like a secret written into the registry"


def test_kinds_contract_covers_every_source_kind():
    kinds = load_kinds()["kinds"]
    assert set(kinds) == set(SOURCE_KINDS)
    for name, spec in kinds.items():
        assert spec["day_column"] in spec["columns"], name
        assert set(spec["natural_key"]) <= set(spec["columns"]), name


def _expect_error(raw: dict[str, Any], *fragments: str) -> None:
    with pytest.raises(RegistryError) as info:
        parse_registry(raw, "test.yml")
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message


def test_missing_field_names_site_and_field(raw):
    bad = copy.deepcopy(raw)
    del bad["sites"][2]["residents"]
    _expect_error(bad, "site xiaozhaizi", "residents", "Field required")


def test_unknown_shape_is_refused(raw):
    bad = copy.deepcopy(raw)
    bad["sites"][0]["sources"]["passages"]["shape"] = "fax_machine"
    _expect_error(bad, "site xihoulou", "sources.passages")


def test_shape_that_cannot_deliver_kind_is_refused(raw):
    bad = copy.deepcopy(raw)
    bad["sites"][1]["sources"]["service_cases"] = {"shape": "alarm_jsonl", "drop_dir": "x"}
    _expect_error(bad, "site vanke_meili", "cannot deliver service_cases")


def test_duplicate_site_and_unknown_street_are_refused(raw):
    bad = copy.deepcopy(raw)
    bad["sites"].append(copy.deepcopy(bad["sites"][0]))
    _expect_error(bad, "xihoulou", "appears twice")
    bad = copy.deepcopy(raw)
    bad["sites"][3]["street_id"] = "nowhere"
    _expect_error(bad, "site baishawan", "nowhere")


def test_inconsistent_counts_and_bad_slug_are_refused(raw):
    bad = copy.deepcopy(raw)
    bad["sites"][0]["smart_gate_entrances"] = 99
    _expect_error(bad, "site xihoulou", "smart_gate_entrances")
    bad = copy.deepcopy(raw)
    bad["sites"][0]["site_id"] = "Bad Id"
    _expect_error(bad, "site_id")
    bad = copy.deepcopy(raw)
    bad["sites"][0]["gigabit_household_share"] = 1.5
    _expect_error(bad, "site xihoulou", "gigabit_household_share")


def test_secret_must_be_an_env_name_not_a_value(raw):
    bad = copy.deepcopy(raw)
    bad["sites"][1]["sources"]["passages"]["app_secret_env"] = "s3cr3t-value"
    _expect_error(bad, "site vanke_meili", "app_secret_env")


def test_unreadable_file_is_a_registry_error(tmp_path):
    path = tmp_path / "pilots.yml"
    path.write_text("sites: [unclosed", encoding="utf-8")
    with pytest.raises(RegistryError, match=r"pilots\.yml"):
        load_registry(path)


def test_connection_strings_expand_env_and_site(registry):
    site = registry.site("vanke_meili")
    source = site.source("passages")
    assert site.resolve(source.base_url, {}) == "http://127.0.0.1:8700/isc/vanke_meili"
    assert site.resolve(source.base_url, {"SMARTCOMM_ISC_URL": "http://h:1"}) == "http://h:1/isc/vanke_meili"
    with pytest.raises(KeyError, match="NOPE"):
        expand_env("${NOPE}", {})
