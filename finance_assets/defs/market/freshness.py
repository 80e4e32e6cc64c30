"""Freshness of the bars, on the exchange's calendar.

Dagster's cron-based freshness checks and policies cannot skip holidays or early closes; these
can. The newest partition of `<market>/bars_5min` that should be in by now (its close plus a
grace period, within the trading sessions) has been materialised, or the feed has stalled;
likewise `<market>/daily_bars` for the last closed session.

Why the verdict sits on `<market>/bars_5min_feed`, not on `bars_5min`: Dagster (1.13) puts every
check of an asset into each run that materialises it: a UI backfill (`launchPartitionBackfill`
runs "all checks of these assets"), the Materialize button, a schedule's job. A check about
"now" ran inside a backfill of November, failed, and was reported against November's
partitions. A check cannot be declared without an executable step (`AssetsDefinition` refuses
check specs without a node), and the new `FreshnessPolicy` knows crons, not exchange calendars.
So each judged asset has an external asset, its *feed* (nothing is stored; no run materialises
it), which carries the `fresh` check. No materialisation can include that check, and its
verdicts, unpartitioned, are about now. `freshness_sensor` records a verdict whenever it
changes (a stalled feed fails once, not every five minutes); running the check from the UI
judges now as well.

Locally the feeds follow the schedules: a feed is judged only while the schedule that feeds it is
running (turned on in the UI, or `FINANCE_SCHEDULES=running`), and only for partitions due
after it was turned on. A fresh `make demo` + `make dev` is not red for a feed nobody started.
"""

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import dagster as dg

from finance_assets.defs.common.assets import owners
from finance_assets.defs.common.partitions import DAILY_FMT, INTRADAY_FMT
from finance_assets.lib.markets import BAR_MINUTES, Market

CHECK_NAME = "fresh"
GRACE = {"bars_5min": dt.timedelta(minutes=15), "daily_bars": dt.timedelta(hours=2)}
# The schedule that feeds each judged asset (defs/market/schedules.py names them so).
FEEDING_SCHEDULE = {
    "bars_5min": "{market}_bars_5min_schedule",
    "daily_bars": "{market}_daily_schedule",
}


def _now() -> dt.datetime:
    # The sensor's clock, one place for tests to move it.
    return dt.datetime.now(dt.UTC)


def _due(market: Market, asset: str, now: dt.datetime) -> tuple[str, dt.datetime] | None:
    """The newest partition of `asset` that should be materialised by `now`, and since when."""
    now = now.astimezone(dt.UTC)
    grace = GRACE[asset]
    day = now.astimezone(market.tz).date()
    # Walk back over sessions (at most a couple of weeks covers any holiday run).
    for _ in range(15):
        if market.is_session(day):
            open_, close = market.session_bounds(day)
            if asset == "daily_bars":
                if close + grace <= now:
                    return day.strftime(DAILY_FMT), close + grace
            else:
                bar = dt.timedelta(minutes=BAR_MINUTES)
                last_due = min(close, now - grace) - bar  # start of the newest bar due
                if last_due >= open_:
                    steps = (last_due - open_) // bar
                    start = open_ + steps * bar
                    return start.astimezone(market.tz).strftime(INTRADAY_FMT), start + bar + grace
        day -= dt.timedelta(days=1)
    return None


def due_partition(market: Market, asset: str, now: dt.datetime) -> str | None:
    """The newest partition of `asset` that should be materialised by `now`."""
    due = _due(market, asset, now)
    return due[0] if due else None


def feed_key(market: Market, asset: str) -> dg.AssetKey:
    return dg.AssetKey([market.key, f"{asset}_feed"])


