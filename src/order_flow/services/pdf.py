"""Invoice PDFs laid out like a Chinese VAT fapiao (增值税发票), rendered with reportlab.

The PDF is rendered in the ``invoice.issue`` step, in the transaction that takes the
number: a rollback undoes the number, and the retry renders the same bytes again
(reportlab's ``invariant`` mode fixes the dates and document id), so the stored
``pdf_sha256`` always describes the file. The file itself is written before the
commit (tmp + rename); after a rollback it is overwritten by whichever invoice
takes that number next.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy import select
from sqlalchemy.orm import Session

from order_flow.config import Settings
from order_flow.domain.capitals import amount_in_capitals
from order_flow.domain.enums import InvoiceType
from order_flow.errors import NotFoundError, ValidationError
from order_flow.store.invoices import Invoice, InvoiceLine
from order_flow.store.orders import Order

if TYPE_CHECKING:
    from order_flow.bootstrap import App

log = logging.getLogger(__name__)

#: Debian's fonts-wqy-zenhei; face 0 of the collection is WenQuanYi Zen Hei.
WQY_ZENHEI = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
#: reportlab's built-in Adobe CID font: needs no file, but is not embedded (viewers
#: substitute a local Song face).
FALLBACK_CID_FONT = "STSong-Light"
_RED = colors.HexColor("#b22222")
_INK = colors.HexColor("#7a4b12")  # the brown of printed fapiao frames


@dataclass(frozen=True)
class Party:
    """A buyer (购买方) or seller (销售方) as printed on the invoice."""

    name: str
    tax_id: str
    address_phone: str
    bank_account: str


def seller_of(settings: Settings) -> Party:
    return Party(
        settings.seller_name,
        settings.seller_tax_id,
        settings.seller_address_phone,
        settings.seller_bank_account,
    )


def buyer_of(invoice: Invoice) -> Party:
    """The buyer snapshot taken when the invoice was drafted."""
    return Party(
        invoice.buyer_name,
        invoice.buyer_tax_id,
        invoice.buyer_address_phone,
        invoice.buyer_bank_account,
    )


def pdf_dir(settings: Settings) -> Path:
    return Path(settings.pdf_dir) if settings.pdf_dir else settings.data_dir / "invoices"


# -- fonts -----------------------------------------------------------------------------


@lru_cache(maxsize=8)
def cjk_font(configured: str = "") -> str:
    """Register and return the font name to print Chinese with (once per process).

    ``configured`` (settings.pdf_font) wins; then WenQuanYi Zen Hei; then the CID font.
    """
    for path in (Path(configured), WQY_ZENHEI) if configured else (WQY_ZENHEI,):
        if not path.is_file():
            log.warning("invoice PDF font %s not found", path)
            continue
        name = f"CJK-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
        try:
            pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=0))
        except Exception as exc:  # noqa: BLE001 - an unusable font file: fall back
            log.warning("invoice PDF font %s cannot be used: %s", path, exc)
            continue
        log.info("invoice PDFs embed the TrueType font %s", path)
        return name
    pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_CID_FONT))
    log.info("invoice PDFs use reportlab's built-in CID font %s (not embedded)", FALLBACK_CID_FONT)
    return FALLBACK_CID_FONT


# -- rendering ---------------------------------------------------------------------------


def _plain(value: Decimal) -> str:
    """Quantities and unit prices without trailing zeros (fapiao print up to 8 places)."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


class _Styles:
    def __init__(self, font: str) -> None:
        self.font = font
        self.body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12)
        self.small = ParagraphStyle("small", parent=self.body, fontSize=7, leading=9)
        self.right = ParagraphStyle("right", parent=self.body, alignment=TA_RIGHT)
        self.label = ParagraphStyle("label", parent=self.body, textColor=_INK)
        self.centre = ParagraphStyle("centre", parent=self.label, alignment=TA_CENTER)
        self.title = ParagraphStyle(
            "title", parent=self.body, fontSize=20, leading=26, alignment=TA_CENTER,
            textColor=_INK,
        )  # fmt: skip
        self.red = ParagraphStyle("red", parent=self.title, fontSize=13, leading=17, textColor=_RED)

    def p(self, text: str, style: ParagraphStyle | None = None) -> Paragraph:
        """A paragraph of database text: always escaped, so it prints literally."""
        return Paragraph(escape(text), style or self.body)

    def lines(self, texts: Sequence[str], style: ParagraphStyle | None = None) -> Paragraph:
        """One paragraph, each text (or character of a str) escaped on its own line."""
        return Paragraph("<br/>".join(escape(t) for t in texts), style or self.body)


