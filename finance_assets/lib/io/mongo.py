"""Raw payloads in MongoDB (optional staging beside the raw zone), idempotently.

One document per payload, `_id` = `<market>/<asset>/<payload_id>`: re-running a partition
upserts the same documents, and a re-fetch deletes the older payloads its window covers
entirely (as the raw zone does), so nothing is duplicated. The body is stored exactly as
received: its text when it is UTF-8 (every JSON or CSV provider here), else base64
(`body_encoding` says which), with what was asked for and when beside it.

MongoDB refuses a document over 16 MiB, and a provider's answer can be larger: Twelve Data's
batch of 120 symbols × 20 days of 5-minute bars is ~23 MB of JSON. A body over
`MAX_PLAIN_BODY` is stored gzip-compressed as BSON binary (`body_encoding` "gzip"; JSON shrinks
about tenfold), and one that is still too large is refused with its size, never truncated.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from finance_assets.lib.answers import answered_symbols, supersedes
from finance_assets.lib.providers.base import RawPayload
from finance_assets.lib.redaction import redact, redacted_errors, register_url_secrets

if TYPE_CHECKING:
    # pymongo is imported where a URI is checked or a client opened (~0.1 s of every load of
    # the code location otherwise, which opens none).
    from bson import Binary
    from pymongo import MongoClient

COLLECTION = "raw_payloads"
# MongoDB's largest document (maxBsonObjectSize); the envelope beside the body needs little.
MAX_DOCUMENT = 16 * 1024 * 1024
ENVELOPE_MARGIN = 256 * 1024
# Bodies up to this size are kept as text, readable in any MongoDB client.
MAX_PLAIN_BODY = 8 * 1024 * 1024
URI_VARIABLE = "MONGODB_URI"
# MongoDB's rules for a database name: no /\. "$ or NUL, under 64 bytes.
_DATABASE_NAME = re.compile(r'[^/\\. "$\x00]{1,63}')


def check_uri(uri: str, variable: str = URI_VARIABLE) -> str:
    """`uri` when pymongo can read it, else a ValueError naming `variable` with the password
    starred. The password is registered for redaction first. (A `mongodb+srv://` URI is only
    checked for its form: reading it further is a DNS lookup.)"""
    register_url_secrets(uri)
    if not uri.startswith(("mongodb://", "mongodb+srv://")):
        raise ValueError(
            f"{variable}={redact(uri)!r} is not a MongoDB URI: it must begin with 'mongodb://' "
            "or 'mongodb+srv://'"
        )
    if uri.startswith("mongodb://"):
        from pymongo.uri_parser import parse_uri

        try:
            with redacted_errors():
                parse_uri(uri)
        except Exception as exc:
            raise ValueError(
                f"{variable}={redact(uri)!r} is not a MongoDB URI: {exc}; expected "
                "mongodb://user:password@host:27017/"
            ) from None
    return uri


def check_database(name: str, variable: str = "MONGODB_DATABASE") -> str:
    if not _DATABASE_NAME.fullmatch(name):
        raise ValueError(
            f"{variable}={name!r} is not a MongoDB database name: 1 to 63 characters, none of "
            '/\\. "$'
        )
    return name


class MongoRawStore:
    """Every pymongo error leaves without the URI's password (pymongo quotes hosts and, for
    some errors, the URI it was given)."""

    def __init__(self, uri: str, database: str = "finance_raw", timeout_ms: int = 5000) -> None:
        from pymongo import MongoClient

        check_uri(uri)
        with redacted_errors():
            self._client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms)
            self.collection = self._client[database][COLLECTION]

    def close(self) -> None:
        with redacted_errors():
            self._client.close()

    @redacted_errors()  # a context decorator: the whole call, as `close` has it
    def write_payloads(
        self,
        asset: Sequence[str],
        payloads: Iterable[RawPayload],
        start: dt.datetime,
        end: dt.datetime,
        documents: Sequence[dict] | None = None,
    ) -> int:
        """Upsert the payloads; drop older ones of the same asset inside [start, end).
        `documents`: their documents already built (`payload_documents`), in the same order."""
        from pymongo import ReplaceOne

        name = "/".join(asset)
        written = list(payloads)
        docs = documents if documents is not None else payload_documents(asset, written)
        ids = [doc["_id"] for doc in docs]
        operations = [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in docs]
        if operations:
            self.collection.bulk_write(operations, ordered=False)
        # Older payloads inside the window go when the new ones answered all their symbols
        # (an error for one symbol is no answer), or asked again for those they did not
        # answer either: as in the raw zone (`answers.supersedes`).
        answered = {s for payload in written for s in answered_symbols(payload)}
        asked = {s for payload in written for s in payload.symbols}
        candidates = self.collection.find(
            {
                "asset": name,
                "window_start": {"$gte": start.astimezone(dt.UTC)},
                "window_end": {"$lte": end.astimezone(dt.UTC)},
            },
            {"_id": 1, "symbols": 1},
        )

        def answered_by(doc_id: str) -> set[str]:
            # The body only when it decides: a symbol neither answered anew nor before.
            return answered_symbols(_payload(self.collection.find_one({"_id": doc_id}) or {}))

        stale = [
            doc["_id"]
            for doc in candidates
            if doc["_id"] not in ids
            and supersedes(
                doc.get("symbols", []),
                lambda doc_id=doc["_id"]: answered_by(doc_id),
                asked,
                answered,
            )
        ]
        if stale:
            self.collection.delete_many({"_id": {"$in": stale}})
        return len(operations)

    def count(self, asset: Sequence[str]) -> int:
        with redacted_errors():
            return self.collection.count_documents({"asset": "/".join(asset)})

    def bodies(self, asset: Sequence[str]) -> list[bytes]:
        """The stored bodies, byte for byte, in `_id` order."""
        with redacted_errors():
            docs = list(self.collection.find({"asset": "/".join(asset)}).sort("_id", 1))
        return [_bytes(d) for d in docs]


def payload_documents(asset: Sequence[str], payloads: Iterable[RawPayload]) -> list[dict]:
    """The documents of the payloads, bodies encoded: a body MongoDB would refuse raises here
    (with its size), so a caller that builds them first stores nothing anywhere."""
    name = "/".join(asset)
    docs = []
    for payload in payloads:
        doc_id = f"{name}/{payload.payload_id}"
        docs.append(
            {
                "_id": doc_id,
                "asset": name,
                "provider": payload.provider,
                "format": payload.format,
                "interval": payload.interval,
                "symbols": list(payload.symbols),
                "window_start": payload.window_start.astimezone(dt.UTC),
                "window_end": payload.window_end.astimezone(dt.UTC),
                "fetched_at": payload.fetched_at.astimezone(dt.UTC),
                "batch": payload.batch,
                "request": payload.request,
                "content_type": payload.content_type,
                **_body(payload.body, doc_id),
            }
        )
    return docs


def _payload(doc: dict) -> RawPayload:
    """A stored document as the payload it holds."""
    return RawPayload(
        provider=doc["provider"],
        format=doc["format"],
        interval=doc["interval"],
        symbols=tuple(doc["symbols"]),
        window_start=_utc(doc["window_start"]),
        window_end=_utc(doc["window_end"]),
        fetched_at=_utc(doc["fetched_at"]),
        body=_bytes(doc),
        batch=doc.get("batch", 0),
        request=doc.get("request", {}),
        content_type=doc.get("content_type", "application/json"),
    )


def _utc(moment: dt.datetime) -> dt.datetime:
    # pymongo hands back naive UTC datetimes unless the client is tz_aware.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _bytes(doc: dict) -> bytes:
    encoding = doc["body_encoding"]
    if encoding == "gzip":
        return gzip.decompress(bytes(doc["body"]))
    return base64.b64decode(doc["body"]) if encoding == "base64" else doc["body"].encode()


def _body(body: bytes, doc_id: str = "") -> dict[str, str | Binary]:
    if len(body) > MAX_PLAIN_BODY:
        from bson import Binary  # pymongo's, imported on use like pymongo itself

        packed = gzip.compress(body, mtime=0)  # mtime 0: the same body, the same bytes
        if len(packed) > MAX_DOCUMENT - ENVELOPE_MARGIN:
            raise ValueError(
                f"MongoDB staging: payload {doc_id or '?'} is {len(body):,} bytes, "
                f"{len(packed):,} compressed: over MongoDB's {MAX_DOCUMENT:,}-byte document "
                "limit (the raw zone keeps it; unset MONGODB_URI or fetch smaller batches)"
            )
        return {"body": Binary(packed), "body_encoding": "gzip"}
    try:
        return {"body": body.decode("utf-8"), "body_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode("ascii"), "body_encoding": "base64"}
