"""Where a market's landing files are: one interface (`LandingStore`), over a local folder
(`LocalLandingStore`) and over an S3 prefix (`S3LandingStore`, its client from
`dagster_aws.s3.S3Resource`), chosen by `open_store` from the root's scheme. The sensor, the
ledger and the runs call the same five methods on both.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from dagster_aws.s3 import S3Resource

from finance_assets.lib.redaction import (
    redact,
    redacted_errors,
    register_secret,
    register_url_secrets,
    scrub_exception,
)


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


def _check_parts(text: str, what: str = "key") -> list[str]:
    """`text`'s path segments, refused when one is empty, `.` or `..`, or holds a backslash or
    a NUL: a key means the same on both stores. (`..` and empty segments are literal names on
    S3, but tools that map keys to paths, the CLI's sync or s3fs mounts, read them as steps.)"""
    parts = text.split("/")
    for part in parts:
        if part in ("", ".", "..") or "\\" in part or "\x00" in part:
            raise UnsafeKey(f"unsafe landing-zone {what} {text!r}")
    return parts


class LocalLandingStore:
    """A market's landing folder on the local file system (or a mounted volume)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalLandingStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        path = self.root.joinpath(*_check_parts(key))
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


# Where boto3 reads an endpoint from the environment (the service's own variable first).
_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


class S3LandingStore:
    """A market's landing folder as an S3 prefix: `s3://<bucket>/<prefix>/<key>`.

    Each call is one request (a listing is one per 1,000 keys). The client is
    `dagster_aws.s3.S3Resource`'s: endpoint, region and credentials from that resource's config,
    else boto3's own chain (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` points it at MinIO,
    LocalStack or a test server; a profile; an instance role), its standard retry mode backing
    off throttling (503 SlowDown) and transient errors. Failures surface as OSError
    (FileNotFoundError for a missing key, PermissionError when access is denied), as the local
    store's do: `scan` notes a file it cannot read or move and carries on, exactly as it does on
    a local folder.
    """

    # Keys a listing request returns at most (S3's maximum); tests lower it to page.
    page_size: int = 1000

    def __init__(
        self,
        bucket: str,
        prefix: str,
        client: Any | None = None,
        *,
        s3: S3Resource | None = None,
    ) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            raise ValueError(f"{bucket!r} is not an S3 bucket name")
        prefix = prefix.strip("/")
        if prefix:
            _check_parts(prefix, "prefix")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self._client = client
        self._s3 = s3

    def __repr__(self) -> str:
        return f"S3LandingStore('s3://{self.bucket}/{self.prefix}')"

    @property
    def client(self) -> Any:
        # Built on first use, so that opening a store (every sensor tick) costs no request and
        # needs no credentials until it lists. S3Resource builds a boto3 session of its own per
        # client: boto3's default session is not thread-safe, and Dagster may evaluate several
        # sensors at once.
        if self._client is None:
            s3 = self._s3 or S3Resource()
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

    def _key(self, key: str) -> str:
        _check_parts(key)
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
        full = self._key(key)
        try:
            # A PUT replaces the object whole or not at all: no temporary object needed.
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise self._os_error(exc, key) from exc

    def move(self, source: str, target: str) -> None:
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


def open_store(root: str, market_key: str, s3: S3Resource | None = None) -> LandingStore:
    """The landing folder of one market under `root`: a path, a `file://` URI, or
    `s3://bucket[/prefix]` (the market's files under `s3://bucket/prefix/<market>/`, through
    `s3`'s client: boto3's chain when None)."""
    if not re.fullmatch(r"[a-z0-9_]+", market_key):
        raise UnsafeKey(f"market key {market_key!r} is not a folder name")
    if "://" in root:
        scheme, _, rest = root.partition("://")
        if scheme == "s3":
            bucket, _, prefix = rest.partition("/")
            prefix = prefix.strip("/")
            key = f"{prefix}/{market_key}" if prefix else market_key
            return S3LandingStore(bucket, key, s3=s3)
        if scheme != "file":
            raise NotImplementedError(
                f"landing zone {root!r}: only local folders (a path or file://) and S3 "
                "(s3://bucket/prefix) are implemented"
            )
        root = rest
    return LocalLandingStore(Path(root) / market_key)
