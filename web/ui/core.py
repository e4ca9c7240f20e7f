"""Shared web plumbing: locale, login, CSRF, security headers, error pages, helpers.

Other UI modules import ``login_required_role``, ``current_actor``, ``render`` and
``of`` from here; the Jinja macros they share live in ``templates/_macros.html``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import wraps
from typing import Any, ParamSpec, TypeVar, cast
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import Babel, get_locale
from flask_babel import gettext as _
from flask_login import AnonymousUserMixin, LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from order_flow.bootstrap import App
from order_flow.domain.enums import TaxKind
from order_flow.engine.actors import Actor
from order_flow.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    TaskStateError,
    TransitionNotAllowedError,
    ValidationError,
)
from order_flow.services.delegation import DelegationService
from order_flow.store.models import User
from web import of_app
from web.ui.labels import LABELS, VALUED_MESSAGES

#: The UI languages; the first is the default. Message ids are English, so "en"
#: needs no catalog; zh_CN reads web/translations/zh/LC_MESSAGES/messages.mo (Babel
#: names the locale zh_Hans_CN, and gettext falls back from that to "zh").
LOCALES = ("zh_CN", "en")
PRIORITIES = ("urgent", "high", "normal", "low")
#: Less than this left on the SLA clock turns the countdown amber.
SLA_AMBER_SECONDS = 3600

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)

babel = Babel()
login_manager = LoginManager()
csrf = CSRFProtect()
bp = Blueprint("core", __name__)

P = ParamSpec("P")
R = TypeVar("R")


# -- the signed-in user ---------------------------------------------------------------


class SessionUser(UserMixin):
    """What a request knows about its user; the session holds ``"<id>:<epoch>"``."""

    def __init__(self, user: User) -> None:
        self.user_id = user.id
        self.username = user.username
        self.display_name = user.display_name or user.username
        self.role = user.role
        self.groups = user.group_names
        self.locale = user.locale
        self.epoch = user.session_epoch

    def get_id(self) -> str:
        return f"{self.user_id}:{self.epoch}"

    @property
    def actor(self) -> Actor:
        return Actor(self.username, self.role, frozenset(self.groups), self.user_id)


def load_user(key: str) -> SessionUser | None:
    """A cookie from before a logout, disable or role change names an old epoch: refused."""
    uid, _, epoch = key.partition(":")
    if not uid.isdigit() or not epoch.isdigit():
        return None
    user = of().users.by_id(int(uid))
    if user is None or not user.active or user.session_epoch != int(epoch):
        return None
    return SessionUser(user)


def current_actor() -> Actor:
    """The signed-in user as an engine Actor (call only behind a login check).

    On a task's URL (a ``task_id`` view argument), when the task reached this user by
    delegation, the actor is ``acting_for`` the away clerk, so the audit says so.
    """
    if not current_user.is_authenticated:
        abort(401)
    actor = cast(SessionUser, current_user).actor
    task_id = (request.view_args or {}).get("task_id")
    if not isinstance(task_id, int):
        return actor
    cache: dict[int, str | None] = g.setdefault("acting_for", {})
    if task_id not in cache:
        cache[task_id] = DelegationService(of()).acting_for(task_id, actor.name)
    away = cache[task_id]
    return replace(actor, acting_for=away) if away else actor


def login_required_role(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R | BaseResponse]]:
    """Require a signed-in user holding at least one of ``roles`` (none: any role).

    Roles rise clerk < supervisor < admin, so ``login_required_role("supervisor")``
    admits admins too.
    """

    def decorate(view: Callable[P, R]) -> Callable[P, R | BaseResponse]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | BaseResponse:
            if not current_user.is_authenticated:
                return cast(BaseResponse, login_manager.unauthorized())
            actor = cast(SessionUser, current_user).actor
            if roles and not any(actor.has_role(r) for r in roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def of() -> App:
    """The order_flow App behind this web app."""
    return of_app()


def render(template: str, status: int = 200, **ctx: Any) -> tuple[str, int]:
    return render_template(template, **ctx), status


# -- locale ---------------------------------------------------------------------------


def select_locale() -> str:
    """?lang= for this request, then the session's choice, then the user's, then zh_CN."""
    for choice in (
        request.args.get("lang"),
        session.get("lang"),
        getattr(current_user, "locale", None),
    ):
        if choice in LOCALES:
            return str(choice)
    return LOCALES[0]


def ui_locale() -> str:
    """The UI language, zh_CN or en (Babel spells the first zh_Hans_CN)."""
    locale = get_locale()
    return "en" if locale is not None and locale.language == "en" else "zh_CN"


def lang_short() -> str:
    """The key of workflow labels, zh or en."""
    return "en" if ui_locale() == "en" else "zh"


@bp.post("/lang")
def set_language() -> BaseResponse:
    choice = request.form.get("lang", "")
    if choice in LOCALES:
        session["lang"] = choice
    return redirect(_safe_next(request.form.get("next")) or url_for("core.home"))


@bp.get("/")
def home() -> BaseResponse:
    if current_user.is_authenticated:
        return redirect(url_for("inbox.index"))
    return redirect(url_for("auth.login"))


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


# -- template helpers ---------------------------------------------------------------


def now() -> datetime:
    clock: datetime = of().engine.clock()
    return clock


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(of().settings.timezone)).strftime(fmt)


def _span(seconds: float) -> str:
    total = int(abs(seconds)) // 60
    days, rest = divmod(total, 24 * 60)
    hours, minutes = divmod(rest, 60)
    text = f"{days}d {hours}h" if days else f"{hours}h {minutes:02d}m"
    return ("-" if seconds < 0 else "") + text


def sla_state(due_at: datetime | None) -> tuple[str, str]:
    """(css class, countdown text): green over 1 h left, amber under, red breached (negative)."""
    if due_at is None:
        return "sla-none", "—"
    left = (due_at - now()).total_seconds()
    css = "sla-ok" if left > SLA_AMBER_SECONDS else "sla-warn" if left >= 0 else "sla-breached"
    return css, _span(left)


def age(since: datetime | None) -> str:
    return "" if since is None else _span((now() - since).total_seconds()).lstrip("-")


def money(value: Decimal | None) -> str:
    """An amount: two places, thousands separated (1,234.50)."""
    return "" if value is None else f"{value:,.2f}"


def qty(value: Decimal | None) -> str:
    """A quantity or percentage as written, never in scientific notation: 1E+2 -> 100,
    2.50000000 -> 2.5, thousands separated."""
    if value is None:
        return ""
    text = format(Decimal(value).normalize(), ",f")
    return "0" if text in ("-0", "") else text


def price(value: Decimal | None) -> str:
    """A unit price: at least two places, up to the eight stored (18 -> 18.00)."""
    if value is None:
        return ""
    d = Decimal(value).normalize()
    exponent = d.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        d = d.quantize(Decimal("0.01"))
    return format(d, ",f")


def rate_label(rate: Decimal | None, category: str = "") -> str:
    """A VAT rate as the fapiao prints it: 13%, or the exempt / not-taxable marker."""
    if category == TaxKind.EXEMPT.value:
        return _("Tax exempt")
    if category == TaxKind.NOT_TAXABLE.value:
        return _("Not taxable")
    return "" if rate is None else f"{qty(Decimal(rate) * 100)}%"


def priority_name(rank: int | str | None) -> str:
    if isinstance(rank, str):
        return rank if rank in PRIORITIES else "normal"
    return PRIORITIES[rank] if rank is not None and 0 <= rank < len(PRIORITIES) else "normal"


def nav_endpoints() -> frozenset[str]:
    """Endpoints that exist, so the nav can link to blueprints built in parallel."""
    return frozenset(current_app.view_functions)


def translate(message: str) -> str:
    """A service's English message in the UI language (unknown ones pass through)."""
    if not message:
        return message
    for pattern, localise in VALUED_MESSAGES:
        found = pattern.fullmatch(message)
        if found:
            return localise(**found.groupdict())
    return _(message)


