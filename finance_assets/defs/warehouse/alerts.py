"""Price-move notifications: each alert in `<market>.price_alerts` is sent once per channel
(chat; and the webhook bots subscribe to, when `PRICE_ALERT_WEBHOOK_URL` is set).

A ledger per channel in the warehouse, beside the alerts (`<market>.price_alert_notifications`
for chat, `..._webhook` for the webhook), records what was sent, so re-running a partition —
which replaces its alerts with the same ones — never sends them again, a restart loses nothing,
and a failed send is retried on the next tick on that channel only.
Alerts older than `max_age_hours` (a backfill of last month, the demo's week) are recorded as
skipped instead of paging anyone.

Two deliverers share the ledgers (issue 23): the run that wrote the alerts delivers them as
soon as `price_moves` succeeds (a success hook on the asset, seconds after the bar), and the
sensor is the retry path for what the run could not deliver (a channel down, a run that died).
Each ledger is worked under a PostgreSQL advisory lock of its own, so a run and the sensor (or
two runs) never both send an alert: the second one in finds it in the ledger. The sensor does
not wait for the lock (a run holding it is delivering; the next tick sees what is left); a run
waits up to `RUN_LOCK_WAIT` and otherwise leaves its alerts to the sensor. An alert is recorded
right after it is sent, so only a process dying between the two sends it twice (the
receiver drops the repeat by its id).
"""

import datetime as dt
import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import dagster as dg
import psycopg
from psycopg import sql

from finance_assets.lib.io import postgres
from finance_assets.lib.io.managers import WarehouseResource
from finance_assets.lib.markets import Market
from finance_assets.lib.notify import Notification, SendError
from finance_assets.resources.notifier import CHAT, WEBHOOK, Notifier

MAX_AGE = dt.timedelta(hours=6)
LEDGER = "price_alert_notifications"
# The ledger of each channel (chat's keeps the name it always had).
LEDGERS = {CHAT: LEDGER, WEBHOOK: f"{LEDGER}_webhook"}
# How long a run waits for a ledger another deliverer holds before leaving it to the sensor.
RUN_LOCK_WAIT = dt.timedelta(seconds=30)
# The first key of the ledgers' advisory locks (the second is the ledger's): "FINA" in ASCII,
# so they are told apart from any other advisory lock taken on the same server.
_LOCK_NAMESPACE = 0x46494E41


def alert_clock() -> dt.datetime:
    """The instant staleness is judged by, for the run and the sensor alike: Dagster's clock
    (the partition loading context's, which partitions are judged by too), UTC."""
    with dg.partition_loading_context() as loading:
        return loading.effective_dt.astimezone(dt.UTC)


def _lock_key(schema: str, table: str) -> int:
    """A ledger's lock key: a signed 32-bit number derived from its qualified name."""
    digest = hashlib.blake2b(f"{schema}.{table}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def _ledger_lock(
    conn: psycopg.Connection, schema: str, table: str, wait: dt.timedelta | None
) -> Iterator[bool]:
    """Hold the ledger's advisory lock (session level, on an autocommit connection) for the
    block; yields False when it was not had: at once (`wait` None) or within `wait`."""
    key = [_LOCK_NAMESPACE, _lock_key(schema, table)]
    if wait is None or wait <= dt.timedelta(0):  # (a lock_timeout of 0 would wait forever)
        held = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()[0]
    else:
        conn.execute(
            sql.SQL("SET lock_timeout = {}").format(
                sql.Literal(f"{int(wait.total_seconds() * 1000)}ms")
            )
        )
        try:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", key)
            held = True
        except psycopg.errors.LockNotAvailable:
            held = False
        finally:
            conn.execute("RESET lock_timeout")
    try:
        yield held
    finally:
        if held:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def _ensure_ledger(conn: psycopg.Connection, schema: str, table: str) -> None:
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (ts timestamptz, symbol text, kind text, "
            "status text NOT NULL, handled_at timestamptz NOT NULL DEFAULT now(), "
            "PRIMARY KEY (ts, symbol, kind))"
        ).format(sql.Identifier(schema, table))
    )


