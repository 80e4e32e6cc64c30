"""The Spark job's own parts: the arguments, the raw zone's envelopes, the per-group runner the
executors use, and what the cluster gets (the package, not copies of its rules); on the shared
local[2] session where Spark is needed."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from finance_assets.lib import transforms
from finance_assets.resources.thresholds import DataQualityResource
from finance_assets.spark import job as bars_job
from finance_assets.spark import raw, work

NY = ZoneInfo("America/New_York")
SPARK_DIR = Path(__file__).resolve().parents[2] / "spark"


def test_the_default_quarantine_rate_is_the_projects():
    assert DataQualityResource().max_quarantine_rate == bars_job.MAX_QUARANTINE_RATE


def test_spark_holds_no_rule_of_its_own():
    """spark/ is the entry point alone, and the job's modules call the polars path: no parser,
    number grammar or cleaning rule of their own."""
    assert sorted(p.name for p in SPARK_DIR.iterdir() if p.suffix == ".py") == ["bars_job.py"]
    job_dir = Path(bars_job.__file__).parent
    for path in job_dir.glob("*.py"):
        text = path.read_text()
        for word in ("import orjson", "json.loads(body", "not positive", "MAX_PRICE", "strptime"):
            assert word not in text, (path.name, word)


def _meta(fmt: str = "twelve_data", **overrides) -> dict:
    meta = {
        "provider": "someone",
        "format": fmt,
        "interval": "5min",
        "symbols": ["AAPL"],
        "window_start": "2026-11-20T09:30:00-05:00",
        "window_end": "2026-11-20T16:00:00-05:00",
        "fetched_at": "2026-11-20T21:00:00+00:00",
        "batch": 0,
        "request": {},
    }
    return {**meta, **overrides}


def test_an_unknown_format_is_refused_by_name_as_the_polars_path_does(spark_session, tmp_path):
    folder = tmp_path / "dt=2026-11-20"
    folder.mkdir()
    (folder / "p.meta.json").write_text(json.dumps(_meta("parquet_dump")))
    (folder / "p.json").write_text("{}")
    start = dt.datetime(2026, 11, 20, tzinfo=NY)
    with pytest.raises(transforms.PayloadFormatError) as refused:
        raw.read_envelopes(spark_session, str(tmp_path), start, start + dt.timedelta(1))
    assert str(refused.value) == (
        f"payload p has unknown format 'parquet_dump'; known: {sorted(transforms.PARSERS)}"
    )


def test_an_empty_raw_zone_has_no_payloads(spark_session, tmp_path):
    start = dt.datetime(2026, 11, 20, tzinfo=NY)
    assert raw.read_envelopes(spark_session, str(tmp_path), start, start) == []


def test_envelopes_of_the_window_oldest_fetch_first(spark_session, tmp_path):
    folder = tmp_path / "dt=2026-11-20"
    folder.mkdir()
    fetches = {"b": "2026-11-20T22:00:00+00:00", "a": "2026-11-20T23:00:00+00:00"}
    for name, at in fetches.items():
        (folder / f"{name}.meta.json").write_text(json.dumps(_meta(fetched_at=at)))
        (folder / f"{name}.json").write_text("{}")
    outside = _meta(window_start="2026-11-21T09:30:00-05:00", window_end="2026-11-21T16:00-05:00")
    (folder / "c.meta.json").write_text(json.dumps(outside))
    start = dt.datetime(2026, 11, 20, tzinfo=NY)
    found = raw.read_envelopes(spark_session, str(tmp_path), start, start + dt.timedelta(1))
    assert [e.payload_id for e in found] == ["b", "a"]
    assert found[0].payload().fetched_at == dt.datetime(2026, 11, 20, 22, tzinfo=dt.UTC)
    assert found[0].body_path.endswith("dt=2026-11-20/b.json")


def test_each_group_is_run_once_whole_across_batches():
    """`by_group` hands the function every row of a group at once, however Spark cuts the
    partition into batches, and each group once."""
    seen: list[tuple[str, list[int]]] = []

    def record(table: pa.Table) -> pa.Table:
        keys = table.column("grp").to_pylist()
        seen.append((keys[0], table.column("n").to_pylist()))
        assert set(keys) == {keys[0]}
        return pa.table({"grp": [keys[0]], "rows": [table.num_rows]})

    rows = [("g1", 1), ("g1", 2), ("g2", 3), ("g2", 4), ("g2", 5), ("g3", 6)]
    batches = [
        pa.RecordBatch.from_pylist([{"grp": g, "n": n} for g, n in rows[a:b]])
        for a, b in ((0, 1), (1, 3), (3, 4), (4, 6))
    ]
    out = pa.Table.from_batches(list(work.by_group("grp", record)(iter(batches))))
    assert out.to_pylist() == [
        {"grp": "g1", "rows": 2},
        {"grp": "g2", "rows": 3},
        {"grp": "g3", "rows": 1},
    ]
    assert seen == [("g1", [1, 2]), ("g2", [3, 4, 5]), ("g3", [6])]
    assert list(work.by_group("grp", record)(iter([]))) == []


def test_the_job_imports_only_the_cluster_packages():
    """What the executors and the driver import, in a fresh interpreter: the package, pyspark,
    the standard library and what CLUSTER_PACKAGES installs (with its own dependencies)."""
    from finance_assets.resources.spark_pipes import CLUSTER_PACKAGES

    code = (
        "import sys, json; import finance_assets.spark.job; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )
    # Imported here because they are installed, used only when present: pyarrow tries
    # cloudpickle, pandas pytz, polars typing_extensions.
    optional = {"cloudpickle", "pytz", "typing_extensions"}
    owners = importlib.metadata.packages_distributions()
    allowed = _closure(CLUSTER_PACKAGES) | {"pyspark", "py4j", "finance-assets"}
    outside = {}
    for module in loaded:
        if module in sys.stdlib_module_names or module.startswith("_") or module in optional:
            continue
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [])}
        if dists and not dists & allowed:
            outside[module] = sorted(dists)
    assert outside == {}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _closure(requirements) -> set[str]:
    """The distributions installing `requirements` brings (their unconditional dependencies,
    as installed here)."""
    found: set[str] = set()
    todo = [_name(r) for r in requirements]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requires if ";" not in r or "extra ==" not in r]
    return found


def test_the_cluster_packages_are_pinned_as_the_project_pins_them():
    from finance_assets.resources.spark_pipes import CLUSTER_PACKAGES

    project = tomllib.loads((SPARK_DIR.parent / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["spark"]]
    pins = {_name(r): r.replace(" ", "") for r in declared}
    assert {_name(p): p for p in CLUSTER_PACKAGES} == {
        _name(p): pins[_name(p)] for p in CLUSTER_PACKAGES
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--market", "jp"], "invalid choice: 'jp'"),
        (["--start", "2026-13-01"], "is not a date"),
        (["--end", "2026-11-01"], "is before --start"),
        (["--steps", "everything"], "valid steps are raw_to_parquet, daily_summary"),
        (["--interval", "1hour"], "invalid choice: '1hour'"),
        (["--interval", "1day", "--steps", "daily_summary"], "aggregates 5-minute bars"),
        (["--max-quarantine-rate", "5"], "is not within [0, 1]"),
    ],
)
def test_bad_arguments_name_the_value(argv, message, capsys):
    base = {"--raw": "r", "--out": "o", "--market": "us", "--start": "2026-11-16"}
    base["--end"] = "2026-11-20"
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        base[flag] = value
    with pytest.raises(SystemExit):
        bars_job.parse_args([item for pair in base.items() for item in pair])
    assert message in capsys.readouterr().err


def test_the_steps_follow_the_interval(us):
    base = ["--raw", "r", "--out", "o", "--market", "us", "--start", "2026-11-16"]
    base += ["--end", "2026-11-20"]
    assert bars_job.parse_args(base).steps == ["raw_to_parquet", "daily_summary"]
    daily = bars_job.parse_args([*base, "--interval", "1day"])
    assert daily.steps == ["raw_to_parquet"] and daily.interval == "1day"
    # The market as the polars path has it, unless the run names its calendar start.
    assert bars_job.market_of(daily) == us
    moved = bars_job.market_of(bars_job.parse_args([*base, "--calendar-start", "2020-01-02"]))
    assert moved.daily_start == moved.intraday_start == "2020-01-02"
