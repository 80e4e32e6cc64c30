"""Resources per environment: one dict per environment, the same keys in each, built here from
the environment variables (the one place that reads them for resources).

`FINANCE_ENV` picks the dict (`local` by default); an unknown value is an error, never a silent
fallback to shared infrastructure. Each provider is its own package with its own resource
class (`finance_assets/providers/`); `MARKET_DATA_PROVIDER` and `POSTS_PROVIDER` choose which
one sits under the keys the assets ask for (`market_data`, `posts`), among the providers the
registry lists, and each provider's settings are read as its spec declares them (variable,
default, range). Every secret is a `dg.EnvVar`: Dagster resolves it from the process
environment at run time and the UI shows only the variable's name.
"""

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from finance_assets.lib.io import mongo, postgres
from finance_assets.lib.io.locations import check_locations
from finance_assets.lib.io.managers import (
    LakeWarehouseIOManager,
    PostgresIOManager,
    RawZoneIOManager,
    WarehouseResource,
)
from finance_assets.lib.landing import open_store as open_landing_store
from finance_assets.lib.markets import configured_market_keys
from finance_assets.lib.providers.retrying import (
    DEADLINE_RANGE,
    DEADLINE_VARIABLE,
    DEFAULT_DEADLINE,
)
from finance_assets.lib.settings import EnvSettings
from finance_assets.providers import corporate_actions, reference, registry, routing
from finance_assets.providers.spec import KINDS, Kind, ProviderSpec
from finance_assets.resources.bounds import PRICE_MOVE_PCT, QUARANTINE_RATE, TOP_POSTS
from finance_assets.resources.landing import LandingZoneResource, max_file_bytes_from_env
from finance_assets.resources.market_data import MarketDataResource
from finance_assets.resources.posts import POSTS_SCORERS, PostsResource
from finance_assets.resources.spark_pipes import spark_pipes_from_env
from finance_assets.resources.steps import check_step_execution
from finance_assets.resources.thresholds import (
    AlertSettingsResource,
    DataQualityResource,
    VendorToleranceResource,
)
from finance_assets.resources.zones import StorageResource

__all__ = [
    "ENVIRONMENTS",
    "AlertSettingsResource",
    "DataQualityResource",
    "MarketDataResource",
    "PostsResource",
    "StorageResource",
    "build_resources",
    "current_env",
    "data_dir",
    "warehouse_from_env",
]

_AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


def current_env(environ: Mapping[str, str] | None = None) -> str:
    env = (os.environ if environ is None else environ).get("FINANCE_ENV", "local").strip().lower()
    if env not in ENVIRONMENTS:
        raise ValueError(
            f"FINANCE_ENV={env!r} is not an environment; valid: {', '.join(ENVIRONMENTS)}"
        )
    return env


def data_dir(environ: Mapping[str, str] | None = None) -> str:
    return (os.environ if environ is None else environ).get("FINANCE_DATA_DIR", "data")


def warehouse_from_env(environ: Mapping[str, str] | None = None) -> WarehouseResource:
    """The warehouse outside a Dagster run (the demo script): the URL itself, not an EnvVar."""
    environ = os.environ if environ is None else environ
    return WarehouseResource(url=environ.get("FINANCE_PG_URL") or None, data_dir=data_dir(environ))


