"""The valid range of every numeric setting: the environment is checked against them when the
definitions load, and the resources' fields declare them (a resource built in code or
configured in the launchpad is held to the same range)."""

from typing import Any

from pydantic import Field

from finance_assets.lib.settings import NumberRange

SIM_FAULT_RATE = NumberRange(0, 1, meaning="the share of simulated records corrupted")
QUARANTINE_RATE = NumberRange(0, 1, meaning="the share of received records; 0.05 is 5 %")
CALLS_PER_MINUTE = NumberRange(1, 100_000, whole=True, meaning="calls a minute the plan allows")
TOP_POSTS = NumberRange(1, 1_000, whole=True, meaning="posts kept per company and day")
X_PAGES = NumberRange(1, 100, whole=True, meaning="search pages per company and hour")
X_WAIT = NumberRange(0, 86_400, meaning="seconds to wait for a rate-limit reset")
PRICE_MOVE_PCT = NumberRange(0, 100, low_open=True, meaning="a move, in %, worth an alert")


def bounded(default: float, valid: NumberRange, description: str) -> Any:
    """A resource field held to `valid` (pydantic checks it whenever the resource is built)."""
    bounds: dict[str, Any] = {"gt" if valid.low_open else "ge": valid.low, "le": valid.high}
    if not valid.whole:
        bounds["allow_inf_nan"] = False
    return Field(default=default, description=f"{description}; valid: {valid.text()}", **bounds)


def secret(variable: str) -> Any:
    """A field for a secret: set as `dg.EnvVar(variable)`, so the UI shows only the name."""
    return Field(default=None, description=f"{variable}, as a dg.EnvVar (never its value)")
