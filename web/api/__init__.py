"""The JSON API under /api/v1 (being built)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Register the API blueprint on ``app``."""
