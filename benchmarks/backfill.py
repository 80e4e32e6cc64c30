"""Benchmark the 5-minute backfill path against a seed-style pandas baseline, in one run.

    python benchmarks/backfill.py [--scale 4] [--symbols 500] [--days 20] [--end 2026-10-30]
                                  [--pg-url URL] [--baseline-symbols K] [--lake local|s3]

Phases, each in a fresh `spawn` child so that its peak RSS is its own (the parent stays small:
on Linux a child's ru_maxrss starts from its parent's high-water mark at spawn):
1. prepare (not timed as throughput): simulated Twelve Data payloads, written to a cache folder;
2. dagster: one single-run backfill of raw_intraday_quotes -> bars_5min (+ quarantine) over the
   whole range, in process (SQLite instance in the temp folder unless --instance says otherwise),
   the provider replaying the cache;
3. data path: the same transforms and writers called directly, without Dagster (with
   `--lake s3` a second time with the raw zone and the lake on S3: moto's server on loopback,
   started by the parent);
4. baseline: per-document pandas frames, type conversion, concat, drop_duplicates, to_sql;
5. reload: replace one session of the populated us.bars_5min.

Everything lands in a fresh PostgreSQL database and a temp folder, both removed at the end. The
last line is machine-readable:
    rows=<n> rows_per_s=<n> baseline_rows_per_s=<n> ratio=<x> peak_rss_mb=<n>
"""

from __future__ import annotations

import argparse
import atexit
import concurrent.futures
import datetime as dt
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

# Heavy imports (dagster, polars, pandas) live inside the phase functions: every spawned child
# re-imports this module, and the baseline child should not pay for Dagster's footprint.
if TYPE_CHECKING:
    import dagster as dg

    from finance_assets.lib.markets import Market
    from finance_assets.lib.providers.base import Interval, RawPayload

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/test"
MARKET_KEY = "us"
SEED = 7
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Instance-wide Dagster settings the benchmark controls (environment variables Dagster reads).
DAGSTER_SETTINGS = ("DAGSTER_EVENT_BATCH_SIZE", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS")
RELOAD_REPEATS = 3
# Beta and deprecation notices from Dagster at definition time, once per child: not our output.
warnings.filterwarnings("ignore", module=r"dagster\.")


# --- helpers shared by the parent and the children ------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak RSS (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vm_hwm_mb() -> float | None:
    """The kernel's high-water mark of this process's own address space (a cross-check of
    ru_maxrss, which can carry the parent's mark over an exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run `fn(*args)` in a fresh spawned interpreter and return its result."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def bench_market(symbols: Sequence[str]) -> Market:
    import dataclasses

    from finance_assets.lib.markets import markets_from_env

    return dataclasses.replace(markets_from_env({})[MARKET_KEY], universe=tuple(symbols))


def read_manifest(cache_dir: str) -> dict[str, Any]:
    return json.loads((Path(cache_dir) / "manifest.json").read_text())


def window_of(manifest: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    return (
        dt.datetime.fromisoformat(manifest["start"]),
        dt.datetime.fromisoformat(manifest["end"]),
    )


def replay_payloads(cache_dir: str, manifest: dict[str, Any]) -> list[RawPayload]:
    """The prepared payloads, bodies read from disk now (as a provider would receive them)."""
    from finance_assets.lib.providers.base import RawPayload

    start, end = window_of(manifest)
    fetched_at = dt.datetime.now(dt.UTC)
    return [
        RawPayload(
            provider="simulated",
            format="twelve_data",
            interval=manifest["interval"],
            symbols=tuple(batch["symbols"]),
            window_start=start,
            window_end=end,
            fetched_at=fetched_at,
            body=(Path(cache_dir) / batch["file"]).read_bytes(),
            batch=index,
            request={"endpoint": "time_series", "replay": batch["file"]},
        )
        for index, batch in enumerate(manifest["batches"])
    ]


class ReplayProvider:
    """Serves the prepared payloads; refuses any other request, so a mismatch cannot pass."""

    name = "simulated"

    def __init__(self, cache_dir: str) -> None:
        self.cache_dir = cache_dir

    def fetch_bars(
        self,
        market: Market,
        symbols: Sequence[str],
        interval: Interval,
        start: dt.datetime,
        end: dt.datetime,
    ) -> list[RawPayload]:
        manifest = read_manifest(self.cache_dir)
        asked = (interval, (start, end), list(symbols))
        prepared = (manifest["interval"], window_of(manifest), manifest["symbols"])
        if asked != prepared:
            raise RuntimeError(
                f"replay cache holds {prepared[0]} {prepared[1]} for {len(prepared[2])} "
                f"symbols; asked for {interval} ({start}, {end}) for {len(symbols)}"
            )
        return replay_payloads(self.cache_dir, manifest)


# --- phase 1: prepare -----------------------------------------------------------------------


def prepare(cache_dir: str, n_symbols: int, days: int, end_day: str) -> dict[str, Any]:
    """Generate the payloads batch by batch and write their bodies to `cache_dir`."""
    from finance_assets.providers.simulated_market.client import MAX_BATCH_SYMBOLS, SimulatedMarket

    began = time.perf_counter()
    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    market = bench_market(symbols)
    sessions = market.last_sessions(days, dt.date.fromisoformat(end_day))
    start = market.session_bounds(sessions[0])[0]
    end = market.session_bounds(sessions[-1])[1]
    sim = SimulatedMarket(seed=SEED)
    batches = []
    size = 0
    # One 120-symbol batch at a time: only one body is ever in memory here.
    for offset in range(0, n_symbols, MAX_BATCH_SYMBOLS):
        chunk = symbols[offset : offset + MAX_BATCH_SYMBOLS]
        [payload] = sim.fetch_bars(market, chunk, "5min", start, end)
        name = f"b{len(batches):04d}.json"
        (Path(cache_dir) / name).write_bytes(payload.body)
        batches.append({"file": name, "symbols": chunk})
        size += len(payload.body)
    bars_per_symbol = len(market.bar_starts(start, end))
    manifest = {
        "market": MARKET_KEY,
        "interval": "5min",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "sessions": [d.isoformat() for d in sessions],
        "symbols": symbols,
        "batches": batches,
        "expected_rows": bars_per_symbol * n_symbols,
    }
    (Path(cache_dir) / "manifest.json").write_text(json.dumps(manifest))
    return {
        "seconds": time.perf_counter() - began,
        "bytes": size,
        "batches": len(batches),
        "sessions": manifest["sessions"],
        "expected_rows": manifest["expected_rows"],
        "rss_mb": peak_rss_mb(),
    }


# --- phase 2: the Dagster backfill ----------------------------------------------------------


def bench_job(cache_dir: str, data_dir: str) -> dg.JobDefinition:
    """The market's 5-minute assets with the project's resources, the provider replaced.

    Module scope, so that `execute_job` can reconstruct it by name.
    """
    import dagster as dg

    from finance_assets.defs.market.assets import build_market_assets
    from finance_assets.resources import MarketDataResource, build_resources

    class ReplayMarketData(MarketDataResource):
        cache_dir: str

        def get_provider(self) -> ReplayProvider:
            return replay_provider(self.cache_dir)

    market = bench_market(read_manifest(cache_dir)["symbols"])
    # FINANCE_PG_URL is also in os.environ: build_resources wraps it in an EnvVar, which Dagster
    # resolves from the process environment, not from this mapping.
    resources = build_resources(
        {"FINANCE_DATA_DIR": data_dir, "FINANCE_PG_URL": os.environ["FINANCE_PG_URL"]}
    )
    resources["market_data"] = ReplayMarketData(cache_dir=cache_dir)
    assets = build_market_assets(market)
    # bars_5min_quarantine is an asset in some versions of the project and a table the clean
    # asset writes in others: select it only when it exists.
    existing = {key for a in assets for key in a.keys}
    keys = [
        key
        for name in ("raw_intraday_quotes", "bars_5min", "bars_5min_quarantine")
        if (key := dg.AssetKey([market.key, name])) in existing
    ]
    job = dg.define_asset_job("backfill_bench", selection=keys)
    defs = dg.Definitions(assets=assets, resources=resources, jobs=[job])
    return defs.resolve_job_def(job.name)


def floor_job(cache_dir: str, checks: str = "declared") -> dg.JobDefinition:
    """The same two assets, partitions, backfill policy and blocking checks with bodies and IO
    that do nothing: what Dagster's bookkeeping alone costs for the range (run creation, planned
    events, one materialization per partition and asset, check evaluations).

    `checks` (see `floor_check_specs`): "declared" (as `bars_5min`), "combined" (the row rules
    as one check) or "none": what the checks' planned rows and evaluations cost."""
    import dagster as dg

    from finance_assets.defs.common.partitions import five_minute_partitions
    from finance_assets.defs.market.checks import bar_check_specs

    market = bench_market(read_manifest(cache_dir)["symbols"])
    partitions = five_minute_partitions(market)
    raw_key = dg.AssetKey([market.key, "raw_intraday_quotes"])
    bars_key = dg.AssetKey([market.key, "bars_5min"])

    class NullIOManager(dg.ConfigurableIOManager):
        def handle_output(self, context: dg.OutputContext, obj: object) -> None:
            return None

        def load_input(self, context: dg.InputContext) -> None:
            return None

    @dg.asset(
        key=raw_key,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="null_io",
    )
    def raw():
        return None

    specs = floor_check_specs(bar_check_specs(bars_key), checks)

    @dg.asset(
        key=bars_key,
        ins={"raw": dg.AssetIn(key=raw_key)},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="null_io",
        check_specs=specs,
    )
    def bars(raw):
        yield dg.Output(None)
        for spec in specs:
            yield dg.AssetCheckResult(check_name=spec.name, passed=True)

    job = dg.define_asset_job("floor_bench", selection=[raw_key, bars_key])
    defs = dg.Definitions(assets=[raw, bars], resources={"null_io": NullIOManager()}, jobs=[job])
    return defs.resolve_job_def(job.name)


