"""An object store over an S3 prefix: the client from `dagster_aws.s3.S3Resource`, Parquet through
polars' own object store configured from the same client."""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
from collections.abc import Sequence
from typing import Any

import polars as pl
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from finance_assets.lib.io.objects.base import (
    _BUCKET,
    _ENDPOINT_VARIABLES,
    PARQUET_OPTIONS,
    STALE_AFTER,
    TEMP_MARK,
    ObjectInfo,
    _join,
    check_parts,
)
from finance_assets.lib.io.objects.s3_resource import S3Resource
from finance_assets.lib.redaction import (
    redact,
    redacted_errors,
    register_secret,
    register_url_secrets,
    scrub_exception,
)

# --- an S3 prefix ----------------------------------------------------------------------------


class _Clients:
    """One boto3 client (and polars' storage options) shared by a store and its children, built
    on first use: opening a store costs no request and needs no credentials until it is used.
    S3Resource builds a boto3 session of its own per client: boto3's default session is not
    thread-safe, and Dagster may evaluate several sensors at once."""

    def __init__(self, s3: S3Resource | None, client: Any | None = None) -> None:
        self.s3 = s3
        self._client = client
        self._options: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def _resource(self) -> S3Resource:
        if self.s3 is None:
            self.s3 = S3Resource()
        return self.s3

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                s3 = self._resource()
                # Secrets botocore may quote in an error: an endpoint URL can carry credentials
                # (`AWS_ENDPOINT_URL_S3=http://user:pw@minio:9000`).
                for secret in (s3.aws_secret_access_key, s3.aws_session_token):
                    register_secret(secret)
                for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                    register_secret(os.environ.get(name))
                for url in (s3.endpoint_url, *map(os.environ.get, _ENDPOINT_VARIABLES)):
                    register_url_secrets(url)
                with redacted_errors():
                    self._client = s3.get_client()
            return self._client

    def storage_options(self) -> dict[str, Any]:
        """polars' object-store settings for the same endpoint, region and credentials as the
        boto3 client (a profile or an instance role included: resolved by boto3's chain)."""
        if self._options is not None:
            return self._options
        import boto3

        client = self.client()
        s3 = self._resource()
        options: dict[str, Any] = {
            "aws_region": client.meta.region_name or "us-east-1",
            "max_retries": s3.max_attempts,
        }
        endpoint = client.meta.endpoint_url
        if s3.endpoint_url or any(os.environ.get(v) for v in _ENDPOINT_VARIABLES):
            options["aws_endpoint_url"] = endpoint
            if endpoint.startswith("http://"):
                options["aws_allow_http"] = "true"
        if s3.aws_access_key_id and s3.aws_secret_access_key:
            key, secret, token = (
                s3.aws_access_key_id,
                s3.aws_secret_access_key,
                s3.aws_session_token,
            )
        else:
            with redacted_errors():
                found = boto3.session.Session(profile_name=s3.profile_name).get_credentials()
            if found is None:
                raise PermissionError("S3: no AWS credentials found (boto3's chain is empty)")
            frozen = found.get_frozen_credentials()
            key, secret, token = frozen.access_key, frozen.secret_key, frozen.token
            # Temporary credentials (a role) expire: read them again for the next call.
            if token:
                return {**options, **_keys(key, secret, token)}
        self._options = {**options, **_keys(key, secret, token)}
        return self._options


def _keys(key: str, secret: str, token: str | None) -> dict[str, str]:
    register_secret(secret)
    register_secret(token)
    out = {"aws_access_key_id": key, "aws_secret_access_key": secret}
    if token:
        out["aws_session_token"] = token
    return out


