"""Sign in and out; failed sign-ins are throttled per IP address and per account.

The failures are rows in ``login_failures`` (see ``order_flow.services.users.
LoginThrottle``), so every gunicorn worker sees the same count. The limits can be
set per app with ``LOGIN_MAX_FAILURES_PER_IP``, ``LOGIN_MAX_FAILURES_PER_ACCOUNT``
and ``LOGIN_WINDOW_SECONDS``.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response as BaseResponse

from order_flow.services.users import (
    LOGIN_MAX_FAILURES_PER_ACCOUNT,
    LOGIN_MAX_FAILURES_PER_IP,
    LOGIN_WINDOW,
    LoginThrottle,
)
from web.ui.core import SessionUser, _safe_next, of, render

bp = Blueprint("auth", __name__)


def limiter() -> LoginThrottle:
    config = current_app.config
    window = config.get("LOGIN_WINDOW_SECONDS")
    return LoginThrottle(
        of(),
        per_ip=int(config.get("LOGIN_MAX_FAILURES_PER_IP", LOGIN_MAX_FAILURES_PER_IP)),
        per_account=int(
            config.get("LOGIN_MAX_FAILURES_PER_ACCOUNT", LOGIN_MAX_FAILURES_PER_ACCOUNT)
        ),
        window=timedelta(seconds=float(window)) if window else LOGIN_WINDOW,
    )


@bp.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse | tuple[str, int]:
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(url_for("inbox.index"))
        return render("login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip().lower()[:64]
    password = request.form.get("password", "")
    nxt = request.form.get("next", "")
    ip = request.remote_addr or "?"
    throttle = limiter()
    if throttle.blocked(ip, username):
        error = _("Too many attempts; try again later")
        return render("login.html", 429, error=error, username=username, next=nxt)
    user = of().users.check_password(username, password)
    if user is None:
        throttle.failed(ip, username)
        # The same words whether the name is unknown, disabled or the password wrong.
        error = _("Wrong user name or password")
        return render("login.html", 401, error=error, username=username, next=nxt)
    throttle.succeeded(username)
    lang = session.get("lang")
    session.clear()  # no fixation: a fresh session for the signed-in user
    if lang:
        session["lang"] = lang
    login_user(SessionUser(user))
    return redirect(_safe_next(nxt) or url_for("inbox.index"))


@bp.post("/logout")
def logout() -> BaseResponse:
    if current_user.is_authenticated:
        # Ends every session of the user: a copied cookie names a dead epoch.
        of().users.end_sessions(current_user.user_id)
    logout_user()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))
