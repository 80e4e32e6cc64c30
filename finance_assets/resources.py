"""Resources per environment: one dict per environment, the same keys in each.

`FINANCE_ENV` picks the dict (`local` by default); an unknown value is an error, never a silent
fallback to shared infrastructure.
"""

import functools
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from finance_assets.defs.market.landing import LandingZoneResource, max_file_bytes_from_env
from finance_assets.lib import landing, social
from finance_assets.lib.comprehend import comprehend_client, comprehend_scores
from finance_assets.lib.io import mongo, postgres
from finance_assets.lib.io.locations import StorageResource, check_locations
from finance_assets.lib.io.managers import (
    LakeWarehouseIOManager,
    ParquetLakeIOManager,
    PostgresIOManager,
    RawZoneIOManager,
    WarehouseResource,
)
from finance_assets.lib.providers import SimulatedMarket, alpha_vantage, twelve_data, x_api
from finance_assets.lib.providers.alpha_vantage import AlphaVantageClient
from finance_assets.lib.providers.base import BarProvider
from finance_assets.lib.providers.http import MissingApiKey
from finance_assets.lib.providers.simulated_posts import SimulatedPosts
from finance_assets.lib.providers.twelve_data import TwelveDataClient
from finance_assets.lib.providers.x_api import XSearchClient
from finance_assets.lib.providers.yahoo import DEFAULT_CALLS_PER_MINUTE, YahooClient
from finance_assets.lib.settings import EnvSettings, NumberRange

ENVIRONMENTS = ("local", "prod")
PROVIDERS = ("simulated", "twelve_data", "alpha_vantage", "yfinance")
POSTS_PROVIDERS = ("simulated", "x_api")
POSTS_SCORERS = ("vader", "comprehend")

# The valid range of every numeric setting: the environment is checked against them when the
# definitions load, and the resources' fields declare them (a resource built in code or
# configured in the launchpad is held to the same range).
SIM_FAULT_RATE = NumberRange(0, 1, meaning="the share of simulated records corrupted")
QUARANTINE_RATE = NumberRange(0, 1, meaning="the share of received records; 0.05 is 5 %")
CALLS_PER_MINUTE = NumberRange(1, 100_000, whole=True, meaning="calls a minute the plan allows")
TOP_POSTS = NumberRange(1, 1_000, whole=True, meaning="posts kept per company and day")
X_PAGES = NumberRange(1, 100, whole=True, meaning="search pages per company and hour")
X_WAIT = NumberRange(0, 86_400, meaning="seconds to wait for a rate-limit reset")
PRICE_MOVE_PCT = NumberRange(0, 100, low_open=True, meaning="a move, in %, worth an alert")
PROXY_SCHEMES = ("http", "https", "socks4", "socks5", "socks5h")
_AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


def _bounded(default: float, valid: NumberRange, description: str) -> Any:
    """A resource field held to `valid` (pydantic checks it whenever the resource is built)."""
    bounds: dict[str, Any] = {"gt" if valid.low_open else "ge": valid.low, "le": valid.high}
    if not valid.whole:
        bounds["allow_inf_nan"] = False
    return Field(default=default, description=f"{description}; valid: {valid.text()}", **bounds)


