"""Landing-zone ingestion: file names, the Yahoo CSV parser and validation, the sensor (new,
same, corrected, bad, unsafe, half-written files), the shared samples, and one file end to end
into `us.daily_bars`."""

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import dagster as dg
import polars as pl
import psycopg
import pytest

from finance_assets.defs.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from finance_assets.defs.market.landing import build_landing_sensor
from finance_assets.lib import landing, transforms
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import ProviderError
from finance_assets.providers.yfinance import csv_export as yahoo_csv_format
from finance_assets.providers.yfinance.csv_export import parse_yahoo_csv
from finance_assets.resources.landing import (
    LANDING_FILE_TAG,
    LANDING_SHA256_TAG,
    LandingZoneResource,
)

HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"
OLD = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)  # long settled by the time a test runs


def yahoo_csv(*rows: tuple[str, float], header: str = HEADER) -> bytes:
    """Rows of (date, close): a plausible bar around each close."""
    lines = [header]
    for day, close in rows:
        lines.append(f"{day},{close - 1:.6f},{close + 2:.6f},{close - 2:.6f},{close:.6f},")
        lines.append(f"{close:.6f},{int(close * 100_000)}\n")
    return "".join(lines).encode()


def drop(folder: Path, name: str, body: bytes, modified: dt.datetime = OLD) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(body)
    os.utime(path, (modified.timestamp(), modified.timestamp()))
    return path


@pytest.fixture
def zone(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@pytest.fixture
def us_folder(zone: Path) -> Path:
    return zone / "us"


def tick(
    sensor: dg.SensorDefinition, zone: Path, cursor: str | None = None
) -> tuple[list[dg.RunRequest], str, str | None]:
    context = dg.build_sensor_context(
        cursor=cursor, resources={"landing_zone": LandingZoneResource(root=str(zone))}
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    assert isinstance(result.cursor, str)
    json.loads(result.cursor)  # a JSON string, whatever the tick did
    skip = result.skip_reason.skip_message if result.skip_reason else None
    return list(result.run_requests or []), result.cursor, skip


# --- names, parsing, validation --------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "AAPL.csv",
        "aapl.CSV",
        "yahoofinance-AAPL-20040819-20180120.csv",
        "BRK-B (1).csv",
        "^GSPC.csv",
    ],
)
def test_acceptable_names(name: str) -> None:
    assert landing.name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../AAPL.csv", "separators"),
        ("..\\AAPL.csv", "separators"),
        ("sub/AAPL.csv", "separators"),
        (".AAPL.csv", "hidden"),
        ("..", "hidden"),
        ("AAPL.csv.part", ".csv"),
        ("notes.txt", ".csv"),
        ("AAPL;rm -rf.csv", "characters"),
        ("", "empty"),
    ],
)
def test_refused_names(name: str, why: str) -> None:
    assert why in landing.name_problem(name)


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("AAPL.csv", "AAPL"),
        ("aapl (1).csv", "AAPL"),
        ("BRK-B.csv", "BRK.B"),
        ("SHEL.L.csv", "SHEL.L"),
        ("yahoofinance-AAPL-20040819-20180120.csv", "AAPL"),
        ("yahoofinance-BRK-B-20040819-20180120.csv", "BRK.B"),
        ("SP500_NOV2019_Hist.csv", "SP500"),
        ("my prices.csv", None),
    ],
)
def test_symbol_from_name(name: str, symbol: str | None) -> None:
    assert landing.symbol_from_name(name) == symbol


def test_parse_yahoo_csv_gives_raw_text_records() -> None:
    body = b"\xef\xbb\xbfDate,Open,High,Low,Close,Adj Close,Volume\r\n" + (
        b"2026-11-17,230.10,232.50,229.00,231.70,231.70,41000000\r\n"
        b"2026-11-18,null,null,null,null,null,null\r\n\r\n"
    )
    records, errors = parse_yahoo_csv(body, "p1")
    assert errors == {}
    assert records.schema == pl.Schema({**transforms.RAW_RECORD_SCHEMA, "adj_close": pl.String})
    assert records.to_dicts() == [
        {
            "payload_id": "p1",
            "symbol": None,  # the envelope names it (from the file name)
            "currency": None,
            "datetime": "2026-11-17",
            "open": "230.10",
            "high": "232.50",
            "low": "229.00",
            "close": "231.70",
            "volume": "41000000",
            "adj_close": "231.70",
        },
        {
            "payload_id": "p1",
            "symbol": None,
            "currency": None,
            "datetime": "2026-11-18",
            "open": "null",  # as received: the cleaning step quarantines it with the reason
            "high": "null",
            "low": "null",
            "close": "null",
            "volume": "null",
            "adj_close": "null",
        },
    ]


