"""Invoice PDFs: what they print, escaping, determinism, red invoices, fonts, rollback."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.domain.capitals import amount_in_capitals
from order_flow.domain.enums import RedReason
from order_flow.engine.steps import drain, run_job
from order_flow.services import invoicing, pdf
from order_flow.store.invoices import Invoice, InvoiceCounter
from order_flow.store.tables import outbox
from tests.conftest import service_missing
from tests.integration.order_helpers import People, customer, people, product, submit

TAX_CODE = "1090101010000000000"


def issue_invoice(app: App, who: People, qty: str = "10", **customer_fields: Any) -> Invoice:
    """Through the real services: customer, product and stock, an order from a template,
    submit, then the worker runs everything (checks, invoicing, issue, notify)."""
    buyer = customer(app, who.alice, **{"email": "buyer@example.com", **customer_fields})
    item = product(app, who.alice, price="100", on_hand="0", tax_code=TAX_CODE, unit="台")
    app.catalog.receive(item.id, "50", who.alice)
    template = app.orders.create_template(
        buyer.id, "常用", [{"product_id": item.id, "qty": qty}], who.alice
    )
    order = app.orders.from_template(template.id, who.alice)
    assert submit(app, order, who.alice) == "approved"
    drain(app)
    (listed,) = app.invoices.list(order_id=order.id)
    return app.invoices.get(listed.invoice.id)


def text_of(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def render(app: App, invoice_id: int) -> bytes:
    with app.engine.session_factory() as s:
        return pdf.invoice_pdf_bytes(s, s.get_one(Invoice, invoice_id), app)


@pytest.fixture
def who(app: App) -> People:
    return people(app)


@pytest.fixture
def fresh_fonts() -> Iterator[None]:
    pdf.cjk_font.cache_clear()
    yield
    pdf.cjk_font.cache_clear()


def test_an_issued_invoice_is_stored_with_its_hash_and_prints_what_a_fapiao_prints(
    app: App, who: People
) -> None:
    invoice = issue_invoice(app, who)
    assert invoice.pdf_path is not None and invoice.series is not None
    path = Path(invoice.pdf_path)
    assert path == app.settings.data_dir / "invoices" / invoice.series / "00000001.pdf"
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == invoice.pdf_sha256
    text = text_of(data)
    order = app.orders.get(invoice.order_id)
    for expected in (
        "增值税普通发票",
        invoice.display_number,
        invoice.buyer_name,
        app.settings.seller_name,
        app.settings.seller_tax_id,
        "价税合计",
        amount_in_capitals("1130.00"),
        "¥1130.00",
        "¥1000.00",
        "¥130.00",
        "13%",
        "台",
        TAX_CODE,
        f"订单号: {order.number}",
    ):
        assert expected in text, expected
    assert amount_in_capitals("1130.00") == "壹仟壹佰叁拾圆整"


def test_a_special_invoice_is_titled_as_such_and_prints_the_buyer_tax_details(
    app: App, who: People
) -> None:
    invoice = issue_invoice(
        app, who, invoice_type="special", address="福州市台江区2号", phone="0591-7654321",
        bank="建设银行福州分行", account="3505000000000000",
    )  # fmt: skip
    text = text_of(Path(str(invoice.pdf_path)).read_bytes())
    assert "增值税专用发票" in text
    for value in (invoice.buyer_tax_id, "福州市台江区2号", "3505000000000000"):
        assert value in text


@pytest.mark.parametrize(
    "name", ["<script>alert(1)</script>公司", '"><img src=x onerror=alert(1)>']
)
def test_a_buyer_name_with_markup_prints_literally(app: App, who: People, name: str) -> None:
    invoice = issue_invoice(app, who, name=name)
    assert invoice.buyer_name == name
    assert name in text_of(Path(str(invoice.pdf_path)).read_bytes())


def test_the_same_invoice_renders_to_the_same_bytes_every_time(app: App, who: People) -> None:
    invoice = issue_invoice(app, who)
    first, second = render(app, invoice.id), render(app, invoice.id)
    assert first == second
    assert hashlib.sha256(first).hexdigest() == invoice.pdf_sha256


def test_a_red_invoice_is_marked_negative_and_names_the_blue_invoice(app: App, who: People) -> None:
    blue = issue_invoice(app, who)
    app.invoices.request_red(blue.id, who.boss, RedReason.GOODS_RETURNED, "113.00", "退一台")
    red = app.invoices.approve_red(blue.id, who.boss, "同意")
    text = text_of(render(app, red.id))
    assert "红字" in text and "负数" in text
    assert f"对应正数发票号码: {blue.display_number}" in text
    assert "红冲原因: 销货退回" in text
    assert "¥-113.00" in text
    assert "（负数）壹佰壹拾叁圆整" in text


def test_a_crash_after_rendering_rolls_the_number_back_and_the_retry_writes_the_same_file(
    app: App, who: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored: list[bytes] = []
    real = pdf.store_invoice_pdf

    def store_then_crash(session: Any, invoice: Invoice, app_: App) -> Path:
        path = real(session, invoice, app_)
        stored.append(path.read_bytes())
        raise RuntimeError("worker died after rendering")

    monkeypatch.setattr(invoicing.pdf, "store_invoice_pdf", store_then_crash)
    with pytest.raises(RuntimeError):
        issue_invoice(app, who)
    with app.engine.session_factory() as s:
        assert s.scalars(select(Invoice.number)).all() == [None]
        assert s.scalar(select(InvoiceCounter.next_number)) in (None, 1)
        job_id = s.scalar(select(outbox.c.id).where(outbox.c.step == "invoice.issue"))
    monkeypatch.setattr(invoicing.pdf, "store_invoice_pdf", real)
    run_job(app, int(job_id or 0))
    drain(app)
    with app.engine.session_factory() as s:
        invoice = s.scalars(select(Invoice)).one()
    assert invoice.number == 1
    assert Path(str(invoice.pdf_path)).read_bytes() == stored[0]


def test_without_a_truetype_font_the_builtin_cid_font_still_prints_chinese(
    app: App, who: People, fresh_fonts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoice = issue_invoice(app, who)
    monkeypatch.setattr(pdf, "WQY_ZENHEI", Path("/nonexistent/wqy-zenhei.ttc"))
    assert pdf.cjk_font("/nonexistent/font.ttf") == pdf.FALLBACK_CID_FONT
    with app.engine.session_factory() as s:
        inv = s.get_one(Invoice, invoice.id)
        data = pdf.render_invoice_pdf(
            inv, inv.lines, pdf.seller_of(app.settings), pdf.buyer_of(inv),
            font=pdf.FALLBACK_CID_FONT,
        )  # fmt: skip
    text = text_of(data)
    assert "价税合计" in text and invoice.display_number in text
    assert b"FontFile2" not in data  # nothing embedded: the viewer supplies the face


def test_a_configured_font_file_is_embedded(fresh_fonts: None) -> None:
    if not pdf.WQY_ZENHEI.is_file():
        service_missing("the CJK font (Debian fonts-wqy-zenhei)", pdf.WQY_ZENHEI)
    assert pdf.cjk_font(str(pdf.WQY_ZENHEI)).startswith("CJK-")
