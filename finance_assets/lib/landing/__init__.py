"""The landing zone: daily bars users drop as CSV files, in Yahoo Finance's export format.

`<landing root>/<market>/` holds the drops (`Date,Open,High,Low,Close,Adj Close,Volume`, the
symbol in a `Symbol` column or in the file name: `AAPL.csv`,
`yahoofinance-AAPL-20040819-20180120.csv`, `SP500_NOV2019_Hist.csv`). Beside them:
- `.processed/<name>.json`: the ledger, one marker per file name (`ledger.py`).
- `rejected/<name>` and `rejected/<name>.reason.txt`: files that cannot be ingested, and why.

One module a concern, no Dagster in any: `names` (which files are read, the symbol a name
states), `store` (a local folder or an S3 prefix behind one interface), `inspection` (the
validation that decides between a run and a rejection), `ledger`, `tick` (one sensor tick's
decisions: `scan`) and `provider` (`LandingZoneFiles`, which a landing run reads the file
through). The file format's readers are a provider's: `providers/yfinance/csv_export.py`.
"""

from finance_assets.lib.landing.inspection import (
    MAX_FILE_BYTES,
    LandingFileRejected,
    content_hash,
    inspect_file,
)
from finance_assets.lib.landing.ledger import Ledger, LedgerEntry
from finance_assets.lib.landing.location import (
    LandingStore,
    LocalLandingStore,
    S3LandingStore,
    UnsafeKey,
    open_store,
)
from finance_assets.lib.landing.names import name_problem, symbol_from_name
from finance_assets.lib.landing.provider import LandingZoneFiles
from finance_assets.lib.landing.tick import Accepted, ScanResult, scan
from finance_assets.providers.yfinance.csv_export import PROVIDER

# What the sensor, the runs and the settings check use; the rest is in the modules.
__all__ = [
    "MAX_FILE_BYTES",
    "PROVIDER",
    "Accepted",
    "LandingFileRejected",
    "LandingStore",
    "LandingZoneFiles",
    "Ledger",
    "LedgerEntry",
    "LocalLandingStore",
    "S3LandingStore",
    "ScanResult",
    "UnsafeKey",
    "content_hash",
    "inspect_file",
    "name_problem",
    "open_store",
    "scan",
    "symbol_from_name",
]