def test_parse_yahoo_csv_symbol_column_and_slashed_dates() -> None:
    body = b"Symbol,Date,Open,High,Low,Close,Volume\nBRK-B,11/17/2026,1,2,0.5,1.5,10\n"
    body += b"msft,11/18/2026,1,2,0.5,1.5,10\nBT-A.L,11/18/2026,1,2,0.5,1.5,10\n"
    body += b"RCI-B.TO,11/18/2026,1,2,0.5,1.5,10\n"
    records, _ = parse_yahoo_csv(body, "p")
    assert records.get_column("symbol").to_list() == ["BRK.B", "MSFT", "BT.A.L", "RCI-B.TO"]
    assert records.get_column("datetime").to_list() == ["2026-11-17"] + ["2026-11-18"] * 3
    assert records.get_column("adj_close").null_count() == 4  # no Adj Close column
    day_first = b"Date,Open,High,Low,Close,Volume\n17/11/2026,1,2,0.5,1.5,10\n"
    assert parse_yahoo_csv(day_first)[0].get_column("datetime").to_list() == ["2026-11-17"]


def test_the_cleaning_step_does_not_import_the_landing_zone() -> None:
    # The file format is a provider's (`providers/csv_files.py`); the landing package is the
    # sensor's side. A fresh process, as this one has imported everything.
    code = (
        "import sys, finance_assets.lib.transforms; "
        "print(sorted(m for m in sys.modules if m.startswith('finance_assets.lib.landing')))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), *sys.path]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty file"),
        (b"\xff\xfe\x00D\x00a", "not UTF-8"),
        (b"Date,Price\n2026-11-17,1\n", "missing Open"),
        (HEADER.replace("Volume", "Volume,Extra").encode(), "unexpected Extra"),
        (HEADER.encode() + b"2026-11-17,1,2,0.5,1.5\n", "line 2 has 5 fields"),
        (HEADER.encode() + b"17.11.2026,1,2,0.5,1.5,1.5,10\n", "'17.11.2026' is not a date"),
        (HEADER.encode() + b"2026-02-30,1,2,0.5,1.5,1.5,10\n", "is not a date"),
        (b"Date,Open,High,Low,Close,Volume\n3/11/2026,1,2,0.5,1.5,10\n", "YYYY-MM-DD"),
    ],
)
def test_parse_yahoo_csv_refuses_what_is_not_such_a_file(body: bytes, message: str) -> None:
    with pytest.raises(transforms.PayloadFormatError, match=message):
        parse_yahoo_csv(body, "p")


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("AAPL.csv", b"", "empty file"),
        ("AAPL.csv", HEADER.encode(), "no data rows"),
        ("AAPL.csv", yahoo_csv(("2026-11-21", 230.0)), "not trading sessions of XNYS (2026-11-21)"),
        ("AAPL.csv", yahoo_csv(("2026-11-26", 230.0)), "2026-11-26"),  # Thanksgiving
        ("AAPL.csv", yahoo_csv(("2019-11-01", 230.0)), "before the first daily partition"),
        ("my prices.csv", yahoo_csv(("2026-11-17", 230.0)), "states no symbol"),
        (
            "x.csv",
            b"Symbol,Date,Open,High,Low,Close,Volume\n,2026-11-17,1,2,0.5,1.5,10\nAAPL,"
            b"2026-11-18,1,2,0.5,1.5,10\n",
            "1 row(s) have an empty Symbol",
        ),
    ],
)
def test_inspect_file_rejections(us: Market, name: str, body: bytes, reason: str) -> None:
    with pytest.raises(
        landing.LandingFileRejected, match=reason.replace("(", r"\(").replace(")", r"\)")
    ):
        landing.inspect_file(name, body, us, first_day=dt.date(2025, 1, 2))


