import datetime as dt
import json

import dagster as dg
import polars as pl
import psycopg
import pytest

from finance_assets.lib import social
from finance_assets.providers.simulated_posts.client import SimulatedPosts

UTC = dt.UTC


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Great quarter! https://t.co/abc123 $AAPL", "Great quarter! AAPL"),
        ("@someone_1 totally agree with @other", "totally agree with"),
        ("RT @news: Apple up 3%", "Apple up 3%"),
        ("line one\nline two\tend\x07", "line one line two end"),
        ("zero\u200bwidth and bidi\u202emarks", "zerowidth and bidimarks"),
        ("love it ❤️ and ❤", "love it ❤ and ❤"),  # emoji kept, variation selector dropped
        ("#Apple to the moon 🚀🚀", "Apple to the moon 🚀🚀"),
        ("ｆｕｌｌｗｉｄｔｈ text", "fullwidth text"),
    ],
)
def test_clean_text(raw, clean):
    assert social.clean_text(raw) == clean


def test_clearly_positive_scores_above_clearly_negative():
    positive = ["Apple crushed earnings, fantastic quarter, love it 🚀", "Brilliant results!"]
    negative = ["Terrible guidance, awful quarter, selling everything 😡", "Horrible lawsuit news"]
    scores = social.vader_scores(positive + negative).get_column("compound").to_list()
    assert min(scores[:2]) > 0.5 and max(scores[2:]) < -0.5


def test_parse_x_search_sample(samples):
    body = (samples / "x_twitter" / "x_search_recent_tweets_tweepy.json").read_bytes()
    posts, meta = social.parse_x_search(body, "TWTR")
    expected = json.loads(body)
    assert posts.height == len(expected["data"])
    assert posts.get_column("post_id").to_list() == [p["id"] for p in expected["data"]]
    assert posts.get_column("text")[0] == expected["data"][0]["text"]  # as received
    assert meta.get("next_token") == expected["meta"].get("next_token")


def test_parse_x_errors():
    with pytest.raises(social.PostsFormatError, match="not JSON"):
        social.parse_x_search(b"<html>", "AAPL")
    with pytest.raises(social.PostsFormatError, match="Too Many Requests"):
        social.parse_x_search(b'{"errors":[{"title":"Too Many Requests"}]}', "AAPL")
    posts, meta = social.parse_x_search(b'{"meta":{"result_count":0}}', "AAPL")
    assert posts.is_empty() and meta["result_count"] == 0


def test_simulated_posts_are_deterministic_paged_and_deduplicated(us):
    start = dt.datetime(2026, 11, 17, 14, tzinfo=UTC)
    end = dt.datetime(2026, 11, 17, 22, tzinfo=UTC)
    sim = SimulatedPosts(page_size=5)
    first = sim.fetch_posts(us, ["AAPL"], start, end)
    assert len(first) > 1  # several pages, with next_token
    assert json.loads(first[0].body)["meta"]["next_token"] == "sim1"
    ids = [p["id"] for page in first for p in json.loads(page.body).get("data", [])]
    assert len(ids) > len(set(ids))  # pages overlap, as the live API's do
    posts = social.parse_post_payloads(first)
    assert posts.height == len(set(ids))
    again = social.parse_post_payloads(
        SimulatedPosts(page_size=50).fetch_posts(us, ["AAPL"], start, end)
    )
    assert posts.sort("post_id").equals(again.sort("post_id"))


def test_daily_sentiment_assigns_posts_to_the_session_they_can_move(us):
    scored = pl.DataFrame(
        {
            "created_at": [
                dt.datetime(2026, 11, 20, 20, 0, tzinfo=UTC),  # Fri 15:00 NY: Friday
                dt.datetime(2026, 11, 21, 15, 0, tzinfo=UTC),  # Saturday: Monday
                dt.datetime(2026, 11, 23, 14, 0, tzinfo=UTC),  # Mon 09:00 NY: Monday
            ],
            "post_id": ["1", "2", "3"],
            "symbol": ["AAPL"] * 3,
            "text_clean": ["a", "b", "c"],
            "compound": [0.5, -0.5, 0.9],
            "pos": [0.5, 0.0, 0.9],
            "neu": [0.5, 0.5, 0.1],
            "neg": [0.0, 0.5, 0.0],
            "like_count": [1, 10, 0],
            "retweet_count": [0, 0, 0],
            "reply_count": [0, 0, 0],
            "quote_count": [0, 0, 0],
            "engagement": [1, 10, 0],
            "scorer": ["vader"] * 3,
        }
    ).with_columns(pl.col("created_at").dt.cast_time_unit("us"))
    sessions = [dt.date(2026, 11, 20), dt.date(2026, 11, 23)]
    daily = social.daily_sentiment(scored, us, sessions, top_n=1)
    friday, monday = daily.rows(named=True)
    assert (friday["trading_date"], friday["post_count"]) == (dt.date(2026, 11, 20), 1)
    assert (monday["trading_date"], monday["post_count"]) == (dt.date(2026, 11, 23), 2)
    assert monday["mean_compound"] == pytest.approx(0.2)
    assert monday["weighted_compound"] == pytest.approx((-0.5 * 11 + 0.9 * 1) / 12)
    assert monday["share_positive"] == 0.5 and monday["share_negative"] == 0.5
    assert [p["post_id"] for p in json.loads(monday["top_posts"])] == ["2"]