def build_resources(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The resources of the environment `FINANCE_ENV` names.

    `environ` is what the settings are read and checked from (the process environment unless
    given); a secret it names becomes a `dg.EnvVar` all the same, resolved from the process
    environment when a run starts. Every setting is checked here, when the definitions load,
    against its valid range: a bad value (or a missing key, or a URL that is not one) fails the
    code location with one error listing each variable, its value and what is valid, rather
    than a run, retries later.
    """
    settings = EnvSettings(os.environ if environ is None else environ)
    resources = ENVIRONMENTS[current_env(settings.environ)](settings)
    # Read by the schedules' factory; a typo would leave every schedule silently stopped.
    settings.choice("FINANCE_SCHEDULES", "stopped", ("running", "stopped"), "a schedule status")
    # Read by the asset factories (step roles) and the code location (executor).
    check_step_execution(settings, current_env(settings.environ))
    # Read by every provider client when it is built (lib/providers/retrying.py).
    settings.number(DEADLINE_VARIABLE, DEFAULT_DEADLINE, DEADLINE_RANGE)
    settings.check()
    return resources


def _local(settings: EnvSettings) -> dict[str, Any]:
    """A laptop: an embedded PostgreSQL under the data folder unless `FINANCE_PG_URL` names
    one."""
    return _resources(settings, warehouse_url=_secret(settings, "FINANCE_PG_URL"))


def _prod(settings: EnvSettings) -> dict[str, Any]:
    """Shared infrastructure: the warehouse is `FINANCE_PG_URL`'s, never an embedded one."""
    if not settings.raw("FINANCE_PG_URL"):
        settings.problem("FINANCE_ENV=prod needs FINANCE_PG_URL (the RDS PostgreSQL URL)")
    return _resources(settings, warehouse_url=dg.EnvVar("FINANCE_PG_URL"))


# hooli's `resource_defs[get_env()]`: one builder per environment, the same keys from each.
ENVIRONMENTS: dict[str, Callable[[EnvSettings], dict[str, Any]]] = {
    "local": _local,
    "prod": _prod,
}


def _resources(settings: EnvSettings, warehouse_url: str | None) -> dict[str, Any]:
    root = Path(settings.raw("FINANCE_DATA_DIR") or "data")
    _check_stores(settings)
    # FINANCE_RAW_URI / FINANCE_LAKE_URI: folders under the data dir, or S3 (required in prod).
    zones = check_locations(settings, current_env(settings.environ), root)
    warehouse = WarehouseResource(url=warehouse_url, data_dir=str(root))
    return {
        "market_data": _market_data(settings),
        **_routed_market_data(settings),
        "data_quality": DataQualityResource(
            max_quarantine_rate=settings.number(
                "FINANCE_MAX_QUARANTINE_RATE", 0.05, QUARANTINE_RATE
            )
        ),
        "alerts": AlertSettingsResource(
            price_move_threshold_pct=settings.number("FINANCE_PRICE_MOVE_PCT", 1.0, PRICE_MOVE_PCT)
        ),
        "vendor_tolerance": VendorToleranceResource(
            close_bp=settings.number(
                reference.CLOSE_BP_VARIABLE, reference.DEFAULT_CLOSE_BP, reference.CLOSE_BP
            ),
            volume_share=settings.number(
                reference.VOLUME_SHARE_VARIABLE,
                reference.DEFAULT_VOLUME_SHARE,
                reference.VOLUME_SHARE,
            ),
        ),
        "posts": _posts(settings),
        "warehouse": warehouse,
        "storage": StorageResource(raw_root=zones.raw, lake_root=zones.lake),
        # `s3://bucket/prefix` in production; the same sensor and ledger code either way.
        "landing_zone": LandingZoneResource(
            root=settings.raw("FINANCE_LANDING_URI") or str(root / "landing"),
            max_file_bytes=max_file_bytes_from_env(settings.environ),
        ),
        "raw_zone_io_manager": RawZoneIOManager(
            root=zones.raw,
            mongodb_uri=_secret(settings, "MONGODB_URI"),
            mongodb_database=settings.raw("MONGODB_DATABASE") or "finance_raw",
        ),
        "spark_pipes": spark_pipes_from_env(settings, root),  # the Spark job's Pipes client
        "warehouse_io_manager": PostgresIOManager(warehouse=warehouse),
        "lake_warehouse_io_manager": LakeWarehouseIOManager(
            lake_root=zones.lake, warehouse=warehouse
        ),
    }


def _secret(settings: EnvSettings, name: str) -> Any:
    """`dg.EnvVar(name)` when the variable is set, else None (the field's default)."""
    return dg.EnvVar(name) if settings.raw(name) else None


def _provider(settings: EnvSettings, kind: Kind) -> Any:
    """The chosen provider's resource, its fields read from the environment as its spec
    declares them. Every provider's settings of the kind are checked, chosen or not: a bad
    value waits for no one to switch providers. A required secret (an API key) is asked for
    only of the chosen one."""
    slot = KINDS[kind]
    choices = registry.specs(kind)
    chosen = settings.choice(
        slot.variable, choices[0].name, tuple(s.name for s in choices), "a provider"
    )
    configs = {spec.name: provider_config(spec, settings) for spec in choices}
    spec = registry.get(kind, chosen)
    for setting in spec.required_secrets:
        settings.require(setting.variable, f"{slot.variable}={spec.name} needs {setting.required}")
    return spec.resource_class(), configs[chosen]


def provider_config(spec: ProviderSpec, settings: EnvSettings) -> dict[str, Any]:
    """A provider's resource fields from the environment (problems recorded in `settings`):
    each secret as `dg.EnvVar(variable)` when set, never its value."""
    config: dict[str, Any] = {}
    for setting in spec.settings:
        value = setting.read(settings)
        if setting.is_secret:
            value = dg.EnvVar(setting.variable) if value else None
        config[setting.field] = value
    return config


def _market_data(settings: EnvSettings) -> MarketDataResource:
    resource, config = _provider(settings, "bars")
    return resource(**config)


def _routed_market_data(settings: EnvSettings) -> dict[str, MarketDataResource]:
    """The providers a market and interval chose beside the default one
    (`MARKET_DATA_PROVIDER_<MARKET>[_<INTERVAL>]`, `providers/routing.py`): one resource each,
    under `market_data_<provider>`, its key required because it is chosen."""
    environ = settings.environ
    markets = configured_market_keys(environ)
    for problem in routing.route_problems(environ, markets):
        settings.problem(problem)
    # A market's reference provider (MARKET_DATA_REFERENCE_<MARKET>, providers/reference.py)
    # is served like a route: the same resource when it serves both.
    for problem in reference.reference_problems(environ, markets):
        settings.problem(problem)
    # Twelve Data's /splits and /dividends (TWELVEDATA_CORPORATE_ACTIONS) go through the same
    # resource as its bars: checked here, where the markets' choices are.
    for problem in corporate_actions.problems(environ, markets):
        settings.problem(problem)
    chosen = [(r.resource_key, r.provider, r.variable) for r in routing.routes(environ, markets)]
    chosen += [
        (r.resource_key, r.provider, r.variable) for r in reference.references(environ, markets)
    ]
    extra: dict[str, MarketDataResource] = {}
    valid = registry.names("bars")
    for key, provider, variable in chosen:
        if key == routing.BASE_KEY or key in extra:
            continue
        if provider not in valid:
            continue  # named above
        spec = registry.get("bars", provider)
        for setting in spec.required_secrets:
            settings.require(setting.variable, f"{variable}={spec.name} needs {setting.required}")
        extra[key] = spec.resource_class()(**provider_config(spec, settings))
    return extra


def _posts(settings: EnvSettings) -> PostsResource:
    resource, config = _provider(settings, "posts")
    scorer = settings.choice("POSTS_SCORER", "vader", POSTS_SCORERS, "a scorer")
    region = settings.raw("COMPREHEND_REGION")
    if region and not _AWS_REGION.fullmatch(region):
        settings.problem(f"COMPREHEND_REGION={region!r} is not an AWS region (e.g. us-east-1)")
        region = None
    return resource(
        top_n=settings.whole("FINANCE_TOP_POSTS", 10, TOP_POSTS),
        scorer=scorer,
        comprehend_region=region,
        **config,
    )


# The providers' names and resource classes, as this package has always exported them, read
# from the registry when asked (a provider's resource module imports this package's bases, so
# importing it here at load time would be circular).
class _ProviderNames(Sequence[str]):
    """The providers of one kind, as the registry lists them when read (a provider registered
    in-process included)."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind

    def __getitem__(self, index: Any) -> Any:
        return registry.names(self.kind)[index]

    def __len__(self) -> int:
        return len(registry.names(self.kind))

    def __repr__(self) -> str:
        return repr(registry.names(self.kind))


PROVIDERS: Sequence[str] = _ProviderNames("bars")  # MARKET_DATA_PROVIDER's values
POSTS_PROVIDERS: Sequence[str] = _ProviderNames("posts")  # POSTS_PROVIDER's values


def __getattr__(name: str) -> Any:
    for spec in registry.all_specs():
        if spec.resource.rpartition(":")[2] == name:
            return spec.resource_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_stores(settings: EnvSettings) -> None:
    """The warehouse URL, MongoDB and the landing zone: their form, with passwords starred."""
    url = settings.raw("FINANCE_PG_URL")
    if url:
        try:
            postgres.check_url(url)
        except postgres.WarehouseUrlError as exc:
            settings.problem(str(exc))
    mongodb_uri = settings.raw("MONGODB_URI")
    if mongodb_uri:
        try:
            mongo.check_uri(mongodb_uri)
        except ValueError as exc:
            settings.problem(str(exc))
    try:
        mongo.check_database(settings.raw("MONGODB_DATABASE") or "finance_raw")
    except ValueError as exc:
        settings.problem(str(exc))
    landing_uri = settings.raw("FINANCE_LANDING_URI")
    if landing_uri:
        try:
            open_landing_store(landing_uri, "check")
        except (ValueError, NotImplementedError) as exc:
            settings.problem(f"FINANCE_LANDING_URI={landing_uri!r}: {exc}")