def evaluate_freshness(
    instance: dg.DagsterInstance, market: Market, asset: str, now: dt.datetime
) -> dg.AssetCheckEvaluation:
    """The verdict about now for the feed of `<market>/<asset>`."""
    key = dg.AssetKey([market.key, asset])
    expected = due_partition(market, asset, now)
    found = (
        instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[expected]), limit=1
        ).records
        if expected
        else []
    )
    metadata: dict[str, dg.RawMetadataValue] = {
        "expected_partition": expected or "none",
        # A setting, not a measurement: text, so the UI does not plot it.
        "grace_minutes": dg.MetadataValue.text(str(int(GRACE[asset].total_seconds() // 60))),
        "evaluated_at": now.astimezone(dt.UTC).isoformat(),
    }
    if found:
        metadata["materialized_at"] = dt.datetime.fromtimestamp(
            found[0].timestamp, dt.UTC
        ).isoformat()
    return dg.AssetCheckEvaluation(
        asset_key=feed_key(market, asset),
        check_name=CHECK_NAME,
        passed=expected is None or bool(found),
        metadata=metadata,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{key.to_user_string()}: partition {expected} due by "
        f"{now.astimezone(market.tz):%Y-%m-%d %H:%M %Z} "
        + ("is in" if found or expected is None else "is missing: the feed has stalled"),
    )


def _feed(market: Market, asset: str) -> list[dg.AssetSpec | dg.AssetChecksDefinition]:
    key = feed_key(market, asset)
    judged = dg.AssetKey([market.key, asset])
    minutes = int(GRACE[asset].total_seconds() // 60)
    spec = dg.AssetSpec(
        key=key,
        deps=[judged],
        group_name=f"{market.key}_market",
        owners=owners("market"),
        kinds={"sensor"},
        tags={"market": market.key},
        description=(
            f"The live feed of `{judged.to_user_string()}`: nothing is stored here. Its `fresh` "
            f"check says whether the newest {asset} partition due by now (close + {minutes} min, "
            f"{market.name} trading sessions only) is in. It lives here, not on {asset}, so "
            "that no materialisation (a backfill of last month included) runs a verdict about "
            "now or reports it against a partition."
        ),
        metadata={"judged_asset": judged.to_user_string(), "grace_minutes": str(minutes)},
    )

    @dg.asset_check(
        asset=key,
        name=CHECK_NAME,
        description=f"the newest {asset} partition due by now (close + {minutes} min, trading "
        "sessions only) is in; recorded by freshness_sensor when the verdict changes, while the "
        "feed's schedule runs",
    )
    def _fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        evaluation = evaluate_freshness(context.instance, market, asset, dt.datetime.now(dt.UTC))
        return dg.AssetCheckResult(
            passed=evaluation.passed,
            metadata=evaluation.metadata,
            severity=evaluation.severity,
            description=evaluation.description,
        )

    return [spec, _fresh]


def build_feed_defs(market: Market) -> dg.Definitions:
    """The feeds of the market's bars (external assets) and their `fresh` checks."""
    parts = [part for asset in GRACE for part in _feed(market, asset)]
    return dg.Definitions(
        assets=[p for p in parts if isinstance(p, dg.AssetSpec)],
        asset_checks=[p for p in parts if isinstance(p, dg.AssetChecksDefinition)],
    )


def _schedule_states(context: dg.SensorEvaluationContext) -> dict[str, Any]:
    """This code location's stored schedule states by name (a schedule someone turned on or
    off in the UI; `DECLARED_IN_CODE` ones follow their default)."""
    origin = context.code_location_origin
    states: dict[str, Any] = {}  # Dagster's InstigatorState (not exported)
    if context.instance.schedule_storage is None:
        return states  # an ephemeral instance: nothing was turned on or off
    for state in context.instance.all_instigator_state():
        if state.instigator_type.value != "SCHEDULE":
            continue
        repo = state.origin.repository_origin
        if origin is not None and (
            repo.code_location_origin.location_name != origin.location_name
            or (context.repository_name and repo.repository_name != context.repository_name)
        ):
            continue
        states[state.name] = state
    return states


def feed_running_since(
    context: dg.SensorEvaluationContext, name: str, states: dict[str, Any]
) -> float | None:
    """When the schedule `name` was turned on (0 when unknown), or None while it is stopped."""
    state = states.get(name)
    status = state.status.value if state is not None else None
    if status in ("RUNNING", "STOPPED"):
        if status == "STOPPED":
            return None
        return getattr(state.instigator_data, "start_timestamp", None) or 0.0
    repo = context.repository_def
    if repo is None or not repo.has_schedule_def(name):
        return None  # no such schedule here: nothing feeds the asset on a clock
    default = repo.get_schedule_def(name).default_status
    return 0.0 if default == dg.DefaultScheduleStatus.RUNNING else None


def build_freshness_sensor(
    markets: Sequence[Market], *, follow_schedules: bool = True
) -> dg.SensorDefinition:
    """`follow_schedules`: judge a feed only while its schedule runs (the local environment);
    otherwise always (production, where a feed is expected whatever starts it)."""

    @dg.sensor(
        name="freshness_sensor",
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Records the calendar-aware freshness of the bars (the `fresh` checks of "
        "the `*_feed` assets) when a verdict changes"
        + ("; judges a feed only while its schedule runs." if follow_schedules else "."),
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        last: dict[str, bool] = json.loads(context.cursor) if context.cursor else {}
        now = _now()
        states = _schedule_states(context) if follow_schedules else {}
        events, idle = [], []
        for market in markets:
            for asset in GRACE:
                name = f"{market.key}/{asset}"
                if follow_schedules:
                    schedule = FEEDING_SCHEDULE[asset].format(market=market.key)
                    since = feed_running_since(context, schedule, states)
                    due = _due(market, asset, now)
                    # Stopped, or nothing has come due since it was turned on: no verdict.
                    if since is None or (due is not None and due[1].timestamp() < since):
                        idle.append(name)
                        last.pop(name, None)  # judged afresh once it runs
                        continue
                evaluation = evaluate_freshness(context.instance, market, asset, now)
                if last.get(name) != evaluation.passed:
                    events.append(evaluation)
                    last[name] = evaluation.passed
        if idle:
            context.log.info(f"not judged (their schedules are not running): {', '.join(idle)}")
        return dg.SensorResult(asset_events=events, cursor=json.dumps(last, sort_keys=True))

    return _sensor
