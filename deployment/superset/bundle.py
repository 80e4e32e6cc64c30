"""Build Superset's import bundle (a ZIP of its v1 YAML) from dashboards.yaml.

One database (the warehouse, as the read-only `bi_reader`), and per market its four datasets
over the market schema's `bi_*` views, the charts and one dashboard. Every object's uuid is
derived from its name (uuid5), so a second import overwrites the first instead of adding a
copy, and the same file gives the same ids on every machine.

    python bundle.py --uri postgresql+psycopg2://bi_reader:...@host:5432/warehouse \
        --markets us,uk --out bundle.zip

Only the standard library and PyYAML: it runs in Superset's venv and in the project's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import uuid
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

SPEC = Path(__file__).with_name("dashboards.yaml")
NAMESPACE = uuid.UUID("5b0e0c52-8a3f-4c8e-9d0b-6f1e2a7c4d10")  # this project's objects
VERSION = "1.0.0"
ROOT = "finance_assets_dashboards"
SESSION_LABEL = "session"  # the x axis of every chart: trading_date as YYYY-MM-DD


def object_uuid(*parts: str) -> str:
    """The stable uuid of a bundle object, from its kind and names."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def load_spec(path: Path = SPEC) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _database(spec: dict[str, Any], uri: str) -> dict[str, Any]:
    return {
        "database_name": spec["database"]["name"],
        "sqlalchemy_uri": uri,
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_file_upload": False,
        "extra": {"allows_virtual_table_explore": True},
        "uuid": object_uuid("database", spec["database"]["name"]),
        "version": VERSION,
    }


def _dataset(spec: dict[str, Any], market: str, view: str) -> dict[str, Any]:
    dataset = spec["datasets"][view]
    return {
        "table_name": view,
        "main_dttm_col": "trading_date",
        "description": dataset["description"],
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "schema": market,
        "sql": None,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "normalize_columns": False,
        "always_filter_main_dttm": False,
        "uuid": object_uuid("dataset", market, view),
        "metrics": [
            {
                "metric_name": "count",
                "verbose_name": "COUNT(*)",
                "metric_type": "count",
                "expression": "COUNT(*)",
                "description": None,
                "d3format": None,
                "currency": None,
                "extra": None,
                "warning_text": None,
            }
        ],
        "columns": [
            {
                "column_name": column,
                "verbose_name": None,
                "is_dttm": column == "trading_date",
                "is_active": True,
                "type": sql_type,
                "advanced_data_type": None,
                "groupby": True,
                "filterable": True,
                "expression": None,
                "description": None,
                "python_date_format": None,
                "extra": None,
            }
            for column, sql_type in dataset["columns"].items()
        ],
        "version": VERSION,
        "database_uuid": object_uuid("database", spec["database"]["name"]),
    }


def _chart(spec: dict[str, Any], market: str, name: str) -> dict[str, Any]:
    chart = spec["charts"][name]
    metrics = [
        {"expressionType": "SQL", "sqlExpression": expression, "label": label}
        for label, expression in chart["metrics"].items()
    ]
    params = {
        "viz_type": chart["viz_type"],
        # The session as text: a category axis of the sessions alone (a time axis spaces out
        # weekends and holidays; a forced category axis of a time column shows epoch numbers).
        "x_axis": {
            "expressionType": "SQL",
            "sqlExpression": "to_char(trading_date, 'YYYY-MM-DD')",
            "label": SESSION_LABEL,
        },
        "x_axis_sort_asc": True,
        "metrics": metrics,
        "groupby": chart["groupby"],
        "adhoc_filters": [
            {
                "clause": "WHERE",
                "subject": "trading_date",
                "operator": "TEMPORAL_RANGE",
                "comparator": "No filter",
                "expressionType": "SIMPLE",
            }
        ],
        "row_limit": 10000,
        "truncate_metric": True,
        "show_legend": True,
        "legendType": "scroll",
        "legendOrientation": "top",
        "rich_tooltip": True,
        "tooltipTimeFormat": "%Y-%m-%d",
        # A point per session: a series of one session (the first volatility) is still seen.
        "markerEnabled": True,
        "markerSize": 4,
        "y_axis_format": "SMART_NUMBER",
        "extra_form_data": {},
        "dashboards": [],
        **chart.get("params", {}),
    }
    return {
        "slice_name": chart["title"],
        "description": None,
        "certified_by": None,
        "certification_details": None,
        "viz_type": chart["viz_type"],
        "params": params,
        "query_context": None,
        "cache_timeout": None,
        "uuid": object_uuid("chart", market, name),
        "version": VERSION,
        "dataset_uuid": object_uuid("dataset", market, chart["dataset"]),
    }


