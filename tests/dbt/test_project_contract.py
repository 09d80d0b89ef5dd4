"""The dbt project agrees with the landing contract, the registry and itself (no dbt run)."""

from __future__ import annotations

import pyarrow.parquet as pq
import yaml

from ingestion.reference import export_reference
from ingestion.registry import SHAPE_KINDS, load_kinds, load_registry
from tests.conftest import PROJECT_ROOT

DBT = PROJECT_ROOT / "dbt_project"
ARROW_TO_SQL = {
    "string": "varchar",
    "timestamp": "timestamp",
    "date": "date",
    "double": "double",
    "integer": "bigint",
    "boolean": "boolean",
}


def _sources() -> dict:
    return yaml.safe_load((DBT / "models" / "staging" / "_landing__sources.yml").read_text(encoding="utf-8"))


def test_landing_sources_declare_the_kinds_yml_columns_and_types() -> None:
    kinds = load_kinds()
    landing = next(s for s in _sources()["sources"] if s["name"] == "landing")
    declared = {t["name"]: {c["name"]: c["data_type"] for c in t["columns"]} for t in landing["tables"]}
    assert set(declared) == set(kinds["kinds"])
    for kind, spec in kinds["kinds"].items():
        expected = {name: ARROW_TO_SQL[col["type"]] for name, col in spec["columns"].items()}
        expected |= {name: ARROW_TO_SQL[col["type"]] for name, col in kinds["metadata"].items()}
        expected |= {"site": "varchar", "date": "date"}
        assert declared[kind] == expected, f"sources.landing.{kind} differs from config/kinds.yml"


def test_one_staging_model_per_vendor_shape_and_kind() -> None:
    shapes = yaml.safe_load((DBT / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]["staging_shapes"]
    expected = {
        kind: sorted(shape for shape, kinds in SHAPE_KINDS.items() if kind in kinds) for kind in load_kinds()["kinds"]
    }
    assert {k: sorted(v) for k, v in shapes.items()} == expected
    files = {p.stem for p in (DBT / "models" / "staging").glob("stg_*.sql")}
    assert files == {f"stg_{shape}__{kind}" for kind, kind_shapes in shapes.items() for shape in kind_shapes}
    assert {p.stem for p in (DBT / "models" / "intermediate").glob("int_*.sql")} >= {f"int_{k}" for k in shapes}


def test_every_mart_column_is_documented_in_english_and_chinese() -> None:
    for path in (DBT / "models" / "marts").glob("*/_*__models.yml"):
        for model in yaml.safe_load(path.read_text(encoding="utf-8"))["models"]:
            assert model["config"]["contract"]["enforced"] is True, model["name"]
            for column in model["columns"]:
                text = column.get("description", "")
                assert " / " in text and any("\u4e00" <= ch <= "\u9fff" for ch in text), (
                    f"{model['name']}.{column['name']}"
                )
                assert column.get("data_type"), f"{model['name']}.{column['name']} has no data_type"


def test_reference_export_writes_the_registry_site_facts(tmp_path) -> None:
    registry = load_registry()
    written = export_reference(tmp_path, registry)
    assert set(written) == {"sites", "streets", "site_sources"}
    sites = pq.read_table(written["sites"]).to_pylist()
    assert [s["site_id"] for s in sites] == [s.site_id for s in registry.sites]
    vanke = next(s for s in sites if s["site_id"] == "vanke_meili")
    assert (vanke["residents"], vanke["smart_gate_entrances"], vanke["name_zh"]) == (6900, 5, "万科魅力之城")
    sources = pq.read_table(written["site_sources"]).to_pylist()
    assert len(sources) == sum(len(s.sources) for s in registry.sites)
    assert {"site_id": "xihoulou", "kind": "fire_alarms", "source_shape": "alarm_jsonl"} in sources
    assert not list(written["sites"].parent.glob("*.tmp")), "no temporary file is left behind"


def test_reference_cli_writes_into_the_data_dir(tmp_path, capsys) -> None:
    from ingestion.reference import main

    assert main(["--data-dir", str(tmp_path)]) == 0
    assert "wrote sites" in capsys.readouterr().out
    assert (tmp_path / "landing" / "_reference" / "streets.parquet").exists()


def test_clis_show_an_example_in_their_help(capsys) -> None:
    import pytest

    from dbt_project.run import main as dbt_main
    from ingestion.reference import main as reference_main

    for main in (dbt_main, reference_main):
        with pytest.raises(SystemExit):
            main(["--help"])
        assert "Example: python -m" in capsys.readouterr().out
