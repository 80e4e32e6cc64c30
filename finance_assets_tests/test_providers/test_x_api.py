"""XSearchClient against a local server speaking X API v2 `/2/tweets/search/recent`: paging,
rate limits (headers and 429s), error bodies, the 7-day window, and the token kept secret.

Nothing waits for real: the clock only moves when the client sleeps, and every sleep is recorded.
The real sample bodies and headers in ../shared/samples/x_twitter are replayed where present.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
from pytest_httpserver import HTTPServer

from finance_assets.lib import social
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.http import (
    AuthenticationFailed,
    InvalidRequest,
    QuotaExhausted,
    RateLimited,
)
from finance_assets.providers.x_api.client import (
    OutsideSearchWindow,
    XSearchClient,
)
from finance_assets_tests.test_providers.test_http import FakeTime, configured

# Shaped like a real app bearer token (percent-encoded characters included) and distinctive, so
# that finding it anywhere it should not be is unambiguous.
TOKEN = "AAAAAAAAAAAAAAAAAAAAAXq%2Bw7-SECRET-bearer%3DZk9"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PATH = "/2/tweets/search/recent"
NOW = dt.datetime(2026, 3, 2, 15, 0, 40, tzinfo=dt.UTC)
START = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)
END = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
AAPL_QUERY = "(#Apple OR $AAPL) -is:retweet lang:en"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    return FakeTime(NOW, monkeypatch)


def client(server: HTTPServer, fake: FakeTime, **kwargs: Any) -> XSearchClient:
    kwargs.setdefault("timeout", (2.0, 2.0))
    return XSearchClient(
        TOKEN, server.url_for("/").rstrip("/"), clock=fake.clock, sleep=fake.sleep, **kwargs
    )


def params(
    query: str = AAPL_QUERY,
    start: str = "2026-03-02T14:00:00Z",
    end: str = "2026-03-02T15:00:00Z",
    **extra: str,
) -> dict[str, str]:
    """The exact query string every search request must carry."""
    return {
        "query": query,
        "tweet.fields": "created_at,public_metrics,lang",
        "max_results": "100",
        "start_time": start,
        "end_time": end,
        **extra,
    }


def post(post_id: int, minute: int, text: str = "Apple is doing great $AAPL") -> dict[str, Any]:
    return {
        "id": str(post_id),
        "edit_history_tweet_ids": [str(post_id)],
        "created_at": f"2026-03-02T14:{minute:02d}:00.000Z",
        "lang": "en",
        "text": text,
        "public_metrics": {
            "retweet_count": 1,
            "reply_count": 0,
            "like_count": 3,
            "quote_count": 0,
            "impression_count": 90,
        },
    }


def page(posts: list[dict[str, Any]], next_token: str | None = None) -> bytes:
    """A search page as X writes it: `data` only when there are posts, `meta` always."""
    meta: dict[str, Any] = {"result_count": len(posts)}
    if posts:
        meta.update(newest_id=posts[0]["id"], oldest_id=posts[-1]["id"])
    if next_token:
        meta["next_token"] = next_token
    body: dict[str, Any] = {"data": posts} if posts else {}
    body["meta"] = meta
    # Not orjson's compact form: the payload must be these bytes, not a re-encoding.
    return json.dumps(body, indent=1).encode()


def limit_headers(remaining: int, reset: dt.datetime, limit: int = 450) -> dict[str, str]:
    return {
        "x-rate-limit-limit": str(limit),
        "x-rate-limit-remaining": str(remaining),
        "x-rate-limit-reset": str(int(reset.timestamp())),
    }


TOO_MANY = (
    b'{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}'
)


# --- paging ----------------------------------------------------------------------------------


def test_three_pages_send_next_token_and_the_exact_parameters(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    bodies = [
        page([post(30, 50), post(29, 49)], next_token="tok-page-2"),
        page([post(20, 30), post(19, 29)], next_token="tok-page-3"),
        page([post(10, 5)]),
    ]
    for extra, body in zip(
        [{}, {"next_token": "tok-page-2"}, {"next_token": "tok-page-3"}], bodies, strict=True
    ):
        httpserver.expect_ordered_request(
            PATH, method="GET", query_string=params(**extra), headers=AUTH
        ).respond_with_data(body, content_type="application/json; charset=utf-8")

    payloads = client(httpserver, fake).fetch_posts(us, ["AAPL"], START, END)

    httpserver.check_assertions()
    assert len(httpserver.log) == 3
    assert [p.body for p in payloads] == bodies  # exactly as received
    assert [p.batch for p in payloads] == [0, 1, 2]
    assert [p.request.get("next_token") for p in payloads] == [None, "tok-page-2", "tok-page-3"]
    first = payloads[0]
    assert (first.provider, first.format, first.interval, first.symbols) == (
        "x_api",
        "x_search",
        "1hour",
        ("AAPL",),
    )
    assert (first.window_start, first.window_end, first.fetched_at) == (START, END, NOW)
    assert first.content_type == "application/json; charset=utf-8"
    assert first.request["query"] == AAPL_QUERY and first.request["page"] == "0"
    assert len({p.payload_id for p in payloads}) == 3
    assert social.parse_post_payloads(payloads).get_column("post_id").to_list() == [
        "30",
        "29",
        "20",
        "19",
        "10",
    ]
    assert fake.sleeps == []


def test_a_post_repeated_across_two_pages_counts_once(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    # New posts arriving between page requests shift the pages: the last of page 1 comes again.
    httpserver.expect_ordered_request(PATH, query_string=params()).respond_with_data(
        page([post(3, 40), post(2, 30)], next_token="t2"), content_type="application/json"
    )
    httpserver.expect_ordered_request(PATH, query_string=params(next_token="t2")).respond_with_data(
        page([post(2, 30), post(1, 10)]), content_type="application/json"
    )

    payloads = client(httpserver, fake).fetch_posts(us, ["AAPL"], START, END)

    assert len(payloads) == 2
    posts = social.parse_post_payloads(payloads)
    assert posts.get_column("post_id").to_list() == ["3", "2", "1"]
    assert social.score_posts(posts).height == 3


def test_each_company_is_searched_with_its_own_query(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    httpserver.expect_ordered_request(PATH, query_string=params()).respond_with_data(
        page([post(1, 1)]), content_type="application/json"
    )
    httpserver.expect_ordered_request(
        PATH, query_string=params("(#Microsoft OR $MSFT) -is:retweet lang:en")
    ).respond_with_data(page([post(1, 1), post(2, 2)]), content_type="application/json")

    payloads = client(httpserver, fake).fetch_posts(us, ["AAPL", "MSFT", "AAPL"], START, END)

    assert [(p.symbols, p.batch) for p in payloads] == [(("AAPL",), 0), (("MSFT",), 1)]
    posts = social.parse_post_payloads(payloads)
    # The same post about two companies counts for each.
    assert sorted(posts.select("post_id", "symbol").rows()) == [
        ("1", "AAPL"),
        ("1", "MSFT"),
        ("2", "MSFT"),
    ]


def test_page_cap_stops_and_says_posts_are_missing(
    httpserver: HTTPServer, us: Market, fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_ordered_request(PATH, query_string=params()).respond_with_data(
        page([post(2, 20)], next_token="t2"), content_type="application/json"
    )
    httpserver.expect_ordered_request(PATH, query_string=params(next_token="t2")).respond_with_data(
        page([post(1, 10)], next_token="t3"), content_type="application/json"
    )

    with caplog.at_level(logging.WARNING, "finance_assets.providers"):
        payloads = client(httpserver, fake, max_pages=2).fetch_posts(us, ["AAPL"], START, END)

    assert len(payloads) == 2 and len(httpserver.log) == 2
    assert "max_pages=2" in caplog.text and "AAPL" in caplog.text


def test_empty_result_is_one_payload_without_posts(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    body = b'{"meta":{"result_count":0}}'
    httpserver.expect_request(PATH, query_string=params(), headers=AUTH).respond_with_data(
        body, content_type="application/json"
    )

    payloads = client(httpserver, fake).fetch_posts(us, ["AAPL"], START, END)

    assert [p.body for p in payloads] == [body]
    posts = social.parse_post_payloads(payloads)
    assert posts.is_empty() and posts.schema == social.POST_SCHEMA
    assert social.score_posts(posts).is_empty()


# --- rate limits -----------------------------------------------------------------------------


def test_429_with_rate_limit_headers_waits_until_the_reset_then_succeeds(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    reset = NOW + dt.timedelta(seconds=120)
    httpserver.expect_ordered_request(PATH, query_string=params()).respond_with_data(
        TOO_MANY, status=429, headers=limit_headers(0, reset), content_type="application/json"
    )
    body = page([post(1, 10)])
    httpserver.expect_ordered_request(PATH, query_string=params()).respond_with_data(
        body,
        headers=limit_headers(449, reset + dt.timedelta(minutes=15)),
        content_type="application/json",
    )

    x = client(httpserver, fake)
    payloads = x.fetch_posts(us, ["AAPL"], START, END)

    assert [p.body for p in payloads] == [body]
    assert len(httpserver.log) == 2
    assert fake.sleeps == [121.0]  # until the reset, and a second to be sure it turned
    assert x.rate_limits["x-rate-limit"].remaining == 449


def test_429_without_headers_backs_off_then_succeeds(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    httpserver.expect_ordered_request(PATH).respond_with_data(TOO_MANY, status=429)
    httpserver.expect_ordered_request(PATH).respond_with_data(
        page([]), content_type="application/json"
    )

    client(httpserver, fake).fetch_posts(us, ["AAPL"], START, END)

    assert len(httpserver.log) == 2
    [wait] = fake.sleeps
    assert 0 <= wait <= 1.0  # first backoff: full jitter within 1 s


def test_429_whose_reset_is_beyond_the_max_wait_fails_at_once_naming_it(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    reset = NOW + dt.timedelta(seconds=1800)
    httpserver.expect_request(PATH).respond_with_data(
        TOO_MANY, status=429, headers=limit_headers(0, reset)
    )

    with pytest.raises(RateLimited) as caught:
        client(httpserver, fake, max_wait_seconds=600).fetch_posts(us, ["AAPL"], START, END)

    assert len(httpserver.log) == 1 and fake.sleeps == []
    message = str(caught.value)
    assert "2026-03-02T15:30:40Z" in message and "max_wait_seconds=600" in message
    assert "Too Many Requests" in message and "AAPL" in message


def test_monthly_usage_cap_is_quota_exhausted_not_retried(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    body = {
        "account_id": 1234567890,
        "product_name": "standard-basic",
        "title": "UsageCapExceeded",
        "period": "Monthly",
        "scope": "Product",
        "detail": "Usage cap exceeded: Monthly product cap",
        "type": "https://api.twitter.com/2/problems/usage-capped",
    }
    httpserver.expect_request(PATH).respond_with_data(
        orjson.dumps(body), status=429, content_type="application/json"
    )

    with pytest.raises(QuotaExhausted, match="Monthly product cap"):
        client(httpserver, fake).fetch_posts(us, ["AAPL"], START, END)
    assert len(httpserver.log) == 1 and fake.sleeps == []


def test_spent_limit_with_a_near_reset_waits_before_the_next_page(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    reset = NOW + dt.timedelta(seconds=300)
    httpserver.expect_ordered_request(PATH, query_string=params()).respond_with_data(
        page([post(2, 20)], next_token="t2"),
        headers=limit_headers(0, reset),
        content_type="application/json",
    )
    httpserver.expect_ordered_request(PATH, query_string=params(next_token="t2")).respond_with_data(
        page([post(1, 10)]),
        headers=limit_headers(449, reset + dt.timedelta(minutes=15)),
        content_type="application/json",
    )

    payloads = client(httpserver, fake).fetch_posts(us, ["AAPL"], START, END)

    assert len(payloads) == 2
    assert fake.sleeps == [301.0]
    # The wait came before the second request, not after a refusal.
    assert [r.args.get("next_token") for r, _ in httpserver.log] == [None, "t2"]


def test_spent_limit_with_a_far_reset_fails_before_asking_again(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    reset = NOW + dt.timedelta(seconds=2000)
    httpserver.expect_request(PATH, query_string=params()).respond_with_data(
        page([post(1, 10)]), headers=limit_headers(0, reset), content_type="application/json"
    )

    with pytest.raises(RateLimited) as caught:
        client(httpserver, fake).fetch_posts(us, ["AAPL", "MSFT"], START, END)

    assert len(httpserver.log) == 1 and fake.sleeps == []  # MSFT was never asked for
    message = str(caught.value)
    assert "resets at 2026-03-02T15:34:00Z" in message
    assert "max_wait_seconds=900" in message and "MSFT" in message
    assert caught.value.retryable is False


# --- error bodies ----------------------------------------------------------------------------


INVALID_QUERY = {
    "errors": [
        {
            "parameters": {"query": ["(#Apple OR $AAPL -is:retweet"]},
            "message": "There were errors processing your request: missing closing parenthesis "
            "(at position 1)",
        }
    ],
    "title": "Invalid Request",
    "detail": "One or more parameters to your request was invalid.",
    "type": "https://api.twitter.com/2/problems/invalid-request",
}
UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}
NOT_ENROLLED = {
    "client_id": "12345678",
    "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys "
    "and tokens from a Twitter developer App that is attached to a Project.",
    "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
    "title": "Client Forbidden",
    "required_enrollment": "Appropriate Level of API Access",
    "reason": "client-not-enrolled",
    "type": "https://api.twitter.com/2/problems/client-forbidden",
}


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (400, INVALID_QUERY, InvalidRequest, ["Invalid Request", "missing closing parenthesis"]),
        (401, UNAUTHORIZED, AuthenticationFailed, ["HTTP 401 Unauthorized", "X_BEARER_TOKEN"]),
        (403, NOT_ENROLLED, AuthenticationFailed, ["Client Forbidden", "attached to a Project"]),
    ],
    ids=["400-invalid-query", "401-unauthorized", "403-not-enrolled"],
)
def test_error_bodies_raise_typed_errors_in_xs_words_without_retrying(
    httpserver: HTTPServer,
    us: Market,
    fake: FakeTime,
    status: int,
    body: dict[str, Any],
    error: type[Exception],
    words: list[str],
) -> None:
    httpserver.expect_request(PATH).respond_with_data(
        orjson.dumps(body), status=status, content_type="application/json"
    )

    with pytest.raises(error) as caught:
        client(httpserver, fake).fetch_posts(us, ["AAPL"], START, END)

    assert len(httpserver.log) == 1 and fake.sleeps == []
    for word in [*words, "AAPL"]:
        assert word in str(caught.value)


def test_200_with_only_errors_is_an_invalid_request(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    body = {"errors": [{"title": "Invalid Request", "detail": "query is not valid"}]}
    httpserver.expect_request(PATH).respond_with_data(
        orjson.dumps(body), content_type="application/json"
    )
    with pytest.raises(InvalidRequest, match="query is not valid"):
        client(httpserver, fake).fetch_posts(us, ["AAPL"], START, END)


# --- the search window -----------------------------------------------------------------------


def test_window_older_than_seven_days_is_refused_before_any_call(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    start = NOW - dt.timedelta(days=8)
    with pytest.raises(OutsideSearchWindow, match="older than recent search reaches"):
        client(httpserver, fake).fetch_posts(us, ["AAPL"], start, start + dt.timedelta(hours=1))
    assert httpserver.log == []


def test_window_partly_older_than_seven_days_is_clipped(
    httpserver: HTTPServer, us: Market, fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    start, end = NOW - dt.timedelta(days=8), NOW - dt.timedelta(days=6)
    # 7 days back, plus the 60 s margin and the 900 s a rate-limit wait may take.
    clipped = "2026-02-23T15:16:40Z"
    httpserver.expect_request(
        PATH, query_string=params(start=clipped, end="2026-02-24T15:00:40Z")
    ).respond_with_data(page([]), content_type="application/json")

    with caplog.at_level(logging.WARNING, "finance_assets.providers"):
        [payload] = client(httpserver, fake).fetch_posts(us, ["AAPL"], start, end)

    assert payload.window_start == dt.datetime(2026, 2, 23, 15, 16, 40, tzinfo=dt.UTC)
    assert payload.window_end == end
    assert payload.request["start_time"] == clipped
    assert payload.request["requested_start"] == "2026-02-22T15:00:40Z"
    assert "clipped to 2026-02-23T15:16:40Z" in caplog.text


def test_window_ending_just_now_waits_until_x_accepts_its_end(
    httpserver: HTTPServer, us: Market
) -> None:
    fake = FakeTime(END + dt.timedelta(seconds=5))  # a partition materialised on the hour
    httpserver.expect_request(PATH, query_string=params()).respond_with_data(
        page([]), content_type="application/json"
    )

    client(httpserver, fake).fetch_posts(us, ["AAPL"], START, END)

    assert fake.sleeps == [25.0]  # until end + 30 s


def test_window_ending_in_the_future_is_refused(httpserver: HTTPServer, us: Market) -> None:
    fake = FakeTime(START + dt.timedelta(minutes=10))
    with pytest.raises(OutsideSearchWindow, match="in the future"):
        client(httpserver, fake).fetch_posts(us, ["AAPL"], START, END)
    assert httpserver.log == [] and fake.sleeps == []


# --- the token -------------------------------------------------------------------------------


def test_token_appears_in_no_log_error_or_stored_request(
    httpserver: HTTPServer, us: Market, fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    reset = NOW + dt.timedelta(seconds=60)
    httpserver.expect_ordered_request(PATH, headers=AUTH).respond_with_data(
        TOO_MANY, status=429, headers=limit_headers(0, reset)
    )
    httpserver.expect_ordered_request(PATH, headers=AUTH).respond_with_data(
        page([post(1, 10)], next_token="t2"), content_type="application/json"
    )
    # The server echoes the Authorization header back in its error body, as a proxy might.
    httpserver.expect_ordered_request(PATH, headers=AUTH).respond_with_data(
        orjson.dumps({"title": "Unauthorized", "detail": f"bad credentials: Bearer {TOKEN}"}),
        status=401,
        content_type="application/json",
    )
    x = client(httpserver, fake)

    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationFailed) as caught:
        x.fetch_posts(us, ["AAPL"], START, END)
    [received] = httpserver.log[1:2]
    assert received[0].headers["Authorization"] == f"Bearer {TOKEN}"  # it was sent
    httpserver.clear()
    httpserver.expect_request(PATH).respond_with_data(page([]), content_type="application/json")
    with caplog.at_level(logging.DEBUG):
        payloads = x.fetch_posts(us, ["AAPL"], START, END)

    secret_forms = [TOKEN, "SECRET-bearer", "Xq+w7"]  # as given, and as decoded
    seen = [
        caplog.text,
        str(caught.value),
        repr(caught.value.args),
        repr(x),
        *(json.dumps(p.request) for p in payloads),
    ]
    assert "bad credentials: Bearer ***" in str(caught.value)
    for text in seen:
        for form in secret_forms:
            assert form not in text


# --- construction ----------------------------------------------------------------------------


def test_the_environment_needs_the_token_and_gives_the_base_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def from_env(environ: dict[str, str]) -> XSearchClient:
        return configured(monkeypatch, {"POSTS_PROVIDER": "x_api", **environ}, "posts")

    with pytest.raises(ValueError, match="X_BEARER_TOKEN"):
        from_env({})
    with pytest.raises(ValueError, match="X_BEARER_TOKEN"):
        from_env({"X_BEARER_TOKEN": "  "})
    x = from_env(
        {
            "X_BEARER_TOKEN": TOKEN,
            "X_API_BASE_URL": "http://127.0.0.1:9/",
            "X_MAX_PAGES": "3",
            "X_MAX_WAIT_SECONDS": "60",
        }
    )
    assert (x.base_url, x.max_pages, x.max_wait_seconds) == ("http://127.0.0.1:9", 3, 60.0)
    for name in ("X_API_BASE_URL", "X_MAX_PAGES", "X_MAX_WAIT_SECONDS"):
        monkeypatch.delenv(name)
    assert from_env({"X_BEARER_TOKEN": TOKEN}).base_url == "https://api.twitter.com"
    assert TOKEN not in repr(x)
    with pytest.raises(ValueError, match="X_API_BASE_URL"):
        from_env({"X_BEARER_TOKEN": TOKEN, "X_API_BASE_URL": "api.twitter.com"})
    with pytest.raises(ValueError, match="max_pages"):
        XSearchClient(TOKEN, max_pages=0)


# --- the real samples ------------------------------------------------------------------------


def test_real_search_pages_and_headers_replay(
    httpserver: HTTPServer, us: Market, fake: FakeTime, samples: Path
) -> None:
    folder = samples / "x_twitter"
    first = (folder / "x_search_recent_tweets_tweepy.json").read_bytes()
    second = (folder / "x_search_recent_tweets_tweepy_2.json").read_bytes()
    recorded = orjson.loads((folder / "x_search_recent_tweets_tweepy.headers.json").read_bytes())
    headers = {k: v[0] for k, v in recorded["headers"].items() if k.lower().startswith("x-rate")}
    token = orjson.loads(first)["meta"]["next_token"]
    httpserver.expect_ordered_request(PATH, query_string=params()).respond_with_data(
        first, headers=headers, content_type=recorded["headers"]["Content-Type"][0]
    )
    httpserver.expect_ordered_request(
        PATH, query_string=params(next_token=token)
    ).respond_with_data(second, headers=headers, content_type="application/json")

    # The second page has a next_token too: the cap ends the paging.
    x = client(httpserver, fake, max_pages=2)
    payloads = x.fetch_posts(us, ["AAPL"], START, END)

    assert [p.body for p in payloads] == [first, second]
    limit = x.rate_limits["x-rate-limit"]
    assert (limit.limit, limit.remaining) == (450, 449)
    assert limit.reset == dt.datetime.fromtimestamp(1665184962, dt.UTC)
    posts = social.parse_post_payloads(payloads)
    assert posts.height == 20 and posts.get_column("post_id").n_unique() == 20


def test_real_429_body_with_headers_is_retried_after_the_reset(
    httpserver: HTTPServer, us: Market, fake: FakeTime, samples: Path
) -> None:
    body = (samples / "x_twitter" / "x_error_429_too_many_requests.json").read_bytes()
    reset = NOW + dt.timedelta(seconds=42)
    httpserver.expect_ordered_request(PATH).respond_with_data(
        body, status=429, headers=limit_headers(0, reset), content_type="application/json"
    )
    httpserver.expect_ordered_request(PATH).respond_with_data(
        page([]), content_type="application/json"
    )

    client(httpserver, fake).fetch_posts(us, ["AAPL"], START, END)

    assert fake.sleeps == [43.0] and len(httpserver.log) == 2
