"""What every provider shares: the interface (`base.BarProvider`, `RawPayload`), the HTTP stack
(`http`, `retrying`, `rate_limit`, `keyed`, `bars`) and the typed errors (`errors`). The providers
themselves are packages of `finance_assets.providers`, one folder each."""

from finance_assets.lib.providers.base import BarProvider, ProviderError, RawPayload

__all__ = ["BarProvider", "ProviderError", "RawPayload"]
