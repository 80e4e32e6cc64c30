"""Settings read from environment variables, checked when the definitions load.

Every error names the variable, the value as given and what is valid, and `EnvSettings`
collects all the problems of one environment, so a user fixes them in one pass rather than one
per reload. Ranges are `NumberRange`s: resources declare the same ranges on their fields, so a
resource built in code or configured in the launchpad is held to them too.

No Dagster import: `resources.py` and `markets.py` both read through it.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from finance_assets.lib.redaction import redact


class SettingsError(ValueError):
    """One or more settings are invalid; `problems` lists each, one sentence a problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} settings are invalid:\n" + "\n".join(
                f"- {p}" for p in self.problems
            )
        super().__init__(message)


@dataclass(frozen=True)
class NumberRange:
    """`low` <= value <= `high` (or `low` < value with `low_open`), finite; `whole`: an
    integer. `meaning` says what the number is, for the error."""

    low: float
    high: float
    whole: bool = False
    low_open: bool = False
    meaning: str = ""

    def contains(self, value: float) -> bool:
        if not math.isfinite(value) or value > self.high:
            return False
        return value > self.low if self.low_open else value >= self.low

    def text(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        span = (
            f"above {_num(self.low)} and at most {_num(self.high)}"
            if self.low_open
            else f"from {_num(self.low)} to {_num(self.high)}"
        )
        what = f" ({self.meaning})" if self.meaning else ""
        return f"{kind} {span}{what}"


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


class EnvSettings:
    """Typed reads of one environment mapping; each bad value is recorded (and its default
    returned) until `check()` raises them all together."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        """The value, stripped; None when unset or empty."""
        value = self.environ.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def check(self) -> None:
        if self.problems:
            raise SettingsError(self.problems)

    def number(self, name: str, default: float, valid: NumberRange) -> float:
        """A number within `valid` (a whole one when `valid.whole`: `8.5` is refused, not
        truncated)."""
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            self.problem(f"{name}={value!r} is not a number; valid: {valid.text()}")
            return default
        if not math.isfinite(number):
            self.problem(f"{name}={value!r} is not a finite number; valid: {valid.text()}")
            return default
        if not valid.contains(number):
            self.problem(f"{name}={value!r} is out of range; valid: {valid.text()}")
            return default
        if valid.whole:
            if not number.is_integer():
                self.problem(f"{name}={value!r} is not a whole number; valid: {valid.text()}")
                return default
            return int(number)
        return number

    def whole(self, name: str, default: int, valid: NumberRange) -> int:
        return int(self.number(name, default, valid))

    def choice(self, name: str, default: str, valid: Sequence[str], what: str) -> str:
        value = (self.raw(name) or default).lower()
        if value not in valid:
            self.problem(f"{name}={value!r} is not {what}; valid: {', '.join(valid)}")
            return default
        return value

    def url(
        self, name: str, default: str | None, schemes: Sequence[str] = ("http", "https")
    ) -> str | None:
        """A URL of one of `schemes` with a host (its password starred in the error)."""
        value = self.raw(name)
        if value is None:
            return default
        parsed = urllib.parse.urlsplit(value)
        if parsed.scheme.lower() not in schemes or not parsed.hostname:
            self.problem(
                f"{name}={redact(value)!r} is not a URL with a host and the scheme "
                f"{' or '.join(schemes) if len(schemes) < 3 else 'one of ' + ', '.join(schemes)}"
            )
            return default
        return value

    def require(self, name: str, why: str) -> None:
        """`name` must be set (to anything): `why` says who needs it."""
        if self.raw(name) is None:
            self.problem(f"{name} is not set: {why}")
