"""Raw payloads in MongoDB (optional staging beside the raw zone), idempotently.

One document per payload, `_id` = `<market>/<asset>/<payload_id>`: re-running a partition
upserts the same documents, and a re-fetch deletes the older payloads its window covers
entirely (as the raw zone does), so nothing is duplicated. The body is stored exactly as
received: its text when it is UTF-8 (every JSON or CSV provider here), else base64
(`body_encoding` says which), with what was asked for and when beside it.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable, Sequence

from pymongo import MongoClient, ReplaceOne

from finance_assets.lib.answers import answered_symbols
from finance_assets.lib.providers.base import RawPayload

COLLECTION = "raw_payloads"


class MongoRawStore:
    def __init__(self, uri: str, database: str = "finance_raw", timeout_ms: int = 5000) -> None:
        self._client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms)
        self.collection = self._client[database][COLLECTION]

    def close(self) -> None:
        self._client.close()

    def write_payloads(
        self,
        asset: Sequence[str],
        payloads: Iterable[RawPayload],
        start: dt.datetime,
        end: dt.datetime,
    ) -> int:
        """Upsert the payloads; drop older ones of the same asset inside [start, end)."""
        name = "/".join(asset)
        operations, ids, written = [], [], []
        for payload in payloads:
            written.append(payload)
            doc_id = f"{name}/{payload.payload_id}"
            ids.append(doc_id)
            operations.append(
                ReplaceOne(
                    {"_id": doc_id},
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
                        **_body(payload.body),
                    },
                    upsert=True,
                )
            )
        if operations:
            self.collection.bulk_write(operations, ordered=False)
        # Older payloads inside the window go only when the new ones answered all their
        # symbols (an error for one symbol is no answer): as in the raw zone.
        symbols = {s for payload in written for s in answered_symbols(payload)}
        candidates = self.collection.find(
            {
                "asset": name,
                "window_start": {"$gte": start.astimezone(dt.UTC)},
                "window_end": {"$lte": end.astimezone(dt.UTC)},
            },
            {"_id": 1, "symbols": 1},
        )
        stale = [
            doc["_id"]
            for doc in candidates
            if doc["_id"] not in ids and set(doc.get("symbols", [])) <= symbols
        ]
        if stale:
            self.collection.delete_many({"_id": {"$in": stale}})
        return len(operations)

    def count(self, asset: Sequence[str]) -> int:
        return self.collection.count_documents({"asset": "/".join(asset)})

    def bodies(self, asset: Sequence[str]) -> list[bytes]:
        """The stored bodies, byte for byte, in `_id` order."""
        docs = self.collection.find({"asset": "/".join(asset)}).sort("_id", 1)
        return [
            base64.b64decode(d["body"]) if d["body_encoding"] == "base64" else d["body"].encode()
            for d in docs
        ]


def _body(body: bytes) -> dict[str, str]:
    try:
        return {"body": body.decode("utf-8"), "body_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode("ascii"), "body_encoding": "base64"}
