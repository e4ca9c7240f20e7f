"""Sign-in, sessions that die, CSRF and security headers of the browser UI."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from order_flow.bootstrap import App
from order_flow.services.users import LOGIN_WINDOW
from order_flow.store.models import LoginFailure
from tests.e2e.ui_support import PASSWORD, browser, signed_in, user, web


def _failures(app: App, key: str) -> int:
    with app.engine.session_factory() as s:
        stmt = select(func.count()).select_from(LoginFailure).where(LoginFailure.key == key)
        return int(s.scalar(stmt) or 0)


def test_a_clerk_signs_in_sees_the_inbox_and_signs_out(app: App) -> None:
    user(app, "alice")
    site = web(app)
    b = signed_in(site, "alice")
    assert "alice" in b.page("/inbox/")
    out = b.post("/logout")
    assert out.status_code == 302 and out.headers["Location"].endswith("/login")
    assert b.client.get("/inbox/").status_code == 302


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(app: App) -> None:
    user(app, "alice")
    site = web(app)
    unknown = browser(site, "10.0.0.2").login("nobody", PASSWORD)
    wrong = browser(site, "10.0.0.3").login("alice", "wrong-password")
    assert unknown.status_code == wrong.status_code == 401
    message = "用户名或密码错误"
    assert message in unknown.get_data(as_text=True)
    assert message in wrong.get_data(as_text=True)


def test_twenty_bad_logins_are_throttled_even_with_the_right_password_after(app: App) -> None:
    user(app, "alice")
    site = web(app)
    b = browser(site)
    codes = [b.login("alice", f"guess-{i}").status_code for i in range(20)]
    assert codes[0] == 401 and codes[-1] == 429
    assert b.login("alice").status_code == 429
    # Another address is throttled on the account too; an unknown name is throttled alike.
    assert browser(site, "10.9.9.9").login("alice").status_code == 429
    codes = [browser(site, "10.0.0.7").login("ghost", "x" * 8).status_code for _ in range(20)]
    assert codes[-1] == 429


def test_the_throttle_counts_alike_in_every_web_process(app: App) -> None:
    user(app, "alice")
    workers = [web(app), web(app)]  # two gunicorn workers over one database
    codes = [browser(workers[i % 2]).login("alice", f"guess-{i}").status_code for i in range(10)]
    assert codes == [401] * 10
    assert all(browser(w, "10.4.4.4").login("alice").status_code == 429 for w in workers)


def test_a_successful_login_clears_the_accounts_failures_but_not_the_addresss(app: App) -> None:
    user(app, "alice")
    site = web(app)
    for i in range(5):
        browser(site).login("alice", f"guess-{i}")
    assert _failures(app, "user:alice") == 5
    assert browser(site).login("alice").status_code == 302
    assert _failures(app, "user:alice") == 0
    assert _failures(app, "ip:10.0.0.1") == 5


def test_failures_older_than_the_window_stop_counting_and_are_pruned(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    user(app, "alice")
    site = web(app)
    for i in range(10):
        browser(site).login("alice", f"guess-{i}")
    assert browser(site).login("alice").status_code == 429
    later = app.engine.clock() + LOGIN_WINDOW + timedelta(seconds=1)
    monkeypatch.setattr(app.engine, "clock", lambda: later)
    assert browser(site).login("alice", "wrong-again").status_code == 401
    assert _failures(app, "user:alice") == 1  # the expired ten went with that failure
    assert browser(site).login("alice").status_code == 302


def test_a_session_cookie_replayed_after_logout_is_refused(app: App) -> None:
    user(app, "alice")
    site = web(app)
    b = signed_in(site, "alice")
    cookie = b.client.get_cookie("session")
    assert cookie is not None
    b.post("/logout")
    thief = site.test_client()
    thief.set_cookie("session", cookie.value)
    response = thief.get("/inbox/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_disabling_a_user_or_changing_the_role_ends_the_session(app: App) -> None:
    user(app, "alice")
    user(app, "bob")
    site = web(app)
    alice, bob = signed_in(site, "alice"), signed_in(site, "bob")
    app.users.disable("alice")
    app.users.set_role("bob", "supervisor")
    assert alice.client.get("/inbox/").status_code == 302
    assert bob.client.get("/inbox/").status_code == 302
    assert browser(site, "10.1.1.1").login("alice").status_code == 401


def test_a_post_without_a_csrf_token_is_refused_and_changes_nothing(app: App) -> None:
    user(app, "alice")
    site = web(app)
    b = signed_in(site, "alice")
    epoch = app.users.get("alice").session_epoch
    response = b.client.post("/logout")
    assert response.status_code == 400
    assert app.users.get("alice").session_epoch == epoch
    assert b.client.get("/inbox/").status_code == 200
    assert browser(site).client.post("/login", data={"username": "alice"}).status_code == 400


def test_every_response_carries_the_security_headers(app: App) -> None:
    site = web(app)
    for path in ("/login", "/static/app.css", "/no-such-page"):
        headers = site.test_client().get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"]


def test_the_language_switch_is_a_post_and_english_follows(app: App) -> None:
    site = web(app)
    b = browser(site)
    assert "登录" in b.page("/login")
    b.post("/lang", {"lang": "en", "next": "/login"})
    assert "Sign in" in b.page("/login")
    assert "登录" in b.page("/login?lang=zh_CN")