def os_error(
    exc: BaseException, what: str, bucket: str | None = None, operation: str | None = None
) -> OSError:
    """A boto3 or polars failure as the OSError a local folder would raise, without
    credentials (botocore quotes the endpoint URL), naming the S3 operation and object.

    Every botocore shape: a `ClientError` (S3 answered: its code, possibly without a body), a
    connection failure (`EndpointConnectionError`, `ConnectionClosedError`: no answer, its
    `response` is None) or a timeout (`ReadTimeoutError`, `ConnectTimeoutError`). An outage
    comes out as ConnectionError / TimeoutError (both OSErrors) that say it was one."""
    scrub_exception(exc)
    # `response` is absent on most errors and None on botocore's HTTP client errors.
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    error = error if isinstance(error, dict) else {}
    code = str(error.get("Code") or "")
    text = str(exc)
    operation = operation or getattr(exc, "operation_name", None)
    doing = f"S3 {operation}" if operation else "S3"
    if _timed_out(exc) or _lost_connection(exc):
        # No answer from S3 at all: the outage, named, with botocore's own words for it.
        kind = TimeoutError if _timed_out(exc) else ConnectionError
        reason = "timed out" if kind is TimeoutError else "could not reach S3"
        return kind(
            f"{what}: {doing} {reason} (an S3 outage or a network fault, not a refusal): "
            f"{type(exc).__name__}: {redact(text)}"
        )
    if not code:
        # polars' object store quotes S3's XML answer: take its code from there.
        found = re.search(r"<Code>([A-Za-z]+)</Code>", text)
        code = found.group(1) if found else ""
    if code == "NoSuchBucket":
        return FileNotFoundError(f"{what}: NoSuchBucket: the bucket {bucket!r} does not exist")
    if code in ("NoSuchKey", "404", "NotFound"):
        return FileNotFoundError(f"{what}: no such object")
    if code in ("AccessDenied", "403", "Forbidden"):
        return PermissionError(f"{what}: access denied")
    metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
    status = metadata.get("HTTPStatusCode") if isinstance(metadata, dict) else None
    message = error.get("Message") or (text if code or not text else text[:500])
    return OSError(
        f"{what}: {doing} failed"
        + (f" (HTTP {status})" if status else "")
        + f": {code or type(exc).__name__}: {redact(str(message))}"
    )


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, (ReadTimeoutError, ConnectTimeoutError, TimeoutError))


def _lost_connection(exc: BaseException) -> bool:
    return isinstance(
        exc, (EndpointConnectionError, ConnectionClosedError, HTTPClientError, ConnectionError)
    )


