"""The browser UI: login, inbox, task and order pages, supervisor console (being built)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Register the UI blueprints and extensions on ``app``."""