FLOOR_CHECKS = ("declared", "combined", "none")


def floor_check_specs(declared: list[dg.AssetCheckSpec], checks: str) -> list[dg.AssetCheckSpec]:
    """The floor's checks: as declared, the row rules (`quality.BAR_RULES`) folded into one
    blocking `row_rules` check, or none."""
    import dagster as dg

    from finance_assets.lib import quality

    if checks == "declared":
        return declared
    if checks == "none":
        return []
    if checks != "combined":
        raise ValueError(f"floor checks must be one of {FLOOR_CHECKS}, got {checks!r}")
    kept = [spec for spec in declared if spec.name not in quality.BAR_RULES]
    key = declared[0].asset_key
    return [*kept, dg.AssetCheckSpec("row_rules", asset=key, blocking=True)]


STORAGE_CLASSES = ("pooled", "pooled-unbatched", "dagster-postgres")


def postgres_storage(storage_class: str, url: str) -> dict[str, Any]:
    """The `storage:` block of dagster.yaml for a PostgreSQL instance at `url`: the project's
    pooled storage (as deployed, finance_assets/dagster_instance/pooled_storage.py) or
    dagster-postgres's own."""
    # dagster-postgres speaks psycopg2; SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3,
    # on which its event storage fails (NOTIFY with a bound parameter).
    url = url.replace("postgresql://", "postgresql+psycopg2://", 1)
    if storage_class == "dagster-postgres":
        return {"postgres": {"postgres_url": url}}
    if storage_class not in STORAGE_CLASSES:
        raise ValueError(f"storage class must be one of {STORAGE_CLASSES}, got {storage_class!r}")
    config = {"postgres_url": url, "batch_planned_events": storage_class == "pooled"}
    return {
        "custom": {
            "module": "finance_assets.dagster_instance.pooled_storage",
            "class": "PooledPostgresStorage",
            "config": config,
        }
    }


def local_storage(data_dir: Path) -> dict[str, Any]:
    """The local instance's storage (as `make demo` / `make dev`): the pooled storage on the
    embedded PostgreSQL of a data folder (finance_assets/dagster_instance/local_storage.py)."""
    config = {"data_dir": str(data_dir)}
    module = "finance_assets.dagster_instance.local_storage"
    return {"custom": {"module": module, "class": "LocalPostgresStorage", "config": config}}


def make_instance(
    kind: str, folder: Path, pg_url: str, storage_class: str = "pooled"
) -> dg.DagsterInstance:
    """temp: SQLite storage in `folder` (as `make demo` / `make dev`); postgres: run and event
    storage in the benchmark database (as dagster.yaml in production, `storage_class`);
    ephemeral: in memory."""
    import dagster as dg

    if kind == "ephemeral":
        return dg.DagsterInstance.ephemeral(tempdir=str(folder))
    overrides: dict[str, Any] = {"telemetry": {"enabled": False}}
    if kind == "postgres":
        overrides["storage"] = postgres_storage(storage_class, pg_url)
    if kind == "local":
        overrides["storage"] = local_storage(folder.parent / "local_instance")
    return dg.DagsterInstance.local_temp(str(folder), overrides=overrides)  # type: ignore[arg-type]


