"""`order-flow import orders FILE [--rejects FILE] [--as USER]`: bulk order intake.

Good orders are created and submitted, a chunk per transaction; bad rows are listed
with row, column and reason (and written to ``--rejects`` to fix and import again);
orders already in the database are counted as already imported. Running the same
command again after a crash finishes the rest: no PO is imported twice.

Exit status: 0 when every row was imported or already there, 1 when some rows were
rejected, 2 for a file that cannot be read at all (nothing written).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from order_flow.bootstrap import App, bootstrap
from order_flow.config import Settings
from order_flow.engine.actors import Actor
from order_flow.errors import NotFoundError, ValidationError
from order_flow.services.import_files import count_rows
from order_flow.services.importing import CHUNK_ORDERS, ImportReport, ImportService
from order_flow.services.users import actor_of

#: Rejected rows printed on the terminal; the rejects file has all of them.
SHOWN = 20
OPERATOR = Actor(name="cli", role="admin")


class _Rate(ProgressColumn):
    """Rows per second since the start (steadier than rich's moving window)."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time or task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.0f} rows/s", style="progress.data.speed")


@click.group("import")
def import_group() -> None:
    """Bulk intake from files."""


@import_group.command("orders")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the rejected rows here (CSV: the original columns + row, column, reason).",
)
@click.option("--as", "username", help="Import as this user (default: the cli operator).")
@click.option(
    "--chunk",
    type=click.IntRange(min=1, max=5000),
    default=CHUNK_ORDERS,
    show_default=True,
    help="Orders per transaction.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def import_orders(
    path: Path, rejects_path: Path | None, username: str | None, chunk: int, quiet: bool
) -> None:
    """Import orders from a CSV or XLSX file with Chinese or English headers.

    \b
    Columns (either name): 客户/customer (code or name), 客户订单号/customer_po,
    商品编码/sku, 数量/quantity; optional 单价/unit_price, 紧急/urgent (是/否),
    优先级/priority, 交货日期/promised_date, 备注/note, 计价方式/pricing,
    品名/description. Rows with the same customer and PO, next to each other,
    are one order's lines."""
    console, err = Console(), Console(stderr=True)
    app = bootstrap(Settings.from_env())
    try:
        actor = _actor(app, username)
        service = ImportService(app, chunk_orders=chunk)
        progress = Progress(
            TextColumn("[bold]importing[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            _Rate(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            disable=quiet,
        )
        out = rejects_path.open("w", encoding="utf-8-sig", newline="") if rejects_path else None
        try:
            with progress:
                bar = progress.add_task("rows", total=count_rows(path))
                report = service.import_file(
                    path,
                    actor,
                    rejects=out,
                    on_progress=lambda n: progress.update(bar, completed=n),
                )
        except ValidationError as exc:
            for field, message in exc.errors.items():
                err.print(f"[red]error:[/red] {path}: {field}: {message}", highlight=False)
            err.print("nothing was imported")
            sys.exit(2)
        finally:
            if out is not None:
                out.close()
    finally:
        app.close()
    _summary(console, report, rejects_path)
    sys.exit(1 if report.rows_rejected else 0)


def _actor(app: App, username: str | None) -> Actor:
    if not username:
        return OPERATOR
    try:
        user = app.users.get(username)
    except NotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="'--as'") from None
    if not user.active:
        raise click.BadParameter(f"user '{username}' is disabled", param_hint="'--as'")
    return actor_of(user)


def _summary(console: Console, report: ImportReport, rejects_path: Path | None) -> None:
    console.print(
        f"batch {report.batch_id}: {report.rows_total:,} rows; "
        f"[green]{report.rows_imported:,} imported[/green] ({report.orders_created:,} orders), "
        f"{report.rows_already:,} already imported ({report.orders_already:,} orders), "
        f"[red]{report.rows_rejected:,} rejected[/red]",
        highlight=False,
        soft_wrap=True,
    )
    if report.ignored_columns:
        console.print(
            f"ignored columns: {', '.join(report.ignored_columns)}", highlight=False, soft_wrap=True
        )
    shown = report.rejects[:SHOWN]
    if shown:
        more = f" (the first {len(shown)} of {report.rows_rejected:,})"
        table = Table(title="rejected rows" + (more if report.rows_rejected > len(shown) else ""))
        for name in ("row", "column", "reason"):
            table.add_column(name)
        for r in shown:
            for p in r.problems:
                table.add_row(str(r.row.number), p.column, p.message)
        console.print(table)
    if rejects_path is not None and report.rows_rejected:
        console.print(
            f"rejected rows written to {rejects_path}: fix them there and import that file",
            highlight=False,
            soft_wrap=True,
        )
