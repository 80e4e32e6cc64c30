"""Yahoo Finance (`MARKET_DATA_PROVIDER=yfinance`): its chart API through yfinance's session
(`client.py`, `session.py`), no key. Yahoo's two payload shapes are parsed here: the chart
API's JSON (`parser.py`, format "yahoo_chart") and its CSV export, the files users drop in the
landing zone (`csv_export.py`, format "yahoo_csv")."""

from finance_assets.providers.spec import (
    CALLS_PER_MINUTE,
    PROXY_SCHEMES,
    Budget,
    ProviderSpec,
    Setting,
)
from finance_assets.providers.yfinance import csv_export
from finance_assets.providers.yfinance.client import DEFAULT_CALLS_PER_MINUTE
from finance_assets.providers.yfinance.parser import FORMAT, parse_yahoo_chart, parse_yahoo_events

SPEC = ProviderSpec(
    name="yfinance",
    kind="bars",
    resource="finance_assets.providers.yfinance.resource:YFinanceResource",
    description="Yahoo's chart API through yfinance (no key; an unpublished limit)",
    settings=(
        # A mirror of Yahoo's hosts; unset: Yahoo itself.
        Setting("base_url", "YFINANCE_BASE_URL", "url", None),
        # Its URL may hold a password: handed over as an EnvVar.
        Setting("proxy", "YFINANCE_PROXY", "url", None, schemes=PROXY_SCHEMES, secret=True),
        Setting(
            "calls_per_minute",
            "YFINANCE_CALLS_PER_MINUTE",
            "whole",
            DEFAULT_CALLS_PER_MINUTE,
            CALLS_PER_MINUTE,
        ),
        # yfinance's cookie cache; unset: ~/.cache/py-yfinance.
        Setting("cache_dir", "YFINANCE_CACHE_DIR", "text", None),
    ),
    formats={FORMAT: parse_yahoo_chart, csv_export.FORMAT: csv_export.parse_yahoo_csv},
    actions={FORMAT: parse_yahoo_events},
    budget=Budget("calls_per_minute", None, "Yahoo publishes no limit; 60 a minute is polite"),
    run_limit=1,
)

__all__ = ["SPEC"]