def dagster_backfill(
    cache_dir: str,
    data_dir: str,
    pg_url: str,
    runner: str,
    instance_kind: str,
    settings: dict[str, str],
    floor: bool = False,
    storage_url: str | None = None,
    storage_class: str = "pooled",
    floor_checks: str = "declared",
) -> dict[str, Any]:
    """One single-run backfill of the range; with `floor`, of the no-op twin (`floor_job`, its
    checks as `floor_checks` says). `storage_url`: where a postgres instance keeps Dagster's
    storage (default `pg_url`), with `storage_class`."""
    os.environ["FINANCE_PG_URL"] = pg_url
    os.environ["DAGSTER_DISABLE_TELEMETRY"] = "yes"
    # Dagster reads these when it stores events, in this process.
    for name in DAGSTER_SETTINGS:
        os.environ.pop(name, None)
    os.environ.update(settings)
    import dagster as dg
    import polars as pl

    from finance_assets.demo import range_tags
    from finance_assets.lib.clock import intraday_range

    manifest = read_manifest(cache_dir)
    market = bench_market(manifest["symbols"])
    sessions = [dt.date.fromisoformat(d) for d in manifest["sessions"]]
    first_key, last_key = intraday_range(market, sessions)
    partitions = len(market.bar_starts(*window_of(manifest)))
    instance_dir = Path(data_dir) / (
        f"dagster_home_floor_{floor_checks}" if floor else "dagster_home"
    )
    instance_dir.mkdir(parents=True, exist_ok=True)
    instance = make_instance(instance_kind, instance_dir, storage_url or pg_url, storage_class)
    tags = range_tags(first_key, last_key)
    wall_start, began = time.time(), time.perf_counter()
    if runner == "execute_job":
        # execute_job keeps no step outputs in memory; execute_in_process captures every one of
        # them (all raw payloads and the bars frame) until the run ends, which inflates RSS.
        recon = (
            dg.build_reconstructable_job(
                floor_job.__module__,
                floor_job.__name__,
                reconstructable_kwargs={"cache_dir": cache_dir, "checks": floor_checks},
            )
            if floor
            else dg.build_reconstructable_job(
                bench_job.__module__,
                bench_job.__name__,
                reconstructable_kwargs={"cache_dir": cache_dir, "data_dir": data_dir},
            )
        )
        with dg.execute_job(
            recon,
            instance=instance,
            run_config={**QUIET_LOGS, "execution": {"config": {"in_process": {}}}},
            tags=tags,
        ) as result:
            success, run_id = result.success, result.run_id
    else:
        job = floor_job(cache_dir, floor_checks) if floor else bench_job(cache_dir, data_dir)
        result = job.execute_in_process(
            instance=instance, tags=tags, run_config=QUIET_LOGS, raise_on_error=False
        )
        success, run_id = result.success, result.run_id
        del result
    seconds, wall_end = time.perf_counter() - began, time.time()
    rss, hwm = peak_rss_mb(), vm_hwm_mb()

    # Untimed from here: where the time went, from the run's own event log.
    records = instance.all_logs(run_id)
    spans = dagster_spans(records, wall_start, wall_end)
    counts: dict[str, int] = {}
    for record in records:
        kind = record.dagster_event.event_type_value if record.dagster_event else "LOG"
        counts[kind] = counts.get(kind, 0) + 1
    failures = [r.user_message for r in records if r.dagster_event and r.dagster_event.is_failure]
    checks = sorted(
        {
            r.dagster_event.event_specific_data.check_name  # type: ignore[union-attr]
            for r in records
            if r.dagster_event
            and r.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
        }
    )
    lake_dir = Path(data_dir) / "lake" / MARKET_KEY / "bars_5min"
    lake_rows = (
        pl.scan_parquet(str(lake_dir / "*" / "*.parquet")).select(pl.len()).collect().item()
        if lake_dir.is_dir() and not floor
        else 0
    )
    return {
        "seconds": seconds,
        "success": success,
        "failures": failures[:3],
        "partitions": partitions,
        "range": (first_key, last_key),
        "event_counts": counts,
        "checks": checks,
        "spans": spans,
        "lake_rows": lake_rows,
        "rss_mb": rss,
        "hwm_mb": hwm,
    }


def dagster_spans(records: Sequence[Any], wall_start: float, wall_end: float) -> list[Any]:
    """(label, seconds) spans of a run from its event timestamps: what happens before the run
    starts (planning, one event per partition per asset), each step's compute, each step's
    outputs (IO manager writes plus one materialization event per partition), and the end."""
    import dagster as dg

    kinds = dg.DagsterEventType
    first: dict[tuple[str, str | None], float] = {}
    last: dict[tuple[str, str | None], float] = {}
    count: dict[tuple[str, str | None], int] = {}
    steps: list[str] = []
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        key = (event.event_type_value, event.step_key)
        first.setdefault(key, record.timestamp)
        last[key] = record.timestamp
        count[key] = count.get(key, 0) + 1
        if event.event_type == kinds.STEP_START:
            steps.append(str(event.step_key))
    planned = {key: n for key, n in count.items() if key[0].endswith("_PLANNED")}
    run_start = first.get((kinds.RUN_START.value, None), wall_start)
    first_event = min([first[key] for key in planned] or [run_start])
    n_planned = sum(planned.values())
    spans: list[tuple[str, float]] = [
        ("create run + execution plan", first_event - wall_start),
        (f"{n_planned:,} planned events", run_start - first_event),
    ]
    previous = run_start
    for step in steps:
        start = first[(kinds.STEP_START.value, step)]
        output = first.get((kinds.STEP_OUTPUT.value, step), start)
        done = last.get((kinds.STEP_SUCCESS.value, step)) or last.get(
            (kinds.STEP_FAILURE.value, step), output
        )
        n_mat = count.get((kinds.ASSET_MATERIALIZATION.value, step), 0)
        spans += [
            (f"{step}: start", start - previous),
            (f"{step}: load input + compute", output - start),
            (f"{step}: IO managers + {n_mat:,} materializations", done - output),
        ]
        previous = done
    spans.append(("run end", wall_end - previous))
    return spans


# --- phase 3: the data path without Dagster --------------------------------------------------


def data_path(
    cache_dir: str,
    data_dir: str,
    pg_url: str,
    raw_root: str | None = None,
    lake_root: str | None = None,
    schema: str = "datapath",  # beside the Dagster run's tables, same server
) -> dict[str, Any]:
    """The assets' work, called directly: the same functions, in the same order, same writers.
    The raw zone and the lake under `data_dir`, or at `raw_root` / `lake_root` (`s3://...`)."""
    import polars as pl

    from finance_assets.lib import clean_step, quality
    from finance_assets.lib.io import lake, lake_warehouse, postgres
    from finance_assets.lib.io.objects import open_location
    from finance_assets.lib.schema import BAR_KEY
    from finance_assets.resources import DataQualityResource

    manifest = read_manifest(cache_dir)
    market = bench_market(manifest["symbols"])
    start, end = window_of(manifest)
    raw_dir = open_location(raw_root or Path(data_dir) / "raw").child(
        MARKET_KEY, "raw_intraday_quotes"
    )
    lake_dir = open_location(lake_root or Path(data_dir) / "lake").child(MARKET_KEY, "bars_5min")
    steps: list[tuple[str, float, float | None]] = []
    began = mark = time.perf_counter()

    def step(name: str) -> None:
        # With the high-water mark so far: which step sets the peak.
        nonlocal mark
        now = time.perf_counter()
        steps.append((name, now - mark, vm_hwm_mb()))
        mark = now

    payloads = replay_payloads(cache_dir, manifest)
    step("fetch (read cache)")
    lake.write_payloads(raw_dir, payloads, start, end, market.tz)
    del payloads
    step("raw zone write")
    raw = lake.read_payloads(raw_dir, start, end)
    step("raw zone read")
    # The asset's own clean step: parse, supersede, window, clean, kept spans.
    cleaned = clean_step.clean_window(
        raw,
        market,
        "5min",
        asset="bars_5min",
        start=start,
        end=end,
        ingested_at=dt.datetime.now(dt.UTC),
        max_quarantine_rate=DataQualityResource().max_quarantine_rate,
    )
    result, kept = cleaned.result, cleaned.kept
    del raw
    step("clean_window (parse, supersede, clean, kept spans)")
    failing = {name: rule(result.bars).height for name, (rule, _) in quality.BAR_RULES.items()}
    step("quality rules")

    # As LakeWarehouseIOManager does: lake staged while the warehouse copies, the warehouse
    # committed, the lake published (lake_warehouse.Stores.write).
    bars = result.bars
    both = lake_warehouse.Stores(
        lake_dir, pg_url, postgres.WindowTable(schema, "bars_5min"), market.tz
    )
    both.write(
        bars,
        start=start,
        end=end,
        primary_key=BAR_KEY,
        chunk="1d",
        kept=kept,
    )
    step("lake staged || warehouse copied, committed, lake published")
    # As the `stores_agree` check does: both stores read back a day at a time and compared.
    differing = both.compare(start, end, starts=[start], keys=["range"]).differing
    step("stores_agree (read both back, compare)")
    postgres.replace_window(
        pg_url,
        result.quarantine,
        postgres.WindowTable(schema, "quarantine", "partition_ts", scope={"asset": "bars_5min"}),
        start=start,
        end=end,
        index=["partition_ts", "asset"],
    )
    step("quarantine replace_window")
    seconds = time.perf_counter() - began
    rss, hwm = peak_rss_mb(), vm_hwm_mb()
    parquet = [o.name for o in lake_dir.list_tree() if o.name.endswith(".parquet")]
    lake_rows = lake_dir.read_parquet(parquet).select(pl.len())
    return {
        "seconds": seconds,
        "steps": steps,
        "rows": bars.height,
        "quarantined": result.quarantine.height,
        "failing_checks": {k: v for k, v in failing.items() if v},
        "stores_differ": bool(differing),
        "lake_rows": lake_rows.item(),
        "table": f"{schema}.bars_5min",
        "rss_mb": rss,
        "hwm_mb": hwm,
    }


