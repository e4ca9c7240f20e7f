"""The clerk inbox: five queues with counts, filters, saved filters and claim next.

Saved filters are rows of ``saved_filters``, so a clerk finds them on any browser.
What a saved query may hold is decided here: it is read back through
``InboxFilter.from_args`` like any URL.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from order_flow.errors import ValidationError
from order_flow.services.inbox import QUEUES, InboxFilter, InboxService
from order_flow.services.users import FILTER_NAME_MAX, MAX_SAVED_FILTERS
from web.ui.core import current_actor, lang_short, login_required_role, of, render

bp = Blueprint("inbox", __name__, url_prefix="/inbox")


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
        ids = service.next_for(actor, limit=1)
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
        saved=saved_filters(actor.user_id),
        name_max=FILTER_NAME_MAX,
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


def saved_filters(user_id: int | None) -> dict[str, dict[str, str]]:
    """Name -> the inbox URL arguments of each saved filter, cleaned like a URL."""
    if user_id is None:
        return {}
    out = {}
    for name, query in of().users.saved_filters(user_id).items():
        queue = query.get("queue", "mine")
        out[name] = _args(queue if queue in QUEUES else "mine", InboxFilter.from_args(query))
    return out


@bp.post("/filters")
@login_required_role()
def save_filter() -> BaseResponse:
    actor = current_actor()
    name = request.form.get("name", "").strip()
    flt = InboxFilter.from_args(request.form)
    queue = request.form.get("queue", "mine")
    queue = queue if queue in QUEUES else "mine"
    back = redirect(url_for("inbox.index", **_args(queue, flt)))
    if actor.user_id is None:
        return back
    try:
        of().users.save_filter(actor.user_id, name, _args(queue, flt))
    except ValidationError:
        if not name:
            flash(_("Give the filter a name."), "error")
        elif len(name) > FILTER_NAME_MAX:
            flash(_("A filter name has at most %(n)s characters.", n=FILTER_NAME_MAX), "error")
        else:
            flash(_("At most %(n)s saved filters.", n=MAX_SAVED_FILTERS), "error")
        return back
    flash(_("Filter saved."), "success")
    return back


def _args(queue: str, flt: InboxFilter) -> dict[str, Any]:
    return {"queue": queue, **flt.as_args()}


@bp.post("/filters/delete")
@login_required_role()
def delete_filter() -> BaseResponse:
    actor = current_actor()
    if actor.user_id is not None:
        of().users.delete_filter(actor.user_id, request.form.get("name", ""))
    return redirect(url_for("inbox.index"))