class MarketDataResource(dg.ConfigurableResource):
    """Chooses the market-data provider (`MARKET_DATA_PROVIDER`) and holds its settings.

    API keys arrive as `dg.EnvVar`s: the UI shows the variable's name, never its value.
    """

    provider: str = "simulated"
    sim_seed: int = 7
    sim_fault_rate: float = _bounded(0.0, SIM_FAULT_RATE, "FINANCE_SIM_FAULT_RATE")
    twelvedata_api_key: str | None = None
    twelvedata_base_url: str = twelve_data.DEFAULT_BASE_URL
    twelvedata_credits_per_minute: int = _bounded(
        twelve_data.FREE_CREDITS_PER_MINUTE, CALLS_PER_MINUTE, "TWELVEDATA_CREDITS_PER_MINUTE"
    )
    alphavantage_api_key: str | None = None
    alphavantage_base_url: str = alpha_vantage.DEFAULT_BASE_URL
    alphavantage_calls_per_minute: int = _bounded(
        alpha_vantage.FREE_CALLS_PER_MINUTE, CALLS_PER_MINUTE, "ALPHAVANTAGE_CALLS_PER_MINUTE"
    )
    yfinance_base_url: str | None = None  # a mirror of Yahoo's hosts; unset: Yahoo itself
    yfinance_proxy: str | None = None  # may hold credentials: an EnvVar
    yfinance_calls_per_minute: int = _bounded(
        DEFAULT_CALLS_PER_MINUTE, CALLS_PER_MINUTE, "YFINANCE_CALLS_PER_MINUTE"
    )
    yfinance_cache_dir: str | None = None  # yfinance's cookie cache; unset: ~/.cache/py-yfinance

    def get_provider(self) -> BarProvider:
        if self.provider == "simulated":
            return SimulatedMarket(seed=self.sim_seed, fault_rate=self.sim_fault_rate)
        if self.provider == "twelve_data":
            return TwelveDataClient(
                _required_key(self.twelvedata_api_key, "TWELVEDATA_API_KEY"),
                self.twelvedata_base_url,
                credits_per_minute=self.twelvedata_credits_per_minute,
            )
        if self.provider == "alpha_vantage":
            return AlphaVantageClient(
                _required_key(self.alphavantage_api_key, "ALPHAVANTAGE_API_KEY"),
                self.alphavantage_base_url,
                calls_per_minute=self.alphavantage_calls_per_minute,
            )
        if self.provider == "yfinance":  # no key: Yahoo has none
            return YahooClient(
                base_url=self.yfinance_base_url,
                proxy=self.yfinance_proxy,
                calls_per_minute=self.yfinance_calls_per_minute,
                cache_dir=self.yfinance_cache_dir,
            )
        raise ValueError(
            f"unknown market data provider {self.provider!r}; valid: {', '.join(PROVIDERS)}"
        )


def _required_key(value: str | None, variable: str) -> str:
    if not value:
        # Typed as permanent: the step fails once, without retries (see defs/common.py).
        raise MissingApiKey(f"{variable} is not set: the provider needs an API key")
    return value


class PostsResource(dg.ConfigurableResource):
    """Chooses the posts source (`POSTS_PROVIDER`), the sentiment scorer (`POSTS_SCORER`) and
    how many top posts a day keeps.

    The X bearer token arrives as a `dg.EnvVar`: the UI shows the variable's name, never its
    value.
    """

    provider: str = "simulated"
    top_n: int = _bounded(10, TOP_POSTS, "FINANCE_TOP_POSTS")
    scorer: str = "vader"
    x_bearer_token: str | None = None
    x_api_base_url: str = x_api.DEFAULT_BASE_URL
    x_max_pages: int = _bounded(10, X_PAGES, "X_MAX_PAGES")
    x_max_wait_seconds: float = _bounded(900.0, X_WAIT, "X_MAX_WAIT_SECONDS")
    comprehend_region: str | None = None  # None: boto3's own chain (AWS_DEFAULT_REGION, profile)

    def get_source(self) -> SimulatedPosts | XSearchClient:
        if self.provider == "simulated":
            return SimulatedPosts()
        if self.provider == "x_api":
            return XSearchClient(
                _required_key(self.x_bearer_token, "X_BEARER_TOKEN"),
                self.x_api_base_url,
                max_pages=self.x_max_pages,
                max_wait_seconds=self.x_max_wait_seconds,
            )
        raise ValueError(
            f"unknown posts provider {self.provider!r}; valid: {', '.join(POSTS_PROVIDERS)}"
        )

    def get_scorer(self) -> Callable[[list[str]], pl.DataFrame]:
        """texts -> neg, neu, pos, compound per text (the columns of `social.vader_scores`)."""
        if self.scorer == "vader":
            return social.vader_scores
        if self.scorer == "comprehend":
            return functools.partial(
                comprehend_scores, client=comprehend_client(self.comprehend_region)
            )
        raise ValueError(f"unknown posts scorer {self.scorer!r}; valid: {', '.join(POSTS_SCORERS)}")


class AlertSettingsResource(dg.ConfigurableResource):
    """When a price move is worth an alert."""

    price_move_threshold_pct: float = _bounded(1.0, PRICE_MOVE_PCT, "FINANCE_PRICE_MOVE_PCT")


