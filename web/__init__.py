"""The Flask application: the clerk inbox, the supervisor console and the JSON API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from order_flow.bootstrap import App, bootstrap
from order_flow.config import Settings

EXTENSION_KEY = "order_flow"


def create_app(
    settings: Settings | None = None,
    *,
    of_app: App | None = None,
    config: Mapping[str, Any] | None = None,
) -> Flask:
    """Build the web app around an order_flow App (made from the settings if not given)."""
    flask_app = Flask(__name__)
    of = of_app or bootstrap(settings or Settings.from_env())
    flask_app.extensions[EXTENSION_KEY] = of
    flask_app.config.update(
        SECRET_KEY=_secret_key(of),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_AS_ASCII=False,
        MAX_CONTENT_LENGTH=20 * 1024 * 1024,
    )
    if config:
        flask_app.config.update(config)

    from web.api import register as register_api
    from web.ui import register as register_ui

    register_api(flask_app)
    register_ui(flask_app)
    return flask_app


def _secret_key(of: App) -> str:
    """ORDER_FLOW_SECRET_KEY, or a random key kept in the data folder (quick start)."""
    import os
    import secrets

    key = os.environ.get("ORDER_FLOW_SECRET_KEY")
    if key:
        return key
    path = of.settings.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    of.settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


def of_app() -> App:
    """The order_flow App of the current Flask app."""
    of: App = current_app.extensions[EXTENSION_KEY]
    return of