def s3_data_path(cache_dir: str, path_dir: str, pg_url: str) -> dict[str, Any]:
    """`data_path` with the raw zone and the lake on S3: moto's server on loopback in this
    process (the child reaches it through AWS_ENDPOINT_URL_S3, with dummy credentials)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    settings = {
        "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "bench-dummy",
        "AWS_SECRET_ACCESS_KEY": "bench-dummy",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1",
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        client = boto3.client("s3")
        for bucket in ("bench-raw", "bench-lake"):
            client.create_bucket(Bucket=bucket)
        return run_in_child(
            data_path,
            cache_dir,
            path_dir,
            pg_url,
            "s3://bench-raw/raw",
            "s3://bench-lake/lake",
            "datapath_s3",
        )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


# --- phase 4: the seed-style baseline --------------------------------------------------------


def baseline(cache_dir: str, pg_url: str, max_symbols: int | None) -> dict[str, Any]:
    """What the seed projects do: a DataFrame per JSON document, pandas type conversion, concat,
    drop_duplicates, DataFrame.to_sql(if_exists="append") through SQLAlchemy into a table keyed
    like ours."""
    import pandas as pd
    import sqlalchemy

    manifest = read_manifest(cache_dir)
    tz = "America/New_York"
    wanted = set(manifest["symbols"][:max_symbols] if max_symbols else manifest["symbols"])
    engine = sqlalchemy.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE SCHEMA IF NOT EXISTS baseline"))
    began = time.perf_counter()
    frames = []
    for batch in manifest["batches"]:
        if not wanted.intersection(batch["symbols"]):
            continue
        document = json.loads((Path(cache_dir) / batch["file"]).read_bytes())
        series = {document["meta"]["symbol"]: document} if "values" in document else document
        for symbol, item in series.items():
            if symbol not in wanted:
                continue
            df = pd.DataFrame(item["values"])
            for column in ("open", "high", "low", "close", "volume"):
                df[column] = pd.to_numeric(df[column], errors="coerce")
            df["datetime"] = pd.to_datetime(df["datetime"]).dt.tz_localize(tz).dt.tz_convert("UTC")
            df["symbol"] = symbol
            frames.append(df)
    bars = pd.concat(frames, ignore_index=True).drop_duplicates(subset=["symbol", "datetime"])
    del frames
    transform_s = time.perf_counter() - began
    # The same contract as the project's table: a primary key, so that a re-run cannot duplicate
    # (to_sql creates tables without one).
    bars.head(0).to_sql("bars_5min", engine, schema="baseline", if_exists="replace", index=False)
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text("ALTER TABLE baseline.bars_5min ADD PRIMARY KEY (datetime, symbol)")
        )
    bars.to_sql("bars_5min", engine, schema="baseline", if_exists="append", index=False)
    seconds = time.perf_counter() - began
    with engine.connect() as conn:
        landed = conn.execute(sqlalchemy.text("SELECT count(*) FROM baseline.bars_5min")).scalar()
    engine.dispose()
    return {
        "seconds": seconds,
        "transform_s": transform_s,
        "to_sql_s": seconds - transform_s,
        "rows": len(bars),
        "landed": landed,
        "symbols": len(wanted),
        "rss_mb": peak_rss_mb(),
        "hwm_mb": vm_hwm_mb(),
    }


# --- phase 5: re-load one day ----------------------------------------------------------------


def reload_day(data_dir: str, pg_url: str, day: str, symbols: list[str]) -> dict[str, Any]:
    """Replace one session of the full table, as a one-day re-run's IO manager would."""
    from finance_assets.lib.io import lake, postgres
    from finance_assets.lib.schema import BAR_KEY

    market = bench_market(symbols)
    start, end = market.session_bounds(dt.date.fromisoformat(day))
    lake_dir = Path(data_dir) / "lake" / MARKET_KEY / "bars_5min"
    bars = lake.read_window(lake_dir, start=start, end=end, tz=market.tz)
    if bars is None:
        raise RuntimeError(f"no lake rows for {day}")
    bars = bars.sort(BAR_KEY)  # as _pg_write sorts before replace_window
    runs = []
    deleted = 0
    for _ in range(RELOAD_REPEATS):
        t0 = time.perf_counter()
        deleted = postgres.replace_window(
            pg_url,
            bars,
            postgres.WindowTable(MARKET_KEY, "bars_5min"),
            start=start,
            end=end,
            primary_key=BAR_KEY,
        )
        runs.append(time.perf_counter() - t0)
    return {"runs": runs, "rows": bars.height, "deleted": deleted}


# --- phase 6: one run per partition, and the live tick ---------------------------------------
# What a Dagster user without single-run backfills gets (a run per 5-minute partition, over one
# session), and what the schedule's tick costs: one partition of every symbol, from the run
# request to rows in PostgreSQL and the lake. Each window has its own prepared payloads.


class WindowReplayProvider(ReplayProvider):
    """Serves each window's own prepared payloads (`prepare_windows`)."""

    def fetch_bars(
        self,
        market: Market,
        symbols: Sequence[str],
        interval: Interval,
        start: dt.datetime,
        end: dt.datetime,
    ) -> list[RawPayload]:
        folder = read_manifest(self.cache_dir)["windows"].get(start.astimezone(dt.UTC).isoformat())
        if folder is None:
            raise RuntimeError(f"no replay cache prepared for the window starting {start}")
        sub = ReplayProvider(str(Path(self.cache_dir) / folder))
        return sub.fetch_bars(market, symbols, interval, start, end)


def replay_provider(cache_dir: str) -> ReplayProvider:
    """The provider for a cache folder: one range (`prepare`) or one folder per window."""
    if "windows" in read_manifest(cache_dir):
        return WindowReplayProvider(cache_dir)
    return ReplayProvider(cache_dir)


