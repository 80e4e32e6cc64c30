"""The landing zone: daily bars users drop as CSV files, in Yahoo Finance's export format.

`<landing root>/<market>/` holds the drops (`Date,Open,High,Low,Close,Adj Close,Volume`, the
symbol in a `Symbol` column or in the file name: `AAPL.csv`,
`yahoofinance-AAPL-20040819-20180120.csv`, `SP500_NOV2019_Hist.csv`). Beside them:
- `.processed/<name>.json`: the ledger, one marker per file name: the content hash of the
  version that was ingested (and its size and modification time, so an untouched file is
  recognised without reading it), and how many versions of that name were ingested so far.
- `rejected/<name>` and `rejected/<name>.reason.txt`: files that cannot be ingested, and why.

No Dagster here: the storage (`LandingStore`: a local folder, or an S3 prefix with the same
five calls), file-name rules, the validation that decides between a run and a rejection (over
`lib/yahoo_csv.py`, the format's readers), the ledger, one sensor tick's decisions (`scan`),
and the provider a landing run reads the file through (`LandingZoneFiles`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from finance_assets.lib.markets import Market, is_symbol
from finance_assets.lib.providers.base import Interval, ProviderError, RawPayload
from finance_assets.lib.redaction import (
    redact,
    redacted_errors,
    register_secret,
    register_url_secrets,
    scrub_exception,
)
from finance_assets.lib.yahoo_csv import RECORD_SCHEMA as RECORD_SCHEMA  # re-exported
from finance_assets.lib.yahoo_csv import canonical_symbol, summarize_yahoo_csv
from finance_assets.lib.yahoo_csv import parse_yahoo_csv as parse_yahoo_csv  # re-exported

FORMAT = "yahoo_csv"
PROVIDER = "landing_zone"
# Run tags a landing run carries: which file, and the content the sensor validated.
LANDING_FILE_TAG = "finance/landing_file"
LANDING_SHA256_TAG = "finance/landing_sha256"
PROCESSED_DIR = ".processed"
REJECTED_DIR = "rejected"
# A daily history of one symbol over 30 years is ~1 MB, 500 symbols over a year ~8 MB. The
# sensor holds a file's bytes while it inspects them (the rows it reads one at a time), so this
# bounds its memory: FINANCE_LANDING_MAX_BYTES sets another limit.
MAX_FILE_BYTES = 16 * 1024 * 1024


def too_large(size: int, limit: int) -> str:
    """The rejection reason for a file above the size limit."""
    return (
        f"{size:,} bytes: larger than the landing zone's limit of {limit:,} bytes "
        "(FINANCE_LANDING_MAX_BYTES); split the file, or raise the limit"
    )


# --- file names ------------------------------------------------------------------------------

# One path component, no leading dot (hidden, or an upload's temporary file), `.csv` only.
_NAME = re.compile(r"[A-Za-z0-9^][A-Za-z0-9 ._()=^&+-]{0,195}\.csv", re.IGNORECASE)
# Symbols follow the universes' rule (`markets.SYMBOL`): one rule for files and universes.
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


# --- storage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LandingObject:
    """A file in a market's landing folder (top level only)."""

    name: str
    size: int
    modified: dt.datetime  # UTC


class LandingStore(Protocol):
    """One market's landing folder. Keys are relative: `AAPL.csv`, `rejected/AAPL.csv`.

    A local folder implements it, and so does an S3 prefix, each call one request
    (`list_objects_v2` with `Delimiter="/"`, `get_object`, `put_object`, `copy_object` +
    `delete_object`), so the sensor and the runs do not change.
    """

    def list_files(self) -> list[LandingObject]:
        """Files directly in the folder (not in sub-folders), sorted by name."""
        ...

    def read(self, key: str) -> bytes:
        """The bytes of `key`; FileNotFoundError when absent."""
        ...

    def write(self, key: str, data: bytes) -> None:
        """Replace `key` with `data`, all or nothing."""
        ...

    def move(self, source: str, target: str) -> None:
        """Move `source` to `target`, replacing it."""
        ...

    def uri(self, key: str) -> str:
        """Where `key` lives, for lineage (never a secret)."""
        ...


class UnsafeKey(ValueError):
    """A key that would leave the landing folder (`..`, absolute, a symlink out)."""


