"""Debian's Chromium as the browser tests start it: never a downloaded browser, and no
background networking (this machine's closed network refuses Chromium's own connections)."""

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