class DataQualityResource(dg.ConfigurableResource):
    """Thresholds of the asset checks."""

    max_quarantine_rate: float = _bounded(0.05, QUARANTINE_RATE, "FINANCE_MAX_QUARANTINE_RATE")


def current_env(environ: Mapping[str, str] | None = None) -> str:
    env = (os.environ if environ is None else environ).get("FINANCE_ENV", "local").strip().lower()
    if env not in ENVIRONMENTS:
        raise ValueError(
            f"FINANCE_ENV={env!r} is not an environment; valid: {', '.join(ENVIRONMENTS)}"
        )
    return env


def data_dir(environ: Mapping[str, str] | None = None) -> str:
    return (os.environ if environ is None else environ).get("FINANCE_DATA_DIR", "data")


def _secret(environ: Mapping[str, str], name: str) -> str | None:
    """A setting that may hold a secret.

    From the process environment it is a `dg.EnvVar` (Dagster resolves it at run time and the
    UI shows only the variable's name); from an explicit mapping (tests, scripts), the value.
    """
    if not environ.get(name):
        return None
    if environ is os.environ:
        return dg.EnvVar(name)  # type: ignore[return-value]
    return environ[name]


def warehouse_from_env(environ: Mapping[str, str] | None = None) -> WarehouseResource:
    """The warehouse outside a Dagster run (scripts, tests): the URL itself, not an EnvVar."""
    environ = os.environ if environ is None else environ
    return WarehouseResource(url=environ.get("FINANCE_PG_URL") or None, data_dir=data_dir(environ))


