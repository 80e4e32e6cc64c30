"""A real X answer without `created_at` (the tweepy sample: `tweet.fields` did not ask for it):
the posts are counted and reported (the run's metadata, a WARN check, a warning in the log),
never dropped silently behind a green run."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import psycopg
from pytest_httpserver import HTTPServer

from finance_assets.defs.social.assets import hourly_partitions
from finance_assets_tests.test_assets.test_end_to_end import _defs, env, fresh_schema  # noqa: F401

PATH = "/2/tweets/search/recent"


def test_posts_without_created_at_are_counted_and_reported(
    env,  # noqa: F811
    fresh_schema,  # noqa: F811
    us,
    httpserver: HTTPServer,
    samples,
    monkeypatch,
):
    body = (samples / "x_twitter" / "x_search_recent_tweets_tweepy.json").read_bytes()
    httpserver.expect_request(PATH).respond_with_data(body, content_type="application/json")
    monkeypatch.setenv("POSTS_PROVIDER", "x_api")
    monkeypatch.setenv("X_BEARER_TOKEN", "test-bearer-token")
    monkeypatch.setenv("X_API_BASE_URL", httpserver.url_for("/").rstrip("/"))
    monkeypatch.setenv("X_MAX_PAGES", "1")
    # An hour that has ended, well inside X's seven days.
    hour = (dt.datetime.now(us.tz) - dt.timedelta(hours=3)).replace(
        minute=0, second=0, microsecond=0
    )
    key = hour.strftime(hourly_partitions(us).fmt)
    job = _defs(us).resolve_job_def("us_posts_job")
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key=key, raise_on_error=False
    )
    assert result.success  # nothing is wrong with the run itself: the posts lack a field
    companies = len(us.universe)
    (materialization,) = result.asset_materializations_for_node("us__post_sentiment")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["posts_received"] == 10 * companies
    assert metadata["posts_without_created_at"] == 10 * companies
    assert metadata["posts"] == 0
    check = next(
        c for c in result.get_asset_check_evaluations() if c.check_name == "every_post_usable"
    )
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["posts_without_created_at"].value == 10 * companies
    # The client asked for the field: the answer left it out.
    assert all(
        "created_at" in request.args["tweet.fields"]
        for request, _ in httpserver.log
        if request.path == PATH
    )
    with psycopg.connect(fresh_schema) as conn:
        rows = conn.execute("SELECT count(*) FROM us.post_sentiment").fetchone()[0]
    assert rows == 0
