"""Resources per environment: one dict per environment, the same keys in each.

`FINANCE_ENV` picks the dict (`local` by default); an unknown value is an error, never a silent
fallback to shared infrastructure.
"""

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from finance_assets.defs.market.landing import LandingZoneResource, max_file_bytes_from_env
from finance_assets.lib import social
from finance_assets.lib.comprehend import comprehend_client, comprehend_scores
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
from finance_assets.lib.providers.simulated_posts import SimulatedPosts
from finance_assets.lib.providers.twelve_data import TwelveDataClient
from finance_assets.lib.providers.x_api import XSearchClient
from finance_assets.lib.providers.yahoo import DEFAULT_CALLS_PER_MINUTE, YahooClient

ENVIRONMENTS = ("local", "prod")
PROVIDERS = ("simulated", "twelve_data", "alpha_vantage", "yfinance")
POSTS_PROVIDERS = ("simulated", "x_api")
POSTS_SCORERS = ("vader", "comprehend")


class MarketDataResource(dg.ConfigurableResource):
    """Chooses the market-data provider (`MARKET_DATA_PROVIDER`) and holds its settings.

    API keys arrive as `dg.EnvVar`s: the UI shows the variable's name, never its value.
    """

    provider: str = "simulated"
    sim_seed: int = 7
    sim_fault_rate: float = 0.0
    twelvedata_api_key: str | None = None
    twelvedata_base_url: str = twelve_data.DEFAULT_BASE_URL
    twelvedata_credits_per_minute: int = twelve_data.FREE_CREDITS_PER_MINUTE
    alphavantage_api_key: str | None = None
    alphavantage_base_url: str = alpha_vantage.DEFAULT_BASE_URL
    alphavantage_calls_per_minute: int = alpha_vantage.FREE_CALLS_PER_MINUTE
    yfinance_base_url: str | None = None  # a mirror of Yahoo's hosts; unset: Yahoo itself
    yfinance_proxy: str | None = None  # may hold credentials: an EnvVar
    yfinance_calls_per_minute: int = DEFAULT_CALLS_PER_MINUTE
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
        raise ValueError(f"{variable} is not set: the provider needs an API key")
    return value


class StorageResource(dg.ConfigurableResource):
    """Where the raw zone and the lake live (for jobs that manage them, such as retention)."""

    raw_root: str
    lake_root: str


class PostsResource(dg.ConfigurableResource):
    """Chooses the posts source (`POSTS_PROVIDER`), the sentiment scorer (`POSTS_SCORER`) and
    how many top posts a day keeps.

    The X bearer token arrives as a `dg.EnvVar`: the UI shows the variable's name, never its
    value.
    """

    provider: str = "simulated"
    top_n: int = 10
    scorer: str = "vader"
    x_bearer_token: str | None = None
    x_api_base_url: str = x_api.DEFAULT_BASE_URL
    x_max_pages: int = 10
    x_max_wait_seconds: float = 900.0
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

    price_move_threshold_pct: float = 1.0


class DataQualityResource(dg.ConfigurableResource):
    """Thresholds of the asset checks."""

    max_quarantine_rate: float = 0.05


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


def _env_float(environ: Mapping[str, str], name: str, default: float) -> float:
    value = environ.get(name)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None


def warehouse_from_env(environ: Mapping[str, str] | None = None) -> WarehouseResource:
    """The warehouse outside a Dagster run (scripts, tests): the URL itself, not an EnvVar."""
    environ = os.environ if environ is None else environ
    return WarehouseResource(url=environ.get("FINANCE_PG_URL") or None, data_dir=data_dir(environ))


def _choice(
    environ: Mapping[str, str], name: str, default: str, valid: Sequence[str], what: str
) -> str:
    value = environ.get(name, default).strip().lower()
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not {what}; valid: {', '.join(valid)}")
    return value


