"""Order import for clerks: upload a CSV or XLSX file, see the report, download the rejects.

The upload goes through the same ImportService as ``order-flow import orders``; the
rejects file (the original columns plus row, column and reason, in the page's
language) is kept under the data folder for its batch and offered for download, so
the clerk fixes it in Excel and uploads it again. Who may import: whoever may
enter orders (a supervisor or the sales group).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, abort, request, send_file
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

from order_flow.errors import ValidationError
from order_flow.services.import_files import COLUMNS, REQUIRED
from order_flow.services.importing import ImportService
from web.ui.core import login_required_role, of, render, translate
from web.ui.orders import _require_entry

bp = Blueprint("imports", __name__)

#: Created orders listed on the report page (all are counted).
LISTED = 50

#: Import messages without values, marked for the catalog (translate() looks them up).
MESSAGES = (
    _l("no customer with this code or name"),
    _l("several customers have this name; use the code"),
    _l("no product with this SKU"),
    _l("must be yes or no (是/否)"),
    _l("required for an import: it groups the lines and makes a re-import safe"),
    _l("this order's rows must be next to each other: the same customer and PO came earlier in the file"),  # noqa: E501
    _l("at most 8 decimal places"),
    _l("must be one of urgent, high, normal, low"),
    _l("must be one of exclusive, inclusive"),
    _l("the file is empty: no header row"),
    _l("row"),
    _l("column"),
    _l("reason"),
)  # fmt: skip

#: Import messages with values: the English pattern and its translation.
VALUED: tuple[tuple[re.Pattern[str], Callable[..., str]], ...] = (
    (
        re.compile(r"differs from row (?P<n>\d+) of the same order"),
        lambda **kw: _("differs from row %(n)s of the same order", **kw),
    ),
    (
        re.compile(r"not imported: row (?P<n>\d+) of the same order has an error"),
        lambda **kw: _("not imported: row %(n)s of the same order has an error", **kw),
    ),
    (
        re.compile(r"missing column\(s\): (?P<names>.+) \(row (?P<row>\d+)\)"),
        lambda **kw: _("missing column(s): %(names)s (row %(row)s)", **kw),
    ),
    (
        re.compile(r"product (?P<sku>.+) is not active"),
        lambda **kw: _("product %(sku)s is not active", **kw),
    ),
    (re.compile(r"must be at most (?P<n>[\d.]+)"), lambda **kw: _("must be at most %(n)s", **kw)),
    (
        re.compile(r"not a readable (?P<kind>XLSX|CSV) file: (?P<why>.*)"),
        lambda **kw: _("not a readable %(kind)s file: %(why)s", **kw),
    ),
    (
        re.compile(r"(?P<suffix>\.\w+) files are not read; use \.csv or \.xlsx"),
        lambda **kw: _("%(suffix)s files are not read; use .csv or .xlsx", **kw),
    ),
)


def reason(message: str) -> str:
    """An import or order message in the page's language."""
    for pattern, localise in VALUED:
        found = pattern.fullmatch(message)
        if found:
            return localise(**found.groupdict())
    return translate(message)


def rejects_path(batch_id: int) -> Path:
    return Path(of().settings.data_dir) / "imports" / f"batch-{batch_id}-rejects.csv"


def _columns() -> list[tuple[str, str, bool]]:
    """(Chinese name, English name, required) of every column, for the help text."""
    return [(names[0], key, key in REQUIRED) for key, names in COLUMNS.items()]


def _page(status: int = 200, **ctx: object) -> tuple[str, int]:
    ctx.setdefault("report", None)
    ctx.setdefault("errors", {})
    return render("import_orders.html", status, columns=_columns(), reason=reason, **ctx)


@bp.get("/orders/import")
@login_required_role()
def upload() -> tuple[str, int]:
    _require_entry()
    return _page()


@bp.post("/orders/import")
@login_required_role()
def run() -> tuple[str, int]:
    actor = _require_entry()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        errors = {"file": _("Choose a CSV or XLSX file.")}
        return _page(422, errors=errors)
    service = ImportService(of())
    target = Path(of().settings.data_dir) / "imports" / f"upload-{uuid.uuid4().hex}.tmp"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with target.open("w", encoding="utf-8-sig", newline="") as out:
            report = service.import_file(
                upload.stream, actor, name=Path(upload.filename).name, rejects=out, translate=reason
            )
    except ValidationError as exc:
        target.unlink(missing_ok=True)
        errors = {"file": "; ".join(reason(m) for m in exc.errors.values())}
        return _page(422, errors=errors)
    if report.rows_rejected:
        target.replace(rejects_path(report.batch_id))
    else:
        target.unlink(missing_ok=True)
    return _page(report=report, created=report.created[:LISTED])


@bp.get("/orders/import/<int:batch_id>/rejects.csv")
@login_required_role()
def rejects(batch_id: int) -> BaseResponse:
    actor = _require_entry()
    batch = ImportService(of()).batch(batch_id)
    path = rejects_path(batch_id)
    if batch is None or not path.exists():
        abort(404)
    if batch.created_by != actor.name and not actor.is_supervisor:
        abort(404)
    stem = Path(batch.source).stem or "orders"
    return send_file(
        path,
        mimetype="text/csv",
        as_attachment=True,
        download_name=f"{stem}-rejects-{batch_id}.csv",
    )
