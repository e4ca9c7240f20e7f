"""Order import for clerks: upload a CSV or XLSX file, follow it, see the report, download
the rejects.

The upload goes through the same ImportService as ``order-flow import orders``, in a
thread of the web process, while the clerk watches the batch's page (the counts so
far, then the report). The rejects file (the original columns plus row, column and
reason, in the uploader's language) is kept under the data folder for its batch and
offered for download, so the clerk fixes it in Excel and uploads it again. Who may
import: whoever may enter orders (a supervisor or the sales group); a batch's page
and rejects: who uploaded it, or a supervisor.
"""

from __future__ import annotations

import csv
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, redirect, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

from order_flow.engine.actors import Actor
from order_flow.errors import ValidationError
from order_flow.services.import_files import (
    COLUMNS,
    REQUIRED,
    Row,
    count_rows,
    open_order_file,
    unguard_csv_cell,
)
from order_flow.services.importing import KEPT, ImportReport, ImportService, Problem, Rejected
from order_flow.store.imports import ImportBatch
from web.ui.core import local_time, login_required_role, of, render, translate, ui_locale
from web.ui.orders import _require_entry

bp = Blueprint("imports", __name__)
log = logging.getLogger(__name__)

#: Created orders listed on the report page (all are counted).
LISTED = 50

#: An unfinished batch that saved nothing for this long was cut off: its thread died
#: with the web process (a restart, a deploy). A chunk of orders takes seconds.
STALLED_AFTER = timedelta(minutes=10)

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


def imports_dir() -> Path:
    return Path(of().settings.data_dir) / "imports"


def rejects_path(batch_id: int) -> Path:
    return imports_dir() / f"batch-{batch_id}-rejects.csv"


def _rejects_file(batch_id: int) -> Path | None:
    """The batch's rejects file once it has ended: the finished file, else the one it
    was writing (flushed with every saved chunk), which a cut-off batch leaves and a
    finished one has for a moment before renaming it."""
    final = rejects_path(batch_id)
    for path in (final, final.with_suffix(".part")):
        if path.exists():
            return path
    return None


def prune_imports(folder: Path, keep_days: int, now: float | None = None) -> int:
    """Delete the uploads and rejects files in ``folder`` older than ``keep_days``
    (0 keeps them all); returns how many went. Run on every upload, so the folder
    never grows without bound."""
    if keep_days <= 0 or not folder.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - keep_days * 86400
    gone = 0
    for path in folder.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                gone += 1
        except OSError:  # another web process took it first
            continue
    return gone


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
def run() -> BaseResponse | tuple[str, int]:
    """Keep the upload, check its header now (a file we cannot read is answered at
    once), then import it in the background and show its page, which follows it."""
    actor = _require_entry()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        errors = {"file": _("Choose a CSV or XLSX file.")}
        return _page(422, errors=errors)
    name = Path(upload.filename).name
    folder = imports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    prune_imports(folder, of().settings.import_files_keep_days)
    saved = folder / f"upload-{uuid.uuid4().hex}{Path(name).suffix.lower()[:10]}"
    upload.save(saved)
    try:
        open_order_file(saved, name).close()
    except ValidationError as exc:
        saved.unlink(missing_ok=True)
        errors = {"file": "; ".join(reason(m) for m in exc.errors.values())}
        return _page(422, errors=errors)
    rows = count_rows(saved)
    batch_id = ImportService(of()).new_batch(name, actor, result={"rows_expected": rows})
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker = threading.Thread(
        target=_import_in_background,
        args=(app, saved, name, actor, batch_id, rows, ui_locale()),
        name=f"import-batch-{batch_id}",
        daemon=True,
    )
    worker.start()
    return redirect(url_for("imports.show", batch_id=batch_id), 303)


def _import_in_background(
    app: Flask,
    saved: Path,
    name: str,
    actor: Actor,
    batch_id: int,
    rows: int | None,
    locale: str,
) -> None:
    """The import of an upload, in a thread of the web process. Rejects are written in
    the uploader's language (a request context of that language, this thread's own).
    Whatever stops it is recorded on the batch; what its finished chunks wrote stays,
    and uploading the file again resumes (the import keys skip what is in)."""
    with app.test_request_context(f"/?lang={locale}"):
        service = ImportService(of())
        final = rejects_path(batch_id)
        partial = final.with_suffix(".part")
        try:
            with partial.open("w", encoding="utf-8-sig", newline="") as out:
                report = service.import_file(
                    saved, actor, name=name, rejects=out, translate=reason,
                    batch_id=batch_id, rows_expected=rows,
                )  # fmt: skip
            if report.rows_rejected:
                partial.replace(final)
        except ValidationError as exc:
            _keep(partial, final)  # the rows rejected before it stopped, to download
            service.fail(batch_id, "; ".join(reason(m) for m in exc.errors.values()))
        except Exception as exc:  # noqa: BLE001 - recorded for the clerk, logged for us
            log.exception("import batch %s stopped", batch_id)
            _keep(partial, final)
            service.fail(batch_id, f"{type(exc).__name__}: {exc}"[:500])
        finally:
            partial.unlink(missing_ok=True)
            saved.unlink(missing_ok=True)


