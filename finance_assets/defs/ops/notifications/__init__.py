"""Notifications: failed asset checks and run status, to Slack (or a local file) and e-mail.

One module per concern:
- `resource.py`: the `notifier` resource, the routes (which channels a kind of notice goes to)
  and the one send path, where secrets are masked;
- `slack.py`: the Slack leg, dagster-slack's `SlackResource` shape with a channel and a base URL;
- `settings.py`: the notifier of an environment, from its variables;
- `delivery.py`: one tick's sends (a failed channel is not retried within the tick; Retry-After);
- `content.py`: a check evaluation's or a run's details, as a `lib.notify.Notification`;
- `check_sensor.py`: `check_failure_notifications` (its cursor holds the notices still owed);
- `run_sensors.py`: `run_failure_notifications` / `run_success_notifications` (one factory) and
  `run_notification_retries` (the ledger of what each run is owed lives on its tags);
- `definitions.py`: the four sensors and the resource, for the code location.

Message texts and the SMTP and file senders are in `lib/notify.py`; redaction in
`lib/redaction.py`.
"""

from finance_assets.defs.ops.notifications.check_sensor import build_check_failure_sensor
from finance_assets.defs.ops.notifications.definitions import build_notification_defs
from finance_assets.defs.ops.notifications.run_sensors import (
    RUN_FAILURE,
    RUN_NOTICE_TAG,
    RUN_PENDING_TAG,
    RUN_SUCCESS,
    build_run_failure_sensor,
    build_run_notice_retry_sensor,
    build_run_status_sensor,
    build_run_success_sensor,
)
from finance_assets.defs.ops.notifications.settings import notifier_from_env
from finance_assets.resources.notifier import CHAT, EMAIL, ROUTES, Notifier
from finance_assets.resources.slack import SlackChannel

__all__ = [
    "CHAT",
    "EMAIL",
    "ROUTES",
    "RUN_FAILURE",
    "RUN_NOTICE_TAG",
    "RUN_PENDING_TAG",
    "RUN_SUCCESS",
    "Notifier",
    "SlackChannel",
    "build_check_failure_sensor",
    "build_notification_defs",
    "build_run_failure_sensor",
    "build_run_notice_retry_sensor",
    "build_run_status_sensor",
    "build_run_success_sensor",
    "notifier_from_env",
]