def _early(market: Market) -> Market:
    # The samples are old: a calendar from 1995 (the project's partitions start in 2025).
    return dataclasses.replace(market, daily_start="1995-01-03")


def test_every_shared_ohlcv_sample_ingests_cleanly(samples: Path, us: Market) -> None:
    files = sorted((samples / "ohlcv").glob("*.csv"))
    if not files:
        pytest.skip(f"no OHLCV samples in {samples / 'ohlcv'}")
    market = _early(us)
    expected = {"SP500_NOV2019_Hist.csv": "SP500"}
    for path in files:
        body = path.read_bytes()
        inspection = landing.inspect_file(path.name, body, market)
        symbol = expected.get(path.name) or path.name.split("-")[1]
        assert inspection.symbols == (symbol,), path.name
        data_lines = [line for line in body.decode().splitlines()[1:] if line.strip()]
        assert inspection.rows == len(data_lines), path.name
        # Parse and clean as a run would: every row a bar, none quarantined.
        records, _ = parse_yahoo_csv(body, path.name)
        records = records.with_columns(symbol=pl.lit(symbol))
        timed = transforms.with_bar_times(records, market, "1day")
        start = dt.datetime.combine(inspection.first, dt.time(), market.tz)
        end = dt.datetime.combine(inspection.last + dt.timedelta(days=1), dt.time(), market.tz)
        result = transforms.clean_bars(
            timed,
            asset="daily_bars",
            window_start=start,
            window_end=end,
            source=landing.PROVIDER,
            ingested_at=dt.datetime.now(dt.UTC),
        )
        assert result.quarantine.is_empty(), (path.name, result.quarantine.head(3))
        assert result.bars.height == inspection.rows, path.name
        has_adj_close = b"Adj Close" in body.splitlines()[0]
        assert result.bars.get_column("adj_close").null_count() == (
            0 if has_adj_close else inspection.rows
        ), path.name


# --- storage and the provider ----------------------------------------------------------------


def test_local_store_stays_inside_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "landing" / "us"
    drop(folder, "AAPL.csv", b"x")
    (tmp_path / "secret.csv").write_bytes(b"secret")
    store = landing.open_store(str(tmp_path / "landing"), "us")
    for key in ("../secret.csv", "../../secret.csv", "/etc/passwd", "a/../../secret.csv", "."):
        with pytest.raises(landing.UnsafeKey):
            store.read(key)
    (folder / "link.csv").symlink_to(tmp_path / "secret.csv")
    (folder / "out").symlink_to(tmp_path, target_is_directory=True)
    assert [o.name for o in store.list_files()] == ["AAPL.csv"]  # no symlinks, no folders
    with pytest.raises(landing.UnsafeKey):
        store.read("link.csv")
    with pytest.raises(landing.UnsafeKey):
        store.read("out/secret.csv")
    with pytest.raises(landing.UnsafeKey):
        landing.open_store(str(tmp_path), "../us")
    with pytest.raises(NotImplementedError):
        landing.open_store("gs://bucket/landing", "us")