def _own_file_batch(service: ImportService, batch_id: int) -> ImportBatch:
    """The file batch, if this user uploaded it or is a supervisor; 404 otherwise
    (another clerk's batch is not found, not forbidden)."""
    actor = _require_entry()
    batch = service.batch(batch_id)
    if batch is None or batch.source == "api":
        abort(404)
    if batch.created_by != actor.name and not actor.is_supervisor:
        abort(404)
    return batch


def _keep(partial: Path, final: Path) -> None:
    if partial.exists():
        partial.replace(final)


@bp.get("/orders/import/<int:batch_id>")
@login_required_role()
def show(batch_id: int) -> tuple[str, int]:
    """A batch's page: its progress while it runs (the page reloads itself), then its
    report with the first rejected rows and the orders it created."""
    service = ImportService(of())
    batch = _own_file_batch(service, batch_id)
    extra = dict(batch.result or {})
    report = ImportReport(
        batch.id,
        batch.source,
        ignored_columns=list(extra.get("ignored_columns") or []),
        rows_total=batch.rows_total,
        rows_imported=batch.rows_imported,
        rows_already=batch.rows_already,
        rows_rejected=batch.rows_rejected,
        orders_created=batch.orders_created,
        orders_already=int(extra.get("orders_already") or 0),
    )
    running, error = batch.finished_at is None, extra.get("error")
    cut_at = _cut_off_at(service, batch)
    if cut_at is not None:
        running = False
        error = _(
            "no progress since %(time)s, the web server was probably restarted",
            time=local_time(cut_at),
        )
    if not running and report.rows_rejected:
        report.rejects = _first_rejects(_rejects_file(batch_id))
    expected = extra.get("rows_expected")
    return _page(
        report=report,
        running=running,
        error=error,
        rows_expected=expected,
        percent=min(99, 100 * report.rows_total // expected) if running and expected else None,
        created=[] if running else service.created_orders(batch_id, LISTED),
    )


def _cut_off_at(service: ImportService, batch: ImportBatch) -> datetime | None:
    """When an unfinished batch last saved its counts (its creation, before the first
    chunk), if that is more than STALLED_AFTER ago: its thread is gone. Else None."""
    if batch.finished_at is not None:
        return None
    saved_at = (batch.result or {}).get("saved_at")
    last = datetime.fromisoformat(saved_at) if saved_at else batch.created_at
    last = last if last.tzinfo else last.replace(tzinfo=UTC)
    return last if service.app.engine.clock() - last > STALLED_AFTER else None


def _first_rejects(path: Path | None) -> list[Rejected]:
    """The first rejected rows of a rejects file (its last three columns: row, column,
    reason; as written, in the uploader's language)."""
    if path is None:
        return []
    out: list[Rejected] = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        for cells in reader:
            if len(out) >= KEPT or len(cells) < 3:
                break
            number, column, why = (unguard_csv_cell(c) for c in cells[-3:])
            row = Row(int(number) if number.isdigit() else 0, tuple(cells[:-3]), {})
            out.append(Rejected(row, (Problem(column, why),)))
    return out


@bp.get("/orders/import/<int:batch_id>/rejects.csv")
@login_required_role()
def rejects(batch_id: int) -> BaseResponse:
    service = ImportService(of())
    batch = _own_file_batch(service, batch_id)
    ended = batch.finished_at is not None or _cut_off_at(service, batch) is not None
    path = _rejects_file(batch_id) if ended else None
    if path is None:
        abort(404)
    stem = Path(batch.source).stem or "orders"
    try:
        return send_file(
            path,
            mimetype="text/csv",
            as_attachment=True,
            download_name=f"{stem}-rejects-{batch_id}.csv",
        )
    except FileNotFoundError:  # renamed by its import thread just now: ask again
        return redirect(url_for("imports.rejects", batch_id=batch_id), 303)
