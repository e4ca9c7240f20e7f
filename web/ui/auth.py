"""Sign in and out; failed sign-ins are throttled per IP address and per account.

The throttle is in-process: each gunicorn worker counts on its own, so with W
workers an attacker gets at most W times the limit before every worker refuses.
A limit shared across processes needs a table (or Redis); not built yet.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from flask import Blueprint, Flask, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response as BaseResponse

from web.ui.core import SessionUser, _safe_next, of, render

bp = Blueprint("auth", __name__)

LIMITER_KEY = "login_limiter"


@dataclass
class LoginLimiter:
    """Sliding window of failed attempts per key ("ip:..." and "user:...")."""

    per_ip: int = 30
    per_account: int = 10
    window: float = 15 * 60
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, ip: str, username: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return (
                len(self._recent(f"ip:{ip}", now)) >= self.per_ip
                or len(self._recent(f"user:{username}", now)) >= self.per_account
            )

    def failed(self, ip: str, username: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(f"ip:{ip}", now).append(now)
            self._recent(f"user:{username}", now).append(now)
            if len(self._failures) > 100_000:  # a flood of names: forget the idle ones
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{username}", None)


def init_app(app: Flask) -> None:
    app.extensions[LIMITER_KEY] = LoginLimiter(
        per_ip=int(app.config.get("LOGIN_MAX_FAILURES_PER_IP", 30)),
        per_account=int(app.config.get("LOGIN_MAX_FAILURES_PER_ACCOUNT", 10)),
        window=float(app.config.get("LOGIN_WINDOW_SECONDS", 15 * 60)),
    )


def limiter() -> LoginLimiter:
    found: LoginLimiter = current_app.extensions[LIMITER_KEY]
    return found


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
    if limiter().blocked(ip, username):
        error = _("Too many attempts; try again later")
        return render("login.html", 429, error=error, username=username, next=nxt)
    user = of().users.check_password(username, password)
    if user is None:
        limiter().failed(ip, username)
        # The same words whether the name is unknown, disabled or the password wrong.
        error = _("Wrong user name or password")
        return render("login.html", 401, error=error, username=username, next=nxt)
    limiter().succeeded(username)
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
