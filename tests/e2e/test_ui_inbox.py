"""Saved inbox filters: kept in the database, so a clerk finds them on any browser."""

from __future__ import annotations

import re

from order_flow.bootstrap import App
from order_flow.services.users import MAX_SAVED_FILTERS
from tests.e2e.ui_support import on_hold_task, signed_in, user, web

_SAVED = re.compile(r'<ul class="saved">(.*?)</ul>', re.S)


def saved_links(page: str) -> str:
    found = _SAVED.search(page)
    return found.group(1) if found else ""


def test_a_saved_filter_is_found_again_from_another_browser_and_applies(app: App) -> None:
    alice = user(app, "alice")
    user(app, "bob")
    urgent = on_hold_task(app, alice, priority="urgent")
    normal = on_hold_task(app, alice)
    site = web(app)
    first = signed_in(site, "bob")
    form = {"name": "加急", "queue": "group", "priority": "urgent", "role": "admin"}
    assert first.post("/inbox/filters", form).status_code == 302

    second = signed_in(web(app), "bob")  # another browser (and another web process)
    links = saved_links(second.page("/inbox/"))
    assert "加急" in links
    href = re.search(r'href="([^"]+)"', links)
    assert href is not None
    url = href.group(1).replace("&amp;", "&")
    assert "priority=urgent" in url and "queue=group" in url and "role" not in url
    applied = second.page(url)
    assert f"/tasks/{urgent}" in applied and f"/tasks/{normal}" not in applied
    assert app.users.get("bob").role == "clerk"


def test_saving_under_the_same_name_overwrites_and_delete_removes_it(app: App) -> None:
    bob = user(app, "bob")
    b = signed_in(web(app), "bob")
    b.post("/inbox/filters", {"name": "mine", "queue": "mine", "priority": "high"})
    b.post("/inbox/filters", {"name": "mine", "queue": "mine", "priority": "low"})
    assert bob.user_id is not None
    assert app.users.saved_filters(bob.user_id) == {"mine": {"queue": "mine", "priority": "low"}}
    b.post("/inbox/filters/delete", {"name": "mine"})
    assert app.users.saved_filters(bob.user_id) == {}
    assert "mine" not in saved_links(b.page("/inbox/"))


def test_a_clerk_sees_only_their_own_saved_filters_and_has_a_limit(app: App) -> None:
    bob = user(app, "bob")
    carol = user(app, "carol")
    assert bob.user_id is not None and carol.user_id is not None
    for i in range(MAX_SAVED_FILTERS):
        app.users.save_filter(bob.user_id, f"f{i:02d}", {"queue": "mine", "q": str(i)})
    b = signed_in(web(app), "bob")
    b.post("/inbox/filters", {"name": "one too many", "queue": "mine", "q": "x"})
    assert "one too many" not in app.users.saved_filters(bob.user_id)
    assert "flash-error" in b.page("/inbox/")
    assert b.post("/inbox/filters", {"name": "", "q": "x"}).status_code == 302
    assert len(app.users.saved_filters(bob.user_id)) == MAX_SAVED_FILTERS
    c = signed_in(web(app), "carol")
    assert saved_links(c.page("/inbox/")) == ""
    c.post("/inbox/filters/delete", {"name": "f00"})  # someone else's: nothing happens
    assert "f00" in app.users.saved_filters(bob.user_id)