def prepare_windows(cache_root: str, n_symbols: int, day: str, k: int) -> dict[str, Any]:
    """Payloads for the first `k` 5-minute windows of session `day` and for its last one (the
    live tick's), each window in a folder laid out as `prepare` lays out a range."""
    from finance_assets.lib.clock import INTRADAY_FMT
    from finance_assets.providers.simulated_market.client import MAX_BATCH_SYMBOLS, SimulatedMarket

    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    market = bench_market(symbols)
    starts = market.bar_starts(*market.session_bounds(dt.date.fromisoformat(day)))
    chosen = sorted({*starts[:k], starts[-1]})
    sim = SimulatedMarket(seed=SEED)
    step = dt.timedelta(minutes=5)
    windows, keys = {}, {}
    for index, start in enumerate(chosen):
        folder = Path(cache_root) / f"w{index:03d}"
        folder.mkdir()
        batches = []
        for offset in range(0, n_symbols, MAX_BATCH_SYMBOLS):
            chunk = symbols[offset : offset + MAX_BATCH_SYMBOLS]
            [payload] = sim.fetch_bars(market, chunk, "5min", start, start + step)
            name = f"b{len(batches):04d}.json"
            (folder / name).write_bytes(payload.body)
            batches.append({"file": name, "symbols": chunk})
        manifest = {
            "interval": "5min",
            "start": start.isoformat(),
            "end": (start + step).isoformat(),
            "symbols": symbols,
            "batches": batches,
        }
        (folder / "manifest.json").write_text(json.dumps(manifest))
        windows[start.isoformat()] = folder.name
        keys[start.isoformat()] = start.astimezone(market.tz).strftime(INTRADAY_FMT)
    root = {"symbols": symbols, "windows": windows}
    (Path(cache_root) / "manifest.json").write_text(json.dumps(root))
    ordered = [keys[s.isoformat()] for s in chosen]
    return {"runs": ordered[:k], "tick": keys[starts[-1].isoformat()], "windows": windows}


def rows_in_window(
    pg_url: str, data_dir: str, start: dt.datetime, end: dt.datetime
) -> tuple[int, int]:
    """(warehouse rows, lake rows) of us.bars_5min with start <= ts < end."""
    import polars as pl
    import psycopg

    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)

    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {MARKET_KEY}.bars_5min WHERE ts >= %s AND ts < %s", [start, end]
        ).fetchone()
    lake_dir = Path(data_dir) / "lake" / MARKET_KEY / "bars_5min"
    lake = (
        pl.scan_parquet(str(lake_dir / "*" / "*.parquet"))
        .filter((pl.col("ts") >= start) & (pl.col("ts") < end))
        .select(pl.len())
        .collect()
        .item()
    )
    return int(row[0]) if row else 0, int(lake)


def partition_runs(
    cache_root: str,
    data_dir: str,
    pg_url: str,
    instance_kind: str,
    settings: dict[str, str],
    keys: list[str],
    storage_url: str | None = None,
    storage_class: str = "pooled",
) -> dict[str, Any]:
    """One run of the 5-minute job per partition key, one after another, on one instance (as
    a schedule or an asset backfill without the single-run policy launches them). With one key:
    the live tick. Each run's time goes from the run request (`execute_job` with the partition
    tag) to its rows counted in PostgreSQL and the lake."""
    os.environ["FINANCE_PG_URL"] = pg_url
    os.environ["DAGSTER_DISABLE_TELEMETRY"] = "yes"
    for name in DAGSTER_SETTINGS:
        os.environ.pop(name, None)
    os.environ.update(settings)
    import dagster as dg

    from finance_assets.defs.common.partitions import five_minute_partitions

    market = bench_market(read_manifest(cache_root)["symbols"])
    partitions = five_minute_partitions(market)
    instance_dir = Path(data_dir) / "dagster_home"
    instance_dir.mkdir(parents=True, exist_ok=True)
    instance = make_instance(instance_kind, instance_dir, storage_url or pg_url, storage_class)
    recon = dg.build_reconstructable_job(
        bench_job.__module__,
        bench_job.__name__,
        reconstructable_kwargs={"cache_dir": cache_root, "data_dir": data_dir},
    )
    bench_job(
        cache_root, data_dir
    )  # definitions loaded before the clock starts, as in a code server
    per_run: list[float] = []
    failures: list[str] = []
    landed = 0
    began = time.perf_counter()
    for key in keys:
        t0 = time.perf_counter()
        with dg.execute_job(
            recon,
            instance=instance,
            run_config={**QUIET_LOGS, "execution": {"config": {"in_process": {}}}},
            tags={"dagster/partition": key},
        ) as result:
            if not result.success:
                failures.append(key)
                break
        window = partitions.time_window_for_partition_key(key)
        in_pg, in_lake = rows_in_window(pg_url, data_dir, window.start, window.end)
        per_run.append(time.perf_counter() - t0)
        if in_pg != in_lake or in_pg != len(market.universe):
            failures.append(f"{key}: {in_pg} rows in PostgreSQL, {in_lake} in the lake")
        landed += in_pg
    return {
        "seconds": time.perf_counter() - began,
        "runs": per_run,
        "rows": landed,
        "failures": failures[:3],
        "rss_mb": peak_rss_mb(),
    }


def scratch_database(pg_url: str, suffix: str) -> str:
    """A second database beside the benchmark's (dropped with `drop_database`)."""
    import psycopg

    url = with_database(pg_url, f"{urlsplit(pg_url).path.lstrip('/')}_{suffix}")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{urlsplit(url).path.lstrip("/")}"')
    return url


