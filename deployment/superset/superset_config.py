"""Superset's settings for finance_assets (SUPERSET_CONFIG_PATH points here).

Everything secret or machine-specific comes from the environment; nothing here is a password.
The stack (deployment/docker/compose.yaml) and `make dashboard` (finance_assets/dashboard.py)
set the same variables.
"""

import os

# The metadata database (users, dashboards, charts): a PostgreSQL database of its own.
SQLALCHEMY_DATABASE_URI = os.environ["SUPERSET_DATABASE_URI"]
# Signs the session cookie and encrypts the stored warehouse password: required, and kept
# stable between starts (make dashboard keeps it under data/superset/, the stack in .env).
SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]

# No example data, no telemetry, nothing fetched from the internet.
SUPERSET_LOAD_EXAMPLES = False
SCARF_ANALYTICS = False

# The dashboards are read-only views over the warehouse: no uploads, no DML in SQL Lab.
ALLOW_FILE_UPLOAD = False

# Flask-Limiter's explicit in-process store (the login rate limit), instead of its warning.
RATELIMIT_STORAGE_URI = "memory://"

# Headless screenshots (thumbnails, alerts & reports) need a browser and a worker: off.
FEATURE_FLAGS = {"THUMBNAILS": False, "ALERT_REPORTS": False}

# Served on loopback over plain HTTP (host networking): no HTTPS redirect.
TALISMAN_CONFIG = {"content_security_policy": None, "force_https": False}
TALISMAN_ENABLED = False
CONTENT_SECURITY_POLICY_WARNING = False
