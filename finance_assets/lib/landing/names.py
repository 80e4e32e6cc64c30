"""Which file names the landing zone reads, and the symbol a name states.

One path component, no leading dot (a hidden file, or an upload's temporary one), `.csv` only;
symbols follow the universes' rule (`markets.is_symbol`), so files and universes agree.
"""

from __future__ import annotations

import re

from finance_assets.lib.markets import is_symbol
from finance_assets.providers.yfinance.csv_export import canonical_symbol

_NAME = re.compile(r"[A-Za-z0-9^][A-Za-z0-9 ._()=^&+-]{0,195}\.csv", re.IGNORECASE)
_YAHOO_NAME = re.compile(r"yahoofinance-(.+)-\d{8}-\d{8}", re.IGNORECASE)
_DOWNLOAD_COPY = re.compile(r"\s*\(\d+\)$")  # "AAPL (1).csv": a browser's second download


def name_problem(name: str) -> str | None:
    """Why `name` is not a file the landing zone reads, or None when it is one."""
    if not name:
        return "empty name"
    if any(c in name for c in "/\\\x00"):
        return "path separators are not allowed in a file name"
    if name.startswith("."):
        return "hidden file (or a file still being uploaded)"
    if not name.lower().endswith(".csv"):
        return "not a .csv file"
    if not _NAME.fullmatch(name):
        return "file name has characters outside [A-Za-z0-9 ._()=^&+-] or is too long"
    return None


def symbol_from_name(name: str) -> str | None:
    """The symbol a file name states, or None: `AAPL.csv`, `aapl (1).csv`, `BRK-B.csv`,
    `yahoofinance-AAPL-20040819-20180120.csv`, `SP500_NOV2019_Hist.csv` (before the first `_`)."""
    if name_problem(name):
        return None
    stem = _DOWNLOAD_COPY.sub("", name[: -len(".csv")])
    yahoo = _YAHOO_NAME.fullmatch(stem)
    candidates = [yahoo.group(1)] if yahoo else [stem, stem.split("_", 1)[0]]
    for candidate in candidates:
        symbol = canonical_symbol(candidate)
        if is_symbol(symbol):
            return symbol
    return None
