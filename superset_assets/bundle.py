"""Build the importable ZIP from the assets in superset_assets/assets/ (Superset's native export format).

The YAML files under assets/ are what a Superset export contains (databases/, datasets/,
charts/, dashboards/, linked by UUID), written by hand for review. Three things are filled
in here, at bundle time, because they depend on the machine or would only repeat what
the files already say:

- the serving database URI (`{{ SERVING_DB }}` in databases/*.yaml) from the environment;
- a chart's `query_context` (Superset's chart-data API needs one) derived from its
  `params`, the way the Explore view derives it when a chart is saved;
- a dashboard's `position` from a short `layout:` (rows of chart uuids and widths).

No superset import: runs in either environment.

    python -m superset_assets.bundle out.zip     # writes the ZIP Superset imports
"""

from __future__ import annotations

import argparse
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import yaml

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
BUNDLE_ROOT = "smartcomm_bundle"  # the importer needs every file under one top-level folder
DEFAULT_ROW_LIMIT = 10000


def serving_db_path() -> Path:
    data_dir = Path(os.environ.get("SMARTCOMM_DATA_DIR") or ASSETS_DIR.parent.parent / "data")
    return Path(os.environ.get("SMARTCOMM_SERVING_DB") or data_dir / "warehouse" / "serving.duckdb").resolve()


def serving_uri(path: Path | None = None) -> str:
    """Read-only DuckDB URI; Superset opens it with NullPool, so each query sees the current file."""
    return f"duckdb:///{path or serving_db_path()}?access_mode=read_only"


def load_assets(assets_dir: Path = ASSETS_DIR) -> dict[str, dict[str, Any]]:
    """Every asset YAML, keyed by its path relative to assets/."""
    return {
        str(path.relative_to(assets_dir)): yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted(assets_dir.rglob("*.yaml"))
    }


