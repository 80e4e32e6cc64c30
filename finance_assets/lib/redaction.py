"""One redaction for every secret the process holds: provider keys, database passwords, tokens.

- `Redactor` removes credentials from text and mappings: query-string keys (`apikey=...`),
  URL passwords (`scheme://user:***@host`, also in a URL with a typo such as
  `postgresql//user:pw@host`), libpq's `password=...`, secret-named dict keys, and every
  secret value registered with it;
- `register_secret` adds a value to the process-wide redactor and scrubs the provider and HTTP
  loggers' records against it;
- `scrub_exception` rewrites a driver's exception (ADBC, psycopg, pymongo, botocore) and its
  whole cause/context chain in place, so that what Dagster stores (the event log, the compute
  logs) never holds the secret, while the exception keeps its type;
- `RateLimited` and `parse_retry_after`: what every client of an outside service (the market
  data providers, Slack) shares when that service says "slow down", kept here with the rest of
  what those clients share so that they agree on it.

No Dagster import: the providers, the notifications, the warehouse, MongoDB and S3 code use it.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

REDACTED = "***"
# Shorter values are not registered as process-wide secrets: starring every "pw" or "k" in
# every later log line would garble them. Their URL or `password=` position is still starred.
MIN_REGISTERED_SECRET = 6

# Query-string credentials, whatever their value: `apikey=...`, `api_key=`, `token=` ...
_QUERY_SECRET = re.compile(
    r"(?i)(?<![A-Za-z0-9_])(apikey|api_key|api-key|access_token|auth_token|token"
    r"|password|passwd|sslpassword)=('[^']*'|[^&#\s'\"<>]+)"
)
# Slack tokens have a recognisable shape: masked even where nobody said they were secret.
_SLACK_TOKEN = re.compile(r"xox[abeoprs]-[A-Za-z0-9-]+")
# A token (no spaces, quotes or brackets) holding an `@`: a URL's user info may be in it.
_AT_TOKEN = re.compile(r"[^\s\"'<>()\[\]]*@[^\s\"'<>()\[\]]*")
# The scheme of a URL, also mistyped: `postgresql://`, `postgresql:/`, `postgresql//`.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*(?::/{1,2}|//)")
# What `_star_password` stars, for registering: after the scheme, from `user:` to the last `@`.
_URL_SECRET = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*(?::/{1,2}|//))?[^:/@\s]*:([^\s]*)@")
# Mapping keys whose values are secrets whatever they hold.
_SECRET_KEYS = frozenset(
    {
        "apikey",
        "api_key",
        "api-key",
        "token",
        "access_token",
        "auth_token",
        "authorization",
        "password",
        "secret",
        "x-api-key",
    }
)


class Redactor:
    """Removes credentials from text and mappings: query-string keys, URL passwords and known
    secret values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if not secret:
            return
        with self._lock:
            # The value as given and as it appears percent-encoded in a URL.
            self._secrets.update(
                {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
            )

    def text(self, value: str) -> str:
        out = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={REDACTED}", value)
        out = _AT_TOKEN.sub(_star_password, out)
        out = _SLACK_TOKEN.sub(REDACTED, out)
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in out:
                out = out.replace(secret, REDACTED)
        return out

    def __call__(self, value: Any) -> Any:
        """Redact a string, a mapping (recursively) or a list/tuple of them; other values pass."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", "replace"))
        if isinstance(value, Mapping):
            return {
                k: REDACTED if str(k).strip().lower() in _SECRET_KEYS else self(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return type(value)(self(v) for v in value)
        return value


def _star_password(match: re.Match[str]) -> str:
    """`scheme://user:***@host...`: everything between the user info's first `:` and the
    token's last `@` (a password may hold an unencoded `@` or `/`; over-redacting is cheaper
    than leaking)."""
    token = match.group(0)
    at = token.rfind("@")
    scheme = _SCHEME.search(token, 0, at)
    start = scheme.end() if scheme else 0
    colon = token.find(":", start, at)
    if colon < 0 or token[colon + 1 : at] == REDACTED or colon + 1 == at:
        return token
    return f"{token[: colon + 1]}{REDACTED}{token[at:]}"


# Every secret any client in this process holds: log records are scrubbed against all of them.
PROCESS_REDACTOR = Redactor()


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """`value` (text, URL, dict, list) without credentials: query-string keys, URL passwords,
    secret-named dict keys, the given `secrets` and every secret this process registered."""
    extra = Redactor(secrets)
    return extra(PROCESS_REDACTOR(value))


class RedactingFilter(logging.Filter):
    """Scrubs each record's final message; installed on the loggers that may see a URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logging module's to report
            return True
        cleaned = PROCESS_REDACTOR.text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()
