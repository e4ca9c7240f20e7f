"""The README's screenshots: the inbox, a task page and the supervisor console at 1280x800.

Every run saves them under test-artifacts/browser/; with ORDER_FLOW_UPDATE_SCREENSHOTS=1
they also replace docs/screenshots/*.png (the README's copies), so the docs change only
when someone means them to.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

from order_flow.services.users import actor_of
from tests.conftest import ROOT
from tests.e2e.browser.conftest import VIEWPORT, LiveServer, PageFactory, Shots
from tests.e2e.browser.support import expect, open_task_of, orders_in, sign_in

DOCS = ROOT / "docs" / "screenshots"
UPDATE = os.environ.get("ORDER_FLOW_UPDATE_SCREENSHOTS") == "1"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def test_the_readme_screenshots_show_the_inbox_a_task_and_the_console_in_chinese(
    live: LiveServer, new_page: PageFactory, shots: Shots
) -> None:
    app = live.app
    # A little work in hand, so the supervisor's workload is not all zeros; the task
    # page shows a held order of a Chinese customer, claimed by the clerk looking at it.
    clerk1 = actor_of(app.users.get("clerk1"))
    clerk2 = actor_of(app.users.get("clerk2"))
    (held,) = orders_in(app, "on_hold", priority="normal", hold_reason="CREDIT")
    held_task = open_task_of(app, held).id
    app.tasks.claim(held_task, clerk1)
    for reason in ("DUPLICATE", "STOCK_SHORT"):
        (other,) = orders_in(app, "on_hold", hold_reason=reason)
        app.tasks.claim(open_task_of(app, other).id, clerk2)

    clerk = new_page()
    sign_in(clerk, "clerk1")
    clerk.goto("/inbox/?queue=group")
    expect(clerk.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(clerk.locator("h1")).to_have_text("本组待领取")
    expect(clerk.locator("tr.task-row").first).to_be_visible()
    clerk.keyboard.press("j")  # the selected row, as a clerk working the queue sees it
    inbox = shots(clerk, "inbox", full_page=False)

    clerk.goto(f"/tasks/{held_task}")
    expect(clerk.locator("#order .badge.state")).to_have_text("异常")
    expect(clerk.locator("#why h2")).to_have_text("为什么在等待？")
    task = shots(clerk, "task", full_page=False)

    boss = new_page()
    sign_in(boss, "boss")
    boss.goto("/supervisor/")
    expect(boss.locator("#workload tr[data-user=clerk2] td.num").first).to_have_text("2")
    supervisor = shots(boss, "supervisor", full_page=False)

    made = {"inbox.png": inbox, "task.png": task, "supervisor.png": supervisor}
    for path in made.values():
        assert _png_size(path) == (VIEWPORT["width"], VIEWPORT["height"])
    if UPDATE:
        DOCS.mkdir(parents=True, exist_ok=True)
        for name, path in made.items():
            shutil.copyfile(path, DOCS / name)
