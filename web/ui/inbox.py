"""The clerk inbox: five queues with counts, filters, saved filters and claim next.

Saved filters live in the session for now (no column or table for them yet), so
they follow the browser, not the clerk.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from order_flow.services.inbox import QUEUES, InboxFilter, InboxService
from web.ui.core import current_actor, lang_short, login_required_role, of, render

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

SAVED_KEY = "saved_filters"
MAX_SAVED = 20


def inbox_service() -> InboxService:
    return InboxService(of())


def queue_labels() -> dict[str, str]:
    return {
        "mine": _("My tasks"),
        "group": _("My groups' unclaimed"),
        "followup": _("Follow-ups due"),
        "problem": _("Problems"),
        "done": _("Completed by me"),
    }


@bp.get("/")
@login_required_role()
def index() -> tuple[str, int]:
    actor = current_actor()
    service = inbox_service()
    queue = request.args.get("queue", "mine")
    if queue not in QUEUES:
        queue = "mine"
    flt = InboxFilter.from_args(request.args)
    rows = service.queue(actor, queue, flt, lang=lang_short())
    offer = None
    if request.args.get("done", "").isdigit():  # just completed a task: offer the next one
        ids = service.next_candidates(actor, limit=1)
        if ids:
            dressed = service.rows(ids, lang_short())
            offer = dressed[0] if dressed else None
    return render(
        "inbox.html",
        queue=queue,
        queues=queue_labels(),
        counts=service.counts(actor),
        rows=rows,
        flt=flt,
        saved=session.get(SAVED_KEY, {}),
        offer=offer,
        done_id=request.args.get("done", ""),
    )


@bp.post("/claim-next")
@login_required_role()
def claim_next() -> BaseResponse:
    task_id = inbox_service().claim_next(current_actor())
    if task_id is None:
        flash(_("No task is waiting for your groups."), "info")
        return redirect(url_for("inbox.index", queue="group"))
    flash(_("You claimed task %(id)s.", id=task_id), "success")
    return redirect(url_for("tasks.show", task_id=task_id))


@bp.post("/filters")
@login_required_role()
def save_filter() -> BaseResponse:
    name = request.form.get("name", "").strip()[:40]
    flt = InboxFilter.from_args(request.form)
    queue = request.form.get("queue", "mine")
    queue = queue if queue in QUEUES else "mine"
    if not name:
        flash(_("Give the filter a name."), "error")
        return redirect(url_for("inbox.index", **_args(queue, flt)))
    saved = dict(session.get(SAVED_KEY, {}))
    if name not in saved and len(saved) >= MAX_SAVED:
        flash(_("At most %(n)s saved filters.", n=MAX_SAVED), "error")
    else:
        saved[name] = {"queue": queue, **flt.as_args()}
        session[SAVED_KEY] = saved
        flash(_("Filter saved."), "success")
    return redirect(url_for("inbox.index", **_args(queue, flt)))


def _args(queue: str, flt: InboxFilter) -> dict[str, Any]:
    return {"queue": queue, **flt.as_args()}


@bp.post("/filters/delete")
@login_required_role()
def delete_filter() -> BaseResponse:
    saved = dict(session.get(SAVED_KEY, {}))
    saved.pop(request.form.get("name", ""), None)
    session[SAVED_KEY] = saved
    return redirect(url_for("inbox.index"))
