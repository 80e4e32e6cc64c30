"""The notification sensors and the `notifier` resource they use, for the code location."""

import os
from collections.abc import Mapping

import dagster as dg

from finance_assets.defs.ops.notifications.check_sensor import build_check_failure_sensor
from finance_assets.defs.ops.notifications.run_sensors import (
    RUN_FAILURE,
    RUN_SUCCESS,
    build_run_notice_retry_sensor,
    build_run_status_sensor,
)
from finance_assets.defs.ops.notifications.settings import notifier_from_env, success_sensor_status


def build_notification_defs(environ: Mapping[str, str] | None = None) -> dg.Definitions:
    """The four notification sensors and the `notifier` resource of this environment."""
    environ = os.environ if environ is None else environ
    return dg.Definitions(
        sensors=[
            build_check_failure_sensor(),
            build_run_status_sensor(RUN_FAILURE),
            build_run_status_sensor(RUN_SUCCESS, default_status=success_sensor_status(environ)),
            build_run_notice_retry_sensor(),
        ],
        resources={"notifier": notifier_from_env(environ)},
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_notification_defs()
