"""`order-flow report NAME --from YYYY-MM-DD --to YYYY-MM-DD [--customer ID] [--product ID]
--format table|csv|json`: any report of services.reports on the command line.

Bad input (an unknown NAME, a malformed or reversed date, an id below 1) is a usage
error naming the option: exit status 2, nothing printed on stdout.
"""

from __future__ import annotations

import sys
from datetime import date, datetime

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from order_flow.bootstrap import bootstrap
from order_flow.config import Settings
from order_flow.errors import ValidationError
from order_flow.services.reports import REPORTS, ReportService, cell_text, to_csv, to_json

FORMATS = ("table", "csv", "json")
#: Which option each service field error is about.
_OPTIONS = {
    "date_from": "--from",
    "date_to": "--to",
    "customer_id": "--customer",
    "product_id": "--product",
    "name": "NAME",
}


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date like 2026-03-31") from None


def _name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value not in REPORTS:
        known = ", ".join(REPORTS)
        raise click.BadParameter(f"no report '{value}'; choose one of: {known}")
    return value


@click.command("report")
@click.argument("name", callback=_name, metavar="NAME")
@click.option("--from", "date_from", callback=_day, metavar="YYYY-MM-DD", help="first day")
@click.option("--to", "date_to", callback=_day, metavar="YYYY-MM-DD", help="last day")
@click.option("--customer", "customer_id", type=click.IntRange(min=1), help="customer id")
@click.option("--product", "product_id", type=click.IntRange(min=1), help="product id")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def report(
    name: str,
    date_from: date | None,
    date_to: date | None,
    customer_id: int | None,
    product_id: int | None,
    fmt: str,
) -> None:
    """Print report NAME (dates are local days, both inclusive).

    \b
    Reports:"""  # the list is appended below
    if date_from and date_to and date_from > date_to:
        raise click.BadParameter("is after --to", param_hint="'--from'")
    app = bootstrap(Settings.from_env())
    try:
        service = ReportService(app)
        try:
            result = service.run(name, service.filters(date_from, date_to, customer_id, product_id))
        except ValidationError as exc:
            field, message = next(iter(exc.errors.items()))
            raise click.BadParameter(
                message, param_hint=f"'{_OPTIONS.get(field, field)}'"
            ) from None
    finally:
        app.close()
    if fmt == "csv":
        sys.stdout.write(to_csv(result))
    elif fmt == "json":
        sys.stdout.write(to_json(result) + "\n")
    else:
        table = Table(title=name)
        for c in result.columns:
            table.add_column(c.label, justify="left" if c.kind == "text" else "right")
        for row in result.rows:
            table.add_row(
                *(Text(cell_text(v, c)) for v, c in zip(row, result.columns, strict=True))
            )
        if result.totals is not None:
            table.add_row(
                *(
                    Text(cell_text(v, c))
                    for v, c in zip(result.totals, result.columns, strict=True)
                ),
                style="bold",
            )
        Console(width=160).print(table)


report.help = (report.help or "") + " " + ", ".join(REPORTS)
