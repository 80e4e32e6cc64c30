"""Format "twelve_data": Twelve Data `/time_series` bodies, single-symbol or batch (what Twelve
Data and the simulated market write). Mirrors `lib/providers/twelve_data_series.py`."""

from __future__ import annotations

from bars_rules import RAW_RECORD_FIELDS, PayloadError, Record, load_json_object, raw_text

# Twelve Data answers London symbols without their suffix: (exchange code, MIC) per suffix.
EXCHANGES = {".L": ("LSE", "XLON")}


def canonical_symbol(symbol: str, exchange: str | None, mic_code: str | None) -> str:
    for suffix, (code, mic) in EXCHANGES.items():
        if (exchange == code or mic_code == mic) and not symbol.endswith(suffix):
            return symbol + suffix
    return symbol


def parse(body: bytes, payload_id: str) -> tuple[list[Record], dict[str, str]]:
    """(records, errors): errors maps symbol -> the provider's message for the symbols it
    answered with an error (they have no records)."""
    document = load_json_object(body, payload_id)
    pid = payload_id or "?"
    if "values" in document or "meta" in document or document.get("status") == "error":
        series = {str((document.get("meta") or {}).get("symbol", "")): document}
    else:
        series = document
    records: list[Record] = []
    errors: dict[str, str] = {}
    for key, item in series.items():
        if not isinstance(item, dict):
            raise PayloadError(f"payload {pid}: entry {key!r} is not an object")
        if item.get("status") == "error":
            errors[key or "?"] = f"{item.get('code', '?')}: {item.get('message', 'error')}"
            continue
        values = item.get("values")
        if not isinstance(values, list):
            raise PayloadError(f"payload {pid}: symbol {key!r} has no 'values' list")
        if values and not all(isinstance(v, dict) for v in values):
            raise PayloadError(f"payload {pid}: symbol {key!r} values are not records")
        meta = item.get("meta") or {}
        symbol = canonical_symbol(
            str(meta.get("symbol") or key), meta.get("exchange"), meta.get("mic_code")
        )
        currency = raw_text(meta.get("currency"))
        for value in values:
            fields = tuple(raw_text(value.get(name)) for name in RAW_RECORD_FIELDS)
            records.append((symbol, currency, *fields, None))
    return records, errors