# urllib3 logs every request line, query string included, at DEBUG; the database and S3
# drivers log connection settings at DEBUG too.
_FILTERED_LOGGERS = (
    "finance_assets.providers",
    "urllib3.connectionpool",
    "urllib3",
    "psycopg",
    "pymongo",
    "botocore",
)


def register_secret(secret: str | None) -> None:
    """Scrub `secret` from every redacted text and log line of this process from now on."""
    PROCESS_REDACTOR.add(secret)
    for name in _FILTERED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def redacting_logger(name: str) -> logging.Logger:
    """The logger `name`, its records scrubbed like the providers' (for a library that logs
    through a logger it is given, such as slack_sdk, which quotes unexpected response bodies)."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def register_url_secrets(url: str | None) -> None:
    """Register the password of a connection URL (`scheme://user:password@host/...`, or a
    libpq `password=...` string), when it is long enough to be told from ordinary text."""
    if not url:
        return
    found = [m.group(1) for m in _URL_SECRET.finditer(url)]
    found += [m.group(2).strip("'") for m in _QUERY_SECRET.finditer(url)]
    for secret in found:
        if len(secret) >= MIN_REGISTERED_SECRET:
            register_secret(secret)
            register_secret(urllib.parse.unquote(secret))


def scrub_exception(exc: BaseException, secrets: Iterable[str] = ()) -> BaseException:
    """`exc` with every credential removed from its message and notes, and from those of its
    cause and context chain, in place (the type stays: callers still catch what they caught).

    Drivers quote what they were given: libpq the whole connection string when it cannot parse
    it, pymongo and botocore an endpoint URL. Returns `exc`, for `raise scrub_exception(exc)`.
    """
    redactor = Redactor(secrets)
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(_clean(arg, redactor) for arg in current.args)
        notes = getattr(current, "__notes__", None)
        if notes:
            current.__notes__ = [_clean(note, redactor) for note in notes]
        for attribute in ("_message", "message", "msg"):  # pymongo, botocore keep copies
            value = getattr(current, attribute, None)
            if isinstance(value, str):
                with suppress(AttributeError):  # a read-only property
                    setattr(current, attribute, _clean(value, redactor))
        pending.extend(c for c in (current.__cause__, current.__context__) if c is not None)
    return exc


def _clean(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str | bytes | Mapping | list | tuple):
        return redactor(PROCESS_REDACTOR(value))
    return value


def _is_clean(exc: BaseException, redactor: Redactor) -> bool:
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        try:
            text = str(current)
        except Exception:
            return False
        if redactor(PROCESS_REDACTOR(text)) != text:
            return False
        pending.extend((current.__cause__, current.__context__))
    return True


class RedactedError(RuntimeError):
    """Stands in for a driver exception whose text could not be scrubbed in place."""


@contextmanager
def redacted_errors(secrets: Iterable[str] = ()) -> Iterator[None]:
    """Every exception raised inside leaves without credentials: scrubbed in place (same type),
    or, if its text ignores its args, replaced by a `RedactedError` with the chain cut off."""
    try:
        yield
    except Exception as exc:
        redactor = Redactor(secrets)
        scrub_exception(exc, secrets)
        if _is_clean(exc, redactor):
            raise
        raise RedactedError(f"{type(exc).__name__}: {redactor(redact(str(exc)))}") from None


# --- "slow down": shared by every client of an outside service --------------------------------


class RateLimited(Exception):
    """The service asked us to slow down (HTTP 429, or its own words in a body).

    `retry_after`: the seconds it asked us to wait, when it said. A base for each caller's own
    error hierarchy (`providers.http.RateLimited`, `notify.SendRateLimited`), so that code
    handling a rate limit catches one type whichever service answered.
    """

    retry_after: float | None = None


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date; None if absent
    or unreadable, never negative."""
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 7231 dates are GMT
        when = when.replace(tzinfo=dt.UTC)
    return max((when - now).total_seconds(), 0.0)


def retry_after_from_headers(headers: Mapping[str, Any], now: dt.datetime) -> float | None:
    """`parse_retry_after` of a plain mapping of headers: any case, a value or a list of them
    (slack_sdk keeps the response's headers so)."""
    for key, value in headers.items():
        if str(key).lower() == "retry-after":
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            return parse_retry_after(value, now)
    return None
