"""Simulated posts about companies: the offline default for the social domain.

Deterministic per (company, hour): the same window always gives the same posts. Texts come from a
small corpus the project owns (positive, negative and neutral templates, with URLs, mentions,
hashtags and emoji to clean), engagement counts are heavy-tailed, and more is posted while the
market is open. Bodies take the X API v2 `/2/tweets/search/recent` shape, paged with
`next_token`, and a page may repeat the last post of the previous one, as the live API does when
new posts arrive between page requests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence

from finance_assets.lib.markets import Market, ticker_root
from finance_assets.lib.providers.base import RawPayload

PAGE_SIZE = 100

POSITIVE = (
    "{name} just crushed earnings, what a quarter! 🚀 ${tick} #{tag}",
    "Loving the new {name} launch, great product and strong demand ${tick}",
    "Bullish on ${tick}: record revenue and a brilliant outlook 📈 https://example.com/{n}",
    "@analyst_{n} upgraded {name} to buy, excellent margins #{tag}",
    "{name} is winning, happy to hold ${tick} for the long run 😀",
)
NEGATIVE = (
    "{name} guidance is terrible, selling my ${tick} 📉 #{tag}",
    "Awful news for {name}: recall and lawsuit, stock crashing ${tick}",
    "Disappointed by ${tick} results, weak sales and rising costs 😡 https://example.com/{n}",
    "@trader_{n} {name} looks like a bad bet, downgrade incoming #{tag}",
    "Worst week for {name} holders, fear everywhere ${tick}",
)
NEUTRAL = (
    "{name} reports results on Thursday ${tick} #{tag}",
    "Watching ${tick} today, volume about average https://example.com/{n}",
    "{name} annual meeting scheduled, agenda posted #{tag}",
    "@newsdesk_{n} {name} to present at the industry conference ${tick}",
)


class SimulatedPosts:
    """Offline posts source. `rate` is the mean posts per company per market hour."""

    name = "simulated"

    def __init__(
        self,
        seed: int = 11,
        rate: float = 4.0,
        page_size: int = PAGE_SIZE,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if rate < 0:
            raise ValueError(f"rate must be >= 0, got {rate}")
        self.seed = seed
        self.rate = rate
        self.page_size = page_size
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def fetch_posts(
        self, market: Market, symbols: Sequence[str], start: dt.datetime, end: dt.datetime
    ) -> list[RawPayload]:
        """One payload per page per company, newest post first, as the live search pages."""
        payloads = []
        for symbol in symbols:
            posts = sorted(self.posts(market, symbol, start, end), key=lambda p: p["id"])
            posts.reverse()
            pages = [posts[i : i + self.page_size] for i in range(0, len(posts), self.page_size)]
            for number, page in enumerate(pages or [[]]):
                if number and page:
                    page = [pages[number - 1][-1], *page]  # an overlap between pages
                meta: dict[str, object] = {"result_count": len(page)}
                body: dict[str, object] = {}
                if page:
                    body["data"] = page
                    meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
                if number + 1 < len(pages):
                    meta["next_token"] = f"sim{number + 1}"
                body["meta"] = meta
                payloads.append(
                    RawPayload(
                        provider=self.name,
                        format="x_search",
                        interval="1hour",
                        symbols=(symbol,),
                        window_start=start,
                        window_end=end,
                        fetched_at=self._clock(),
                        body=json.dumps(body, ensure_ascii=False).encode(),
                        batch=number,
                        request={
                            "endpoint": "2/tweets/search/recent",
                            "query": market.posts_query(symbol),
                            "start_time": start.isoformat(),
                            "end_time": end.isoformat(),
                            "page": str(number),
                        },
                    )
                )
        return payloads

    def posts(
        self, market: Market, symbol: str, start: dt.datetime, end: dt.datetime
    ) -> list[dict[str, object]]:
        """The posts of [start, end): whole hours generated, then cut to the window."""
        out = []
        hour = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        while hour < end:
            for post in self._hour(market, symbol, hour):
                created = dt.datetime.fromisoformat(str(post["created_at"]).replace("Z", "+00:00"))
                if start <= created < end:
                    out.append(post)
            hour += dt.timedelta(hours=1)
        return out

    def _hour(self, market: Market, symbol: str, hour: dt.datetime) -> list[dict[str, object]]:
        import numpy as np  # here, not at module level: loading the code location draws nothing

        key = (
            int.from_bytes(
                hashlib.blake2b(f"{self.seed}:{symbol}".encode(), digest_size=8).digest(), "big"
            )
            >> 1
        )
        ordinal = int(hour.timestamp() // 3600)
        rng = np.random.default_rng([key, ordinal, self.seed])
        local = hour.astimezone(market.tz)
        open_hours = market.is_session(local.date()) and (
            market.regular_open.hour <= local.hour <= market.regular_close.hour
        )
        count = int(rng.poisson(self.rate if open_hours else self.rate / 4))
        # Each company has a mood that drifts day by day: some days are good news days.
        day_rng = np.random.default_rng([key, ordinal // 24, self.seed, 7])
        mood = float(day_rng.normal(0.0, 0.8))
        p_pos = 1 / (1 + np.exp(-mood)) * 0.7
        posts = []
        for i in range(count):
            draw = rng.random()
            corpus = POSITIVE if draw < p_pos else NEGATIVE if draw < 0.7 else NEUTRAL
            template = corpus[int(rng.integers(len(corpus)))]
            created = hour + dt.timedelta(seconds=int(rng.integers(3600)))
            post_id = str(int(created.timestamp()) * 1_000_000 + (key % 10_000) * 100 + i)
            likes = int(rng.lognormal(1.5, 1.3))
            posts.append(
                {
                    "id": post_id,
                    "edit_history_tweet_ids": [post_id],
                    "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "lang": "en",
                    "text": template.format(
                        name=market.company(symbol),
                        tick=ticker_root(symbol),
                        tag=market.company(symbol).replace(" ", ""),
                        n=int(rng.integers(1000)),
                    ),
                    "public_metrics": {
                        "retweet_count": likes // 5,
                        "reply_count": int(rng.integers(0, 5)),
                        "like_count": likes,
                        "quote_count": likes // 20,
                        "impression_count": likes * 40,
                    },
                }
            )
        return posts
