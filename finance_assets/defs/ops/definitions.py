"""The operations domain's definitions: the raw-zone retention job and its schedule, and the
notification sensors with their `notifier` resource."""

from __future__ import annotations

import dagster as dg

from finance_assets.defs.ops.notifications import build_notification_defs
from finance_assets.defs.ops.retention import build_retention_defs


def build_defs() -> dg.Definitions:
    return dg.Definitions.merge(
        build_retention_defs(),
        build_notification_defs(),
    )
