"""Reports for clerks and supervisors: the registry, the service, and CSV / JSON output.

Each report is a function ``(session, Filters) -> ReportResult`` computed with aggregate
SQL (GROUP BY in the database; Python only touches the aggregated rows). They live in
reports_sales, reports_invoices, reports_ops and reports_stock; this module names them,
groups them for the web pages, and says how each is charted.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from order_flow.domain.text import neutralize_csv_cell
from order_flow.errors import ValidationError
from order_flow.services import reports_invoices as inv
from order_flow.services import reports_ops as ops
from order_flow.services import reports_sales as sales
from order_flow.services import reports_stock as stock
from order_flow.services.reports_base import Column, Filters, ReportResult

if TYPE_CHECKING:
    from order_flow.bootstrap import App

__all__ = ["REPORTS", "GROUPS", "Filters", "ReportResult", "ReportService", "Spec"]

#: PostgreSQL work_mem of a report's transaction (hash aggregates and sorts in memory).
REPORT_WORK_MEM = "64MB"

ReportFn = Callable[[Session, Filters], ReportResult]


@dataclass(frozen=True)
class Spec:
    """A report: its function, page group, title (English msgid) and chart.

    ``chart`` is bar, line or stacked; the x axis is the first column, the series are
    the columns named in ``series``.
    """

    name: str
    group: str
    title: str
    fn: ReportFn
    chart: str
    series: tuple[str, ...]
    note: str = ""


#: Page groups, in menu order: (key, title).
GROUPS = (
    ("sales", "Sales"),
    ("invoices", "Invoices"),
    ("operations", "Operations"),
    ("demand", "Demand and stock"),
)

_SPECS = (
    Spec("sales-by-day", "sales", "Sales by day", sales.sales_by_day, "line", ("gross",)),
    Spec("sales-by-week", "sales", "Sales by week", sales.sales_by_week, "bar", ("gross",)),
    Spec("sales-by-month", "sales", "Sales by month", sales.sales_by_month, "bar", ("net", "tax")),
    Spec(
        "sales-by-customer",
        "sales",
        "Sales by customer",
        sales.sales_by_customer,
        "bar",
        ("gross",),
    ),
    Spec(
        "sales-by-product", "sales", "Sales by product", sales.sales_by_product, "bar", ("gross",)
    ),
    Spec(
        "sales-by-salesperson",
        "sales",
        "Sales by salesperson",
        sales.sales_by_salesperson,
        "bar",
        ("gross",),
    ),  # fmt: skip
    Spec("top-customers", "sales", "Top customers", sales.top_customers, "bar", ("gross",)),
    Spec("top-products", "sales", "Top products", sales.top_products, "bar", ("gross",)),
    Spec(
        "average-order-value",
        "sales",
        "Average order value",
        sales.average_order_value,
        "line",
        ("average",),
    ),  # fmt: skip
    Spec("tax-by-rate", "sales", "Tax by rate", sales.tax_by_rate, "stacked", ("net", "tax")),
    Spec(
        "invoice-buckets",
        "invoices",
        "Invoice buckets",
        inv.invoice_buckets,
        "bar",
        ("amount",),
        "An overdue invoice counts in Issued and in Problem.",
    ),  # fmt: skip
    Spec(
        "receivables-ageing",
        "invoices",
        "Receivables ageing",
        inv.receivables_ageing,
        "bar",
        ("outstanding",),
        "As of the end date of the range, else today.",
    ),  # fmt: skip
    Spec(
        "overdue-by-customer",
        "invoices",
        "Overdue invoices by customer",
        inv.overdue_by_customer,
        "bar",
        ("outstanding",),
    ),  # fmt: skip
    Spec(
        "red-by-reason",
        "invoices",
        "Red-letter invoices by reason",
        inv.red_by_reason,
        "bar",
        ("count",),
    ),  # fmt: skip
    Spec(
        "throughput-by-step",
        "operations",
        "Throughput by step",
        ops.throughput_by_step,
        "stacked",
        ("by_people", "by_system"),
    ),  # fmt: skip
    Spec(
        "throughput-by-clerk",
        "operations",
        "Throughput by clerk",
        ops.throughput_by_clerk,
        "stacked",
        ("transitions", "tasks"),
    ),  # fmt: skip
    Spec("cycle-time", "operations", "Cycle time", ops.cycle_time, "bar", ("median_h", "p90_h")),
    Spec("sla-breach", "operations", "SLA breach rate", ops.sla_breach, "bar", ("rate",)),
    Spec("hold-reasons", "operations", "On-hold reasons", ops.hold_reasons, "bar", ("holds",)),
    Spec(
        "backlog",
        "operations",
        "Backlog by state and age",
        ops.backlog,
        "stacked",
        tuple(k for k, _l, _a, _b in ops.BACKLOG_AGES),
    ),  # fmt: skip
    Spec("first-pass", "operations", "First-pass rate", ops.first_pass, "line", ("rate",)),
    Spec(
        "short-products", "demand", "Products often short", stock.short_products, "bar", ("lines",)
    ),  # fmt: skip
    Spec("backorder-value", "demand", "Backorder value", stock.backorder_value, "bar", ("value",)),
    Spec(
        "stock-turnover",
        "demand",
        "Stock turnover",
        stock.stock_turnover,
        "bar",
        ("turnover",),
        "Delivered in the range divided by today's stock on hand (no stock history is kept).",
    ),  # fmt: skip
)

#: Every report by name, in page order.
REPORTS: dict[str, Spec] = {s.name: s for s in _SPECS}


def in_group(group: str) -> list[Spec]:
    return [s for s in _SPECS if s.group == group]


class ReportService:
    def __init__(self, app: App) -> None:
        self.app = app

    def filters(
        self,
        date_from: date | None = None,
        date_to: date | None = None,
        customer_id: int | None = None,
        product_id: int | None = None,
    ) -> Filters:
        """Filters in the business time zone, as of the app's clock; checked."""
        errors: dict[str, str] = {}
        if date_from and date_to and date_from > date_to:
            errors["date_from"] = "must not be after the end date"
        for key, value in (("customer_id", customer_id), ("product_id", product_id)):
            if value is not None and value < 1:
                errors[key] = "must be a positive id"
        if errors:
            raise ValidationError(errors)
        return Filters(
            date_from, date_to, customer_id, product_id,
            tz=self.app.settings.timezone, now=self.app.engine.clock(),
        )  # fmt: skip

    def run(self, name: str, filters: Filters) -> ReportResult:
        spec = REPORTS.get(name)
        if spec is None:
            raise ValidationError({"name": f"unknown report '{name}'"})
        with Session(self.app.db) as s:
            if s.get_bind().dialect.name == "postgresql":
                # Group-bys over a million rows spill to disk at the default 4 MB.
                s.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
                s.execute(text("SET LOCAL jit = off"))
            return spec.fn(s, filters)