@pytest.fixture
def env(monkeypatch, tmp_path, pg_url):
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS us CASCADE")
    return pg_url


def test_a_market_day_of_posts_joins_every_symbol_and_day(env, us):
    from finance_assets_tests.test_assets.test_end_to_end import _defs, run_assets

    defs = _defs(us)
    instance = dg.DagsterInstance.ephemeral()

    def run(name, keys, start, end):
        return run_assets(defs, instance, name, keys, start, end)

    run("bars", ["raw_intraday_quotes", "bars_5min"], "2026-11-17-09:30", "2026-11-18-15:55")
    run("posts", ["raw_posts", "post_sentiment"], "2026-11-16-00:00", "2026-11-18-23:00")
    daily = ["daily_summary", "daily_sentiment", "stock_sentiment_daily"]
    for _ in range(2):  # re-run: identical counts
        run("daily", daily, "2026-11-17", "2026-11-18")
        with psycopg.connect(env) as conn:
            rows = conn.execute(
                "SELECT trading_date, symbol, close, post_count, mean_compound "
                "FROM us.stock_sentiment_daily ORDER BY 1, 2"
            ).fetchall()
            posts = conn.execute("SELECT count(*) FROM us.post_sentiment").fetchone()[0]
        assert [(r[0], r[1]) for r in rows] == [
            (d, s)
            for d in (dt.date(2026, 11, 17), dt.date(2026, 11, 18))
            for s in sorted(us.universe)
        ]
        assert all(r[2] is not None and r[3] > 0 and -1 <= r[4] <= 1 for r in rows)
        assert posts > 0


def test_days_without_posts_are_kept_with_null_sentiment():
    summary = pl.DataFrame(
        {
            "trading_date": [dt.date(2026, 11, 17), dt.date(2026, 11, 17)],
            "symbol": ["A", "B"],
            "close": [1.0, 2.0],
        }
    )
    sentiment = social.empty(social.DAILY_SENTIMENT_SCHEMA).vstack(
        pl.DataFrame(
            [
                {
                    "trading_date": dt.date(2026, 11, 17),
                    "symbol": "A",
                    "post_count": 3,
                    "mean_compound": 0.1,
                    "weighted_compound": 0.2,
                    "share_positive": 0.5,
                    "share_negative": 0.1,
                    "engagement": 7,
                    "top_posts": "[]",
                }
            ],
            schema=social.DAILY_SENTIMENT_SCHEMA,
        )
    )
    joined = social.stock_sentiment_daily(summary, sentiment)
    assert joined.height == 2
    b = joined.filter(pl.col("symbol") == "B").row(0, named=True)
    assert b["close"] == 2.0 and b["post_count"] == 0 and b["mean_compound"] is None


def test_daily_sentiment_is_the_same_to_the_bit_whatever_the_post_order(us):
    start = dt.datetime(2026, 11, 16, 14, tzinfo=UTC)
    end = dt.datetime(2026, 11, 21, 22, tzinfo=UTC)
    payloads = SimulatedPosts(page_size=50).fetch_posts(us, ["AAPL", "MSFT"], start, end)
    scored = social.score_posts(social.parse_post_payloads(payloads))
    assert scored.height > 100
    sessions = [dt.date(2026, 11, d) for d in (16, 17, 18, 19, 20, 23)]
    first = social.daily_sentiment(scored, us, sessions)
    for seed in range(30):
        shuffled = scored.sample(fraction=1.0, shuffle=True, seed=seed)
        assert social.daily_sentiment(shuffled, us, sessions).equals(first), f"seed {seed}"
