"""The index universes shipped as package data: `FINANCE_UNIVERSE_US=sp500`,
`FINANCE_UNIVERSE_UK=ftse100`, their names, sectors and as-of dates, checked against the
constituent lists as recorded in the shared samples; the simulated market answers every symbol."""

from __future__ import annotations

import csv
import datetime as dt

import pytest

from finance_assets.lib.markets import INDEX_UNIVERSES, markets_from_env, read_universe
from finance_assets.lib.providers.base import BarRequest
from finance_assets.lib.settings import SettingsError
from finance_assets.providers.simulated_market import SimulatedMarket
from finance_assets_tests.conftest import SAMPLES


def _recorded(name: str, symbol: str, company: str, sector: str) -> dict[str, tuple[str, str]]:
    path = SAMPLES / "constituents" / name
    if not path.is_file():
        pytest.skip(f"shared samples not found at {SAMPLES}")
    with path.open(newline="", encoding="utf-8") as handle:
        return {r[symbol]: (r[company], r[sector]) for r in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def both():
    return markets_from_env({"FINANCE_UNIVERSE_US": "sp500", "FINANCE_UNIVERSE_UK": "ftse100"})


def test_the_sp500_is_shipped_with_names_sectors_and_its_date(both):
    recorded = _recorded("sp500_constituents.csv", "Symbol", "Security", "GICS Sector")
    us = both["us"]
    assert len(us.universe) == len(recorded) == 503
    assert set(us.universe) == set(recorded)
    assert "BRK.B" in us.universe and "BF.B" in us.universe  # class shares keep their dot
    for symbol, (company, sector) in recorded.items():
        assert (us.company(symbol), us.sectors[symbol]) == (company, sector)
    assert us.universe_label == f"S&P 500 as of {INDEX_UNIVERSES['sp500']['as_of']}"


def test_the_ftse100_is_shipped_with_names_and_icb_sectors(both):
    recorded = _recorded("ftse100_constituents.csv", "ticker", "company_name", "icb_sector")
    uk = both["uk"]
    assert len(uk.universe) == len(recorded) == 100
    assert set(uk.universe) == set(recorded)
    assert "BT.A.L" in uk.universe
    for symbol, (company, sector) in recorded.items():
        assert (uk.company(symbol), uk.sectors[symbol]) == (company, sector)
    assert all(symbol.endswith(".L") for symbol in uk.universe)


def test_an_index_of_another_market_or_an_unknown_name_is_refused():
    with pytest.raises(SettingsError) as caught:
        markets_from_env({"FINANCE_UNIVERSE_UK": "sp500", "FINANCE_UNIVERSE_US": "dow30"})
    text = str(caught.value)
    assert "FINANCE_UNIVERSE_UK='sp500' is an index of the us market; for uk: ftse100" in text
    assert "FINANCE_UNIVERSE_US='dow30'" in text and "a shipped index: sp500, ftse100" in text


def test_a_universe_file_brings_its_names_and_sectors(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("Ticker,Company_Name,GICS Sector\nibm,IBM,Information Technology\nKO,,\n")
    universe = read_universe(path)
    assert universe.symbols == ("IBM", "KO")
    assert universe.names == {"IBM": "IBM"} and universe.sectors == {
        "IBM": "Information Technology"
    }
    market = markets_from_env({"FINANCE_UNIVERSE_US": str(path), "FINANCE_MARKETS": "us"})["us"]
    assert market.universe_label == "mine.csv" and market.company("KO") == "KO"


@pytest.mark.parametrize("key", ["us", "uk"])
def test_the_simulated_market_answers_every_constituent(both, key):
    market = both[key]
    day = market.last_sessions(1, dt.date(2026, 11, 20))[0]
    open_, close = market.session_bounds(day)
    bars = SimulatedMarket(seed=7).bars(
        BarRequest(market, list(market.universe), "5min", open_, close)
    )
    assert set(bars["symbol"].unique()) == set(market.universe)
    assert bars.group_by("symbol").len()["len"].min() == len(market.bar_starts(open_, close))
