"""Price-move notifications: each alert in `<market>.price_alerts` is sent once per channel
(chat; and the webhook bots subscribe to, when `PRICE_ALERT_WEBHOOK_URL` is set).

A ledger per channel in the warehouse, beside the alerts (`<market>.price_alert_notifications`
for chat, `..._webhook` for the webhook), records what was sent, so re-running a partition —
which replaces its alerts with the same ones — never sends them again, a restart loses nothing,
and a failed send is retried on the next tick on that channel only.
Alerts older than `max_age_hours` (a backfill of last month, the demo's week) are recorded as
skipped instead of paging anyone.
"""

import datetime as dt

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
) -> dict[str, int]:
    """Send every alert not yet in a channel's ledger on that channel; record sent and stale
    ones. Returns counts over the channels."""
    counts = {"sent": 0, "skipped": 0, "failed": 0}
    with postgres.connect_psycopg(url, autocommit=True) as conn:
        if not _exists(conn, market.key, "price_alerts"):
            return counts
        for channel in notifier.channels("price_alert"):
            for name, value in _notify_channel(
                conn, market, notifier, channel, now, log, max_age
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
) -> dict[str, int]:
    counts = {"sent": 0, "skipped": 0, "failed": 0}
    _ensure_ledger(conn, market.key, LEDGERS[channel])
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
        now = dt.datetime.now(dt.UTC)
        totals = {
            market.key: notify_new_alerts(url, market, notifier, now, log=context.log)
            for market in markets
        }
        return dg.SkipReason(f"price alerts handled: {totals}")

    return _sensor
