"""Freshness of the bars, on the exchange's calendar.

Dagster's cron-based freshness checks cannot skip holidays or early closes; these can. The
`fresh` check of `<market>/bars_5min` passes when the last bar that should be in by now (its
close plus a grace period, within the trading sessions) has been materialised; the one of
`<market>/daily_bars` likewise for the last closed session. A sensor evaluates them every five
minutes and records an evaluation whenever the verdict changes, so a stalled feed becomes a
failed check (and therefore a notification) once, not every five minutes.
"""

import datetime as dt
import json

import dagster as dg

from finance_assets.defs.market.partitions import DAILY_FMT, INTRADAY_FMT
from finance_assets.lib.markets import BAR_MINUTES, Market

CHECK_NAME = "fresh"
GRACE = {"bars_5min": dt.timedelta(minutes=15), "daily_bars": dt.timedelta(hours=2)}


def due_partition(market: Market, asset: str, now: dt.datetime) -> str | None:
    """The newest partition of `asset` that should be materialised by `now`."""
    now = now.astimezone(dt.UTC)
    grace = GRACE[asset]
    day = now.astimezone(market.tz).date()
    # Walk back over sessions (at most a couple of weeks covers any holiday run).
    for _ in range(15):
        if market.is_session(day):
            open_, close = market.session_bounds(day)
            if asset == "daily_bars":
                if close + grace <= now:
                    return day.strftime(DAILY_FMT)
            else:
                bar = dt.timedelta(minutes=BAR_MINUTES)
                last_due = min(close, now - grace) - bar  # start of the newest bar due
                if last_due >= open_:
                    steps = (last_due - open_) // bar
                    start = open_ + steps * bar
                    return start.astimezone(market.tz).strftime(INTRADAY_FMT)
        day -= dt.timedelta(days=1)
    return None


def evaluate_freshness(
    instance: dg.DagsterInstance, market: Market, asset: str, now: dt.datetime
) -> dg.AssetCheckEvaluation:
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
        "grace_minutes": int(GRACE[asset].total_seconds() // 60),
        "evaluated_at": now.astimezone(dt.UTC).isoformat(),
    }
    if found:
        metadata["materialized_at"] = dt.datetime.fromtimestamp(
            found[0].timestamp, dt.UTC
        ).isoformat()
    return dg.AssetCheckEvaluation(
        asset_key=key,
        check_name=CHECK_NAME,
        passed=expected is None or bool(found),
        metadata=metadata,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{key.to_user_string()}: partition {expected} due by "
        f"{now.astimezone(market.tz):%Y-%m-%d %H:%M %Z} "
        + ("is in" if found or expected is None else "is missing: the feed has stalled"),
    )


def freshness_check_keys(market: Market) -> list[dg.AssetCheckKey]:
    return [dg.AssetCheckKey(dg.AssetKey([market.key, asset]), CHECK_NAME) for asset in GRACE]


def assets_for_run(market: Market, *names: str) -> dg.AssetSelection:
    """The market's assets `names` with their checks, except the freshness checks: those judge
    "now", not the window a run writes, so their sensor evaluates them."""
    return dg.AssetSelection.assets(
        *(dg.AssetKey([market.key, name]) for name in names)
    ) - dg.AssetSelection.checks(*freshness_check_keys(market))


def build_freshness_checks(market: Market) -> list[dg.AssetChecksDefinition]:
    """One check per asset, so that jobs can leave them out (the sensor evaluates them)."""

    def build(asset: str) -> dg.AssetChecksDefinition:
        minutes = int(GRACE[asset].total_seconds() // 60)

        @dg.asset_check(
            asset=dg.AssetKey([market.key, asset]),
            name=CHECK_NAME,
            description=f"the newest {asset} partition due by now (close + {minutes} min, "
            "trading sessions only) is in; evaluated every 5 minutes by freshness_sensor",
        )
        def _fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
            evaluation = evaluate_freshness(
                context.instance, market, asset, dt.datetime.now(dt.UTC)
            )
            return dg.AssetCheckResult(
                passed=evaluation.passed,
                metadata=evaluation.metadata,
                severity=evaluation.severity,
                description=evaluation.description,
            )

        return _fresh

    return [build(asset) for asset in GRACE]


def build_freshness_sensor(markets: list[Market]) -> dg.SensorDefinition:
    @dg.sensor(
        name="freshness_sensor",
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Evaluates the calendar-aware freshness checks of the bars; records an "
        "evaluation when a verdict changes.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        last: dict[str, bool] = json.loads(context.cursor) if context.cursor else {}
        now = dt.datetime.now(dt.UTC)
        events = []
        for market in markets:
            for asset in GRACE:
                evaluation = evaluate_freshness(context.instance, market, asset, now)
                name = f"{market.key}/{asset}"
                if last.get(name) != evaluation.passed:
                    events.append(evaluation)
                    last[name] = evaluation.passed
        return dg.SensorResult(asset_events=events, cursor=json.dumps(last, sort_keys=True))

    return _sensor