def _dashboard(spec: dict[str, Any], market: str, title: str) -> dict[str, Any]:
    board = spec["dashboard"]
    title = board["title"].format(market=market, title=title)
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": title}},
    }
    grid = position["GRID_ID"]["children"]
    for number, row in enumerate(board["rows"], start=1):
        header_id, row_id = f"HEADER-{number}", f"ROW-{number}"
        position[header_id] = {
            "type": "HEADER",
            "id": header_id,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"text": row["header"], "headerSize": "MEDIUM_HEADER"},
        }
        position[row_id] = {
            "type": "ROW",
            "id": row_id,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
        grid += [header_id, row_id]
        for name, width in row["charts"].items():
            chart_id = f"CHART-{market}-{name}"
            position[row_id]["children"].append(chart_id)
            position[chart_id] = {
                "type": "CHART",
                "id": chart_id,
                "children": [],
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {
                    "width": width,
                    "height": 50,
                    "chartId": 0,  # the importer sets the id of the chart with this uuid
                    "uuid": object_uuid("chart", market, name),
                    "sliceName": spec["charts"][name]["title"],
                },
            }
    return {
        "dashboard_title": title,
        "description": None,
        "css": "",
        "slug": board["slug"].format(market=market),
        "certified_by": None,
        "certification_details": None,
        "published": True,
        "uuid": object_uuid("dashboard", market),
        "position": position,
        "metadata": {
            "color_scheme": "supersetColors",
            "refresh_frequency": 0,
            "expanded_slices": {},
            "label_colors": {},
            "shared_label_colors": [],
            "color_scheme_domain": [],
            "timed_refresh_immune_slices": [],
            "cross_filters_enabled": False,
            "native_filter_configuration": [],
            "default_filters": "{}",
        },
        "version": VERSION,
    }


def charts_of(spec: dict[str, Any]) -> list[str]:
    """The charts a market's dashboard shows, in layout order."""
    return [name for row in spec["dashboard"]["rows"] for name in row["charts"]]


def bundle_files(uri: str, markets: Iterable[str], spec: dict[str, Any]) -> dict[str, str]:
    """The bundle's files (path inside the ZIP -> YAML text) for these markets."""
    unknown = [m for m in markets if m not in spec["markets"]]
    if unknown:
        raise ValueError(f"no dashboard for market(s) {unknown}: add them to {SPEC.name}")
    database = spec["database"]["name"].replace(" ", "_")
    files = {
        "metadata.yaml": _dump({"version": VERSION, "type": "Dashboard", "timestamp": _now()}),
        f"databases/{database}.yaml": _dump(_database(spec, uri)),
    }
    for market in markets:
        for view in spec["datasets"]:
            files[f"datasets/{database}/{market}_{view}.yaml"] = _dump(_dataset(spec, market, view))
        for name in charts_of(spec):
            files[f"charts/{market}_{name}.yaml"] = _dump(_chart(spec, market, name))
        files[f"dashboards/{market}.yaml"] = _dump(
            _dashboard(spec, market, spec["markets"][market])
        )
    return files


def build_zip(uri: str, markets: Iterable[str], spec: dict[str, Any] | None = None) -> bytes:
    """The bundle as ZIP bytes, every file under one root folder (as Superset exports)."""
    files = bundle_files(uri, list(markets), spec or load_spec())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in files.items():
            archive.writestr(f"{ROOT}/{path}", text)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", required=True, help="the warehouse as Superset connects to it")
    parser.add_argument("--markets", default="us,uk")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    markets = [m.strip() for m in args.markets.split(",") if m.strip()]
    args.out.write_bytes(build_zip(args.uri, markets))


if __name__ == "__main__":
    main()