def _title(invoice: Invoice, st: _Styles) -> list[Flowable]:
    special = invoice.invoice_type == InvoiceType.SPECIAL
    out: list[Flowable] = [st.p("增值税专用发票" if special else "增值税普通发票", st.title)]
    if invoice.kind == "red":
        out.append(st.p("红字发票（销项负数）", st.red))
    return out


def _head(invoice: Invoice, issued_on: date | None, st: _Styles) -> Table:
    when = f"{issued_on.year}年{issued_on.month:02d}月{issued_on.day:02d}日" if issued_on else ""
    rows = [
        [st.p("发票号码:", st.label), st.p(invoice.display_number)],
        [st.p("开票日期:", st.label), st.p(when)],
    ]
    table = Table(rows, colWidths=[22 * mm, 60 * mm], hAlign="RIGHT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    return table


def _party(title: str, party: Party, st: _Styles, width: float) -> Table:
    rows = [
        ["", st.p("名      称:", st.label), st.p(party.name)],
        ["", st.p("纳税人识别号:", st.label), st.p(party.tax_id)],
        ["", st.p("地 址、电 话:", st.label), st.p(party.address_phone)],
        ["", st.p("开户行及账号:", st.label), st.p(party.bank_account)],
    ]
    rows[0][0] = st.lines(title, st.centre)
    table = Table(rows, colWidths=[10 * mm, 28 * mm, width - 38 * mm])
    table.setStyle(
        TableStyle(
            [
                ("SPAN", (0, 0), (0, -1)),
                ("BOX", (0, 0), (-1, -1), 0.8, _INK),
                ("LINEAFTER", (0, 0), (0, -1), 0.8, _INK),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def _lines_table(
    invoice: Invoice, lines: Sequence[InvoiceLine], st: _Styles, width: float
) -> Table:
    head = ["项目名称", "单位", "数量", "单价", "金额", "税率", "税额"]
    rows: list[list[Any]] = [[st.p(h, st.centre) for h in head]]
    for line in lines:
        name = [st.p(line.description)]
        if line.tax_code:
            name.append(st.p(f"税收分类编码 {line.tax_code}", st.small))
        rows.append(
            [
                name,
                st.p(line.unit),
                st.p(_plain(line.qty), st.right),
                st.p(_plain(line.unit_price), st.right),
                st.p(_money(line.net), st.right),
                st.p(line.tax_label or f"{_plain(line.tax_rate * 100)}%", st.right),
                st.p(_money(line.tax), st.right),
            ]
        )
    rows.append(
        [
            st.p("合      计", st.centre), "", "", "",
            st.p(f"¥{_money(invoice.total_net)}", st.right), "",
            st.p(f"¥{_money(invoice.total_tax)}", st.right),
        ]
    )  # fmt: skip
    fixed = [14, 22, 26, 30, 16, 26]
    widths = [width - sum(fixed) * mm] + [w * mm for w in fixed]
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.8, _INK),
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, _INK),
                ("LINEABOVE", (0, -1), (-1, -1), 0.5, _INK),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def _total(invoice: Invoice, st: _Styles, width: float) -> Table:
    capitals = amount_in_capitals(invoice.total_gross, negative_prefix="（负数）")
    rows = [
        [
            st.p("价税合计（大写）", st.label),
            st.p(capitals),
            st.p("（小写）", st.label),
            st.p(f"¥{_money(invoice.total_gross)}"),
        ]
    ]
    table = Table(rows, colWidths=[32 * mm, width - 92 * mm, 20 * mm, 40 * mm])
    table.setStyle(
        TableStyle([("BOX", (0, 0), (-1, -1), 0.8, _INK), ("VALIGN", (0, 0), (-1, -1), "MIDDLE")])
    )
    return table


def _remarks(invoice: Invoice, order_number: str, original_number: str) -> list[str]:
    parts = [f"订单号: {order_number}"] if order_number else []
    if invoice.kind == "red":
        parts.append(f"对应正数发票号码: {original_number}")
        if invoice.red_reason:
            parts.append(f"红冲原因: {invoice.red_reason}")
    return parts


def _seller_and_remarks(seller: Party, remarks: list[str], st: _Styles, width: float) -> Table:
    half = width * 0.62
    table = Table(
        [[_party("销售方", seller, st, half), st.lines("备注", st.centre), st.lines(remarks)]],
        colWidths=[half, 10 * mm, width - half - 10 * mm],
    )
    table.setStyle(
        TableStyle(
            [
                ("BOX", (1, 0), (-1, -1), 0.8, _INK),
                ("LINEAFTER", (1, 0), (1, -1), 0.8, _INK),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LEFTPADDING", (0, 0), (0, -1), 0),
                ("RIGHTPADDING", (0, 0), (0, -1), 0),
                ("TOPPADDING", (0, 0), (0, -1), 0),
                ("BOTTOMPADDING", (0, 0), (0, -1), 0),
            ]
        )
    )
    return table


def render_invoice_pdf(
    invoice: Invoice,
    lines: Sequence[InvoiceLine],
    seller: Party,
    buyer: Party,
    *,
    order_number: str = "",
    original_number: str = "",
    issued_on: date | None = None,
    font: str | None = None,
) -> bytes:
    """The invoice as PDF bytes; the same arguments always give the same bytes.

    ``original_number`` is the blue invoice a red one reverses; ``issued_on`` is the
    local 开票日期; ``font`` a name from :func:`cjk_font` (default: its choice).
    """
    st = _Styles(font or cjk_font())
    buf = io.BytesIO()
    page = landscape(A4)
    doc = SimpleDocTemplate(
        buf,
        pagesize=page,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"发票 {invoice.display_number}",
        author=seller.name,
        subject=f"订单 {order_number}" if order_number else "",
        invariant=1,
    )
    width = page[0] - 30 * mm
    story: list[Flowable] = [
        *_title(invoice, st),
        _head(invoice, issued_on, st),
        Spacer(1, 3 * mm),
        _party("购买方", buyer, st, width),
        _lines_table(invoice, lines, st, width),
        _total(invoice, st, width),
        _seller_and_remarks(seller, _remarks(invoice, order_number, original_number), st, width),
        Spacer(1, 3 * mm),
        st.p(f"开票人: {invoice.prepared_by}"),
    ]
    doc.build(story)
    return buf.getvalue()


# -- storing --------------------------------------------------------------------------------


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def invoice_pdf_bytes(session: Session, invoice: Invoice, app: App) -> bytes:
    """Render a numbered invoice with its order number, blue number and local issue date."""
    if invoice.number is None:
        raise ValidationError({"invoice_id": "an invoice has no PDF before it is issued"})
    settings = app.settings
    order_number = session.scalar(select(Order.number).where(Order.id == invoice.order_id))
    original = ""
    if invoice.original_id is not None:
        blue = session.get_one(Invoice, invoice.original_id)
        original = blue.display_number
    issued_on = None
    if invoice.issued_at is not None:
        issued_on = invoice.issued_at.astimezone(ZoneInfo(settings.timezone)).date()
    return render_invoice_pdf(
        invoice,
        invoice.lines,
        seller_of(settings),
        buyer_of(invoice),
        order_number=order_number or "",
        original_number=original,
        issued_on=issued_on,
        font=cjk_font(settings.pdf_font),
    )


def store_invoice_pdf(session: Session, invoice: Invoice, app: App) -> Path:
    """Render, write pdf_dir/<series>/<number>.pdf atomically, and set pdf_path and
    pdf_sha256 on the invoice (in the caller's transaction)."""
    data = invoice_pdf_bytes(session, invoice, app)
    path = pdf_dir(app.settings) / str(invoice.series) / f"{invoice.number:08d}.pdf"
    _write_atomically(path, data)
    invoice.pdf_path = str(path)
    invoice.pdf_sha256 = hashlib.sha256(data).hexdigest()
    session.flush()
    return path


def load_invoice_pdf(app: App, invoice_id: int) -> bytes:
    """The stored PDF of an issued invoice (for downloads and mail); rendered again when
    the file is missing or does not match its hash (red invoices are not stored)."""
    with app.engine.session_factory() as s:
        invoice = s.get(Invoice, invoice_id)
        if invoice is None:
            raise NotFoundError(f"invoice {invoice_id} does not exist")
        return pdf_of(s, invoice, app)


def pdf_of(session: Session, invoice: Invoice, app: App) -> bytes:
    """Like :func:`load_invoice_pdf`, for an invoice loaded in ``session``."""
    if invoice.pdf_path and invoice.pdf_sha256:
        try:
            data = Path(invoice.pdf_path).read_bytes()
        except OSError:
            data = b""
        if hashlib.sha256(data).hexdigest() == invoice.pdf_sha256:
            return data
        log.warning("PDF of invoice %s missing or changed; rendering again", invoice.id)
    return invoice_pdf_bytes(session, invoice, app)
