"""Delivery within one sensor tick, shared by every notification sensor."""

import time
from collections.abc import Sequence
from typing import Any

from finance_assets.lib.notify import Notification, SendError
from finance_assets.resources.notifier import Notifier


def now() -> float:
    # One clock for every notification sensor, so tests can move time forward.
    return time.time()


class Tick:
    """Sends for one sensor tick. A channel that fails once is not tried again in the same
    tick (one timeout per tick, not one per message), and a 429's Retry-After is honoured:
    `hold` maps a channel to the time before which it is not tried (kept in the cursor)."""

    def __init__(self, notifier: Notifier, log: Any, hold: dict[str, float]) -> None:
        self.notifier, self.log, self.hold = notifier, log, hold
        started = now()
        self.down = {
            ch: f"waiting until {until:.0f}" for ch, until in hold.items() if until > started
        }
        self.sent = 0
        self.errors: list[str] = []

    def deliver(self, notification: Notification, channels: Sequence[str]) -> list[str]:
        """Sends on each channel; returns the channels it could not deliver on."""
        undelivered = []
        for channel in channels:
            if channel in self.down:
                undelivered.append(channel)
                continue
            try:
                self.notifier.send(notification, channel, self.log)
            except SendError as err:
                self.down[channel] = err.reason
                if err.retry_after is not None:
                    self.hold[channel] = now() + err.retry_after
                self.errors.append(str(err))
                self.log.error(
                    f"notification not delivered, kept for a later tick: {err} "
                    f"({notification.title})"
                )
                undelivered.append(channel)
            else:
                self.sent += 1
                self.log.info(f"notification sent ({channel}): {notification.title}")
        return undelivered

    def live_hold(self) -> dict[str, float]:
        """The holds still in force, for the cursor."""
        current = now()
        return {ch: round(until, 3) for ch, until in self.hold.items() if until > current}
