"""The Slack leg: dagster-slack's `SlackResource` with a channel and a base URL.

`SlackResource` gives the `token` field (a `dg.EnvVar` in the definitions, so the UI shows the
variable's name) and `get_client()`; this subclass points the client at `base_url` (an egress
proxy, or the tests' local Slack server), turns off slack_sdk's built-in retries (a failed post
is kept by the sensor's ledger and retried on a later tick instead of blocking this one: a
Retry-After can be a minute) and maps Slack's answers onto `SendError`s free of the token.
"""

import datetime as dt
from typing import Any
from urllib.error import URLError

from dagster_slack import SlackResource
from pydantic import Field
from slack_sdk.errors import SlackApiError
from slack_sdk.web import WebClient

from finance_assets.lib import notify
from finance_assets.lib.notify import Notification, SendRateLimited, SlackRejected, Unreachable
from finance_assets.lib.redaction import (
    REDACTED,
    redact,
    redacting_logger,
    retry_after_from_headers,
)

SLACK_API_URL = "https://slack.com/api/"
# slack_sdk logs through the logger it is given (it quotes unexpected response bodies): ours,
# scrubbed like every other logger that may see a secret.
_LOG = redacting_logger("finance_assets.notify.slack")


class SlackChannel(SlackResource):
    """Posts notifications to one Slack channel with a bot token (scope `chat:write`)."""

    channel: str = Field(description="Channel id or `#name`; the bot must be in it.")
    base_url: str = Field(
        default=SLACK_API_URL,
        description="Slack Web API base URL: Slack's, a proxy's or a stand-in's.",
    )
    timeout_seconds: float = 10.0

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False  # a subclass of the dagster-maintained resource, maintained here

    def __repr_args__(self) -> Any:
        # pydantic's repr would print the token wherever the resource is shown.
        for name, value in super().__repr_args__():
            yield name, (REDACTED if name == "token" and value else value)

    def get_client(self) -> WebClient:
        """A `slack_sdk.WebClient` at `base_url`, without slack_sdk's own retry handlers."""
        return WebClient(
            token=self.token,
            base_url=self.base_url or SLACK_API_URL,
            timeout=int(max(1, self.timeout_seconds)),
            retry_handlers=[],
            logger=_LOG,
        )

    def post(self, notification: Notification) -> str:
        """`chat.postMessage`; returns Slack's message ts or raises a `SendError`."""
        if not self.channel:
            raise ValueError("a Slack channel is required (SLACK_CHANNEL)")
        try:
            response = self.get_client().chat_postMessage(
                channel=self.channel,
                text=notification.slack_text(),
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as err:
            status = err.response.status_code
            # A proxy's HTML page ends up here too, quoted by slack_sdk: keep the start of it.
            error = notify.fit(
                str(err.response.get("error") or "unknown_error"), notify.MAX_FIELD_CHARS
            )
            if status == 429 or error in ("ratelimited", "rate_limited"):
                retry_after = retry_after_from_headers(
                    err.response.headers, dt.datetime.now(dt.UTC)
                )
                raise SendRateLimited(
                    "slack",
                    f"rate limited (HTTP {status}), retry after "
                    f"{'?' if retry_after is None else retry_after} s",
                    retry_after=retry_after,
                ) from None
            raise SlackRejected(redact(error, [self.token]), status=status) from None
        except (URLError, OSError, TimeoutError) as err:
            raise Unreachable(
                "slack", redact(f"cannot reach the Slack API: {err}", [self.token])
            ) from None
        return str(response.get("ts", ""))