def drop_database(pg_url: str, url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')


def run_partition_phases(
    args: argparse.Namespace,
    n_symbols: int,
    scratch: Path,
    pg_url: str,
    settings: dict[str, str],
    day: str,
    single_run_rate: float,
    say: Callable[[str], None],
) -> dict[str, Any] | None:
    """The live tick, then `--partition-runs` runs of one partition each over session `day`,
    in a database and data folder of their own; prints both with their ratios."""
    cache_root, runs_dir, tick_dir = (scratch / n for n in ("windows", "runs", "tick"))
    for folder in (cache_root, runs_dir, tick_dir):
        folder.mkdir()
    plan = run_in_child(prepare_windows, str(cache_root), n_symbols, day, args.partition_runs)
    for label, data_dir, keys in (
        ("tick", tick_dir, [plan["tick"]]),
        ("runs", runs_dir, plan["runs"]),
    ):
        if not keys:
            continue
        db = scratch_database(pg_url, label)
        storage_url = (
            with_database(args.storage_server, urlsplit(db).path.lstrip("/"))
            if args.storage_server
            else None
        )
        try:
            out = run_in_child(
                partition_runs,
                str(cache_root),
                str(data_dir),
                db,
                args.instance,
                settings,
                keys,
                storage_url,
                args.storage_class,
            )
        finally:
            drop_database(pg_url, db)
        if out["failures"]:
            say(f"{label} FAILED: {out['failures']}")
            return None
        if label == "tick":
            say(
                f"live tick              {out['runs'][0]:7.2f} s  (one 5-minute partition "
                f"{plan['tick']} of {n_symbols} symbols: run request to {out['rows']} rows in "
                f"PostgreSQL and the lake; target <= 3 s)"
            )
            continue
        rate = out["rows"] / out["seconds"]
        say(
            f"one run per partition  {out['seconds']:7.1f} s  {rate:>10,.0f} rows/s  "
            f"({len(keys)} runs of {day}, median {statistics.median(out['runs']):.2f} s a run; "
            f"single-run backfill per row: {single_run_rate / rate:.1f}x, target >= 50x)"
        )
    return plan


# --- the parent ------------------------------------------------------------------------------


def spark_vs_polars(cache_dir: str, data_dir: str) -> dict[str, Any]:
    """The clean step on the same payloads: polars (`clean_payloads`, one Parquet file per
    day) against the PySpark job on local[2] (`spark/bars_job.py`, Parquet by symbol and
    date); the Spark session's start-up timed apart."""
    import sys

    import polars as pl

    from finance_assets.lib import transforms
    from finance_assets.lib.io import lake

    manifest = read_manifest(cache_dir)
    market = bench_market(manifest["symbols"])
    start, end = window_of(manifest)
    raw_dir = Path(data_dir) / "raw" / MARKET_KEY / "raw_intraday_quotes"
    lake.write_payloads(raw_dir, replay_payloads(cache_dir, manifest), start, end, market.tz)
    first = start.astimezone(market.tz).date()
    last = (end - dt.timedelta(microseconds=1)).astimezone(market.tz).date()
    day_start = dt.datetime.combine(first, dt.time(), market.tz)
    day_end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), market.tz)

    began = time.perf_counter()
    result, _ = transforms.clean_payloads(
        lake.read_payloads(raw_dir, day_start, day_end),
        market,
        "5min",
        asset="bars_5min",
        window_start=day_start,
        window_end=day_end,
        ingested_at=dt.datetime.now(dt.UTC),
        valid_starts=pl.Series("ts", market.bar_starts(day_start, day_end)),
    )
    out = Path(data_dir) / "polars"
    for (day,), frame in result.bars.with_columns(
        _day=pl.col("ts").dt.convert_time_zone(market.timezone).dt.date()
    ).group_by("_day"):
        (out / f"dt={day}").mkdir(parents=True, exist_ok=True)
        frame.drop("_day").write_parquet(out / f"dt={day}" / "part-0.parquet")
    polars_s = time.perf_counter() - began

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "spark"))
    import bars_job
    from pyspark.sql import SparkSession

    began = time.perf_counter()
    builder = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    for key, value in {**bars_job.SPARK_CONF, "spark.sql.shuffle.partitions": "4"}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    startup_s = time.perf_counter() - began
    argv = ["--raw", str(raw_dir), "--out", str(Path(data_dir) / "spark"), "--market", MARKET_KEY]
    argv += ["--start", first.isoformat(), "--end", last.isoformat(), "--steps", "raw_to_parquet"]
    args = bars_job.parse_args(argv)
    began = time.perf_counter()
    figures = bars_job.run(spark, args)
    spark_s = time.perf_counter() - began
    spark.stop()
    assert figures["rows_loaded"] == result.bars.height, (
        figures["rows_loaded"],
        result.bars.height,
    )
    return {
        "rows": result.bars.height,
        "polars_s": polars_s,
        "spark_startup_s": startup_s,
        "spark_s": spark_s,
    }


def answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def server_url(explicit: str | None) -> tuple[str, str]:
    """(URL, where it came from): --pg-url, FINANCE_PG_URL, the local server, else embedded."""
    if explicit:
        return explicit, "--pg-url"
    if os.environ.get("FINANCE_PG_URL"):
        return os.environ["FINANCE_PG_URL"], "FINANCE_PG_URL"
    if answers(LOCAL_PG):
        return LOCAL_PG, "local server"
    # Its own folder, not the scratch folder main() removes: the server must stop (its atexit
    # hook) before its data goes. Registered first, this hook runs after the server's.
    embedded = Path(tempfile.mkdtemp(prefix="finance_bench_pg_"))
    atexit.register(shutil.rmtree, embedded, True)
    from finance_assets.lib.io.postgres import embedded_server_url

    return embedded_server_url(embedded), "embedded server"