def test_provider_returns_the_file_as_received(us_folder: Path, us: Market) -> None:
    body = yahoo_csv(("2026-11-17", 231.7), ("2026-11-18", 233.0))
    drop(us_folder, "AAPL.csv", body)
    store = landing.open_store(str(us_folder.parent), "us")
    sha = landing.content_hash(body)
    start = dt.datetime(2026, 11, 17, tzinfo=us.tz)
    end = dt.datetime(2026, 11, 19, tzinfo=us.tz)
    (payload,) = landing.LandingZoneFiles(store, "AAPL.csv", sha).fetch_bars(
        us, us.universe, "1day", start, end
    )
    assert payload.body == body
    assert (payload.format, payload.provider, payload.symbols) == (
        "yahoo_csv",
        "landing_zone",
        ("AAPL",),
    )
    assert (payload.window_start, payload.window_end) == (start, end)
    assert payload.request["sha256"] == sha and payload.request["file"] == "AAPL.csv"

    with pytest.raises(ProviderError, match="changed since the sensor validated it"):
        landing.LandingZoneFiles(store, "AAPL.csv", "0" * 64).fetch_bars(
            us, us.universe, "1day", start, end
        )
    with pytest.raises(ProviderError, match="run it over the file's sessions"):
        landing.LandingZoneFiles(store, "AAPL.csv", sha).fetch_bars(
            us, us.universe, "1day", start + dt.timedelta(days=1), end
        )
    with pytest.raises(ProviderError, match="daily bars"):
        landing.LandingZoneFiles(store, "AAPL.csv").fetch_bars(us, us.universe, "5min", start, end)
    with pytest.raises(ProviderError, match="gone"):
        landing.LandingZoneFiles(store, "MSFT.csv").fetch_bars(us, us.universe, "1day", start, end)
    # A hand-written tag cannot point the run outside the landing folder.
    resource = LandingZoneResource(root=str(us_folder.parent))
    with pytest.raises(ProviderError, match="separators"):
        resource.provider_for_run(us, {LANDING_FILE_TAG: "../../etc/passwd.csv"})
    assert resource.provider_for_run(us, {"market": "us"}) is None


# --- the sensor ------------------------------------------------------------------------------


def test_new_file_same_file_corrected_file(zone: Path, us_folder: Path, us: Market) -> None:
    sensor = build_landing_sensor(us)
    body = yahoo_csv(("2026-11-17", 231.7), ("2026-11-18", 233.0))
    drop(us_folder, "AAPL.csv", body)

    (request,), cursor, _ = tick(sensor, zone)
    sha = landing.content_hash(body)
    assert request.job_name in (None, "us_landing_job")
    assert sensor.job_name == "us_landing_job"
    assert request.partition_key is None  # one run over the range, not one per partition
    assert request.tags[RANGE_START_TAG] == "2026-11-17"
    assert request.tags[RANGE_END_TAG] == "2026-11-18"
    assert request.tags[LANDING_FILE_TAG] == "AAPL.csv"
    assert request.tags[LANDING_SHA256_TAG] == sha
    assert request.run_key == f"us-{sha}-1"
    assert json.loads(cursor)["emitted"]["AAPL.csv"]["sha256"] == sha

    # The same file again: nothing; the tick records it in the ledger.
    requests, cursor, skip = tick(sensor, zone, cursor)
    assert requests == [] and "1 unchanged" in skip
    marker = json.loads((us_folder / ".processed" / "AAPL.csv.json").read_text())
    assert (marker["sha256"], marker["first"], marker["last"]) == (sha, "2026-11-17", "2026-11-18")
    assert json.loads(cursor)["emitted"] == {}

    # Dropped again, byte for byte (a new modification time): still nothing.
    drop(us_folder, "AAPL.csv", body, OLD + dt.timedelta(hours=1))
    requests, cursor, _ = tick(sensor, zone, cursor)
    assert requests == []

    # Corrected: same name, new content -> its sessions run again, under a new key.
    corrected = yahoo_csv(("2026-11-18", 240.0), ("2026-11-19", 241.0))
    drop(us_folder, "AAPL.csv", corrected, OLD + dt.timedelta(hours=2))
    (request,), cursor, _ = tick(sensor, zone, cursor)
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
        "2026-11-18",
        "2026-11-19",
    )
    assert request.run_key == f"us-{landing.content_hash(corrected)}-2"

    # Back to the first content: a third version, which runs (its key is not the first one's).
    drop(us_folder, "AAPL.csv", body, OLD + dt.timedelta(hours=3))
    (request,), cursor, _ = tick(sensor, zone, cursor)
    assert request.run_key == f"us-{sha}-3"
    assert tick(sensor, zone, cursor)[0] == []


