"""Amazon Comprehend scoring against a botocore Stubber: the real client, its request and
response shapes checked against the service model, and no network.

moto (5.2) implements `detect_sentiment` but not `batch_detect_sentiment`, which this module
calls: a Stubber is the faithful stand-in here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

from finance_assets.lib import social
from finance_assets.lib.comprehend import (
    ComprehendCallError,
    ComprehendItemErrors,
    ItemError,
    comprehend_client,
    comprehend_scores,
    map_sentiment_score,
)

boto3 = pytest.importorskip("boto3", reason="boto3 is in the dev extras (Comprehend scoring)")
Stubber = pytest.importorskip("botocore.stub").Stubber


@pytest.fixture
def comprehend() -> Iterator[tuple[Any, Any]]:
    client = boto3.client(
        "comprehend",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        # Anything that got past the stubber would fail here, on this machine, not go out.
        endpoint_url="http://127.0.0.1:9",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def score(positive: float, negative: float, neutral: float, mixed: float) -> dict[str, float]:
    return {"Positive": positive, "Negative": negative, "Neutral": neutral, "Mixed": mixed}


def result(index: int, sentiment: str, **scores: float) -> dict[str, Any]:
    return {"Index": index, "Sentiment": sentiment, "SentimentScore": score(**scores)}


def neutral_results(count: int) -> list[dict[str, Any]]:
    return [
        result(i, "NEUTRAL", positive=0.1, negative=0.05, neutral=0.8, mixed=0.05)
        for i in range(count)
    ]


def test_batches_of_25_mapped_to_vaders_columns(comprehend: tuple[Any, Any]) -> None:
    client, stubber = comprehend
    texts = [f"post number {i}" for i in range(60)]
    first = neutral_results(25)
    # Results come back by Index, not necessarily in order.
    first[0], first[3] = (
        result(3, "POSITIVE", positive=0.9, negative=0.02, neutral=0.05, mixed=0.03),
        result(0, "NEGATIVE", positive=0.01, negative=0.95, neutral=0.03, mixed=0.01),
    )
    for batch, results in ((texts[:25], first), (texts[25:50], neutral_results(25))):
        stubber.add_response(
            "batch_detect_sentiment",
            {"ResultList": results, "ErrorList": []},
            {"TextList": batch, "LanguageCode": "en"},
        )
    stubber.add_response(
        "batch_detect_sentiment",
        {"ResultList": neutral_results(10), "ErrorList": []},
        {"TextList": texts[50:], "LanguageCode": "en"},
    )

    scores = comprehend_scores(texts, client)

    assert scores.schema == social.vader_scores(["fine"]).schema  # same columns, same order
    assert scores.height == 60 and scores.null_count().sum_horizontal().item() == 0
    assert scores.row(0, named=True) == pytest.approx(
        {"neg": 0.95, "neu": 0.04, "pos": 0.01, "compound": -0.94}
    )
    assert scores.row(3, named=True) == pytest.approx(
        {"neg": 0.02, "neu": 0.08, "pos": 0.9, "compound": 0.88}
    )
    assert scores.row(59, named=True) == pytest.approx(
        {"neg": 0.05, "neu": 0.85, "pos": 0.1, "compound": 0.05}
    )
    totals = scores.select(pl.sum_horizontal("neg", "neu", "pos")).to_series()
    assert totals.to_list() == pytest.approx([1.0] * 60)


def test_per_item_errors_are_reported_with_their_texts(comprehend: tuple[Any, Any]) -> None:
    client, stubber = comprehend
    texts = [f"post {i}" for i in range(30)]
    stubber.add_response(
        "batch_detect_sentiment",
        {"ResultList": neutral_results(25), "ErrorList": []},
        {"TextList": texts[:25], "LanguageCode": "en"},
    )
    second = [r for r in neutral_results(5) if r["Index"] != 3]
    stubber.add_response(
        "batch_detect_sentiment",
        {
            "ResultList": second,
            "ErrorList": [
                {
                    "Index": 3,
                    "ErrorCode": "INTERNAL_SERVER_ERROR",
                    "ErrorMessage": "Internal server error",
                }
            ],
        },
        {"TextList": texts[25:], "LanguageCode": "en"},
    )

    with pytest.raises(ComprehendItemErrors) as caught:
        comprehend_scores(texts, client)

    failure = caught.value
    # Index 3 of the second batch is text 28 of the input.
    assert failure.errors == [ItemError(28, "INTERNAL_SERVER_ERROR", "Internal server error")]
    assert "1 of 30 texts" in str(failure) and "text 28: INTERNAL_SERVER_ERROR" in str(failure)
    assert failure.scores.height == 30
    assert failure.scores.row(28) == (None, None, None, None)
    assert failure.scores.drop_nulls().height == 29


def test_on_error_null_keeps_going_and_logs(
    comprehend: tuple[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    client, stubber = comprehend
    stubber.add_response(
        "batch_detect_sentiment",
        {
            "ResultList": neutral_results(1),
            "ErrorList": [
                {"Index": 1, "ErrorCode": "TEXT_SIZE_LIMIT_EXCEEDED", "ErrorMessage": "too long"}
            ],
        },
        {"TextList": ["fine", "also fine"], "LanguageCode": "en"},
    )

    with caplog.at_level(logging.WARNING, "finance_assets.comprehend"):
        scores = comprehend_scores(["fine", "also fine"], client, on_error="null")

    assert scores.get_column("compound").to_list() == pytest.approx([0.05, None])
    assert "text 1: TEXT_SIZE_LIMIT_EXCEEDED: too long" in caplog.text


def test_a_text_in_neither_list_is_an_error_not_a_quiet_null(
    comprehend: tuple[Any, Any],
) -> None:
    client, stubber = comprehend
    stubber.add_response(
        "batch_detect_sentiment",
        {"ResultList": neutral_results(1), "ErrorList": []},
        {"TextList": ["a", "b"], "LanguageCode": "en"},
    )
    with pytest.raises(ComprehendItemErrors, match="text 1: MissingResult"):
        comprehend_scores(["a", "b"], client)


def test_empty_texts_are_not_sent_and_long_ones_are_cut(comprehend: tuple[Any, Any]) -> None:
    client, stubber = comprehend
    long = "é" * 3000  # 6,000 UTF-8 bytes: over Comprehend's 5,000 a document
    stubber.add_response(
        "batch_detect_sentiment",
        {"ResultList": neutral_results(2), "ErrorList": []},
        # 2,499 whole characters: 4,998 bytes, never half a character.
        {"TextList": ["good", "é" * 2499], "LanguageCode": "en"},
    )

    scores = comprehend_scores(["", "good", "   ", long], client)

    # Empty texts score as VADER scores them: all zeros.
    assert scores.row(0) == scores.row(2) == (0.0, 0.0, 0.0, 0.0)
    assert social.vader_scores([""]).row(0) == (0.0, 0.0, 0.0, 0.0)
    assert scores.drop_nulls().height == 4


def test_no_texts_no_call(comprehend: tuple[Any, Any]) -> None:
    client, _ = comprehend
    scores = comprehend_scores([], client)
    assert scores.is_empty() and scores.schema == social.vader_scores([]).schema


def test_a_failed_call_says_which_and_why(comprehend: tuple[Any, Any]) -> None:
    client, stubber = comprehend
    stubber.add_client_error(
        "batch_detect_sentiment",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
    )
    with pytest.raises(ComprehendCallError, match=r"ThrottlingException.*Rate exceeded"):
        comprehend_scores(["a", "b"], client)


def test_mapping_and_arguments() -> None:
    assert map_sentiment_score(score(0.2, 0.5, 0.1, 0.2)) == pytest.approx(
        {"neg": 0.5, "neu": 0.3, "pos": 0.2, "compound": -0.3}
    )
    with pytest.raises(ValueError, match="batch_size"):
        comprehend_scores(["a"], object(), batch_size=26)  # type: ignore[arg-type]


def test_comprehend_client_uses_standard_retries() -> None:
    client = comprehend_client(region_name="eu-west-2", max_attempts=4)
    assert client.meta.region_name == "eu-west-2"
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}
