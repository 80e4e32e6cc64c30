"""Where the raw zone and the lake live: `FINANCE_RAW_URI` and `FINANCE_LAKE_URI`, a local folder
(default `$FINANCE_DATA_DIR/raw` and `$FINANCE_DATA_DIR/lake`) or an S3 prefix
(`s3://finance-raw/raw`). `check_locations` reads and checks them when the definitions load;
`StorageResource` hands the stores to the jobs that manage the zones (retention) and to the
assets that read the lake directly (`price_moves`, the reconciliation check).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from finance_assets.lib.io.objects import S3ObjectStore, UnsafeKey, open_location
from finance_assets.lib.settings import EnvSettings

RAW_VARIABLE = "FINANCE_RAW_URI"
LAKE_VARIABLE = "FINANCE_LAKE_URI"


@dataclass(frozen=True)
class Locations:
    raw: str
    lake: str


def check_locations(settings: EnvSettings, env: str, data_dir: str | os.PathLike[str]) -> Locations:
    """The raw zone's and the lake's roots. Each must be a path or `s3://bucket[/prefix]`;
    `prod` runs on several machines, so it needs both on S3 and refuses a local path. A bad
    value is recorded on `settings` (checked with the others) and its default returned."""
    root = Path(data_dir)
    defaults = {RAW_VARIABLE: str(root / "raw"), LAKE_VARIABLE: str(root / "lake")}
    found: dict[str, str] = {}
    for name, default in defaults.items():
        value = settings.raw(name)
        found[name] = value or default
        if env == "prod" and not (value or "").startswith("s3://"):
            given = f"={value!r} is a local path" if value else " is not set"
            settings.problem(
                f"FINANCE_ENV=prod needs {name} on S3 (s3://bucket/prefix): {name}{given}, "
                "which the run workers of other machines cannot see"
            )
            continue
        if value:
            try:
                store = open_location(value)
            except (ValueError, NotImplementedError) as exc:
                settings.problem(f"{name}={value!r}: {exc}")
                found[name] = default
                continue
            if isinstance(store, S3ObjectStore) and not store.prefix:
                # The zones' folders are markets: a bucket's top level would mix them with
                # anything else the bucket holds (and retention lists it all).
                settings.problem(
                    f"{name}={value!r}: give a prefix under the bucket (s3://bucket/raw)"
                )
    return Locations(raw=found[RAW_VARIABLE], lake=found[LAKE_VARIABLE])


__all__ = [
    "LAKE_VARIABLE",
    "RAW_VARIABLE",
    "Locations",
    "UnsafeKey",
    "check_locations",
]