def test_bad_files_are_rejected_with_a_reason_and_the_sensor_goes_on(
    zone: Path, us_folder: Path, us: Market
) -> None:
    bad = {
        "EMPTY.csv": b"",
        "COLUMNS.csv": b"Date,Price\n2026-11-17,1\n",
        "BINARY.csv": bytes(range(256)),
        "WEEKEND.csv": yahoo_csv(("2026-11-21", 230.0)),
        "OLD.csv": yahoo_csv(("2019-11-01", 230.0)),
        "HEADER.csv": HEADER.encode(),
    }
    for name, body in bad.items():
        drop(us_folder, name, body)
    good = yahoo_csv(("2026-11-17", 231.7))
    drop(us_folder, "MSFT.csv", good)

    (request,), cursor, _ = tick(build_landing_sensor(us), zone)
    assert request.tags[LANDING_FILE_TAG] == "MSFT.csv"
    assert sorted(p.name for p in us_folder.glob("*.csv")) == ["MSFT.csv"]
    rejected = us_folder / "rejected"
    for name, body in bad.items():
        assert (rejected / name).read_bytes() == body  # moved, as it was
        reason = (rejected / f"{name}.reason.txt").read_text()
        assert "reason: " in reason and landing.content_hash(body) in reason
    assert "not trading sessions" in (rejected / "WEEKEND.csv.reason.txt").read_text()
    assert "missing Open" in (rejected / "COLUMNS.csv.reason.txt").read_text()
    assert "not UTF-8" in (rejected / "BINARY.csv.reason.txt").read_text()
    assert "before the first daily partition" in (rejected / "OLD.csv.reason.txt").read_text()
    # The rejected folder is not read again.
    assert tick(build_landing_sensor(us), zone, cursor)[0] == []


def test_unsafe_and_hidden_names_are_ignored(zone: Path, us_folder: Path, us: Market) -> None:
    body = yahoo_csv(("2026-11-17", 231.7))
    outside = zone.parent / "outside.csv"
    outside.write_bytes(body)
    ignored = [".AAPL.csv", "AAPL.csv.part", "notes.txt", "AAPL;x.csv", "~$AAPL.csv"]
    for name in ignored:
        drop(us_folder, name, body)
    (us_folder / "LINK.csv").symlink_to(outside)
    drop(us_folder / "sub", "NESTED.csv", body)
    requests, _, skip = tick(build_landing_sensor(us), zone)
    assert requests == []
    assert "5 ignored" in skip
    assert sorted(p.name for p in us_folder.iterdir()) == sorted([*ignored, "LINK.csv", "sub"])
    assert not (us_folder / "rejected").exists()


def test_files_still_being_written_wait(zone: Path, us_folder: Path, us: Market) -> None:
    sensor = build_landing_sensor(us)
    path = drop(us_folder, "AAPL.csv", yahoo_csv(("2026-11-17", 231.7)), dt.datetime.now(dt.UTC))
    requests, cursor, skip = tick(sensor, zone)
    assert requests == [] and "1 waiting" in skip
    assert json.loads(cursor)["pending"] == {"AAPL.csv": path.stat().st_size}
    # Old enough now, but longer than at the last tick: still being written.
    complete = yahoo_csv(("2026-11-17", 231.7), ("2026-11-18", 233.0))
    drop(us_folder, "AAPL.csv", complete)
    requests, cursor, _ = tick(sensor, zone, cursor)
    assert requests == []
    (request,), _, _ = tick(sensor, zone, cursor)
    assert request.tags[RANGE_END_TAG] == "2026-11-18"


def test_at_most_n_files_per_tick_in_name_order(zone: Path, us_folder: Path, us: Market) -> None:
    sensor = build_landing_sensor(us, max_files_per_tick=2)
    for i, name in enumerate(["C.csv", "A.csv", "B.csv"]):
        drop(us_folder, name, yahoo_csv(("2026-11-17", 100.0 + i)))
    first, cursor, _ = tick(sensor, zone)
    assert [r.tags[LANDING_FILE_TAG] for r in first] == ["A.csv", "B.csv"]
    second, cursor, _ = tick(sensor, zone, cursor)
    assert [r.tags[LANDING_FILE_TAG] for r in second] == ["C.csv"]
    assert tick(sensor, zone, cursor)[0] == []


def test_unreadable_cursor_starts_afresh(zone: Path, us_folder: Path, us: Market) -> None:
    drop(us_folder, "AAPL.csv", yahoo_csv(("2026-11-17", 231.7)))
    (request,), _, _ = tick(build_landing_sensor(us), zone, "not json")
    assert request.tags[LANDING_FILE_TAG] == "AAPL.csv"