def build_resources(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The resources of the environment `FINANCE_ENV` names.

    Every setting is checked here, when the definitions load, against its valid range: a bad
    value (or a missing key, or a URL that is not one) fails the code location with one error
    listing each variable, its value and what is valid, rather than a run, retries later.
    """
    environ = os.environ if environ is None else environ
    env = current_env(environ)
    root = Path(data_dir(environ))
    settings = EnvSettings(environ)
    market_data = _market_data(settings)
    posts = _posts(settings)
    quality = DataQualityResource(
        max_quarantine_rate=settings.number("FINANCE_MAX_QUARANTINE_RATE", 0.05, QUARANTINE_RATE)
    )
    alert_settings = AlertSettingsResource(
        price_move_threshold_pct=settings.number("FINANCE_PRICE_MOVE_PCT", 1.0, PRICE_MOVE_PCT)
    )
    _check_stores(settings, env)
    # FINANCE_RAW_URI / FINANCE_LAKE_URI: folders under the data dir, or S3 (required in prod).
    zones = check_locations(settings, env, root)
    # Read by the schedules' factory; a typo would leave every schedule silently stopped.
    settings.choice("FINANCE_SCHEDULES", "stopped", ("running", "stopped"), "a schedule status")
    settings.check()
    # An embedded PostgreSQL under the data folder in `local` unless a URL is given.
    warehouse = WarehouseResource(url=_secret(environ, "FINANCE_PG_URL"), data_dir=str(root))
    return {
        "market_data": market_data,
        "data_quality": quality,
        "alerts": alert_settings,
        "posts": posts,
        "warehouse": warehouse,
        "storage": StorageResource(raw_root=zones.raw, lake_root=zones.lake),
        # `s3://bucket/prefix` in production; the same sensor and ledger code either way.
        "landing_zone": LandingZoneResource(
            root=environ.get("FINANCE_LANDING_URI") or str(root / "landing"),
            max_file_bytes=max_file_bytes_from_env(environ),
        ),
        "raw_zone_io_manager": RawZoneIOManager(
            root=zones.raw,
            mongodb_uri=_secret(environ, "MONGODB_URI"),
            mongodb_database=environ.get("MONGODB_DATABASE") or "finance_raw",
        ),
        "lake_io_manager": ParquetLakeIOManager(root=zones.lake),
        "warehouse_io_manager": PostgresIOManager(warehouse=warehouse),
        "lake_warehouse_io_manager": LakeWarehouseIOManager(
            lake_root=zones.lake, warehouse=warehouse
        ),
    }


def _market_data(settings: EnvSettings) -> MarketDataResource:
    environ = settings.environ
    provider = settings.choice("MARKET_DATA_PROVIDER", "simulated", PROVIDERS, "a provider")
    if provider == "twelve_data":
        settings.require("TWELVEDATA_API_KEY", "MARKET_DATA_PROVIDER=twelve_data needs its key")
    if provider == "alpha_vantage":
        settings.require("ALPHAVANTAGE_API_KEY", "MARKET_DATA_PROVIDER=alpha_vantage needs its key")
    return MarketDataResource(
        provider=provider,
        sim_fault_rate=settings.number("FINANCE_SIM_FAULT_RATE", 0.0, SIM_FAULT_RATE),
        twelvedata_api_key=_secret(environ, "TWELVEDATA_API_KEY"),
        twelvedata_base_url=settings.url("TWELVEDATA_BASE_URL", twelve_data.DEFAULT_BASE_URL),
        twelvedata_credits_per_minute=settings.whole(
            "TWELVEDATA_CREDITS_PER_MINUTE", twelve_data.FREE_CREDITS_PER_MINUTE, CALLS_PER_MINUTE
        ),
        alphavantage_api_key=_secret(environ, "ALPHAVANTAGE_API_KEY"),
        alphavantage_base_url=settings.url("ALPHAVANTAGE_BASE_URL", alpha_vantage.DEFAULT_BASE_URL),
        alphavantage_calls_per_minute=settings.whole(
            "ALPHAVANTAGE_CALLS_PER_MINUTE", alpha_vantage.FREE_CALLS_PER_MINUTE, CALLS_PER_MINUTE
        ),
        yfinance_base_url=settings.url("YFINANCE_BASE_URL", None),
        yfinance_proxy=_secret(environ, "YFINANCE_PROXY")
        if settings.url("YFINANCE_PROXY", None, PROXY_SCHEMES)
        else None,
        yfinance_calls_per_minute=settings.whole(
            "YFINANCE_CALLS_PER_MINUTE", DEFAULT_CALLS_PER_MINUTE, CALLS_PER_MINUTE
        ),
        yfinance_cache_dir=settings.raw("YFINANCE_CACHE_DIR"),
    )


def _posts(settings: EnvSettings) -> PostsResource:
    provider = settings.choice("POSTS_PROVIDER", "simulated", POSTS_PROVIDERS, "a provider")
    scorer = settings.choice("POSTS_SCORER", "vader", POSTS_SCORERS, "a scorer")
    if provider == "x_api":
        settings.require("X_BEARER_TOKEN", "POSTS_PROVIDER=x_api needs an app bearer token")
    region = settings.raw("COMPREHEND_REGION")
    if region and not _AWS_REGION.fullmatch(region):
        settings.problem(f"COMPREHEND_REGION={region!r} is not an AWS region (e.g. us-east-1)")
        region = None
    return PostsResource(
        provider=provider,
        top_n=settings.whole("FINANCE_TOP_POSTS", 10, TOP_POSTS),
        scorer=scorer,
        x_bearer_token=_secret(settings.environ, "X_BEARER_TOKEN"),
        x_api_base_url=settings.url("X_API_BASE_URL", x_api.DEFAULT_BASE_URL),
        x_max_pages=settings.whole("X_MAX_PAGES", 10, X_PAGES),
        x_max_wait_seconds=settings.number("X_MAX_WAIT_SECONDS", 900.0, X_WAIT),
        comprehend_region=region,
    )


def _check_stores(settings: EnvSettings, env: str) -> None:
    """The warehouse URL, MongoDB and the landing zone: their form, with passwords starred."""
    url = settings.raw("FINANCE_PG_URL")
    if url:
        try:
            postgres.check_url(url)
        except postgres.WarehouseUrlError as exc:
            settings.problem(str(exc))
    elif env == "prod":
        settings.problem("FINANCE_ENV=prod needs FINANCE_PG_URL (the RDS PostgreSQL URL)")
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
            landing.open_store(landing_uri, "check")
        except (ValueError, NotImplementedError) as exc:
            settings.problem(f"FINANCE_LANDING_URI={landing_uri!r}: {exc}")
