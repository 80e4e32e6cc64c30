"""What a fetch will cost before it is sent: the calls and credits a window and universe need at
a provider, how long they take at its per-minute budget, and whether they fit its daily one.

A client knows its own calls (`BarClient._plan`: batches, windows per call); `plan_calls`
prices them against the client's `CallBudget`. A run that cannot fit the daily budget is
refused at once (`BudgetExceeded`, permanent: no step retry either), rather than after hours
of waiting for credits that will not come back before tomorrow. No Dagster import.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from finance_assets.lib.providers.base import PermanentProviderError


@dataclass(frozen=True)
class CallBudget:
    """A provider plan's allowance as its client spends it. `unit`: what a call costs in
    ("credits": Twelve Data, one per symbol of a batch; "calls": one per request).
    The variables are the settings that change each figure (named in a refusal)."""

    provider: str
    unit: str
    per_minute: int
    per_minute_variable: str
    per_day: int | None = None
    per_day_variable: str | None = None

    def __post_init__(self) -> None:
        if self.per_minute < 1:
            raise ValueError(f"{self.per_minute_variable} must be >= 1, got {self.per_minute}")
        if self.per_day is not None and self.per_day < 1:
            raise ValueError(f"{self.per_day_variable} must be >= 1, got {self.per_day}")


class BudgetExceeded(PermanentProviderError):
    """A fetch needs more than the provider's daily budget: refused before any call."""

    def __init__(self, message: str, plan: FetchPlan) -> None:
        super().__init__(message)
        self.plan = plan


@dataclass(frozen=True)
class FetchPlan:
    """The calls of one fetch and their cost. `weights`: each call's cost in `budget.unit`, in
    the order they are sent; `minutes`: the least time they take at the per-minute budget
    (the waits for room alone, responses taken as instant)."""

    provider: str
    symbols: int
    interval: str
    start: dt.datetime
    end: dt.datetime
    weights: tuple[int, ...]
    budget: CallBudget

    @property
    def calls(self) -> int:
        return len(self.weights)

    @property
    def cost(self) -> int:
        return sum(self.weights)

    @property
    def fits_minute(self) -> bool:
        """Whether every call fits the per-minute budget at all (a call weighing more can
        never be sent: Twelve Data's 20-credit `/splits` on the free plan's 8 a minute)."""
        return all(weight <= self.budget.per_minute for weight in self.weights)

    @property
    def minutes(self) -> float:
        if not self.fits_minute:
            return math.inf
        return minutes_at_budget(self.weights, self.budget.per_minute)

    @property
    def days(self) -> int | None:
        """The days of the daily budget the fetch would take (None: no daily cap)."""
        per_day = self.budget.per_day
        return None if per_day is None else max(1, math.ceil(self.cost / per_day))

    @property
    def fits_day(self) -> bool:
        return self.budget.per_day is None or self.cost <= self.budget.per_day

    def refusal(self) -> str | None:
        """Why the fetch cannot run within a day, naming the budget, the numbers and the
        settings to change; None when it fits."""
        b = self.budget
        if not self.fits_minute:
            return (
                f"{self.provider}: a call of this fetch costs {max(self.weights):,} {b.unit} "
                f"({self.symbols} symbols, {self.interval}, {self.start.isoformat()} .. "
                f"{self.end.isoformat()}), more than the per-minute budget of {b.per_minute:,} "
                f"{b.unit} ({b.per_minute_variable}={b.per_minute}): it can never be sent. "
                f"Refused before any call; set {b.per_minute_variable} to your plan's "
                f"{b.unit} a minute if it allows more"
            )
        if self.fits_day:
            return None
        smaller = (
            "fewer symbols (split the universe across days) or a shorter partition range"
            if self.symbols > 1
            else "a shorter partition range"
        )
        return (
            f"{self.provider}: this fetch needs {self.calls:,} calls costing {self.cost:,} "
            f"{b.unit} ({self.symbols} symbols, {self.interval}, "
            f"{self.start.isoformat()} .. {self.end.isoformat()}), more than the daily budget "
            f"of {b.per_day:,} {b.unit} ({b.per_day_variable}={b.per_day}): it would take "
            f"{self.days} days of budget. Refused before any call; ask for {smaller}, or set "
            f"{b.per_day_variable} to your plan's daily {b.unit} if it allows more"
        )

    def check(self) -> None:
        """Raise `BudgetExceeded` when the fetch cannot fit the daily budget."""
        reason = self.refusal()
        if reason is not None:
            raise BudgetExceeded(reason, self)

    def metadata(self) -> dict[str, Any]:
        """What a run records about its cost (plain values: Dagster metadata, logs)."""
        b = self.budget
        minutes = self.minutes
        shown: dict[str, Any] = {
            "planned_calls": self.calls,
            f"planned_{b.unit}": self.cost,
            "minutes_at_budget": round(minutes, 1) if math.isfinite(minutes) else "never",
            "budget_per_minute": f"{b.per_minute} {b.unit} ({b.per_minute_variable})",
        }
        if b.per_day is not None:
            shown["budget_per_day"] = f"{b.per_day} {b.unit} ({b.per_day_variable})"
            shown["share_of_daily_budget"] = round(self.cost / b.per_day, 3)
        return shown


def plan_calls(
    budget: CallBudget,
    weights: Sequence[int],
    *,
    symbols: int,
    interval: str,
    start: dt.datetime,
    end: dt.datetime,
) -> FetchPlan:
    """The plan of calls costing `weights` each under `budget`."""
    for weight in weights:
        if not 1 <= weight <= budget.per_minute:
            raise ValueError(
                f"{budget.provider}: a call costing {weight} {budget.unit} can never fit "
                f"{budget.per_minute_variable}={budget.per_minute}"
            )
    return FetchPlan(
        provider=budget.provider,
        symbols=symbols,
        interval=interval,
        start=start,
        end=end,
        weights=tuple(weights),
        budget=budget,
    )


def minutes_at_budget(weights: Sequence[int], per_minute: int) -> float:
    """When the last call can be sent, in minutes from the first, under a sliding window of
    `per_minute` units per 60 s (the limiter's: `rate_limit.RateLimiter`)."""
    sent: list[tuple[float, int]] = []  # (second sent, weight), in order
    now = 0.0
    first = 0  # the oldest call still inside the window ending now
    in_window = 0
    for weight in weights:
        while True:
            while first < len(sent) and sent[first][0] <= now - 60.0:
                in_window -= sent[first][1]
                first += 1
            if in_window + weight <= per_minute:
                break
            now = sent[first][0] + 60.0  # room comes back when the oldest call leaves
        sent.append((now, weight))
        in_window += weight
    return now / 60.0
