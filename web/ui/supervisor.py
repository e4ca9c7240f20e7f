"""The supervisor console: workload, (bulk) reassignment with a preview, unassign,
delegation, backlog with a time-to-drain forecast, incidents by error, stuck instances.

Supervisors and admins only; a clerk gets 403 on every page and action. Each view reads
only the form fields it names, so extra fields change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response as BaseResponse

from order_flow.errors import ConflictError, ValidationError
from order_flow.services.delegation import DelegationService
from order_flow.services.supervision import Preview, SupervisionService
from web.ui.core import current_actor, lang_short, login_required_role, of, render, translate

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor")
ROLE = "supervisor"  # admins pass too: roles rise clerk < supervisor < admin


def service() -> SupervisionService:
    return SupervisionService(of())


def delegations() -> DelegationService:
    return DelegationService(of())


def _ints(name: str) -> list[int]:
    out = []
    for raw in request.form.getlist(name):
        if not raw.strip().isdigit():
            raise BadRequest(f"{name} must be numbers")
        out.append(int(raw))
    return out


def _int(name: str, source: Mapping[str, str] | None = None) -> int | None:
    raw = (request.form if source is None else source).get(name, "").strip()
    return int(raw) if raw.isdigit() else None


def _local(raw: str) -> datetime | None:
    """A datetime-local field, read in the business time zone, as UTC."""
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(of().settings.timezone))
    return value.astimezone(UTC)


def _errors_flash(exc: ValidationError) -> None:
    for field, message in exc.errors.items():
        flash(f"{field}: {translate(message)}", "error")


# -- pages -------------------------------------------------------------------------------


@bp.get("/")
@login_required_role(ROLE)
def index() -> tuple[str, int]:
    svc = service()
    hours = request.args.get("hours", type=int) or 24
    hours = max(1, min(hours, 24 * 14))
    people = svc.workload()
    return render(
        "supervisor/index.html",
        people=people,
        backlog=svc.backlog(hours=hours, lang=lang_short()),
        hours=hours,
        incidents=svc.incident_groups(),
        stuck=svc.stuck(limit=50),
        delegations=delegations().list(),
    )


@bp.get("/tasks")
@login_required_role(ROLE)
def tasks() -> tuple[str, int]:
    assignee = _int("assignee", request.args)
    group = request.args.get("group") or None
    overdue = request.args.get("overdue") == "1"
    svc = service()
    return render(
        "supervisor/tasks.html",
        rows=svc.open_tasks(assignee_id=assignee, group=group, overdue=overdue),
        people=svc.workload(),
        assignee=assignee,
        group=group,
        overdue=overdue,
    )


# -- reassigning -----------------------------------------------------------------------------


def _selection() -> list[int]:
    """The ticked tasks, or every open task of ``queue_of`` (a whole clerk's queue)."""
    queue_of = _int("queue_of")
    if queue_of is not None:
        return [t.id for t in service().open_tasks(assignee_id=queue_of)]
    return _ints("task_ids")


@bp.post("/reassign/preview")
@login_required_role(ROLE)
def preview() -> tuple[str, int] | BaseResponse:
    to_user = _int("to_user_id")
    selection = _selection()
    if to_user is None or not selection:
        flash(_("Choose the tasks and the person to give them to."), "error")
        return redirect(request.referrer or url_for("supervisor.tasks"))
    try:
        plan = service().preview_reassign(selection, to_user, current_actor())
    except ValidationError as exc:
        _errors_flash(exc)
        return redirect(url_for("supervisor.tasks"))
    return _preview_page(plan, to_user)


def _preview_page(plan: Preview, to_user: int, status: int = 200) -> tuple[str, int]:
    return render("supervisor/preview.html", status, plan=plan, to_user=to_user)


@bp.post("/reassign/confirm")
@login_required_role(ROLE)
def confirm() -> tuple[str, int] | BaseResponse:
    to_user = _int("to_user_id")
    ids = _ints("task_ids")
    if to_user is None or not ids:
        raise BadRequest("task_ids and to_user_id are required")
    expected = {tid: _int(f"expect_{tid}") for tid in ids}
    actor = current_actor()
    svc = service()
    try:
        moved = svc.bulk_reassign(expected, to_user, actor)
    except ConflictError:
        flash(_("Some tasks changed since the preview; nothing was moved. Check again."), "error")
        return _preview_page(svc.preview_reassign(ids, to_user, actor), to_user, 409)
    except ValidationError as exc:
        _errors_flash(exc)
        return redirect(url_for("supervisor.tasks"))
    flash(_("%(n)s task(s) reassigned.", n=moved), "success")
    return redirect(url_for("supervisor.tasks", assignee=to_user))


@bp.post("/tasks/<int:task_id>/reassign")
@login_required_role(ROLE)
def reassign_one(task_id: int) -> BaseResponse:
    to_user = _int("to_user_id")
    if to_user is None:
        raise BadRequest("to_user_id is required")
    try:
        move = service().reassign(task_id, to_user, current_actor())
    except ValidationError as exc:
        _errors_flash(exc)
    else:
        if move.acting_for:
            flash(
                _(
                    "Task %(id)s went to %(to)s, acting for %(away)s.",
                    id=task_id,
                    to=move.to_name,
                    away=move.acting_for,
                ),
                "success",
            )
        else:
            flash(_("Task %(id)s reassigned to %(to)s.", id=task_id, to=move.to_name), "success")
    return redirect(request.referrer or url_for("supervisor.tasks"))


@bp.post("/tasks/<int:task_id>/unassign")
@login_required_role(ROLE)
def unassign(task_id: int) -> BaseResponse:
    service().unassign(task_id, current_actor())
    flash(_("Task %(id)s is back in its groups' queue.", id=task_id), "success")
    return redirect(request.referrer or url_for("supervisor.tasks"))


# -- delegation ------------------------------------------------------------------------------


@bp.post("/delegations")
@login_required_role(ROLE)
def delegate() -> BaseResponse:
    user_id, sub_id = _int("user_id"), _int("substitute_id")
    starts = _local(request.form.get("starts_at", ""))
    ends = _local(request.form.get("ends_at", ""))
    missing = {
        k: "required"
        for k, v in (
            ("user_id", user_id),
            ("substitute_id", sub_id),
            ("starts_at", starts),
            ("ends_at", ends),
        )
        if v is None
    }
    try:
        if missing:
            raise ValidationError(missing)
        assert user_id is not None and sub_id is not None and starts and ends
        delegations().delegate(
            user_id, sub_id, starts, ends, current_actor(), request.form.get("reason", "")
        )
    except ValidationError as exc:
        _errors_flash(exc)
    else:
        flash(_("Delegation saved."), "success")
    return redirect(url_for("supervisor.index") + "#delegation")


@bp.post("/delegations/<int:delegation_id>/cancel")
@login_required_role(ROLE)
def cancel_delegation(delegation_id: int) -> BaseResponse:
    delegations().cancel(delegation_id, current_actor())
    flash(_("Delegation ended."), "success")
    return redirect(url_for("supervisor.index") + "#delegation")


# -- incidents -------------------------------------------------------------------------------


@bp.post("/incidents/retry")
@login_required_role(ROLE)
def retry_incidents() -> BaseResponse:
    group = request.form.get("group_ids")
    if group is not None:  # "retry the whole group" button
        parts = [p.strip() for p in group.split(",")]
        if not all(p.isdigit() for p in parts):
            raise BadRequest("group_ids must be numbers")
        ids = [int(p) for p in parts]
    else:
        ids = _ints("task_ids")
    if not ids:
        flash(_("Choose the incidents to retry."), "error")
        return redirect(url_for("supervisor.index") + "#incidents")
    report = service().retry_incidents(ids, current_actor())
    if report.retried:
        flash(_("%(n)s incident(s) queued again.", n=len(report.retried)), "success")
    for task_id, why in report.failed.items():
        flash(_("Incident %(id)s: %(why)s", id=task_id, why=translate(why)), "error")
    return redirect(url_for("supervisor.index") + "#incidents")