# -- output ---------------------------------------------------------------------------


def cell_text(value: Any, column: Column) -> str:
    """A cell as plain text (CSV and the CLI table): full precision, no grouping."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def to_csv(result: ReportResult, labels: Callable[[str], str] = str) -> str:
    """Header, rows, totals; every text cell passed through neutralize_csv_cell."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")
    out.writerow([neutralize_csv_cell(labels(c.label)) for c in result.columns])
    body = list(result.rows)
    if result.totals is not None:
        body.append(tuple(labels(v) if i == 0 else v for i, v in enumerate(result.totals)))
    for row in body:
        out.writerow(
            [neutralize_csv_cell(cell_text(v, c)) for v, c in zip(row, result.columns, strict=True)]
        )
    return buf.getvalue()


def to_json(result: ReportResult) -> str:
    """{"report", "columns", "rows": [{key: value}], "totals"}; Decimals as strings."""

    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return f"{value:f}"
        if isinstance(value, datetime | date):
            return value.isoformat()
        return value

    keys = [c.key for c in result.columns]
    doc = {
        "report": result.name,
        "columns": [{"key": c.key, "label": c.label, "kind": c.kind} for c in result.columns],
        "rows": [{k: plain(v) for k, v in zip(keys, r, strict=True)} for r in result.rows],
        "totals": None
        if result.totals is None
        else {k: plain(v) for k, v in zip(keys, result.totals, strict=True)},
    }
    return json.dumps(doc, ensure_ascii=False, indent=2)