class LocalLandingStore:
    """A market's landing folder on the local file system (or a mounted volume)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalLandingStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        for part in parts:
            if part in ("", ".", "..") or "\\" in part or "\x00" in part:
                raise UnsafeKey(f"unsafe landing-zone key {key!r}")
        path = self.root.joinpath(*parts)
        # A symlinked folder or file must not lead outside the landing folder either.
        root = self.root.resolve()
        if not path.resolve().is_relative_to(root):
            raise UnsafeKey(f"landing-zone key {key!r} resolves outside {root}")
        return path

    def list_files(self) -> list[LandingObject]:
        if not self.root.is_dir():
            return []
        found = []
        with os.scandir(self.root) as entries:
            for entry in entries:
                try:
                    # Regular files only: a symlink could point anywhere on the machine.
                    if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                        continue
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while we listed
                modified = dt.datetime.fromtimestamp(stat.st_mtime_ns / 1e9, dt.UTC)
                found.append(LandingObject(entry.name, stat.st_size, modified))
        return sorted(found, key=lambda o: o.name)

    def read(self, key: str) -> bytes:
        path = self._path(key)
        if path.is_symlink():
            raise UnsafeKey(f"landing-zone key {key!r} is a symlink")
        return path.read_bytes()

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(path)

    def move(self, source: str, target: str) -> None:
        src, dst = self._path(source), self._path(target)
        dst.parent.mkdir(parents=True, exist_ok=True)
        src.replace(dst)

    def uri(self, key: str) -> str:
        return self._path(key).resolve().as_uri()


class S3LandingStore:
    """A market's landing folder as an S3 prefix: `s3://<bucket>/<prefix>/<key>`.

    Each call is one request (a listing is one per 1,000 keys). Credentials, region and the
    endpoint come from boto3's own chain: the environment (`AWS_ENDPOINT_URL_S3`, else
    `AWS_ENDPOINT_URL`, points it at MinIO, LocalStack or a test server), a profile, or an
    instance role. Failures surface as OSError (FileNotFoundError for a missing key,
    PermissionError when access is denied), as the local store's do: `scan` notes a file it
    cannot read or move and carries on, exactly as it does on a local folder.

    boto3 is needed only here: install the `aws` extra.
    """

    # Keys a listing request returns at most (S3's maximum); tests lower it to page.
    page_size: int = 1000

    def __init__(self, bucket: str, prefix: str, client: Any | None = None) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            raise ValueError(f"{bucket!r} is not an S3 bucket name")
        prefix = prefix.strip("/")
        # The same rule as every key: `..` and empty segments are literal names on S3, but
        # tools that map keys to paths (the CLI's sync, s3fs mounts) would read them as steps.
        if prefix and any(p in ("", ".", "..") or "\\" in p for p in prefix.split("/")):
            raise UnsafeKey(f"unsafe landing-zone prefix {prefix!r}")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self._client = client

    def __repr__(self) -> str:
        return f"S3LandingStore('s3://{self.bucket}/{self.prefix}')"

    @property
    def client(self) -> Any:
        # Built on first use, so that opening a store (every sensor tick) costs no request and
        # needs no credentials until it lists.
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise ImportError(
                    "an s3:// landing zone needs boto3: pip install 'finance_assets[aws]'"
                ) from None
            # Standard retry mode backs off throttling (503 SlowDown) and transient errors;
            # total_max_attempts counts the first call too. Timeouts below the defaults (60 s)
            # keep a stalled connection from using up a sensor tick's time.
            config = Config(
                retries={"mode": "standard", "total_max_attempts": 5},
                connect_timeout=10,
                read_timeout=30,
            )
            # A session of its own: boto3's default session is not thread-safe, and Dagster
            # may evaluate several sensors at once. An endpoint URL may carry credentials
            # (`AWS_ENDPOINT_URL_S3=http://user:pw@minio:9000`), which botocore quotes.
            for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                register_secret(os.environ.get(name))
            for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
                register_url_secrets(os.environ.get(name))
            with redacted_errors():
                self._client = boto3.session.Session().client("s3", config=config)
        return self._client

    def _key(self, key: str) -> str:
        # Refused as the local store refuses them, so a key means the same thing on both.
        for part in key.split("/"):
            if part in ("", ".", "..") or "\\" in part or "\x00" in part:
                raise UnsafeKey(f"unsafe landing-zone key {key!r}")
        return self.prefix + key

    @staticmethod
    def _os_error(exc: Exception, key: str) -> OSError:
        """botocore's error as the OSError the local store would raise, both without
        credentials (botocore quotes the endpoint URL)."""
        scrub_exception(exc)
        error = getattr(exc, "response", {}).get("Error", {})
        code = str(error.get("Code", ""))
        if code in ("NoSuchKey", "404", "NotFound"):
            return FileNotFoundError(f"{key}: no such object")
        if code in ("AccessDenied", "403", "Forbidden"):
            return PermissionError(f"{key}: access denied")
        return OSError(
            f"{key}: {code or type(exc).__name__}: {redact(error.get('Message') or str(exc))}"
        )

    def list_files(self) -> list[LandingObject]:
        from botocore.exceptions import BotoCoreError, ClientError

        found = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket,
            Prefix=self.prefix,
            # Direct children only: deeper keys (rejected/, .processed/, any "sub-folder")
            # come back as CommonPrefixes, which are not files of this folder.
            Delimiter="/",
            PaginationConfig={"PageSize": self.page_size},
        )
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(self.prefix) :]
                    if not name:
                        continue  # the "folder" marker the console creates: no file
                    modified = obj["LastModified"].astimezone(dt.UTC)
                    found.append(LandingObject(name, int(obj["Size"]), modified))
        except (BotoCoreError, ClientError) as exc:
            raise self._os_error(exc, self.prefix) from exc
        return sorted(found, key=lambda o: o.name)

    def read(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        full = self._key(key)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=full)["Body"]
            try:
                return body.read()
            finally:
                body.close()
        except (BotoCoreError, ClientError) as exc:
            raise self._os_error(exc, key) from exc

    def write(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        full = self._key(key)
        try:
            # A PUT replaces the object whole or not at all: no temporary object needed.
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise self._os_error(exc, key) from exc

    def move(self, source: str, target: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        src, dst = self._key(source), self._key(target)
        try:
            # S3 has no rename. Copy first: should the delete fail, the file is in both
            # places and the next tick moves it again, rather than nowhere. (copy_object takes
            # up to 5 GB; anything larger fails here and is noted, never half moved.)
            self.client.copy_object(
                Bucket=self.bucket, Key=dst, CopySource={"Bucket": self.bucket, "Key": src}
            )
            self.client.delete_object(Bucket=self.bucket, Key=src)
        except (BotoCoreError, ClientError) as exc:
            raise self._os_error(exc, source) from exc

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


def open_store(root: str, market_key: str) -> LandingStore:
    """The landing folder of one market under `root`: a path, a `file://` URI, or
    `s3://bucket[/prefix]` (the market's files under `s3://bucket/prefix/<market>/`)."""
    if not re.fullmatch(r"[a-z0-9_]+", market_key):
        raise UnsafeKey(f"market key {market_key!r} is not a folder name")
    if "://" in root:
        scheme, _, rest = root.partition("://")
        if scheme == "s3":
            bucket, _, prefix = rest.partition("/")
            prefix = prefix.strip("/")
            return S3LandingStore(bucket, f"{prefix}/{market_key}" if prefix else market_key)
        if scheme != "file":
            raise NotImplementedError(
                f"landing zone {root!r}: only local folders (a path or file://) and S3 "
                "(s3://bucket/prefix) are implemented"
            )
        root = rest
    return LocalLandingStore(Path(root) / market_key)


def content_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# --- validation ------------------------------------------------------------------------------


class LandingFileRejected(ValueError):
    """A file that cannot be ingested; the message is the reason written beside it."""


@dataclass(frozen=True)
class Inspection:
    """What a valid file holds."""

    symbols: tuple[str, ...]
    sessions: tuple[dt.date, ...]  # sorted, distinct
    rows: int

    @property
    def first(self) -> dt.date:
        return self.sessions[0]

    @property
    def last(self) -> dt.date:
        return self.sessions[-1]


def _dates_text(days: Sequence[dt.date], limit: int = 5) -> str:
    shown = ", ".join(d.isoformat() for d in days[:limit])
    return shown + (f" and {len(days) - limit} more" if len(days) > limit else "")


def inspect_file(
    name: str,
    body: bytes,
    market: Market,
    *,
    first_day: dt.date | None = None,
    last_day: dt.date | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> Inspection:
    """Validate a dropped file for `market`; raise LandingFileRejected with the reason.

    Reads the file in one streaming pass (`summarize_yahoo_csv`): memory grows with its distinct
    dates and symbols, not its rows. A file above `max_bytes` is refused unread.

    A file is refused as a whole when it cannot be read as a Yahoo CSV, holds no rows, names
    no symbol, or has a date that is not a trading session of the market (or lies outside
    [first_day, last_day], the daily partitions). Bad values in a row (a `null` price, high <
    low) are left to the run: it quarantines those rows with their reasons and loads the rest.
    """
    if not body:
        raise LandingFileRejected("empty file (0 bytes)")
    if len(body) > max_bytes:
        raise LandingFileRejected(too_large(len(body), max_bytes))
    try:
        summary = summarize_yahoo_csv(body, f"payload {name}")
    except ValueError as exc:  # PayloadFormatError
        raise LandingFileRejected(str(exc).replace(f"payload {name}: ", "")) from None
    if not summary.rows:
        raise LandingFileRejected("no data rows (a header only)")
    if summary.rows_without_symbol == summary.rows:
        symbol = symbol_from_name(name)
        if symbol is None:
            raise LandingFileRejected(
                "no Symbol column and the file name states no symbol (name files like "
                "AAPL.csv or yahoofinance-AAPL-20040819-20180120.csv, or add a Symbol column)"
            )
        symbols: tuple[str, ...] = (symbol,)
    else:
        if summary.rows_without_symbol:
            raise LandingFileRejected(f"{summary.rows_without_symbol} row(s) have an empty Symbol")
        symbols = tuple(sorted(summary.symbols))
        bad = [s for s in symbols if not is_symbol(s)]
        if bad:
            raise LandingFileRejected(f"not symbol(s): {', '.join(repr(s) for s in bad[:5])}")
    days = list(summary.sessions)
    if first_day is not None and (early := [d for d in days if d < first_day]):
        raise LandingFileRejected(
            f"{len(early)} date(s) before the first daily partition {first_day} "
            f"({_dates_text(early)}); trim the file or move FINANCE_DAILY_START"
        )
    if last_day is not None and (late := [d for d in days if d > last_day]):
        raise LandingFileRejected(
            f"{len(late)} date(s) after the last daily partition {last_day} ({_dates_text(late)})"
        )
    sessions = set(market.sessions(days[0], days[-1]))
    closed = [d for d in days if d not in sessions]
    if closed:
        raise LandingFileRejected(
            f"{len(closed)} date(s) are not trading sessions of {market.calendar_name} "
            f"({_dates_text(closed)})"
        )
    return Inspection(symbols=symbols, sessions=summary.sessions, rows=summary.rows)


# --- the ledger ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerEntry:
    """The version of a file name that was handed to a run."""

    name: str
    sha256: str
    size: int
    modified: str  # ISO, UTC: with `size`, recognises an untouched file without reading it
    revision: int  # versions of this name ingested so far, this one included
    first: str
    last: str
    symbols: tuple[str, ...]
    rows: int
    run_key: str
    recorded_at: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LedgerEntry:
        return cls(**{**data, "symbols": tuple(data["symbols"])})

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "symbols": list(self.symbols)}


class Ledger:
    """`.processed/<name>.json` per file name: one small object each, so that no tick rewrites
    a shared file (and on S3 no read-modify-write races)."""

    def __init__(self, store: LandingStore) -> None:
        self.store = store

    @staticmethod
    def key(name: str) -> str:
        return f"{PROCESSED_DIR}/{name}.json"

    def get(self, name: str) -> LedgerEntry | None:
        try:
            return LedgerEntry.from_dict(json.loads(self.store.read(self.key(name))))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError):
            return None  # an unreadable marker: the file is judged again

    def put(self, entry: LedgerEntry) -> None:
        self.store.write(self.key(entry.name), json.dumps(entry.to_dict(), indent=1).encode())


