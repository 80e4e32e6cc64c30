"""The market-data and posts providers, one package each (client, payload parser, Dagster
resource and `SPEC`: settings, secrets, budget, run limit), listed in `registry.py`.

What they share (the interface, the HTTP stack with its retries and rate limits, the typed
errors) is `finance_assets.lib.providers`. Adding a provider: a folder here, a line in
`registry.py`, then `python deployment/render.py --write`.
"""
