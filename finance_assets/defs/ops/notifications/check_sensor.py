"""`check_failure_notifications`: one message per failed asset check, at least once, never twice.

Open-source Dagster has no alert for failed checks. The sensor reads new asset-check
evaluations from the instance's event log by storage id; its cursor advances past every event
read, and whatever could not be delivered stays in the cursor's `pending` list (the ledger)
until a later tick delivers it, on the channels still owed.
"""

import json
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from finance_assets.defs.ops.notifications import delivery
from finance_assets.defs.ops.notifications.content import RunCache, check_notification
from finance_assets.defs.ops.notifications.delivery import Tick
from finance_assets.resources.notifier import Notifier

_EVENT_TYPE = dg.DagsterEventType.ASSET_CHECK_EVALUATION


@dataclass
class CheckCursor:
    """`last`: the last storage id read. `pending`: events read but not yet delivered on every
    channel (`{"id", "channels"}`). `hold`: channel -> time before which not to try (429).
    `since`: on a first start, events older than this are passed over (no flood of history)."""

    last: int = -1
    pending: list[dict[str, Any]] = field(default_factory=list)
    hold: dict[str, float] = field(default_factory=dict)
    since: float | None = None

    @classmethod
    def parse(cls, raw: str | None, lookback_seconds: float) -> "CheckCursor":
        if not raw or not raw.strip():
            return cls(since=delivery.now() - lookback_seconds)
        raw = raw.strip()
        if raw.lstrip("-").isdigit():
            return cls(last=int(raw))
        try:
            data = json.loads(raw)
            return cls(
                last=int(data["last"]),
                pending=[
                    {"id": int(p["id"]), "channels": [str(c) for c in p["channels"]]}
                    for p in data.get("pending", [])
                ],
                hold={str(k): float(v) for k, v in data.get("hold", {}).items()},
                since=None if data.get("since") is None else float(data["since"]),
            )
        except (ValueError, KeyError, TypeError):
            # Starting over would re-send or skip notices: refuse, visibly.
            raise ValueError(f"unreadable cursor {raw[:200]!r}") from None

    def dump(self, hold: dict[str, float]) -> str:
        """The plain storage id when nothing is owed, else a small JSON document."""
        if not self.pending and not hold and self.since is None:
            return str(self.last)
        data: dict[str, Any] = {"last": self.last, "pending": self.pending}
        if hold:
            data["hold"] = hold
        if self.since is not None:
            data["since"] = self.since
        return json.dumps(data, separators=(",", ":"))


def _wanted(entry: dg.EventLogEntry, include_warnings: bool) -> bool:
    evaluation = entry.dagster_event.asset_check_evaluation_data
    if evaluation.passed:
        return False
    severity = evaluation.severity
    return severity == dg.AssetCheckSeverity.ERROR or (
        include_warnings and severity == dg.AssetCheckSeverity.WARN
    )


class _CheckTick:
    """One tick of the sensor: owed notices first, then new events."""

    def __init__(self, context: dg.SensorEvaluationContext, notifier: Notifier) -> None:
        self.context, self.notifier = context, notifier
        self.storage = context.instance.event_log_storage
        self.runs = RunCache(context.instance)

    def _notice(self, entry: dg.EventLogEntry) -> Any:
        return check_notification(self.context, entry, self.runs, self.notifier.ui_url)

    def deliver_owed(self, state: CheckCursor, tick: Tick) -> None:
        """Notices owed from earlier ticks, in the order their events happened."""
        configured = set(self.notifier.channels("check_failure"))
        still_pending = []
        for item in state.pending:
            channels = [c for c in item["channels"] if c in configured]
            found = self.storage.get_logs_for_all_runs_by_log_id(
                after_cursor=item["id"] - 1, dagster_event_type=_EVENT_TYPE, limit=1
            )
            entry = found.get(item["id"])
            if entry is None or not channels:
                self.context.log.warning(
                    f"dropping owed notice for event {item['id']}: "
                    + ("its run was deleted" if entry is None else "its channel is gone")
                )
                continue
            undelivered = tick.deliver(self._notice(entry), channels)
            if undelivered:
                still_pending.append({"id": item["id"], "channels": undelivered})
        state.pending = still_pending

    def read_new(self, state: CheckCursor, tick: Tick, batch_size: int, max_pending: int) -> int:
        """Reads up to `batch_size` new evaluations and notifies the failed ones; returns how
        many events were read (the cursor moves past each)."""
        # The index of the event log (global storage ids) also on run-sharded SQLite, where
        # `get_event_records` with an integer cursor is refused.
        events = self.storage.get_logs_for_all_runs_by_log_id(
            after_cursor=state.last, dagster_event_type=_EVENT_TYPE, limit=batch_size
        )
        read = 0
        for storage_id in sorted(events):
            if len(state.pending) >= max_pending:
                break
            entry = events[storage_id]
            state.last, read = storage_id, read + 1
            if state.since is not None and entry.timestamp < state.since:
                continue
            if not _wanted(entry, self.notifier.notify_check_warnings):
                continue
            undelivered = tick.deliver(self._notice(entry), self.notifier.channels("check_failure"))
            if undelivered:
                state.pending.append({"id": storage_id, "channels": undelivered})
        if len(events) < batch_size:
            state.since = None  # caught up with the history of a first start
        return read


def build_check_failure_sensor(
    name: str = "check_failure_notifications",
    *,
    minimum_interval_seconds: int = 30,
    batch_size: int = 200,
    max_pending: int = 200,
    initial_lookback_hours: float = 24.0,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """A sensor posting one message per failed asset check (ERROR, and WARN when the notifier
    says so), at least once and never twice, whatever the channel answers.

    On its very first tick it looks back `initial_lookback_hours` only. With `max_pending`
    notices owed it stops reading new events (the cursor stays) until the channel is back.
    """

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Posts a message for every failed asset check (severity ERROR; WARN with "
            "NOTIFY_CHECK_WARN=1): asset, partition, check, metadata, run and a link. Cursor: "
            "the last event storage id, plus the notices still owed when a send failed."
        ),
    )
    def _check_failures(context: dg.SensorEvaluationContext, notifier: Notifier) -> dg.SkipReason:
        state = CheckCursor.parse(context.cursor, initial_lookback_hours * 3600)
        tick = Tick(notifier, context.log, dict(state.hold))
        work = _CheckTick(context, notifier)
        work.deliver_owed(state, tick)
        read = 0
        if len(state.pending) < max_pending:
            read = work.read_new(state, tick, batch_size, max_pending)
        if len(state.pending) >= max_pending:
            context.log.error(f"{len(state.pending)} notices owed; not reading new events")

        context.update_cursor(state.dump(tick.live_hold()))
        return dg.SkipReason(
            f"read {read} check evaluation(s), sent {tick.sent} message(s), "
            f"{len(state.pending)} owed"
            + (f"; errors: {'; '.join(tick.errors)}" if tick.errors else "")
        )

    return _check_failures
