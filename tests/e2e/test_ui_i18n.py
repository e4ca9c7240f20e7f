"""Every string of the UI is translated, and every page renders in both languages."""

from __future__ import annotations

import html
import re
from pathlib import Path

from babel.messages.extract import extract_from_file
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from order_flow.bootstrap import App
from tests.e2e.ui_support import Browser, on_hold_task, signed_in, user, web
from tests.integration.order_helpers import customer, order_body, product, submit
from tests.integration.test_invoicing import add_order, create_invoices

WEB = Path(__file__).resolve().parents[2] / "web"
CATALOG = WEB / "translations" / "zh" / "LC_MESSAGES"
#: The keywords of web/babel.cfg's extract command.
KEYWORDS = {"_": None, "gettext": None, "_l": None}


def ui_sources() -> list[Path]:
    """Every module of web/ui and every template: nothing may be left out."""
    return sorted((WEB / "ui").rglob("*.py")) + sorted((WEB / "templates").rglob("*.html"))


def catalog() -> dict[str, str]:
    with (CATALOG / "messages.po").open("rb") as f:
        return {m.id: m.string for m in read_po(f) if m.id and m.string}


def test_every_ui_string_has_a_chinese_translation_and_the_mo_is_current() -> None:
    found: dict[str, str] = {}
    for path in ui_sources():
        method = "python" if path.suffix == ".py" else "jinja2"
        for msg in extract_from_file(method, str(path), keywords=KEYWORDS):
            ids = msg[1] if isinstance(msg[1], tuple) else (msg[1],)
            for msgid in ids:
                if msgid:
                    found.setdefault(msgid, path.relative_to(WEB).as_posix())
    assert len(found) > 250
    assert any(p.name == "index.html" and p.parent.name == "supervisor" for p in ui_sources())
    translated = catalog()
    missing = {msgid: where for msgid, where in found.items() if msgid not in translated}
    assert missing == {}
    for msgid, text in translated.items():  # a placeholder lost in translation breaks at run time
        assert sorted(re.findall(r"%\(\w+\)s", msgid)) == sorted(re.findall(r"%\(\w+\)s", text))
    with (CATALOG / "messages.mo").open("rb") as f:
        compiled = {m.id: m.string for m in read_mo(f) if m.id}
    assert compiled == translated


def visible_text(page: str) -> str:
    page = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def english_leaks(text: str, msgids: list[str]) -> list[str]:
    return [m for m in msgids if m in text]


def test_every_page_renders_in_chinese_and_in_english(app: App) -> None:
    app.catalog.seed_tax_rates()
    alice = user(app, "alice")
    user(app, "bob")
    user(app, "boss", role="supervisor")
    task_id = on_hold_task(app, alice)
    buyer = customer(app, alice)
    goods = product(app, alice)
    order = app.orders.create(order_body(buyer.id, (goods.id, "2")), alice)
    submit(app, order, alice)
    (invoice_id,) = create_invoices(app, add_order(app, [("2", "50")], customer_id=buyer.id))
    site = web(app)
    clerk, boss = signed_in(site, "bob"), signed_in(site, "boss")
    pages: list[tuple[Browser, str]] = [
        (clerk, "/inbox/"),
        *((clerk, f"/inbox/?queue={q}") for q in ("group", "followup", "problem", "done")),
        (clerk, f"/tasks/{task_id}"),
        (clerk, "/orders/new"),
        (clerk, "/orders/import"),
        (clerk, f"/orders/{order.id}"),
        (boss, "/supervisor/"),
        (boss, "/supervisor/tasks"),
    ]
    pages.append((clerk, f"/invoices/{invoice_id}"))
    # Long English message ids: none may show on a Chinese page.
    msgids = [m for m in catalog() if " " in m and len(m) > 12 and "%(" not in m]
    for lang, marker in (("en", 'lang="en"'), ("zh_CN", 'lang="zh-CN"'), ("en", 'lang="en"')):
        for who, path in pages:
            sep = "&" if "?" in path else "?"
            page = who.page(f"{path}{sep}lang={lang}")
            assert marker in page, path
            leaks = english_leaks(visible_text(page), msgids)
            if lang == "zh_CN":
                assert leaks == [], path
            elif path in ("/inbox/", "/supervisor/"):
                assert leaks, path  # the check sees English where English is due
        preview = boss.post(
            f"/supervisor/reassign/preview?lang={lang}",
            {"task_ids": str(task_id), "to_user_id": str(alice.user_id)},
        )
        assert preview.status_code == 200 and marker in preview.get_data(as_text=True)
        missing = browser_404(clerk, lang)
        assert marker in missing
    zh = clerk.page(f"/tasks/{task_id}?lang=zh_CN")
    assert "领取" in zh or "完成" in zh
    assert "主管控制台" in boss.page("/supervisor/?lang=zh_CN")
    assert "Supervisor console" in boss.page("/supervisor/?lang=en")


def browser_404(b: Browser, lang: str) -> str:
    response = b.client.get(f"/tasks/999999?lang={lang}")
    assert response.status_code == 404
    return response.get_data(as_text=True)