def _filters(form_data: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    simple, where = [], []
    for flt in form_data.get("adhoc_filters", []):
        if flt.get("expressionType") == "SQL":
            where.append(f"({flt['sqlExpression']})")
        elif flt.get("operator") != "TEMPORAL_RANGE":
            simple.append({"col": flt["subject"], "op": flt["operator"], "val": flt.get("comparator")})
    return simple, " AND ".join(where)


def query_for(form_data: dict[str, Any]) -> dict[str, Any]:
    """The query object the frontend's buildQuery would send for the viz types used here."""
    viz = form_data["viz_type"]
    metrics = list(form_data.get("metrics") or ([form_data["metric"]] if form_data.get("metric") else []))
    groupby = list(form_data.get("groupby") or [])
    if viz == "table" and form_data.get("query_mode") == "raw":
        columns, metrics = list(form_data["all_columns"]), []
    elif viz in ("echarts_timeseries_bar", "echarts_timeseries_line", "echarts_area"):
        columns = [form_data["x_axis"], *groupby]
    elif viz == "heatmap_v2":
        columns = [form_data["x_axis"], form_data["groupby"]]
    else:
        columns = groupby
    filters, where = _filters(form_data)
    orderby = [[m, False] for m in metrics[:1]] if viz in ("table", "pie") and metrics else []
    if form_data.get("order_by_cols"):
        orderby = [json.loads(item) for item in form_data["order_by_cols"]]
    return {
        "columns": columns,
        "metrics": metrics,
        "orderby": orderby,
        "filters": filters,
        "extras": {"where": where, "having": ""},
        "row_limit": form_data.get("row_limit", DEFAULT_ROW_LIMIT),
        "series_limit": 0,
        "order_desc": True,
        "annotation_layers": [],
        "applied_time_extras": {},
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
    }


def chart_data_body(dataset: int | str, query: dict[str, Any], force: bool = False) -> dict[str, Any]:
    """A `POST /api/v1/chart/data` request for one query on a dataset (its id; in an export,
    its uuid)."""
    return {
        "datasource": {"id": dataset, "type": "table"},
        "force": force,
        "queries": [query],
        "result_format": "json",
        "result_type": "full",
    }


def query_context(chart: dict[str, Any]) -> str:
    form_data = dict(chart["params"])
    body = chart_data_body(chart["dataset_uuid"], query_for(form_data))
    return json.dumps({**body, "form_data": form_data}, ensure_ascii=False)


def position(dashboard: dict[str, Any], charts_by_uuid: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Superset's layout tree from `layout:` (a list of rows, each a list of {chart, width, height})."""
    nodes: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": dashboard["dashboard_title"]}},
    }
    for r, row in enumerate(dashboard["layout"]):
        row_id = f"ROW-{r}"
        nodes["GRID_ID"]["children"].append(row_id)
        nodes[row_id] = {
            "type": "ROW",
            "id": row_id,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
        for c, cell in enumerate(row):
            if "markdown" in cell:
                node_id = f"MARKDOWN-{r}-{c}"
                nodes[node_id] = {
                    "type": "MARKDOWN",
                    "id": node_id,
                    "children": [],
                    "parents": ["ROOT_ID", "GRID_ID", row_id],
                    "meta": {"width": cell.get("width", 4), "height": cell.get("height", 50), "code": cell["markdown"]},
                }
            else:
                chart = charts_by_uuid[cell["chart"]]
                node_id = f"CHART-{r}-{c}"
                nodes[node_id] = {
                    "type": "CHART",
                    "id": node_id,
                    "children": [],
                    "parents": ["ROOT_ID", "GRID_ID", row_id],
                    "meta": {
                        "width": cell.get("width", 4),
                        "height": cell.get("height", 50),
                        "chartId": int(cell["chart"].rsplit("-", 1)[1]),  # the importer maps it to the new id
                        "uuid": cell["chart"],
                        "sliceName": chart["slice_name"],
                    },
                }
            nodes[row_id]["children"].append(node_id)
    return nodes


def render(assets: dict[str, dict[str, Any]], serving_db: Path | None = None) -> dict[str, dict[str, Any]]:
    """The files of the bundle, with the machine-specific and derived parts filled in."""
    charts = {doc["uuid"]: doc for name, doc in assets.items() if name.startswith("charts/")}
    out: dict[str, dict[str, Any]] = {}
    for name, doc in assets.items():
        doc = dict(doc)
        if name.startswith("databases/"):
            doc["sqlalchemy_uri"] = serving_uri(serving_db)
        elif name.startswith("charts/"):
            doc.setdefault("version", "1.0.0")
            doc["params"] = {**doc["params"], "viz_type": doc["viz_type"]}
            if not doc.get("query_context"):
                doc["query_context"] = query_context(doc)
        elif name.startswith("dashboards/"):
            if "layout" in doc:
                doc["position"] = position(doc, charts)
                del doc["layout"]
            doc.setdefault("version", "1.0.0")
        out[name] = doc
    out["metadata.yaml"] = {"version": "1.0.0", "type": "Dashboard", "timestamp": "2026-01-01T00:00:00+00:00"}
    return out


def build_bundle(target: Path | None = None, serving_db: Path | None = None) -> bytes:
    """The ZIP that `superset import-dashboards` and POST /api/v1/dashboard/import/ accept."""
    files = render(load_assets(), serving_db)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, doc in sorted(files.items()):
            text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
            archive.writestr(f"{BUNDLE_ROOT}/{name}", text)
    data = buffer.getvalue()
    if target:
        Path(target).write_bytes(data)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build the Superset import bundle. Example: python -m superset_assets.bundle /tmp/bundle.zip"
    )
    parser.add_argument("target", type=Path, help="ZIP file to write")
    parser.add_argument("--serving", type=Path, default=None, help="serving DuckDB path (default from env)")
    args = parser.parse_args(argv)
    build_bundle(args.target, args.serving)
    print(f"wrote {args.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
