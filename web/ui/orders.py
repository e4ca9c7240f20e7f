"""Order entry and draft editing (from scratch, a template or a copy), order and invoice pages.

The form posts plain fields; blank line rows are dropped and the service's error
keys (``lines[0].qty``) are mapped back to the form row, so the message shows
next to the field the clerk typed in. Only the named fields are read.

Who may open an order: a supervisor, the sales group, whoever entered it, or a
clerk with a task on it. Invoices: a supervisor, finance, sales, or a task on it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, redirect, request, send_file, url_for
from flask_babel import gettext as _
from sqlalchemy import exists, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from order_flow.engine.actors import Actor
from order_flow.errors import ConflictError, NotFoundError, ValidationError
from order_flow.services.order_input import SIGNOFF_GROUPS
from order_flow.store.customers import Communication, Customer
from order_flow.store.invoices import Invoice
from order_flow.store.orders import Order, OrderTemplate
from order_flow.store.tables import candidates, tasks
from web.ui.core import current_actor, login_required_role, of, render
from web.ui.tasks import CHANNELS, diagram, load_subject, timeline

bp = Blueprint("orders", __name__)

MAX_ROWS = 40
BLANK_ROWS = 3
FIELDS = ("customer_id", "pricing", "priority", "promised_date", "customer_po", "notes")
LINE_FIELDS = ("product_id", "qty", "unit_price", "description")
_LINE_KEY = re.compile(r"lines\[(\d+)\]\.(\w+)")
RED_REASONS = ("WRONG_INVOICE", "GOODS_RETURNED", "SERVICE_TERMINATED", "SALES_ALLOWANCE")


# -- who may see what -------------------------------------------------------------------


def _has_task_for(s: Session, actor: Actor, instance_id: int | None) -> bool:
    if instance_id is None:
        return False
    offered = select(candidates.c.task_id).where(candidates.c.group_name.in_(sorted(actor.groups)))
    stmt = select(
        exists().where(
            tasks.c.instance_id == instance_id,
            (tasks.c.assignee_id == actor.user_id) | tasks.c.id.in_(offered),
        )
    )
    return bool(s.scalar(stmt))


def _may_see_order(s: Session, actor: Actor, order: Order) -> bool:
    return (
        actor.is_supervisor
        or "sales" in actor.groups
        or order.created_by == actor.name
        or _has_task_for(s, actor, order.instance_id)
    )


def _may_enter_orders(actor: Actor) -> bool:
    return actor.is_supervisor or "sales" in actor.groups


def _visible_order(s: Session, order_id: int, actor: Actor) -> Order:
    order = s.get(Order, order_id)
    if order is None or not _may_see_order(s, actor, order):
        raise NotFoundError(f"order {order_id} does not exist")
    return order


def _require_entry() -> Actor:
    actor = current_actor()
    if not _may_enter_orders(actor):
        abort(403)
    return actor


# -- the form -----------------------------------------------------------------------------


def form_to_data(form: Mapping[str, str]) -> tuple[dict[str, Any], list[int]]:
    """The order body the service takes, and for each of its lines the form row."""
    data: dict[str, Any] = {k: form.get(k, "").strip() for k in FIELDS}
    data["special"] = form.get("special") == "1"
    data["signoff_groups"] = [g for g in SIGNOFF_GROUPS if form.get(f"signoff_{g}") == "1"]
    lines, rows = [], []
    for i in range(MAX_ROWS):
        line = {k: form.get(f"line-{i}-{k}", "").strip() for k in LINE_FIELDS}
        if any(line.values()):
            lines.append({k: (v or None) for k, v in line.items()})
            rows.append(i)
    data["lines"] = lines
    return data, rows


def errors_to_form(errors: Mapping[str, str], rows: list[int]) -> dict[str, str]:
    out = {}
    for key, message in errors.items():
        m = _LINE_KEY.fullmatch(key)
        if m and int(m.group(1)) < len(rows):
            key = f"line-{rows[int(m.group(1))]}-{m.group(2)}"
        out[key] = message
    return out


def order_to_form(order: Order) -> dict[str, str]:
    values = {
        "customer_id": str(order.customer_id),
        "pricing": order.pricing,
        "priority": order.priority,
        "promised_date": order.promised_date.isoformat() if order.promised_date else "",
        "customer_po": order.customer_po or "",
        "notes": order.notes or "",
        "special": "1" if order.special else "",
    }
    for g in order.signoff_groups or []:
        values[f"signoff_{g}"] = "1"
    for i, ln in enumerate(order.lines):
        values[f"line-{i}-product_id"] = str(ln.product_id)
        values[f"line-{i}-qty"] = format(ln.qty.normalize(), "f")
        values[f"line-{i}-unit_price"] = format(ln.unit_price.normalize(), "f")
        values[f"line-{i}-description"] = ln.description or ""
    return values


def _row_count(values: Mapping[str, str], extra: int = 0) -> int:
    used = [i for i in range(MAX_ROWS) if any(values.get(f"line-{i}-{k}") for k in LINE_FIELDS)]
    return min(MAX_ROWS, (max(used) + 1 if used else 0) + BLANK_ROWS + extra)


def _form_page(
    values: Mapping[str, str],
    errors: Mapping[str, str] | None = None,
    order: Order | None = None,
    status: int = 200,
    extra_rows: int = 0,
) -> tuple[str, int]:
    app = of()
    customers, _total = app.customers.list(limit=500)
    products, _count = app.catalog.list_products(limit=500)
    with app.engine.session_factory() as s:
        templates = s.execute(
            select(OrderTemplate, Customer.name)
            .join(Customer, Customer.id == OrderTemplate.customer_id)
            .order_by(Customer.name, OrderTemplate.name)
            .limit(200)
        ).all()
    errors = dict(errors or {})
    known = set(FIELDS) | {"special", "signoff_groups", "lines"}
    other = {k: v for k, v in errors.items() if k not in known and not k.startswith("line-")}
    return render(
        "order_form.html",
        status,
        values=values,
        errors=errors,
        other_errors=other,
        order=order,
        customers=customers,
        products=products,
        templates=templates,
        rows=_row_count(values, extra_rows),
        signoff_groups=SIGNOFF_GROUPS,
        idem=values.get("idem") or uuid.uuid4().hex,
    )


@bp.get("/orders/new")
@login_required_role()
def new() -> tuple[str, int]:
    _require_entry()
    return _form_page({"priority": "normal", "pricing": "exclusive"})


@bp.post("/orders/new")
@login_required_role()
def create() -> BaseResponse | tuple[str, int]:
    actor = _require_entry()
    form = request.form
    values = {k: v for k, v in form.items() if k != "csrf_token"}
    if "add_rows" in form:
        return _form_page(values, extra_rows=BLANK_ROWS)
    data, rows = form_to_data(form)
    idem = form.get("idem", "")
    key = f"web:{actor.user_id}:{idem}" if re.fullmatch(r"[0-9a-f]{32}", idem) else None
    try:
        order = of().orders.create(data, actor, idempotency_key=key)
    except ValidationError as exc:
        return _form_page(values, errors_to_form(exc.errors, rows), status=422)
    flash(_("Draft %(number)s saved.", number=order.number), "success")
    return redirect(url_for("orders.edit", order_id=order.id))


@bp.route("/orders/<int:order_id>/edit", methods=["GET", "POST"])
@login_required_role()
def edit(order_id: int) -> BaseResponse | tuple[str, int]:
    actor = _require_entry()
    app = of()
    with app.engine.session_factory() as s:
        order = _visible_order(s, order_id, actor)
        state = app.orders.state_in(s, order)
    if state != "draft":
        flash(_("Only draft orders can be edited."), "error")
        return redirect(url_for("orders.show", order_id=order_id))
    if request.method == "GET":
        return _form_page({**order_to_form(order), "version": str(order.version)}, order=order)
    form = request.form
    values = {k: v for k, v in form.items() if k != "csrf_token"}
    if "add_rows" in form:
        return _form_page(values, order=order, extra_rows=BLANK_ROWS)
    data, rows = form_to_data(form)
    version = form.get("version", "")
    try:
        app.orders.update_draft(order_id, data, actor, int(version) if version.isdigit() else -1)
    except ValidationError as exc:
        return _form_page(values, errors_to_form(exc.errors, rows), order=order, status=422)
    except ConflictError:
        fresh = app.orders.get(order_id)
        flash(_("Someone changed this order meanwhile; here is the current version."), "error")
        return _form_page(
            {**order_to_form(fresh), "version": str(fresh.version)}, order=fresh, status=409
        )
    if "submit" in form:
        app.orders.submit(order_id, actor)
        flash(_("Order submitted."), "success")
        return redirect(url_for("orders.show", order_id=order_id))
    flash(_("Draft saved."), "success")
    return redirect(url_for("orders.edit", order_id=order_id))


@bp.post("/orders/<int:order_id>/submit")
@login_required_role()
def submit(order_id: int) -> BaseResponse:
    actor = _require_entry()
    with of().engine.session_factory() as s:
        _visible_order(s, order_id, actor)
    version = request.form.get("version", "")
    of().orders.submit(order_id, actor, int(version) if version.isdigit() else None)
    flash(_("Order submitted."), "success")
    return redirect(url_for("orders.show", order_id=order_id))


@bp.post("/orders/<int:order_id>/copy")
@login_required_role()
def copy(order_id: int) -> BaseResponse:
    actor = _require_entry()
    with of().engine.session_factory() as s:
        _visible_order(s, order_id, actor)
    try:
        order = of().orders.copy(order_id, actor)
    except ValidationError as exc:
        flash("; ".join(f"{k}: {_(v)}" for k, v in exc.errors.items()), "error")
        return redirect(url_for("orders.show", order_id=order_id))
    flash(_("Copied into draft %(number)s.", number=order.number), "success")
    return redirect(url_for("orders.edit", order_id=order.id))


@bp.post("/orders/from-template/<int:template_id>")
@login_required_role()
def from_template(template_id: int) -> BaseResponse:
    actor = _require_entry()
    try:
        order = of().orders.from_template(template_id, actor)
    except ValidationError as exc:
        flash("; ".join(f"{k}: {_(v)}" for k, v in exc.errors.items()), "error")
        return redirect(url_for("orders.new"))
    flash(_("Draft %(number)s made from the template.", number=order.number), "success")
    return redirect(url_for("orders.edit", order_id=order.id))


# -- order and invoice pages ---------------------------------------------------------------


@bp.get("/orders/<int:order_id>")
@login_required_role()
def show(order_id: int) -> tuple[str, int]:
    actor = current_actor()
    app = of()
    with app.engine.session_factory() as s:
        order = _visible_order(s, order_id, actor)
        if order.instance_id is None:
            raise NotFoundError(f"order {order_id} does not exist")
        subject = load_subject(s, order.instance_id)
        svg = diagram(s, subject)
        events = timeline(s, subject)
        comms = _comms(s, order.customer_id)
        invoices = list(s.scalars(select(Invoice).where(Invoice.order_id == order.id)))
        open_tasks = list(
            s.execute(
                select(tasks.c.id, tasks.c.title).where(
                    tasks.c.instance_id == order.instance_id, tasks.c.status == "open"
                )
            )
        )
    return render(
        "order.html",
        subject=subject,
        order=order,
        svg=svg,
        events=events,
        comms=comms,
        invoices=invoices,
        open_tasks=open_tasks,
        progress=app.orders.progress(order),
        channels=CHANNELS,
        may_enter=_may_enter_orders(actor),
    )


def _comms(s: Session, customer_id: int) -> list[Communication]:
    return list(
        s.scalars(
            select(Communication)
            .where(Communication.customer_id == customer_id)
            .order_by(Communication.at.desc(), Communication.id.desc())
            .limit(50)
        )
    )


def _visible_invoice(s: Session, invoice_id: int, actor: Actor) -> Invoice:
    invoice = s.get(Invoice, invoice_id)
    if invoice is None or not (
        actor.is_supervisor
        or actor.in_any_group(("finance", "sales"))
        or _has_task_for(s, actor, invoice.instance_id)
    ):
        raise NotFoundError(f"invoice {invoice_id} does not exist")
    return invoice


@bp.get("/invoices/<int:invoice_id>")
@login_required_role()
def invoice(invoice_id: int) -> tuple[str, int]:
    actor = current_actor()
    with of().engine.session_factory() as s:
        inv = _visible_invoice(s, invoice_id, actor)
        order = s.get(Order, inv.order_id)
        assert order is not None  # a foreign key
        instance_id = inv.instance_id or order.instance_id
        assert instance_id is not None
        subject = load_subject(s, instance_id)
        if inv.instance_id is None:  # a red invoice has no lifecycle of its own
            subject = type(subject)(subject.instance, "", order, inv, subject.customer)
        comms = _comms(s, order.customer_id)
    return render(
        "invoice.html",
        subject=subject,
        invoice=inv,
        comms=comms,
        channels=CHANNELS,
        reasons=RED_REASONS,
    )


@bp.get("/invoices/<int:invoice_id>/pdf")
@login_required_role()
def invoice_pdf(invoice_id: int) -> BaseResponse:
    with of().engine.session_factory() as s:
        inv = _visible_invoice(s, invoice_id, current_actor())
    if not inv.pdf_path or not Path(inv.pdf_path).is_file():
        raise NotFoundError(f"invoice {invoice_id} has no PDF")
    name = f"{inv.display_number or inv.id}.pdf"
    return send_file(inv.pdf_path, mimetype="application/pdf", download_name=name)


@bp.post("/invoices/<int:invoice_id>/red")
@login_required_role()
def request_red(invoice_id: int) -> BaseResponse:
    actor = current_actor()
    with of().engine.session_factory() as s:
        _visible_invoice(s, invoice_id, actor)
    amount = request.form.get("amount", "").strip() or None
    try:
        of().invoices.request_red(
            invoice_id,
            actor,
            request.form.get("reason_code", ""),
            amount,
            request.form.get("comment", ""),
        )
        flash(_("Red-letter request sent for review."), "success")
    except ValidationError as exc:
        for field, message in exc.errors.items():
            flash(f"{field}: {_(message)}", "error")
    return redirect(url_for("orders.invoice", invoice_id=invoice_id))