def _exists(conn: psycopg.Connection, schema: str, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f'"{schema}"."{table}"']).fetchone()[
        0
    ]


def alert_notification(market: Market, alert: dict) -> Notification:
    moved = "vs the previous close" if alert["kind"] == "vs_prev_close" else "in one bar"
    local = alert["ts"].astimezone(market.tz)
    return Notification(
        kind="price_alert",
        severity="WARN",
        title=f"{alert['symbol']} {alert['change_pct']:+.2f}% {moved} ({market.key})",
        fields=(
            ("symbol", alert["symbol"]),
            ("price", f"{alert['price']:.4f}"),
            ("change", f"{alert['change_pct']:+.2f}% {moved}"),
            ("reference", f"{alert['reference']:.4f}"),
            ("time", f"{local:%Y-%m-%d %H:%M %Z} (bar start)"),
            ("threshold", f"{alert['threshold_pct']:.2f}%"),
        ),
        data={
            # One id per alert: a receiver that sees it twice (a retried delivery) drops it.
            "id": f"{market.key}:{alert['symbol']}:{alert['ts'].isoformat()}:{alert['kind']}",
            "market": market.key,
            "symbol": alert["symbol"],
            "ts": alert["ts"].isoformat(),
            "kind": alert["kind"],
            "direction": alert["direction"],
            "price": alert["price"],
            "reference": alert["reference"],
            "change_pct": alert["change_pct"],
            "threshold_pct": alert["threshold_pct"],
        },
    )


def notify_new_alerts(
    url: str,
    market: Market,
    notifier: Notifier,
    now: dt.datetime,
    log: object | None = None,
    max_age: dt.timedelta = MAX_AGE,
    *,
    wait: dt.timedelta | None = None,
    stop_at_failure: bool = False,
    channels: Sequence[str] | None = None,
) -> dict[str, int]:
    """Send every alert not yet in a channel's ledger on that channel; record sent and stale
    ones. Returns counts over the channels.

    Each channel's ledger is worked under its lock: a ledger another deliverer holds is left
    alone (`wait` None: the sensor) or waited for up to `wait` (a run). `stop_at_failure`
    leaves a channel's remaining alerts at its first failed send (a run does not spend its
    time on a channel that is down; the sensor retries them). `channels` limits the delivery
    to those (default: every channel the notifier has for price alerts)."""
    counts = {"sent": 0, "skipped": 0, "failed": 0}
    with postgres.connect_psycopg(url, autocommit=True) as conn:
        if not _exists(conn, market.key, "price_alerts"):
            return counts
        for channel in notifier.channels("price_alert"):
            if channels is not None and channel not in channels:
                continue
            # Created before the lock is taken: two first deliverers may both create it.
            _ensure_ledger(conn, market.key, LEDGERS[channel])
            with _ledger_lock(conn, market.key, LEDGERS[channel], wait) as held:
                if not held:
                    if log is not None:
                        log.info(
                            f"price alerts ({channel}): another deliverer holds the ledger; "
                            "what it leaves is sent on a later tick"
                        )
                    continue
                for name, value in _notify_channel(
                    conn, market, notifier, channel, now, log, max_age, stop_at_failure
                ).items():
                    counts[name] += value
    return counts


