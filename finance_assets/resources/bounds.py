"""The valid range of every numeric setting that is not a provider's (a provider's ranges are in
its spec, `finance_assets/providers/<name>/__init__.py`): the environment is checked against
them when the definitions load, and the resources' fields declare them (a resource built in
code or configured in the launchpad is held to the same range)."""

from finance_assets.lib.settings import NumberRange
from finance_assets.providers.spec import bounded_field as bounded

QUARANTINE_RATE = NumberRange(0, 1, meaning="the share of received records; 0.05 is 5 %")
TOP_POSTS = NumberRange(1, 1_000, whole=True, meaning="posts kept per company and day")
PRICE_MOVE_PCT = NumberRange(0, 100, low_open=True, meaning="a move, in %, worth an alert")

__all__ = ["PRICE_MOVE_PCT", "QUARANTINE_RATE", "TOP_POSTS", "bounded"]