def _template_globals() -> dict[str, Any]:
    return {
        "csrf_token": generate_csrf,
        "csp_nonce": lambda: g.get("csp_nonce", ""),
        "current_locale": ui_locale,
        "LOCALES": LOCALES,
        "PRIORITIES": PRIORITIES,
        "sla_state": sla_state,
        "age": age,
        "priority_name": priority_name,
        "translate": translate,
        "nav_endpoints": nav_endpoints,
        **LABELS,
    }


# -- errors -----------------------------------------------------------------------------

_DOMAIN_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFoundError, 404),
    (PermissionDeniedError, 403),
    (ConflictError, 409),
    (TaskStateError, 409),
    (TransitionNotAllowedError, 409),
    (ValidationError, 422),
)


def _error_page(status: int, detail: str = "") -> tuple[str | Response, int]:
    if request.path.startswith("/api/"):
        return jsonify(error=detail or str(status)), status
    titles = {
        400: _("Bad request"),
        401: _("Please sign in"),
        403: _("You may not do that"),
        404: _("Not found"),
        409: _("Someone changed this first"),
        422: _("Please correct the input"),
        429: _("Too many attempts; try again later"),
        500: _("Something went wrong"),
    }
    return render_template(
        "error.html", status=status, title=titles.get(status, str(status)), detail=detail
    ), status


