"""The browser UI: login, inbox, task and order pages, supervisor console, ops endpoints.

Each module below exposes a Blueprint ``bp`` and, optionally, ``init_app(app)`` for the
extensions it needs. ``register`` wires them in this order.
"""

from __future__ import annotations

from importlib import import_module

from flask import Flask

MODULES = (
    "web.ui.core",
    "web.ui.auth",
    "web.ui.inbox",
    "web.ui.tasks",
    "web.ui.orders",
    "web.ui.imports",
    "web.ui.supervisor",
    "web.ui.ops",
    "web.ui.reports",
)


def register(app: Flask) -> None:
    for name in MODULES:
        module = import_module(name)
        init = getattr(module, "init_app", None)
        if init is not None:
            init(app)
        bp = getattr(module, "bp", None)
        if bp is not None:
            app.register_blueprint(bp)