class S3ObjectStore:
    """Objects under `s3://<bucket>/<prefix>/`. Each call is one request (a listing one per
    1,000 keys, a folder's deletion one per 1,000 objects), through the client of
    `dagster_aws.s3.S3Resource`: endpoint, region and credentials from its config, else boto3's
    chain (`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, a profile, an instance role), its
    standard retry mode backing off throttling (503 SlowDown) and transient errors. A PUT
    replaces an object whole or not at all: no temporary object is needed for `write`."""

    # Keys a listing request returns at most (S3's maximum); tests lower it to page.
    page_size: int = 1000

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any | None = None,
        *,
        s3: S3Resource | None = None,
        _clients: _Clients | None = None,
    ) -> None:
        if not _BUCKET.fullmatch(bucket):
            raise ValueError(f"{bucket!r} is not an S3 bucket name")
        prefix = prefix.strip("/")
        if prefix:
            check_parts(prefix, "prefix")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self._clients = _clients or _Clients(s3, client)

    def __repr__(self) -> str:
        return f"{type(self).__name__}('s3://{self.bucket}/{self.prefix}')"

    @property
    def client(self) -> Any:
        return self._clients.client()

    def _key(self, key: str) -> str:
        check_parts(key)
        return self.prefix + key

    def _folder(self, folder: str) -> str:
        return self.prefix + (folder.strip("/") + "/" if folder else "")

    def _error(self, exc: BaseException, what: str, operation: str | None = None) -> OSError:
        return os_error(exc, what, self.bucket, operation)

    # The landing zone's tests reach the mapping under this name.
    @staticmethod
    def _os_error(exc: Exception, key: str) -> OSError:
        return os_error(exc, key)

    def child(self, *parts: str) -> S3ObjectStore:
        return S3ObjectStore(self.bucket, self.prefix + _join(*parts), _clients=self._clients)

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self._key(key) if key else self.prefix}"

    def _pages(self, prefix: str, delimiter: bool) -> Any:
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            # Direct children only: deeper keys come back as CommonPrefixes.
            args["Delimiter"] = "/"
        return self.client.get_paginator("list_objects_v2").paginate(
            **args, PaginationConfig={"PageSize": self.page_size}
        )

    def list_files(self, folder: str = "") -> list[ObjectInfo]:
        prefix = self._folder(folder)
        found = []
        try:
            for page in self._pages(prefix, delimiter=True):
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(prefix) :]
                    if not name:
                        continue  # the "folder" marker the console creates: no file
                    modified = obj["LastModified"].astimezone(dt.UTC)
                    found.append(ObjectInfo(_join(folder, name), int(obj["Size"]), modified))
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, self.uri(folder), "ListObjectsV2") from exc
        return sorted(found, key=lambda o: o.name)

    def list_folders(self, folder: str = "") -> list[str]:
        prefix = self._folder(folder)
        found = []
        try:
            for page in self._pages(prefix, delimiter=True):
                for common in page.get("CommonPrefixes", []):
                    name = common["Prefix"][len(prefix) :].rstrip("/")
                    if name:
                        found.append(name)
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, self.uri(folder), "ListObjectsV2") from exc
        return sorted(found)

    def list_tree(self, folder: str = "") -> list[ObjectInfo]:
        base = self._folder(folder)
        found = []
        try:
            for page in self._pages(base, delimiter=False):
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(self.prefix) :]
                    if name and not name.endswith("/"):
                        modified = obj["LastModified"].astimezone(dt.UTC)
                        found.append(ObjectInfo(name, int(obj["Size"]), modified))
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, self.uri(folder), "ListObjectsV2") from exc
        return sorted(found, key=lambda o: o.name)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            error = (exc.response or {}).get("Error") or {}
            if str(error.get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._error(exc, self.uri(key), "HeadObject") from exc
        except BotoCoreError as exc:
            raise self._error(exc, self.uri(key), "HeadObject") from exc
        return True

    def read(self, key: str) -> bytes:
        full = self._key(key)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=full)["Body"]
            try:
                return body.read()
            finally:
                body.close()
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, self.uri(key), "GetObject") from exc

    def write(self, key: str, data: bytes) -> None:
        full = self._key(key)
        try:
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, self.uri(key), "PutObject") from exc

    def move(self, source: str, target: str) -> None:
        src, dst = self._key(source), self._key(target)
        operation = f"CopyObject to {self.uri(target)}"
        try:
            # S3 has no rename. Copy first: should the delete fail, the object is in both
            # places rather than nowhere. (copy_object takes up to 5 GB.)
            self.client.copy_object(
                Bucket=self.bucket, Key=dst, CopySource={"Bucket": self.bucket, "Key": src}
            )
            operation = "DeleteObject"
            self.client.delete_object(Bucket=self.bucket, Key=src)
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, self.uri(source), operation) from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, self.uri(key), "DeleteObject") from exc

    def delete_folder(self, folder: str) -> int:
        if not folder:
            return 0
        prefix = self._folder(folder)
        removed = 0
        try:
            for page in self._pages(prefix, delimiter=False):
                batch = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if not batch:
                    continue
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
                if answer.get("Errors"):
                    first = answer["Errors"][0]
                    raise OSError(
                        f"{self.uri(folder)}: {len(answer['Errors'])} object(s) not deleted, "
                        f"first {first.get('Key')}: {first.get('Code')}"
                    )
                removed += len(batch)
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, self.uri(folder), "ListObjectsV2/DeleteObjects") from exc
        return removed

    def write_parquet(self, frame: pl.DataFrame, key: str) -> int:
        uri = self.uri(key)
        try:
            with redacted_errors():
                frame.write_parquet(
                    uri, storage_options=self._clients.storage_options(), **PARQUET_OPTIONS
                )
        except (BotoCoreError, ClientError, pl.exceptions.PolarsError, OSError) as exc:
            raise self._error(exc, uri, "PutObject (Parquet)") from exc
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, uri, "HeadObject") from exc
        return int(head["ContentLength"])

    def read_parquet(self, keys: Sequence[str], predicate: pl.Expr | None = None) -> pl.DataFrame:
        uris = [self.uri(k) for k in keys]
        try:
            with redacted_errors():
                scan = pl.scan_parquet(uris, storage_options=self._clients.storage_options())
                return (scan if predicate is None else scan.filter(predicate)).collect()
        except (pl.exceptions.PolarsError, OSError) as exc:
            where = uris[0] if len(uris) == 1 else self.uri()
            raise self._error(exc, where, "GetObject (Parquet)") from exc

    def remove_stale_temps(self, folder: str) -> list[str]:
        """Temporary objects older than STALE_AFTER: S3 has no PIDs to ask, and a staged
        object lives for one write (seconds)."""
        cutoff = dt.datetime.now(dt.UTC) - STALE_AFTER
        stale = [
            o.name
            for o in self.list_files(folder)
            if TEMP_MARK in o.name.rsplit("/", 1)[-1] and o.modified < cutoff
        ]
        for key in stale:
            self.delete(key)
        return stale
