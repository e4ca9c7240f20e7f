"""Reports: a page per group (sales, invoices, operations, demand and stock), each report
as a server-drawn SVG chart and a table, filters for dates, customer and product, and
``?format=csv`` (or ``json``) on every single-report page.

Who sees what: every signed-in user (clerks included) sees sales, invoices and demand;
they are the clerks' own working figures. The operations group (throughput per clerk,
SLA breaches, backlog) is about the team's performance and is for supervisors and admins
only: a clerk gets 403 there and no link to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import Blueprint, Response, abort, request
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from order_flow.errors import ValidationError
from order_flow.services.charts import Series, chart
from order_flow.services.reports import (
    GROUPS,
    REPORTS,
    Filters,
    ReportResult,
    ReportService,
    Spec,
    in_group,
    to_csv,
    to_json,
)
from order_flow.services.reports_invoices import AGEING
from order_flow.services.reports_ops import SEGMENTS
from order_flow.store.catalog import Product
from order_flow.store.customers import Customer
from web.ui.core import current_actor, login_required_role, of, render

bp = Blueprint("reports", __name__, url_prefix="/reports")
#: Groups only supervisors (and admins) may open.
SUPERVISOR_GROUPS = frozenset({"operations"})
#: A bar chart draws at most this many rows (the table has them all).
MAX_BARS = 40
#: Row labels the reports write themselves (English msgids); data stays as it is.
FIXED_LABELS = frozenset(
    {"Total", "Pending", "Issued", "Problem", "other"}
    | {label for _k, label, _lo, _hi in AGEING}
    | {label for _k, label in SEGMENTS}
)


@dataclass
class FilterForm:
    """The query string as typed, and the field errors found in it."""

    raw: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    filters: Filters | None = None

    def query(self, **extra: str) -> dict[str, str]:
        return {**{k: v for k, v in self.raw.items() if v}, **extra}


def _parse() -> FilterForm:
    raw = {k: request.args.get(k, "").strip() for k in ("from", "to", "customer", "product")}
    form = FilterForm(raw)
    values: dict[str, Any] = {}
    for key, name in (("from", "date_from"), ("to", "date_to")):
        if raw[key]:
            try:
                values[name] = date.fromisoformat(raw[key])
            except ValueError:
                form.errors[key] = _("Give a date as YYYY-MM-DD.")
    for key, name in (("customer", "customer_id"), ("product", "product_id")):
        if raw[key]:
            if raw[key].isdigit() and int(raw[key]) > 0:
                values[name] = int(raw[key])
            else:
                form.errors[key] = _("Choose one from the list.")
    if not form.errors:
        try:
            form.filters = ReportService(of()).filters(**values)
        except ValidationError as exc:
            names = {"date_from": "from", "date_to": "to", "customer_id": "customer"}
            for k in exc.errors:
                form.errors[names.get(k, k)] = _("The start date is after the end date.")
    return form


def _allowed(group: str) -> bool:
    return group not in SUPERVISOR_GROUPS or current_actor().has_role("supervisor")


def visible_groups() -> list[tuple[str, str]]:
    return [(key, title) for key, title in GROUPS if _allowed(key)]


def _choices() -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    with Session(of().db) as s:
        customers = [
            (int(i), f"{code} {name}")
            for i, code, name in s.execute(
                select(Customer.id, Customer.code, Customer.name).order_by(Customer.code)
            )
        ]
        products = [
            (int(i), f"{sku} {name}")
            for i, sku, name in s.execute(
                select(Product.id, Product.sku, Product.name).order_by(Product.sku)
            )
        ]
    return customers, products


def cell(value: Any, kind: str) -> str:
    """A table cell for people: money with thousands, per cent with a sign."""
    if value is None:
        return ""
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "pct":
        return f"{value}%"
    if kind == "text" and value in FIXED_LABELS:
        return _(value)
    return str(value)


def _chart(spec: Spec, result: ReportResult) -> Markup:
    # Bars past the first MAX_BARS are unreadable; those rows are sorted largest first.
    n = len(result.rows) if spec.chart == "line" else MAX_BARS
    labels = [str(r[0]) for r in result.rows[:n]]
    keys = [c.key for c in result.columns]
    series = []
    for key in spec.series:
        column = result.columns[keys.index(key)]
        series.append(Series(_(column.label), result.column(key)[:n]))
    svg = chart(spec.chart, _(spec.title), labels, series, empty=_("No data for these filters"))
    return Markup(svg)  # noqa: S704 - charts.py escapes every piece of text it draws


@dataclass(frozen=True)
class Shown:
    spec: Spec
    result: ReportResult
    svg: Markup


def _show(spec: Spec, filters: Filters) -> Shown:
    result = ReportService(of()).run(spec.name, filters)
    return Shown(spec, result, _chart(spec, result))


def _page(group: str, specs: list[Spec], template: str, **ctx: Any) -> tuple[str, int]:
    form = _parse()
    shown = [] if form.filters is None else [_show(spec, form.filters) for spec in specs]
    customers, products = _choices()
    return render(
        template,
        status=422 if form.errors else 200,
        group=group,
        group_title=dict(GROUPS)[group],
        groups=visible_groups(),
        form=form,
        shown=shown,
        customers=customers,
        products=products,
        cell=cell,
        **ctx,
    )


@bp.get("/")
@login_required_role()
def index() -> tuple[str, int]:
    groups = [(key, title, in_group(key)) for key, title in visible_groups()]
    return render("reports/index.html", groups=groups)


@bp.get("/<group>")
@login_required_role()
def group_page(group: str) -> tuple[str, int]:
    if group not in dict(GROUPS):
        abort(404)
    if not _allowed(group):
        abort(403)
    return _page(group, in_group(group), "reports/group.html")


@bp.get("/<group>/<name>")
@login_required_role()
def report_page(group: str, name: str) -> tuple[str, int] | Response:
    spec = REPORTS.get(name)
    if spec is None or spec.group != group:
        abort(404)
    if not _allowed(group):
        abort(403)
    fmt = request.args.get("format", "html")
    if fmt not in ("html", "csv", "json"):
        abort(400)
    if fmt == "html":
        return _page(group, [spec], "reports/group.html", single=spec)
    form = _parse()
    if form.filters is None:
        abort(400)
    result = ReportService(of()).run(name, form.filters)
    if fmt == "json":
        return Response(to_json(result), mimetype="application/json")
    body = "\ufeff" + to_csv(result, labels=_)  # the BOM makes Excel read UTF-8
    stamp = "-".join(v for v in (form.raw["from"], form.raw["to"]) if v)
    filename = f"{name}{'-' + stamp if stamp else ''}.csv"
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
