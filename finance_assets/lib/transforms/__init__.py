"""Pure transformations over polars frames: parse payloads, clean and validate, aggregate.

No Dagster imports: the assets, the asset checks, the benchmarks and the tests all call these.
`parsing` (payloads to raw records, supersession, windows), `cleaning` (records to canonical
bars and the quarantine; the grouped clean step) and `daily` (summaries, price moves); this
module is their one import point.
"""

from finance_assets.lib.providers.base import PayloadFormatError
from finance_assets.lib.schema import RAW_RECORD_SCHEMA, conform
from finance_assets.lib.transforms.cleaning import (
    CleanResult,
    RejectedPayload,
    clean_bars,
    clean_payloads,
    record_checks,
    rejected_files,
    typed_fields,
    with_bar_times,
)
from finance_assets.lib.transforms.daily import (
    PRICE_ALERT_KEY,
    PRICE_ALERT_SCHEMA,
    daily_summary,
    detect_price_moves,
)
from finance_assets.lib.transforms.parsing import (
    PARSERS,
    ParsedPayloads,
    as_utc,
    failed_symbols,
    parse_payloads,
    payload_groups,
    rows_per_window,
    supersede,
    window_records,
)
from finance_assets.providers.twelve_data.parser import parse_twelve_data, twelve_data_errors

__all__ = [
    "PARSERS",
    "PRICE_ALERT_KEY",
    "PRICE_ALERT_SCHEMA",
    "RAW_RECORD_SCHEMA",
    "CleanResult",
    "ParsedPayloads",
    "PayloadFormatError",
    "RejectedPayload",
    "as_utc",
    "clean_bars",
    "clean_payloads",
    "conform",
    "daily_summary",
    "detect_price_moves",
    "failed_symbols",
    "parse_payloads",
    "parse_twelve_data",
    "payload_groups",
    "record_checks",
    "rejected_files",
    "rows_per_window",
    "supersede",
    "twelve_data_errors",
    "typed_fields",
    "window_records",
    "with_bar_times",
]