def _notify_channel(
    conn: psycopg.Connection,
    market: Market,
    notifier: Notifier,
    channel: str,
    now: dt.datetime,
    log: object | None,
    max_age: dt.timedelta,
    stop_at_failure: bool = False,
) -> dict[str, int]:
    counts = {"sent": 0, "skipped": 0, "failed": 0}
    alerts = sql.Identifier(market.key, "price_alerts")
    ledger = sql.Identifier(market.key, LEDGERS[channel])
    stale = conn.execute(
        sql.SQL(
            "INSERT INTO {ledger} (ts, symbol, kind, status) "
            "SELECT a.ts, a.symbol, a.kind, 'skipped (stale)' FROM {alerts} a "
            "WHERE a.ts < %s ON CONFLICT DO NOTHING"
        ).format(ledger=ledger, alerts=alerts),
        [now - max_age],
    )
    counts["skipped"] = stale.rowcount
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        pending = cur.execute(
            sql.SQL(
                "SELECT a.* FROM {alerts} a LEFT JOIN {ledger} n "
                "USING (ts, symbol, kind) WHERE n.ts IS NULL ORDER BY a.ts, a.symbol"
            ).format(ledger=ledger, alerts=alerts)
        ).fetchall()
    for alert in pending:
        try:
            notifier.send(alert_notification(market, alert), channel, log=log)
        except SendError as err:
            counts["failed"] += 1
            if log is not None:
                log.warning(f"price alert not delivered ({channel}), retrying next tick: {err}")
            if stop_at_failure:
                break
            continue
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (ts, symbol, kind, status) VALUES (%s, %s, %s, 'sent') "
                "ON CONFLICT DO NOTHING"
            ).format(ledger),
            [alert["ts"], alert["symbol"], alert["kind"]],
        )
        counts["sent"] += 1
    return counts


def build_price_alert_sensor(markets: list[Market]) -> dg.SensorDefinition:
    @dg.sensor(
        name="price_alert_notifications",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends each new price-move alert once per channel (Slack, or the local "
        "notifications file; and the PRICE_ALERT_WEBHOOK_URL webhook as signed JSON); alerts "
        "older than 6 hours are recorded as skipped.",
    )
    def _sensor(
        context: dg.SensorEvaluationContext, notifier: Notifier, warehouse: WarehouseResource
    ) -> dg.SkipReason:
        url = warehouse.get_url()
        instant = alert_clock()
        totals = {
            market.key: notify_new_alerts(url, market, notifier, instant, log=context.log)
            for market in markets
        }
        return dg.SkipReason(f"price alerts handled: {totals}")

    return _sensor


def run_channels(notifier: Notifier, environ: Mapping[str, str] | None = None) -> list[str]:
    """The channels a run delivers on: those its notifier has, except chat when Slack is
    configured (`SLACK_CHANNEL`) but this process has no token. Its chat would then be the
    local file, recorded as sent: on AWS the runs' tasks have no Slack token (only the code
    server where the sensors run does), so chat is the sensor's there."""
    environ = os.environ if environ is None else environ
    chosen = notifier.channels("price_alert")
    if notifier.chat_backend == "file" and environ.get("SLACK_CHANNEL"):
        chosen = [channel for channel in chosen if channel != CHAT]
    return chosen


def build_price_alert_hook(market: Market) -> dg.HookDefinition:
    """Delivers the market's new alerts from the run that wrote them, once `price_moves` has
    succeeded (its rows committed): the sensor's next tick is up to a minute later."""

    @dg.success_hook(
        name=f"{market.key}_price_alert_delivery",
        required_resource_keys={"notifier", "warehouse"},
    )
    def _deliver(context: dg.HookContext) -> None:
        notifier: Notifier = context.resources.notifier
        warehouse: WarehouseResource = context.resources.warehouse
        try:
            counts = notify_new_alerts(
                warehouse.get_url(),
                market,
                notifier,
                alert_clock(),
                log=context.log,
                wait=RUN_LOCK_WAIT,
                stop_at_failure=True,
                channels=run_channels(notifier),
            )
        except (psycopg.Error, OSError) as exc:
            # The alerts are committed: the sensor delivers them. The run's work is done.
            context.log.warning(f"price alerts left to the sensor: {exc}")
            return
        context.log.info(f"price alerts delivered from the run: {counts}")

    return _deliver