# --- end to end ------------------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pg_url: str, us: Market) -> Path:
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    monkeypatch.delenv("FINANCE_SIM_FAULT_RATE", raising=False)
    monkeypatch.delenv("FINANCE_ENV", raising=False)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS us CASCADE")
    return tmp_path / "data"


def _defs(us: Market, data: Path) -> dg.Definitions:
    from finance_assets.definitions import build_domain_defs
    from finance_assets.resources import build_resources

    resources = {
        **build_resources(),
        "landing_zone": LandingZoneResource(root=str(data / "landing")),
    }
    market_defs = build_domain_defs([us])
    # Once definitions.py wires the sensor into the market's definitions, it is there already.
    wired = any(s.name == "us_landing_sensor" for s in market_defs.sensors or [])
    sensors = [] if wired else [build_landing_sensor(us)]
    return dg.Definitions.merge(market_defs, dg.Definitions(sensors=sensors, resources=resources))


def _daily_bars(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT symbol, (ts AT TIME ZONE 'America/New_York')::date, close, adj_close, volume, "
            "source "
            "FROM us.daily_bars ORDER BY symbol, ts"
        ).fetchall()


def _sense_and_run(
    defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None
) -> tuple[list[dg.ExecuteInProcessResult], str]:
    repository = defs.get_repository_def()
    sensor = repository.get_sensor_def("us_landing_sensor")
    # As the daemon does: the repository's resources, then the tick's evaluation.
    resources = {
        key: resource
        for key, resource in repository.get_top_level_resources().items()
        if key in sensor.required_resource_keys
    }
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, repository_def=repository, resources=resources
    )
    result = sensor.evaluate_tick(context)
    runs = []
    for request in result.run_requests or []:
        job = repository.get_job(request.job_name or sensor.job_name)
        runs.append(
            job.execute_in_process(
                instance=instance,
                tags=request.tags,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                raise_on_error=False,
            )
        )
    return runs, result.cursor


def test_dropped_file_lands_in_daily_bars(
    env: Path, pg_url: str, us: Market, tmp_path: Path
) -> None:
    defs = _defs(us, env)
    body = yahoo_csv(("2026-11-17", 231.7), ("2026-11-18", 233.0))
    drop(env / "landing" / "us", "AAPL.csv", body)
    # In memory: the sensor needs no stored state of its own (its cursor is passed along).
    with dg.DagsterInstance.ephemeral() as instance:
        (run,), cursor = _sense_and_run(defs, instance, None)
        assert run.success
        assert len(instance.get_runs()) == 1  # one run for both sessions
        assert set(instance.get_materialized_partitions(dg.AssetKey(["us", "daily_bars"]))) == {
            "2026-11-17",
            "2026-11-18",
        }
        assert _daily_bars(pg_url) == [
            ("AAPL", dt.date(2026, 11, 17), 231.7, 231.7, 23170000, "landing_zone"),
            ("AAPL", dt.date(2026, 11, 18), 233.0, 233.0, 23300000, "landing_zone"),
        ]
        # The raw zone keeps the file byte for byte.
        raw = [
            p
            for p in (env / "raw" / "us" / "raw_daily_quotes").rglob("*.json")
            if not p.name.endswith(".meta.json")
        ]
        assert [p.read_bytes() for p in raw] == [body]

        # The same file again starts nothing.
        runs, cursor = _sense_and_run(defs, instance, cursor)
        assert runs == []

        # Another symbol for the same sessions joins AAPL instead of replacing it ...
        drop(env / "landing" / "us", "MSFT.csv", yahoo_csv(("2026-11-18", 410.0)))
        (run,), cursor = _sense_and_run(defs, instance, cursor)
        assert run.success
        # ... and a corrected AAPL file replaces AAPL's bars of its sessions only.
        corrected = yahoo_csv(("2026-11-17", 230.0), ("2026-11-18", 234.5))
        drop(env / "landing" / "us", "AAPL.csv", corrected, OLD + dt.timedelta(hours=1))
        (run,), cursor = _sense_and_run(defs, instance, cursor)
        assert run.success
        assert [(s, d.day, c) for s, d, c, *_ in _daily_bars(pg_url)] == [
            ("AAPL", 17, 230.0),
            ("AAPL", 18, 234.5),
            ("MSFT", 18, 410.0),
        ]
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT count(*) FROM us.quarantine").fetchone()[0] == 0