def build_resources(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The resources of the environment `FINANCE_ENV` names."""
    environ = os.environ if environ is None else environ
    env = current_env(environ)
    root = Path(data_dir(environ))
    provider = _choice(environ, "MARKET_DATA_PROVIDER", "simulated", PROVIDERS, "a provider")
    market_data = MarketDataResource(
        provider=provider,
        sim_fault_rate=_env_float(environ, "FINANCE_SIM_FAULT_RATE", 0.0),
        twelvedata_api_key=_secret(environ, "TWELVEDATA_API_KEY"),
        twelvedata_base_url=environ.get("TWELVEDATA_BASE_URL") or twelve_data.DEFAULT_BASE_URL,
        twelvedata_credits_per_minute=int(
            _env_float(
                environ, "TWELVEDATA_CREDITS_PER_MINUTE", twelve_data.FREE_CREDITS_PER_MINUTE
            )
        ),
        alphavantage_api_key=_secret(environ, "ALPHAVANTAGE_API_KEY"),
        alphavantage_base_url=environ.get("ALPHAVANTAGE_BASE_URL")
        or alpha_vantage.DEFAULT_BASE_URL,
        alphavantage_calls_per_minute=int(
            _env_float(
                environ, "ALPHAVANTAGE_CALLS_PER_MINUTE", alpha_vantage.FREE_CALLS_PER_MINUTE
            )
        ),
        yfinance_base_url=environ.get("YFINANCE_BASE_URL") or None,
        yfinance_proxy=_secret(environ, "YFINANCE_PROXY"),
        yfinance_calls_per_minute=int(
            _env_float(environ, "YFINANCE_CALLS_PER_MINUTE", DEFAULT_CALLS_PER_MINUTE)
        ),
        yfinance_cache_dir=environ.get("YFINANCE_CACHE_DIR") or None,
    )
    quality = DataQualityResource(
        max_quarantine_rate=_env_float(environ, "FINANCE_MAX_QUARANTINE_RATE", 0.05)
    )
    posts_provider = _choice(environ, "POSTS_PROVIDER", "simulated", POSTS_PROVIDERS, "a provider")
    posts_scorer = _choice(environ, "POSTS_SCORER", "vader", POSTS_SCORERS, "a scorer")
    posts = PostsResource(
        provider=posts_provider,
        top_n=int(_env_float(environ, "FINANCE_TOP_POSTS", 10)),
        scorer=posts_scorer,
        x_bearer_token=_secret(environ, "X_BEARER_TOKEN"),
        x_api_base_url=environ.get("X_API_BASE_URL") or x_api.DEFAULT_BASE_URL,
        x_max_pages=int(_env_float(environ, "X_MAX_PAGES", 10)),
        x_max_wait_seconds=_env_float(environ, "X_MAX_WAIT_SECONDS", 900.0),
        comprehend_region=environ.get("COMPREHEND_REGION") or None,
    )
    alert_settings = AlertSettingsResource(
        price_move_threshold_pct=_env_float(environ, "FINANCE_PRICE_MOVE_PCT", 1.0)
    )
    if env == "local":
        # An embedded PostgreSQL under the data folder unless a URL is given.
        warehouse = WarehouseResource(
            url=_secret(environ, "FINANCE_PG_URL"),
            data_dir=str(root),
        )
    else:
        if not environ.get("FINANCE_PG_URL"):
            raise ValueError("FINANCE_ENV=prod needs FINANCE_PG_URL (the RDS PostgreSQL URL)")
        warehouse = WarehouseResource(url=_secret(environ, "FINANCE_PG_URL"), data_dir=str(root))
    return {
        "market_data": market_data,
        "data_quality": quality,
        "alerts": alert_settings,
        "posts": posts,
        "warehouse": warehouse,
        "storage": StorageResource(raw_root=str(root / "raw"), lake_root=str(root / "lake")),
        # `s3://bucket/prefix` in production; the same sensor and ledger code either way.
        "landing_zone": LandingZoneResource(
            root=environ.get("FINANCE_LANDING_URI") or str(root / "landing"),
            max_file_bytes=max_file_bytes_from_env(environ),
        ),
        "raw_zone_io_manager": RawZoneIOManager(
            root=str(root / "raw"),
            mongodb_uri=_secret(environ, "MONGODB_URI"),
            mongodb_database=environ.get("MONGODB_DATABASE") or "finance_raw",
        ),
        "lake_io_manager": ParquetLakeIOManager(root=str(root / "lake")),
        "warehouse_io_manager": PostgresIOManager(warehouse=warehouse),
        "lake_warehouse_io_manager": LakeWarehouseIOManager(
            lake_root=str(root / "lake"), warehouse=warehouse
        ),
    }
