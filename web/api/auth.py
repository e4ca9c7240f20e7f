"""Bearer-token authentication and the role rules of each operation.

The API reads only ``Authorization: Bearer <token>``; it never looks at the
session cookie, so a browser cannot be tricked into calling it (no CSRF).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import request

from order_flow.engine.actors import Actor
from order_flow.errors import PermissionDeniedError
from order_flow.services.users import actor_of
from web import of_app
from web.api.errors import REALM, ApiError


@dataclass(frozen=True)
class Rule:
    """Who may call an operation: words for the OpenAPI text, a predicate for the call."""

    who: str
    allows: Callable[[Actor], bool]

    def check(self, actor: Actor) -> None:
        if not self.allows(actor):
            raise PermissionDeniedError(f"this needs: {self.who}")


ANY_USER = Rule("any signed-in user (clerk, supervisor, admin)", lambda a: True)
SUPERVISOR = Rule("a supervisor or an admin", lambda a: a.is_supervisor)
FINANCE = Rule(
    "a user in the finance group, or a supervisor or admin",
    lambda a: a.is_supervisor or "finance" in a.groups,
)
#: Object-level rule for an order's submit and cancel, checked in the view.
ORDER_OWNER = Rule(
    "the clerk who created the order, or a supervisor or admin (and the workflow must allow it)",
    lambda a: True,
)


def may_act_on_order(actor: Actor, created_by: str) -> bool:
    return actor.is_supervisor or actor.name == created_by


def authenticate() -> Actor:
    """The actor of the request's bearer token, or a 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise ApiError(401, "unauthenticated", "send Authorization: Bearer <token>", {
            "WWW-Authenticate": REALM
        })  # fmt: skip
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise ApiError(
            401,
            "unauthenticated",
            "use Authorization: Bearer <token>",
            {"WWW-Authenticate": f'{REALM}, error="invalid_request"'},
        )
    user = of_app().users.by_token(token)
    if user is None:
        raise ApiError(
            401,
            "invalid_token",
            "the token is unknown, replaced or its user disabled",
            {"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        )
    return actor_of(user)