BAD_FILES = {
    # One row of volume 1e20 (once a crash of the cleaning step's strict cast), negative prices,
    # a duplicated row: each over the quarantine threshold on its own.
    "volume 1e20": yahoo_csv(("2026-11-17", 231.7)).replace(b"23170000", b"1e20")
    + yahoo_csv(("2026-11-18", 233.0)).split(b"\n", 1)[1],
    "negative prices": yahoo_csv(("2026-11-17", -231.7), ("2026-11-18", -233.0)),
    "a duplicated row": yahoo_csv(
        ("2026-11-17", 231.7), ("2026-11-18", 233.0), ("2026-11-18", 233.0)
    ),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_file_blocks_neither_the_provider_nor_a_later_file(
    env: Path, pg_url: str, us: Market, kind: str
) -> None:
    defs = _defs(us, env)
    folder = env / "landing" / "us"
    # IBM is no symbol of the provider's universe: no provider payload ever supersedes the file.
    drop(folder, "IBM.csv", BAD_FILES[kind])
    days = {RANGE_START_TAG: "2026-11-17", RANGE_END_TAG: "2026-11-18"}
    with dg.DagsterInstance.ephemeral() as instance:
        # The file's own run fails, saying why; nothing is written but the dead letters.
        (run,), cursor = _sense_and_run(defs, instance, None)
        assert not run.success
        (rate,) = [
            c for c in run.get_asset_check_evaluations() if c.check_name == "quarantine_rate"
        ]
        assert not rate.passed and rate.severity == dg.AssetCheckSeverity.ERROR
        reason = rate.metadata["rejected_files"].value["IBM.csv"]
        assert reason.startswith("landing file IBM.csv rejected as a whole")
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT to_regclass('us.daily_bars')").fetchone()[0] is None
            dead = conn.execute("SELECT reason, source FROM us.quarantine").fetchall()
        assert dead and all(r.startswith(reason) and s.startswith("landing_zone") for r, s in dead)

        # The provider's regular run of the same dates reads the file's payload from the raw
        # zone too (kept as received), rejects it again, and loads its own 10 bars.
        job = defs.get_repository_def().get_job("us_landing_job")
        provider_run = job.execute_in_process(instance=instance, tags=days)
        assert provider_run.success
        bars = _daily_bars(pg_url)
        assert len(bars) == 2 * len(us.universe) == 10
        assert {source for *_, source in bars} == {"simulated"}
        (rate,) = [
            c
            for c in provider_run.get_asset_check_evaluations()
            if c.check_name == "quarantine_rate"
        ]
        # A warning naming the file: visible, and blocking nothing.
        assert not rate.passed and rate.severity == dg.AssetCheckSeverity.WARN
        assert rate.metadata["rejected_files"].value == {"IBM.csv": reason}
        assert rate.metadata["quarantine_rate"].value == 0.0  # the provider's records: all clean

        # A corrected file for the same dates loads beside the provider's bars.
        fixed = yahoo_csv(("2026-11-17", 240.0), ("2026-11-18", 241.0))
        drop(folder, "IBM.csv", fixed, OLD + dt.timedelta(hours=1))
        (run,), cursor = _sense_and_run(defs, instance, cursor)
        assert run.success
        assert [(d.day, c, s) for sym, d, c, _, _, s in _daily_bars(pg_url) if sym == "IBM"] == [
            (17, 240.0, "landing_zone"),
            (18, 241.0, "landing_zone"),
        ]
        assert len(_daily_bars(pg_url)) == 12
        failed = [c for c in run.get_asset_check_evaluations() if not c.passed]
        # A Yahoo CSV carries no splits or dividends: the corporate actions' warning says IBM's
        # are not known, and nothing else fails.
        assert [(c.check_name, c.severity) for c in failed] == [
            ("actions_reported", dg.AssetCheckSeverity.WARN)
        ]
        assert failed[0].metadata["silent_symbols"].value == ["IBM"]
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT count(*) FROM us.quarantine").fetchone()[0] == 0


# --- large files: bounded memory, a size limit ---------------------------------------------

_SENSOR_RSS = """
import json, resource, sys
import dagster as dg
from finance_assets.defs.market.landing import build_landing_sensor
from finance_assets.resources.landing import LandingZoneResource
from finance_assets.lib.markets import markets_from_env

sensor = build_landing_sensor(markets_from_env({})["us"])
zone = LandingZoneResource(root=sys.argv[1], max_file_bytes=64 * 1024 * 1024)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = sensor(dg.build_sensor_context(resources={"landing_zone": zone}))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mb": (after - before) / 1024, "runs": len(result.run_requests or [])}))
"""


def test_the_sensor_reads_a_large_file_in_bounded_memory(zone: Path, us_folder: Path) -> None:
    # 300,000 copies of one row (22 MB): the sensor once held every field as a Python string
    # (~16x the file: 1.3 GB for 50 MB). Now it keeps the bytes and the distinct dates only.
    row = yahoo_csv(("2026-11-17", 231.7)).split(b"\n", 1)[1]
    body = HEADER.encode() + row * 300_000
    drop(us_folder, "AAPL.csv", body)
    # A fresh process, so that its peak RSS is this tick's, not an earlier test's.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), *sys.path]),
    }
    done = subprocess.run(
        [sys.executable, "-c", _SENSOR_RSS, str(zone)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["runs"] == 1  # within the limit: a run (which rejects the file's duplicates)
    size_mb = len(body) / 2**20
    assert measured["growth_mb"] < 2 * size_mb + 30, (measured, size_mb)


def test_a_file_above_the_size_limit_is_rejected_unread(
    zone: Path, us_folder: Path, us: Market
) -> None:
    body = yahoo_csv(*[("2026-11-17", 231.7)] * 40)
    drop(us_folder, "AAPL.csv", body)
    sensor = build_landing_sensor(us)
    context = dg.build_sensor_context(
        resources={"landing_zone": LandingZoneResource(root=str(zone), max_file_bytes=1000)}
    )
    result = sensor(context)
    assert not result.run_requests
    reason = (us_folder / "rejected" / "AAPL.csv.reason.txt").read_text()
    assert f"{len(body):,} bytes: larger than the landing zone's limit of 1,000 bytes" in reason
    assert "FINANCE_LANDING_MAX_BYTES" in reason
    assert (us_folder / "rejected" / "AAPL.csv").read_bytes() == body


def test_the_size_limit_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from finance_assets.resources import build_resources
    from finance_assets.resources.landing import max_file_bytes_from_env

    assert max_file_bytes_from_env({}) == landing.MAX_FILE_BYTES == 16 * 1024 * 1024
    assert max_file_bytes_from_env({"FINANCE_LANDING_MAX_BYTES": "1048576"}) == 1048576
    for bad in ("0", "-1", "1e6", "abc", "nan"):
        with pytest.raises(ValueError, match=f"FINANCE_LANDING_MAX_BYTES='{bad}' is not a"):
            max_file_bytes_from_env({"FINANCE_LANDING_MAX_BYTES": bad})
    resources = build_resources(
        {"FINANCE_DATA_DIR": str(tmp_path), "FINANCE_LANDING_MAX_BYTES": "2048"}
    )
    assert resources["landing_zone"].max_file_bytes == 2048


def test_a_large_file_parses_into_compact_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    # The run parses what the sensor accepted: a chunk of rows at a time into polars columns,
    # never a Python string per field for the whole file (~12x the file's size).
    monkeypatch.setattr(yahoo_csv_format, "_CHUNK_ROWS", 5_000)
    row = yahoo_csv(("2026-11-17", 231.7)).split(b"\n", 1)[1]
    body = HEADER.encode() + row * 100_000 + b"\n\n"
    tracemalloc.start()
    try:
        records, _ = parse_yahoo_csv(body, "p")
        _, peak = tracemalloc.get_traced_memory()  # Python objects (polars' columns are not)
    finally:
        tracemalloc.stop()
    assert records.height == 100_000
    assert records.get_column("datetime").unique().to_list() == ["2026-11-17"]
    assert peak < len(body), (peak, len(body))  # one chunk: ~4 MB here, ~90 MB before