def count(url: str, table: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # our own table names
    return int(row[0]) if row else 0


def run_floors(
    args: argparse.Namespace,
    rows: int,
    backfill: Callable[..., dict[str, Any]],
    say: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    """The floor run once per `--floor-checks` variant; the checks' share of it when measured."""
    floors: dict[str, dict[str, Any]] = {}
    for checks in args.floor_checks:
        floor = backfill(floor=True, checks=checks)
        if not floor["success"]:
            raise RuntimeError(f"dagster floor run ({checks} checks) FAILED: {floor['failures']}")
        say(
            f"dagster floor          {floor['seconds']:7.1f} s  {rows / floor['seconds']:>10,.0f} "
            f"rows/s  ({checks} checks: {len(floor['checks'])}; the same assets, "
            f"partitions and checks doing nothing: Dagster's bookkeeping alone caps a run of "
            f"this range at that rate)"
        )
        for name, seconds in floor["spans"]:
            say(f"  {name:<52} {seconds:7.2f} s")
        floors[checks] = floor
    if "declared" in floors and "none" in floors:
        n = len(floors["declared"]["checks"])
        cost = floors["declared"]["seconds"] - floors["none"]["seconds"]
        say(f"  the {n} declared checks cost {cost:.1f} s of the floor, {cost / n:.2f} s each")
    if "declared" in floors and "combined" in floors:
        saved = floors["declared"]["seconds"] - floors["combined"]["seconds"]
        share = saved / floors["declared"]["seconds"]
        say(f"  one row-rule check instead of four saves {saved:.1f} s ({share:.0%} of the floor)")
    return floors


def say_ratios(
    rows: int,
    dag: dict[str, Any],
    floors: dict[str, dict[str, Any]],
    path: dict[str, Any],
    base_rate: float,
    say: Callable[[str], None],
) -> None:
    """The end-to-end run against the baseline (target >= 1.0), its floor and the data path."""
    rate = rows / dag["seconds"]
    parts = [f"baseline {rate / base_rate:.2f}x (target >= 1.0)"]
    if "declared" in floors:
        floor_s = floors["declared"]["seconds"]
        parts.append(
            f"floor {floor_s / dag['seconds']:.0%} of the run ({floor_s:.1f} s, target <= 15 s)"
        )
    parts.append(f"data path {path['seconds'] / dag['seconds']:.0%} of the run")
    say("end to end vs " + ", ".join(parts))


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the storage, checks and per-partition measurements (issue 15)."""
    parser.add_argument(
        "--storage-class",
        choices=STORAGE_CLASSES,
        default="pooled",
        help="with --instance postgres: pooled = "
        "finance_assets.dagster_instance.pooled_storage.PooledPostgresStorage "
        "(as dagster.yaml deploys it), pooled-unbatched = the same without its batched planned "
        "events, dagster-postgres = its own storage (a connection per statement outside the "
        "webserver)",
    )
    parser.add_argument(
        "--floor-checks",
        default="declared",
        help="comma-separated floor runs by their checks: declared (as bars_5min), combined "
        "(the four row rules as one check), none",
    )
    parser.add_argument(
        "--partition-runs",
        type=int,
        default=78,
        help="runs of one partition each over the last session (78 = the whole session; "
        "0 = skip; the live tick runs in any case)",
    )


def check_speed_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    args.floor_checks = [c.strip() for c in args.floor_checks.split(",") if c.strip()]
    unknown = [c for c in args.floor_checks if c not in FLOOR_CHECKS]
    if unknown or not args.floor_checks:
        parser.error(f"--floor-checks: unknown {unknown}; valid: {', '.join(FLOOR_CHECKS)}")
    if args.partition_runs < 0:
        parser.error(f"--partition-runs must be at least 0, got {args.partition_runs}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=500, help="symbols at scale 1")
    parser.add_argument("--scale", type=int, default=1, help="multiplies --symbols")
    parser.add_argument("--days", type=int, default=20, help="trading sessions")
    parser.add_argument("--end", default="2026-10-30", help="last session (YYYY-MM-DD)")
    parser.add_argument(
        "--pg-url",
        default=None,
        help="PostgreSQL server URL (a fresh database is created on it and dropped afterwards)",
    )
    parser.add_argument(
        "--baseline-symbols",
        type=int,
        default=None,
        help="run the baseline on the first K symbols only (default: all)",
    )
    parser.add_argument(
        "--runner",
        choices=("execute_job", "execute_in_process"),
        default="execute_job",
        help="how the Dagster run is started",
    )
    parser.add_argument(
        "--instance",
        choices=("postgres", "local", "temp", "ephemeral"),
        default="postgres",
        help="Dagster storage: postgres = in the benchmark database (as deployed, dagster.yaml), "
        "local = the embedded PostgreSQL in the scratch folder (as make demo / make dev), "
        "temp = SQLite in the scratch folder (as make demo / make dev before), "
        "ephemeral = in memory",
    )
    parser.add_argument(
        "--event-batch-size",
        type=int,
        default=1000,
        help="DAGSTER_EVENT_BATCH_SIZE for the run (the Makefile's and deployment's value; "
        "0 = Dagster's default, one write per event)",
    )
    parser.add_argument(
        "--planned-events",
        choices=("per-partition", "subset"),
        default="per-partition",
        help="per-partition = Dagster's default (a planned event per partition and asset, which "
        "is what marks the partitions of a failed run as failed); subset = "
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS (one per asset, failed partitions "
        "are then not marked)",
    )
    parser.add_argument(
        "--storage-server",
        default=None,
        help="with --instance postgres: reach Dagster's storage through this server URL instead "
        "(e.g. a PgBouncer in front of the same server; the benchmark database keeps its name)",
    )
    parser.add_argument(
        "--spark",
        action="store_true",
        help="also time the PySpark job on local[2] against the polars clean step (needs the "
        "spark extra and Java 17+; slow: a minute or more)",
    )
    parser.add_argument(
        "--spark-only",
        action="store_true",
        help="prepare the payloads and run only the Spark-vs-polars phase",
    )
    parser.add_argument(
        "--lake",
        choices=("local", "s3"),
        default="local",
        help="s3: measure the data path a second time with the raw zone and the lake on S3 "
        "(moto's server on loopback, in this process), beside the local folder",
    )
    parser.add_argument(
        "--data-path-only",
        type=int,
        default=0,
        metavar="N",
        help="prepare, then time the data path alone N times (fresh child and table each time), "
        "step by step, with the median of each step",
    )
    parser.add_argument(
        "--skip-floor",
        action="store_true",
        help="do not measure the no-op twin run (Dagster's bookkeeping alone)",
    )
    add_speed_arguments(parser)
    args = parser.parse_args(argv)
    check_speed_arguments(parser, args)
    if args.symbols < 1 or args.scale < 1 or args.days < 1:
        parser.error("--symbols, --scale and --days must be at least 1")
    if args.data_path_only < 0:
        parser.error(f"--data-path-only must be at least 0, got {args.data_path_only}")
    if args.runner == "execute_job" and args.instance == "ephemeral":
        parser.error("execute_job needs a persistent instance: use --instance temp")
    if args.storage_server and args.instance != "postgres":
        parser.error("--storage-server applies to --instance postgres only")
    n_symbols = args.symbols * args.scale

    scratch = Path(tempfile.mkdtemp(prefix="finance_bench_"))
    cache_dir, data_dir, path_dir = (scratch / n for n in ("payloads", "dagster", "datapath"))
    for folder in (cache_dir, data_dir, path_dir):
        folder.mkdir()
    dbname = f"finance_bench_{uuid.uuid4().hex[:10]}"
    server, origin = server_url(args.pg_url)
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    pg_url = with_database(server, dbname)
    print(f"PostgreSQL: {origin}, fresh database {dbname}; scratch {scratch}", flush=True)
    try:
        return run(args, n_symbols, str(cache_dir), str(data_dir), str(path_dir), pg_url)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        shutil.rmtree(scratch, ignore_errors=True)


def report_data_path(
    cache_dir: str,
    path_dir: str,
    pg_url: str,
    rows: int,
    dagster_s: float,
    say: Callable[[str], None],
) -> dict[str, Any] | None:
    """The assets' work without Dagster, printed beside the Dagster run; None when the stores
    differ afterwards."""
    path = run_in_child(data_path, cache_dir, path_dir, pg_url)
    path_rows = count(pg_url, path["table"])
    assert path["rows"] == path_rows == path["lake_rows"] == rows, (path, path_rows, rows)
    if path["failing_checks"]:
        say(f"  data path quality rules failed: {path['failing_checks']}")
    if path["stores_differ"]:
        say("  data path: the lake and the warehouse differ after the write")
        return 1
    say(
        f"data path (no dagster) {path['seconds']:7.1f} s  {rows / path['seconds']:>10,.0f} "
        f"rows/s  (dagster adds {dagster_s - path['seconds']:.1f} s, "
        f"{dagster_s / path['seconds']:.1f}x)"
    )
    for name, seconds, hwm in path["steps"]:
        say(f"  {name:<52} {seconds:7.2f} s" + (f"  (peak so far {hwm:,.0f} MB)" if hwm else ""))
    return path


def repeat_data_path(
    cache_dir: str, path_dir: str, pg_url: str, rows: int, times: int, say: Callable[[str], None]
) -> int:
    """The data path `times` times, each in a fresh child writing a table of its own (a first
    write, as in the full benchmark), printed as one column per run and the median of each step;
    1 when a run's stores differ or its counts are wrong."""
    runs = []
    for i in range(times):
        load = os.getloadavg()[0]
        folder = Path(path_dir) / f"run{i}"
        path = run_in_child(data_path, cache_dir, str(folder), pg_url, None, None, f"datapath{i}")
        assert path["rows"] == count(pg_url, path["table"]) == path["lake_rows"] == rows, path
        if path["stores_differ"] or path["failing_checks"]:
            say(f"run {i + 1}: stores differ or rules failed: {path}")
            return 1
        runs.append((path, load, os.getloadavg()[0]))
        shutil.rmtree(folder, ignore_errors=True)
    width = 9
    head = "".join(f"{'run ' + str(i + 1):>{width}}" for i in range(times))
    say(f"{'data path, step':<62}{head}{'median':>{width}}")
    names = [name for name, _, _ in runs[0][0]["steps"]]
    for k, name in enumerate(names):
        figures = [path["steps"][k][1] for path, _, _ in runs]
        cells = "".join(f"{f:>{width}.2f}" for f in figures)
        say(f"  {name:<60}{cells}{statistics.median(figures):>{width}.2f}")
    totals = [path["seconds"] for path, _, _ in runs]
    say(
        f"  {'whole data path (s)':<60}"
        + "".join(f"{t:>{width}.2f}" for t in totals)
        + f"{statistics.median(totals):>{width}.2f}"
    )
    say(
        f"  {'rows/s':<60}"
        + "".join(f"{rows / t:>{width},.0f}" for t in totals)
        + f"{rows / statistics.median(totals):>{width},.0f}"
    )
    say(
        f"  {'load average (1 min) before / after':<60}"
        + "".join(f"{f'{a:.1f}/{b:.1f}':>{width}}" for _, a, b in runs)
    )
    say(
        f"data_path_rows_per_s_median={rows / statistics.median(totals):.0f} "
        f"min={rows / max(totals):.0f} max={rows / min(totals):.0f} runs={times}"
    )
    return 0


def report_s3_path(
    cache_dir: str,
    path_dir: str,
    pg_url: str,
    rows: int,
    path: dict[str, Any],
    say: Callable[[str], None],
) -> bool:
    """The data path again with the raw zone and the lake on S3 (moto), beside the local one;
    False when the stores differ afterwards."""
    on_s3 = s3_data_path(cache_dir, path_dir, pg_url)
    on_s3_rows = count(pg_url, on_s3["table"])
    assert on_s3["rows"] == on_s3_rows == on_s3["lake_rows"] == rows, (on_s3, rows)
    if on_s3["stores_differ"]:
        say("  data path on S3: the lake and the warehouse differ after the write")
        return False
    say(
        f"data path, S3 (moto)   {on_s3['seconds']:7.1f} s  "
        f"{rows / on_s3['seconds']:>10,.0f} rows/s  (raw zone and lake on s3:// through "
        f"moto on loopback; {on_s3['seconds'] / path['seconds']:.1f}x the local folder's)"
    )
    for (name, seconds, _), (_, local_s, _) in zip(on_s3["steps"], path["steps"], strict=True):
        say(f"  {name:<52} {seconds:7.2f} s  (local {local_s:.2f} s)")
    return True


def spark_phase(cache_dir: str, path_dir: str) -> str:
    """Spark `local[2]` against the polars path on the same payloads, as one line."""
    spark = run_in_child(spark_vs_polars, cache_dir, str(Path(path_dir) / "spark-phase"))
    return (
        f"spark local[2]         {spark['spark_s']:7.1f} s  vs polars {spark['polars_s']:.1f} s"
        f" on {spark['rows']:,} bars: ratio {spark['spark_s'] / spark['polars_s']:.1f}x "
        f"(polars faster when > 1); session start-up {spark['spark_startup_s']:.1f} s apart"
    )


def run(
    args: argparse.Namespace,
    n_symbols: int,
    cache_dir: str,
    data_dir: str,
    path_dir: str,
    pg_url: str,
) -> int:
    def say(text: str) -> None:
        print(text, flush=True)

    prep = run_in_child(prepare, cache_dir, n_symbols, args.days, args.end)
    rows = prep["expected_rows"]
    sessions = prep["sessions"]
    say(
        f"workload: {n_symbols} symbols x {len(sessions)} sessions {sessions[0]}..{sessions[-1]}"
        f" = {rows:,} bars of 5 min; {prep['batches']} payloads, {prep['bytes'] / 1e6:.0f} MB"
    )
    say(f"prepare (untimed)      {prep['seconds']:7.1f} s")
    if args.spark or args.spark_only:
        say(spark_phase(cache_dir, path_dir))
        if args.spark_only:
            return 0
    if args.data_path_only:
        return repeat_data_path(cache_dir, path_dir, pg_url, rows, args.data_path_only, say)

    storage_url = (
        with_database(args.storage_server, urlsplit(pg_url).path.lstrip("/"))
        if args.storage_server
        else None
    )
    settings = {"DAGSTER_EVENT_BATCH_SIZE": str(args.event_batch_size)}
    if args.planned_events == "subset":
        settings["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = "true"
    say(
        f"dagster settings: {args.instance} storage"
        + (f" ({args.storage_class})" if args.instance == "postgres" else "")
        + (f" via {urlsplit(args.storage_server).netloc}" if args.storage_server else "")
        + ", "
        + ", ".join(f"{k}={v}" for k, v in settings.items())
    )

    def backfill(floor: bool, checks: str = "declared") -> dict[str, Any]:
        return run_in_child(
            dagster_backfill,
            cache_dir,
            data_dir,
            pg_url,
            args.runner,
            args.instance,
            settings,
            floor,
            storage_url,
            args.storage_class,
            checks,
        )

    dag = backfill(floor=False)
    if not dag["success"]:
        say(f"dagster run FAILED: {dag['failures']}")
        return 1
    pg_rows = count(pg_url, f"{MARKET_KEY}.bars_5min")
    quarantined = count(pg_url, f"{MARKET_KEY}.quarantine")
    assert pg_rows == dag["lake_rows"] == rows, (pg_rows, dag["lake_rows"], rows)
    rows_per_s = rows / dag["seconds"]
    events = dag["event_counts"]
    say(
        f"dagster run            {dag['seconds']:7.1f} s  {rows_per_s:>10,.0f} rows/s  "
        f"({dag['partitions']:,} partitions {dag['range'][0]}..{dag['range'][1]}; "
        f"{args.runner}, {args.instance} instance; {sum(events.values()):,} events, "
        f"{events.get('ASSET_MATERIALIZATION_PLANNED', 0):,} planned)"
    )
    for name, seconds in dag["spans"]:
        say(f"  {name:<52} {seconds:7.2f} s")
    say(
        f"  landed: {pg_rows:,} rows in {MARKET_KEY}.bars_5min = lake = expected; "
        f"{quarantined} quarantined"
    )

    floors = {} if args.skip_floor else run_floors(args, rows, backfill, say)

    path = report_data_path(cache_dir, path_dir, pg_url, rows, dag["seconds"], say)
    if path is None:
        return 1
    if args.lake == "s3" and not report_s3_path(cache_dir, path_dir, pg_url, rows, path, say):
        return 1

    base = run_in_child(baseline, cache_dir, pg_url, args.baseline_symbols)
    assert base["landed"] == base["rows"], base
    base_rate = base["rows"] / base["seconds"]
    say(
        f"baseline (pandas)      {base['seconds']:7.1f} s  {base_rate:>10,.0f} rows/s  "
        f"({base['rows']:,} rows of {base['symbols']} symbols: transform "
        f"{base['transform_s']:.1f} s, to_sql {base['to_sql_s']:.1f} s; "
        f"peak RSS {base['rss_mb']:.0f} MB)"
    )

    day = sessions[len(sessions) // 2]
    reload = run_in_child(
        reload_day, data_dir, pg_url, day, [f"S{i:04d}" for i in range(n_symbols)]
    )
    assert reload["deleted"] == reload["rows"], reload
    assert count(pg_url, f"{MARKET_KEY}.bars_5min") == rows
    reload_s = statistics.median(reload["runs"])
    say(
        f"one-day reload         {reload_s:7.2f} s  (replace_window of {day}, "
        f"{reload['rows']:,} rows into {rows:,}; runs "
        + ", ".join(f"{s:.2f}" for s in reload["runs"])
        + ")"
    )
    run_partition_phases(
        args, n_symbols, Path(cache_dir).parent, pg_url, settings, sessions[-1], rows_per_s, say
    )
    say_ratios(rows, dag, floors, path, base_rate, say)
    peak = dag["rss_mb"]
    hwm = dag["hwm_mb"]
    say(
        f"peak RSS               {peak:7.0f} MB (dagster run child, ru_maxrss"
        + (f"; VmHWM {hwm:.0f} MB" if hwm is not None else "")
        + f"); data path {path['rss_mb']:.0f} MB, prepare {prep['rss_mb']:.0f} MB"
    )
    say(
        f"rows={rows} rows_per_s={rows_per_s:.0f} baseline_rows_per_s={base_rate:.0f} "
        f"ratio={rows_per_s / base_rate:.2f} peak_rss_mb={peak:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
