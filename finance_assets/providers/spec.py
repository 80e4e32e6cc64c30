"""What a provider declares about itself, once: its name and kind, the payload formats it parses,
its settings (field, environment variable, default, valid range), its secrets, its request
budget and how many runs may call it at once.

The code location's settings (`resources/__init__.py`), the payload parsers
(`lib/transforms/parsing.py`) and the deployments (`deployment/render.py`) are all built from
these specs, so a provider's default, range or variable name is written in one place.

No Dagster import: the pure parts (clients, parsers, specs) are used and tested without it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from finance_assets.lib.settings import EnvSettings, NumberRange

Kind = Literal["bars", "posts"]
# A payload body and its id -> raw records (all text) and the per-symbol errors it reported.
Parser = Callable[[bytes | str, str], tuple[pl.DataFrame, dict[str, str]]]
# A payload body -> the per-symbol errors a 200 answer reported inline (a batch's failures).
ErrorScanner = Callable[[bytes | str], dict[str, str]]
# A payload body and its id -> the splits and dividends it carries inline
# (`lib.schema.ACTION_RECORD_SCHEMA`; no `source`: the envelope's provider), or None when the body
# says nothing about them (a series without the columns): "none" and "not said" differ.
ActionParser = Callable[[bytes | str, str], pl.DataFrame | None]

CALLS_PER_MINUTE = NumberRange(1, 100_000, whole=True, meaning="calls a minute the plan allows")
CALLS_PER_DAY = NumberRange(
    1, 100_000_000, whole=True, meaning="calls (credits) a day the plan allows a run to spend"
)
PROXY_SCHEMES = ("http", "https", "socks4", "socks5", "socks5h")


@dataclass(frozen=True)
class KindSlot:
    """Where the providers of one kind plug in: the variable that chooses one, the resource key
    the assets ask for, the run tag their jobs carry, the CloudFormation parameter."""

    variable: str
    resource_key: str
    run_tag: str
    parameter: str


KINDS: dict[str, KindSlot] = {
    "bars": KindSlot(
        "MARKET_DATA_PROVIDER", "market_data", "finance/market_data_provider", "MarketDataProvider"
    ),
    "posts": KindSlot("POSTS_PROVIDER", "posts", "finance/posts_provider", "PostsProvider"),
}


# The run tag naming one provider a run calls, whatever its role in the run (a market's bars,
# its reference, the posts): `finance/calls.<provider>`. The run coordinators limit each keyed
# provider by this tag (`run_limit`, written by deployment/render.py), so a daily run asking
# Twelve Data for a second opinion queues behind a 5-minute run whose bars come from it.
CALLS_TAG_PREFIX = "finance/calls."


def calls_tag(provider: str) -> str:
    """The run tag key of a run that calls `provider`."""
    return f"{CALLS_TAG_PREFIX}{provider}"


def calls_tags(providers: Iterable[str]) -> dict[str, str]:
    """The run tags of a run that calls each of `providers`."""
    return {calls_tag(p): "true" for p in dict.fromkeys(providers)}


@dataclass(frozen=True)
class Setting:
    """One field of the provider's resource and the environment variable that sets it.

    `type`: "number" / "whole" (held to `valid`), "url" (http(s), or `schemes`), "text", or
    "secret" (never read as a value: the resource gets `dg.EnvVar(variable)`, so the UI shows
    only the name). A "url" with `secret=True` (a proxy URL may hold a password) is checked
    like a URL and handed over as an EnvVar too. `required` (a secret only): the provider
    cannot run without it, and the settings check says so when the provider is chosen; the
    text completes "MARKET_DATA_PROVIDER=<name> needs ...".
    """

    field: str
    variable: str
    type: Literal["number", "whole", "url", "text", "secret"]
    default: Any = None
    valid: NumberRange | None = None
    schemes: tuple[str, ...] = ("http", "https")
    secret: bool = False
    required: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.type in ("number", "whole") and self.valid is None:
            raise ValueError(f"setting {self.variable}: a {self.type} needs its valid range")
        if self.type == "secret" and self.default is not None:
            raise ValueError(f"setting {self.variable}: a secret has no default")
        if self.required and not self.is_secret:
            raise ValueError(f"setting {self.variable}: only a secret can be required")

    @property
    def is_secret(self) -> bool:
        return self.type == "secret" or self.secret

    def read(self, settings: EnvSettings) -> Any:
        """The value from the environment (problems recorded in `settings`), or the default.
        A secret's value is never returned: True when it is set (the caller hands the
        resource an EnvVar), else None."""
        if self.type == "secret":
            return True if settings.raw(self.variable) else None
        if self.type == "number":
            return settings.number(self.variable, self.default, self.valid)  # type: ignore[arg-type]
        if self.type == "whole":
            return settings.whole(self.variable, self.default, self.valid)  # type: ignore[arg-type]
        if self.type == "url":
            value = settings.url(self.variable, self.default, self.schemes)
            if self.secret:
                # Set and valid: an EnvVar; invalid (recorded) or unset: the default.
                return True if value is not None and value != self.default else None
            return value
        return settings.raw(self.variable) or self.default

    def field_info(self) -> Any:
        """The resource's pydantic field: the default, and the range pydantic enforces whenever
        the resource is built (in code or in the launchpad), with the variable named."""
        if self.is_secret:
            return secret_field(self.variable)
        if self.valid is not None:
            return bounded_field(self.default, self.valid, self.variable)
        from pydantic import Field  # the resources' library: the Spark cluster never needs it

        return Field(default=self.default, description=self.description or self.variable)


def bounded_field(default: float, valid: NumberRange, description: str) -> Any:
    """A resource field held to `valid` (pydantic checks it whenever the resource is built)."""
    bounds: dict[str, Any] = {"gt" if valid.low_open else "ge": valid.low, "le": valid.high}
    if not valid.whole:
        bounds["allow_inf_nan"] = False
    from pydantic import Field

    return Field(default=default, description=f"{description}; valid: {valid.text()}", **bounds)


def secret_field(variable: str) -> Any:
    """A field for a secret: set as `dg.EnvVar(variable)`, so the UI shows only the name."""
    from pydantic import Field

    return Field(default=None, description=f"{variable}, as a dg.EnvVar (never its value)")


@dataclass(frozen=True)
class Budget:
    """What the provider's plan allows, as the client spends it: `per_minute_setting` names the
    setting that sets the per-minute rate (its default is the free plan's); `per_day` is the
    free plan's daily cap where it has one, and `per_day_setting` the setting that changes it
    (a fetch planned to need more is refused before any call: `lib/providers/budget.py`; one
    that meets the provider's own cap fails as `QuotaExhausted`)."""

    per_minute_setting: str | None = None
    per_day: int | None = None
    note: str = ""
    per_day_setting: str | None = None


@dataclass(frozen=True)
class ProviderSpec:
    """One provider: everything the code location and the deployments need to know of it.

    `resource` is "module:Class" of its Dagster resource, imported only when the resources are
    built (the spec stays importable without Dagster). `formats` maps each payload format the
    provider's payloads carry to its parser; `error_scanners` the formats whose 200 answers
    report per-symbol errors inline; `actions` the formats whose bodies carry splits and
    dividends inline (Yahoo's chart `events`), read by the `corporate_actions` asset.
    `run_limit`: how many runs may call it at once (the run coordinators' limit on its
    `calls_tag`, whatever role each run asks it in; None: unlimited, as for the simulated
    sources). Its secrets are
    its settings of type "secret" (the deployments' secret keys)."""

    name: str
    kind: Kind
    resource: str
    description: str
    settings: tuple[Setting, ...] = ()
    formats: Mapping[str, Parser] = field(default_factory=dict)
    error_scanners: Mapping[str, ErrorScanner] = field(default_factory=dict)
    actions: Mapping[str, ActionParser] = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)
    run_limit: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"provider {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"provider name {self.name!r}: lower-case letters, digits and _")
        fields = [s.field for s in self.settings]
        if len(set(fields)) != len(fields):
            raise ValueError(f"provider {self.name!r}: a resource field is declared twice")
        for named in (self.budget.per_minute_setting, self.budget.per_day_setting):
            if named and named not in fields:
                raise ValueError(f"provider {self.name!r}: budget names no setting {named!r}")
        if self.run_limit is not None and self.run_limit < 1:
            raise ValueError(f"provider {self.name!r}: run_limit must be at least 1")

    @property
    def slot(self) -> KindSlot:
        return KINDS[self.kind]

    @property
    def secrets(self) -> tuple[Setting, ...]:
        """The settings held as secrets (the deployments' secret store keys: the ones required
        when chosen; an optional secret such as a proxy URL is the operator's to add)."""
        return tuple(s for s in self.settings if s.is_secret)

    @property
    def required_secrets(self) -> tuple[Setting, ...]:
        return tuple(s for s in self.settings if s.required)

    def setting(self, field_name: str) -> Setting:
        for s in self.settings:
            if s.field == field_name:
                return s
        raise KeyError(f"provider {self.name!r} has no setting {field_name!r}")

    def field(self, field_name: str) -> Any:
        """The resource class's pydantic field for one of its settings."""
        return self.setting(field_name).field_info()

    def per_minute(self) -> int | None:
        name = self.budget.per_minute_setting
        return None if name is None else self.setting(name).default

    def per_day(self) -> int | None:
        """The daily cap's default (the free plan's): its setting's, else the declared one."""
        name = self.budget.per_day_setting
        return self.budget.per_day if name is None else self.setting(name).default

    def resource_class(self) -> type:
        module, _, attribute = self.resource.partition(":")
        return getattr(importlib.import_module(module), attribute)