# --- one sensor tick -------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """A file version to ingest: one run over its sessions."""

    entry: LedgerEntry
    inspection: Inspection

    @property
    def run_key(self) -> str:
        return self.entry.run_key


@dataclass
class ScanResult:
    accepted: list[Accepted] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)  # name -> reason
    ignored: dict[str, str] = field(default_factory=dict)  # name -> why it is not read
    waiting: list[str] = field(default_factory=list)  # still being written, or over the limit
    unchanged: int = 0  # processed before (or re-dropped with the same content)
    cursor: str = ""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{len(self.accepted)} new",
            f"{len(self.rejected)} rejected",
            f"{self.unchanged} unchanged",
            f"{len(self.waiting)} waiting",
            f"{len(self.ignored)} ignored",
        ]
        return ", ".join(parts)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def _load_cursor(cursor: str | None, notes: list[str]) -> tuple[list[LedgerEntry], dict[str, int]]:
    if not cursor:
        return [], {}
    try:
        state = json.loads(cursor)
        emitted = [LedgerEntry.from_dict(data) for data in state["emitted"].values()]
        return emitted, {str(k): int(v) for k, v in state["pending"].items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        # The ledger still knows every file but the last tick's; those are requested again
        # under the same run keys, which Dagster does not run twice.
        notes.append(f"unreadable cursor {cursor[:80]!r}: starting afresh")
        return [], {}


def reject(store: LandingStore, name: str, reason: str, *, now: dt.datetime, sha256: str) -> None:
    """Move a file to `rejected/` with `<name>.reason.txt` beside it (the latest rejection of a
    name replaces an earlier one)."""
    text = (
        f"{name} was rejected at {_iso(now)}\n"
        f"sha256: {sha256}\n"
        f"reason: {reason}\n"
        "Fix the file and drop it into the landing folder again.\n"
    )
    store.write(f"{REJECTED_DIR}/{name}.reason.txt", text.encode())
    store.move(name, f"{REJECTED_DIR}/{name}")


def scan(
    store: LandingStore,
    market: Market,
    cursor: str | None,
    *,
    now: dt.datetime,
    settle: dt.timedelta = dt.timedelta(seconds=10),
    max_files: int = 10,
    first_day: dt.date | None = None,
    last_day: dt.date | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> ScanResult:
    """Decide one sensor tick: which files become runs, which are rejected, which wait.

    The cursor (JSON) holds what the previous tick emitted and the sizes of files still being
    written. What the previous tick emitted is written to the ledger at the start of this one:
    Dagster stores a cursor only once the tick's runs are submitted, so a tick that failed
    half-way emits the same run keys again instead of leaving a file marked done without a run.

    A file is left for a later tick while it was modified less than `settle` ago or its size
    changed since the previous tick. At most `max_files` files are read per tick (files seen
    before and untouched are recognised from the ledger without reading them), one at a time,
    and none above `max_bytes` (rejected unread): the tick's memory is bounded by `max_bytes`.
    Every file problem is a rejection or a note, never an exception; a storage failure on the
    ledger is raised (the tick fails and is retried with the same cursor).
    """
    result = ScanResult()
    emitted_before, pending_before = _load_cursor(cursor, result.notes)
    ledger = Ledger(store)
    for entry in emitted_before:
        ledger.put(entry)
    emitted: dict[str, dict[str, Any]] = {}
    pending: dict[str, int] = {}
    read = 0
    for obj in store.list_files():
        problem = name_problem(obj.name)
        if problem:
            result.ignored[obj.name] = problem
            continue
        entry = ledger.get(obj.name)
        if entry and entry.size == obj.size and entry.modified == _iso(obj.modified):
            result.unchanged += 1
            continue
        if now - obj.modified < settle or pending_before.get(obj.name, obj.size) != obj.size:
            pending[obj.name] = obj.size
            result.waiting.append(obj.name)
            continue
        if read >= max_files:
            result.waiting.append(obj.name)
            continue
        read += 1
        if obj.size > max_bytes:
            # Refused unread: its bytes never enter the sensor's memory.
            _reject(store, result, obj.name, too_large(obj.size, max_bytes), "")
            continue
        try:
            body = store.read(obj.name)
        except (OSError, UnsafeKey) as exc:
            result.notes.append(f"{obj.name}: cannot be read now ({exc}); next tick")
            result.waiting.append(obj.name)
            continue
        sha = content_hash(body)
        if entry and entry.sha256 == sha:
            # Dropped again as it was: nothing to do, remember the new size and time.
            ledger.put(replace(entry, size=len(body), modified=_iso(obj.modified)))
            result.unchanged += 1
            continue
        try:
            inspection = inspect_file(
                obj.name, body, market, first_day=first_day, last_day=last_day, max_bytes=max_bytes
            )
        except LandingFileRejected as exc:
            _reject(store, result, obj.name, str(exc), sha)
            continue
        except Exception as exc:  # whatever the content does to a library, it is the content's
            _reject(store, result, obj.name, f"unreadable: {type(exc).__name__}: {exc}", sha)
            continue
        revision = (entry.revision if entry else 0) + 1
        new = LedgerEntry(
            name=obj.name,
            sha256=sha,
            size=len(body),
            modified=_iso(obj.modified),
            revision=revision,
            first=inspection.first.isoformat(),
            last=inspection.last.isoformat(),
            symbols=inspection.symbols,
            rows=inspection.rows,
            # The content decides the key, so Dagster drops a request it has already run;
            # the revision lets a name go back to an earlier content (A -> B -> A) and run.
            run_key=f"{market.key}-{sha}-{revision}",
            recorded_at=_iso(now),
        )
        emitted[obj.name] = new.to_dict()
        result.accepted.append(Accepted(new, inspection))
    result.cursor = json.dumps({"emitted": emitted, "pending": pending}, sort_keys=True)
    return result


def _reject(store: LandingStore, result: ScanResult, name: str, reason: str, sha: str) -> None:
    try:
        reject(store, name, reason, now=dt.datetime.now(dt.UTC), sha256=sha or "-")
    except OSError as exc:
        result.notes.append(f"{name}: rejected ({reason}) but could not be moved: {exc}")
        return
    result.rejected[name] = reason


# --- the provider a landing run reads through ------------------------------------------------


class LandingZoneFiles:
    """A BarProvider over one dropped file: the run the landing sensor started reads the file
    instead of calling the market-data provider.

    `fetch_bars` returns one payload, format "yahoo_csv", whose body is the file's bytes as
    received; its symbols are the file's (not the `symbols` asked for: a drop may hold any
    symbol). It refuses a file whose content is not the one the sensor validated (`sha256`):
    the sensor starts a new run for the new content.
    """

    name = PROVIDER

    def __init__(
        self,
        store: LandingStore,
        file_name: str,
        sha256: str | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        max_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        problem = name_problem(file_name)
        if problem:
            raise ProviderError(f"landing file {file_name!r}: {problem}")
        self.store = store
        self.file_name = file_name
        self.sha256 = sha256
        self.max_bytes = max_bytes
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def __repr__(self) -> str:
        return f"LandingZoneFiles({self.store!r}, {self.file_name!r})"

    def fetch_bars(
        self,
        market: Market,
        symbols: Sequence[str],
        interval: Interval,
        start: dt.datetime,
        end: dt.datetime,
    ) -> list[RawPayload]:
        if interval != "1day":
            raise ProviderError(f"landing-zone files hold daily bars, not {interval} ones")
        fetched_at = self._clock()
        try:
            body = self.store.read(self.file_name)
        except FileNotFoundError:
            raise ProviderError(
                f"landing file {self.store.uri(self.file_name)} is gone (rejected or removed)"
            ) from None
        sha = content_hash(body)
        if self.sha256 and sha != self.sha256:
            raise ProviderError(
                f"landing file {self.file_name} changed since the sensor validated it "
                f"(sha256 {self.sha256[:12]}.. -> {sha[:12]}..); the sensor runs the new content"
            )
        try:
            inspection = inspect_file(self.file_name, body, market, max_bytes=self.max_bytes)
        except LandingFileRejected as exc:
            raise ProviderError(f"landing file {self.file_name}: {exc}") from None
        first = start.astimezone(market.tz).date()
        last = (end - dt.timedelta(microseconds=1)).astimezone(market.tz).date()
        outside = [d for d in inspection.sessions if not first <= d <= last]
        if outside:
            # Rows outside the run would be quarantined as strays: run the file's whole range.
            raise ProviderError(
                f"landing file {self.file_name} covers {inspection.first}..{inspection.last}, "
                f"the run {first}..{last}; run it over the file's sessions"
            )
        return [
            RawPayload(
                provider=self.name,
                format=FORMAT,
                interval=interval,
                symbols=inspection.symbols,
                window_start=start,
                window_end=end,
                fetched_at=fetched_at,
                body=body,
                request={
                    "file": self.file_name,
                    "uri": self.store.uri(self.file_name),
                    "sha256": sha,
                },
                content_type="text/csv",
            )
        ]