def _handle_http(exc: HTTPException) -> tuple[str | Response, int]:
    status = exc.code or 500
    detail = _("The form expired; reload the page and try again.") if status == 400 else ""
    return _error_page(status, detail)


def _handle_csrf(exc: CSRFError) -> tuple[str | Response, int]:
    return _error_page(400, _("The form expired; reload the page and try again."))


def _domain_handler(status: int) -> Callable[[Exception], tuple[str | Response, int]]:
    def handle(exc: Exception) -> tuple[str | Response, int]:
        # 404 says nothing about whether the object exists; 403/409 explain the refusal.
        return _error_page(status, "" if status == 404 else translate(str(exc)))

    return handle


# -- wiring -------------------------------------------------------------------------------


def _security_headers(response: Response) -> Response:
    nonce = g.get("csp_nonce") or secrets.token_urlsafe(16)
    response.headers["Content-Security-Policy"] = CSP.format(nonce=nonce)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _new_nonce() -> None:
    g.csp_nonce = secrets.token_urlsafe(16)


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", LOCALES[0])
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    # A clerk keeps a form open for hours; the token is tied to the session anyway.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = ""
    login_manager.session_protection = "basic"
    login_manager.anonymous_user = AnonymousUserMixin
    login_manager.user_loader(load_user)
    csrf.init_app(app)
    # The API authenticates with bearer tokens, never cookies: no CSRF there.
    import web.api

    api = getattr(web.api, "bp", None) or app.blueprints.get("api")
    if api is not None:
        csrf.exempt(api)
    app.before_request(_new_nonce)
    app.after_request(_security_headers)
    app.jinja_env.globals.update(_template_globals())  # globals reach imported macros too
    for name, label in LABELS.items():  # as filters too: {{ groups|map("group_label") }}
        app.add_template_filter(label, name)
    app.add_template_filter(money, "money")
    app.add_template_filter(qty, "qty")
    app.add_template_filter(price, "price")
    app.add_template_filter(rate_label, "rate_label")
    app.add_template_filter(local_time, "localtime")
    app.register_error_handler(CSRFError, _handle_csrf)
    app.register_error_handler(HTTPException, _handle_http)
    for exc_type, status in _DOMAIN_STATUS:
        if status != 422:  # views render field errors themselves
            app.register_error_handler(exc_type, _domain_handler(status))
