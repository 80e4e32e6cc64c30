"""Sentiment from Amazon Comprehend, for deployments on AWS: the same columns as VADER's.

`comprehend_scores(texts, client)` calls `batch_detect_sentiment` (LanguageCode "en") with 25
texts a call (Comprehend's batch limit) and returns one row per text, in order, with
`social.vader_scores`' columns (neg, neu, pos, compound; Float64).

Mapping of Comprehend's `SentimentScore` (four probabilities summing to 1) to VADER's columns:
- pos = Positive, neg = Negative;
- neu = Neutral + Mixed: "mixed" has no direction, and folding it into neu keeps
  pos + neu + neg = 1, as VADER's proportions are;
- compound = Positive - Negative, in [-1, 1]: the signed balance that VADER's compound is, so
  its ±0.05 cut-offs for calling a post positive or negative apply unchanged.

Texts that are empty (or only whitespace) are not sent (Comprehend refuses them) and score as
VADER scores them: all zeros. Texts longer than Comprehend's 5,000 UTF-8 bytes a document are
cut at a character boundary before that: a post that long still gets its opening scored.

Per-item failures (`ErrorList`: index, code, message) are never dropped silently: by default
every batch is scored and then `ComprehendItemErrors` is raised, listing each failed text and
holding the scores of the rest (failed rows null); with `on_error="null"` they are logged at
WARNING and their rows are null. A whole call that fails (throttled after botocore's own retries,
access denied, unsupported language) raises `ComprehendCallError` naming the batch's texts.

boto3 is only needed by whoever builds the client: install the `aws` extra (`boto3`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import polars as pl

LOG = logging.getLogger("finance_assets.comprehend")

BATCH_SIZE = 25  # batch_detect_sentiment's limit of documents a call
MAX_DOCUMENT_BYTES = 5000  # a document must be smaller than this, UTF-8 encoded
LANGUAGE_CODE = "en"
# The columns and order of social.vader_scores.
SCORE_SCHEMA: dict[str, pl.DataType] = {
    "neg": pl.Float64(),
    "neu": pl.Float64(),
    "pos": pl.Float64(),
    "compound": pl.Float64(),
}
_EMPTY_TEXT_SCORES = {"neg": 0.0, "neu": 0.0, "pos": 0.0, "compound": 0.0}  # as VADER's


class SentimentClient(Protocol):
    """What this module needs of a boto3 `comprehend` client."""

    def batch_detect_sentiment(
        self, *, TextList: list[str], LanguageCode: str
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ItemError:
    """One text Comprehend could not score: its position in the input, and why."""

    index: int
    code: str
    message: str


class ComprehendError(RuntimeError):
    """Scoring with Amazon Comprehend failed."""


class ComprehendCallError(ComprehendError):
    """A whole `batch_detect_sentiment` call failed."""


class ComprehendItemErrors(ComprehendError):
    """Some texts could not be scored; `scores` holds every row (the failed ones null)."""

    def __init__(self, errors: Sequence[ItemError], scores: pl.DataFrame) -> None:
        shown = "; ".join(f"text {e.index}: {e.code}: {e.message}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(
            f"Amazon Comprehend could not score {len(errors)} of {scores.height} texts: "
            f"{shown}{more}"
        )
        self.errors = list(errors)
        self.scores = scores


def map_sentiment_score(score: dict[str, float]) -> dict[str, float]:
    """Comprehend's SentimentScore -> VADER's columns (see the module's docstring)."""
    positive, negative = float(score["Positive"]), float(score["Negative"])
    return {
        "neg": negative,
        "neu": float(score["Neutral"]) + float(score["Mixed"]),
        "pos": positive,
        "compound": positive - negative,
    }


def truncate_utf8(text: str, max_bytes: int = MAX_DOCUMENT_BYTES - 1) -> str:
    """`text` cut to at most `max_bytes` UTF-8 bytes, never inside a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def comprehend_scores(
    texts: Iterable[str],
    client: SentimentClient,
    *,
    language_code: str = LANGUAGE_CODE,
    batch_size: int = BATCH_SIZE,
    on_error: Literal["raise", "null"] = "raise",
) -> pl.DataFrame:
    """neg, neu, pos, compound per text, in order, from `batch_detect_sentiment`."""
    if not 1 <= batch_size <= BATCH_SIZE:
        raise ValueError(f"batch_size must be within [1, {BATCH_SIZE}], got {batch_size}")
    if on_error not in ("raise", "null"):
        raise ValueError(f"on_error must be 'raise' or 'null', got {on_error!r}")
    texts = list(texts)
    rows: list[dict[str, float] | None] = [None] * len(texts)
    to_send: list[int] = []
    for index, text in enumerate(texts):
        if text is None or not str(text).strip():
            rows[index] = dict(_EMPTY_TEXT_SCORES)
        else:
            to_send.append(index)
    errors: list[ItemError] = []
    for offset in range(0, len(to_send), batch_size):
        indexes = to_send[offset : offset + batch_size]
        response = _call(client, [truncate_utf8(str(texts[i])) for i in indexes], language_code)
        answered: set[int] = set()
        for result in response.get("ResultList") or []:
            position = int(result["Index"])  # within the batch
            rows[indexes[position]] = map_sentiment_score(result["SentimentScore"])
            answered.add(position)
        for error in response.get("ErrorList") or []:
            position = int(error["Index"])
            errors.append(
                ItemError(
                    indexes[position],
                    str(error.get("ErrorCode") or "?"),
                    str(error.get("ErrorMessage") or ""),
                )
            )
            answered.add(position)
        # A text in neither list would otherwise vanish as a quiet null.
        errors.extend(
            ItemError(index, "MissingResult", "in neither ResultList nor ErrorList")
            for position, index in enumerate(indexes)
            if position not in answered
        )
    scores = pl.DataFrame([row or dict.fromkeys(SCORE_SCHEMA) for row in rows], schema=SCORE_SCHEMA)
    if errors:
        errors.sort(key=lambda e: e.index)
        failure = ComprehendItemErrors(errors, scores)
        if on_error == "raise":
            raise failure
        LOG.warning("%s; their scores are null", failure)
    return scores


def _call(client: SentimentClient, batch: list[str], language_code: str) -> dict[str, Any]:
    try:
        return client.batch_detect_sentiment(TextList=batch, LanguageCode=language_code)
    except Exception as exc:  # botocore's ClientError and its kin, without importing botocore
        response = getattr(exc, "response", None)
        error = response.get("Error") if isinstance(response, dict) else None
        code = (error or {}).get("Code") or type(exc).__name__
        raise ComprehendCallError(
            f"Amazon Comprehend batch_detect_sentiment failed for a batch of {len(batch)} "
            f"texts: {code}: {exc}"
        ) from exc


def comprehend_client(region_name: str | None = None, max_attempts: int = 5) -> Any:
    """A boto3 `comprehend` client with botocore's standard retry mode (throttling backed off).

    Credentials and region come from the usual AWS chain (environment, profile, instance role).
    """
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ImportError(
            "Amazon Comprehend scoring needs boto3: pip install 'finance_assets[aws]'"
        ) from None
    # total_max_attempts counts the first call too (botocore's max_attempts does not).
    config = Config(retries={"mode": "standard", "total_max_attempts": max_attempts})
    return boto3.client("comprehend", region_name=region_name, config=config)
