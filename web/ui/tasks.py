"""The task page: the order or invoice, its customer and log, diagram, why, audit, outcomes.

Every action is a POST with a CSRF token. Only the fields a view names are read
from a form, so extra fields such as ``assignee_id``, ``status`` or ``role`` do
nothing. A task the clerk may not see is a 404, whether it exists or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from order_flow.engine.actors import Actor
from order_flow.engine.outbox import resolve_incident, retry_incident
from order_flow.engine.tasks import TaskRef
from order_flow.engine.why import PossibleMove, WhyReport, why
from order_flow.errors import (
    NotFoundError,
    PermissionDeniedError,
    TransitionNotAllowedError,
    ValidationError,
)
from order_flow.services.customers import CHANNELS, DIRECTIONS
from order_flow.services.inbox import InboxService
from order_flow.services.refusals import Refusal
from order_flow.store.customers import Communication, Customer
from order_flow.store.invoices import Invoice
from order_flow.store.orders import Order
from order_flow.store.tables import audit, tasks
from order_flow.workflow.diagram import to_svg
from web.ui.core import current_actor, lang_short, login_required_role, of, render
from web.ui.labels import guard_label, outcome_label, role_label

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


@dataclass(frozen=True)
class Subject:
    """What a workflow instance is about, with its customer."""

    instance: Any
    state_label: str
    order: Order | None
    invoice: Invoice | None
    customer: Customer | None


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    actor: str
    acting_for: str | None
    text: str
    detail: str


def load_subject(s: Session, instance_id: int) -> Subject:
    engine = of().engine
    row = engine.load(s, instance_id)
    definition = engine.definitions.get(s, row.definition_id).definition
    try:
        label = definition.state(row.state).display(lang_short())
    except KeyError:
        label = row.state
    order = invoice = None
    if row.workflow == "invoice":
        invoice = s.scalars(select(Invoice).where(Invoice.instance_id == instance_id)).first()
        order = s.get(Order, invoice.order_id) if invoice else None
    else:
        order = s.scalars(select(Order).where(Order.instance_id == instance_id)).first()
    customer = s.get(Customer, order.customer_id) if order else None
    return Subject(row, label, order, invoice, customer)


def diagram(s: Session, subject: Subject) -> Markup:
    """The workflow SVG, current state highlighted; its <style> carries the CSP nonce.

    to_svg escapes every label and name it writes (xml.sax.saxutils.escape)."""
    loaded = of().engine.definitions.get(s, subject.instance.definition_id)
    svg = to_svg(loaded.definition, highlight=subject.instance.state, lang=lang_short())
    svg = svg[svg.index("<svg") :]  # drop any XML prolog
    svg = svg.replace("<style>", f'<style nonce="{g.get("csp_nonce", "")}">', 1)
    return Markup(svg)  # noqa: S704 - generated from a deployed definition, escaped


def timeline(s: Session, subject: Subject) -> list[TimelineEntry]:
    """Transitions, claims, reassignments, comments, incidents and notifications."""
    out = []
    for a in s.execute(
        select(audit).where(audit.c.instance_id == subject.instance.id).order_by(audit.c.id)
    ):
        if a.kind == "transition":
            text = f"{a.trigger}: {a.from_state} → {a.to_state}"
        elif a.kind in ("start",):
            text = f"→ {a.to_state}"
        else:
            text = f"#{a.task_id}" if a.task_id else ""
            if a.kind == "reassign" and a.data:
                text += f" ({a.data.get('from')} → {a.data.get('to')})"
        out.append(TimelineEntry(a.at, a.kind, a.actor, a.acting_for, text, a.reason or ""))
    logs = []
    if subject.order is not None:
        logs = list(
            s.scalars(select(Communication).where(Communication.order_id == subject.order.id))
        )
    if subject.invoice is not None:
        logs += list(
            s.scalars(
                select(Communication).where(
                    Communication.invoice_id == subject.invoice.id,
                    Communication.order_id.is_(None),
                )
            )
        )
    for c in logs:
        out.append(
            TimelineEntry(c.at, f"contact_{c.channel}", c.actor, None, c.direction, c.summary)
        )
    return sorted(out, key=lambda e: e.at)


def _task_row(s: Session, task_id: int, actor: Actor) -> tuple[TaskRef, Any]:
    ref = of().tasks.visible(s, task_id, actor)  # NotFoundError (404) when not visible
    row = s.execute(select(tasks).where(tasks.c.id == task_id)).one()
    return ref, row


@bp.get("/<int:task_id>")
@login_required_role()
def show(task_id: int) -> tuple[str, int]:
    return task_page(task_id, current_actor())


def task_page(
    task_id: int, actor: Actor, status: int = 200, refused: str = "", comment: str = ""
) -> tuple[str, int]:
    """The task page; ``refused`` explains a refused outcome next to the comment box,
    which keeps what the clerk wrote (``comment``)."""
    app = of()
    with app.engine.session_factory() as s:
        ref, task = _task_row(s, task_id, actor)
        subject = load_subject(s, ref.instance_id)
        svg = diagram(s, subject)
        events = timeline(s, subject)
        states = state_labels(s, subject)
        comms = []
        if subject.customer is not None:
            comms = list(
                s.scalars(
                    select(Communication)
                    .where(Communication.customer_id == subject.customer.id)
                    .order_by(Communication.at.desc(), Communication.id.desc())
                    .limit(50)
                )
            )
    # Outside the block: SQLite allows one open transaction per file.
    assignee = app.users.by_id(task.assignee_id) if task.assignee_id else None
    report: WhyReport = why(app.engine, ref.instance_id, actor, lang_short())
    return render(
        "task.html",
        status=status,
        task=task,
        ref=ref,
        subject=subject,
        svg=svg,
        events=events,
        comms=comms,
        why=report,
        moves=why_moves(report),
        states=states,
        actor=actor,
        refused=refused,
        comment=comment,
        assignee=assignee,
        mine=task.assignee_id == actor.user_id,
        channels=CHANNELS,
        directions=DIRECTIONS,
        progress=app.orders.progress(subject.order) if subject.order else None,
    )


def state_labels(s: Session, subject: Subject) -> dict[str, str]:
    """Every state of the instance's workflow version by name, in the UI language."""
    definition = of().engine.definitions.get(s, subject.instance.definition_id).definition
    return {st.name: st.display(lang_short()) for st in definition.states}


def why_moves(report: WhyReport) -> list[PossibleMove]:
    """One move per trigger: the one that would go through, else the closest (fewest
    refusing guards); a trigger with two routes (first or last approval) shows once."""
    best: dict[str, PossibleMove] = {}
    for mv in report.moves:
        have = best.get(mv.trigger)
        if have is None or len(mv.failing_guards) < len(have.failing_guards):
            best[mv.trigger] = mv
    return list(best.values())


@bp.post("/<int:task_id>/claim")
@login_required_role()
def claim(task_id: int) -> BaseResponse:
    of().tasks.claim(task_id, current_actor())
    flash(_("You claimed task %(id)s.", id=task_id), "success")
    return redirect(url_for("tasks.show", task_id=task_id))


@bp.post("/<int:task_id>/unclaim")
@login_required_role()
def unclaim(task_id: int) -> BaseResponse:
    of().tasks.unclaim(task_id, current_actor())
    flash(_("The task is back in the group queue."), "info")
    return redirect(url_for("inbox.index"))


@bp.post("/<int:task_id>/comment")
@login_required_role()
def comment(task_id: int) -> BaseResponse:
    try:
        of().tasks.comment(task_id, current_actor(), request.form.get("body", ""))
    except ValidationError:
        flash(_("A comment cannot be empty."), "error")
    return redirect(url_for("tasks.show", task_id=task_id) + "#timeline")


@bp.post("/<int:task_id>/complete")
@login_required_role()
def complete(task_id: int) -> BaseResponse | tuple[str, int]:
    actor = current_actor()
    app = of()
    outcome = request.form.get("outcome", "")
    text = request.form.get("comment", "").strip() or None
    version = request.form.get("version", "")
    with app.engine.session_factory() as s:
        ref, task = _task_row(s, task_id, actor)
        subject = load_subject(s, ref.instance_id)
    if task.assignee_id not in (None, actor.user_id):
        raise PermissionDeniedError(_("The task is assigned to someone else."))
    try:
        if task.kind == "incident":
            _finish_incident(task_id, outcome, actor, text)
        elif subject.invoice is not None and ref.state == "problem" and outcome == "fix":
            app.invoices.retry_problem(subject.invoice.id, actor, text)
        elif subject.invoice is not None and ref.state == "red_requested":
            app.invoices.approve_red(subject.invoice.id, actor, text or "")
        else:
            expected = int(version) if version.isdigit() else None
            app.tasks.complete(task_id, outcome, actor, text, expected_version=expected)
    except ValidationError as exc:
        for field, message in exc.errors.items():
            flash(f"{field}: {_(message)}", "error")
        return redirect(url_for("tasks.show", task_id=task_id))
    except (TransitionNotAllowedError, PermissionDeniedError):
        # A guard or the role said no: say why on the task page. Anything else (the
        # order moved on meanwhile, another clerk took the task) keeps its error page.
        refusal = None if task.kind == "incident" else _refusal(task_id, outcome, actor, text)
        if refusal is None or refusal.stale:
            raise
        status = 403 if refusal.roles else 422
        return task_page(task_id, actor, status, refusal_message(refusal, outcome), text or "")
    flash(_("Task %(id)s completed.", id=task_id), "success")
    return redirect(url_for("inbox.index", done=task_id))


def _refusal(task_id: int, outcome: str, actor: Actor, text: str | None) -> Refusal | None:
    return InboxService(of()).refusal(task_id, outcome, actor, text)


def refusal_message(refusal: Refusal, outcome: str) -> str:
    """What the clerk reads next to the comment box."""
    if refusal.roles:
        roles = ", ".join(role_label(r) for r in refusal.roles)
        return _("Only %(roles)s may do that.", roles=roles)
    if refusal.guards == ("reason_given",):
        return _("%(action)s needs a reason.", action=outcome_label(outcome))
    reasons = "; ".join(guard_label(g) for g in refusal.guards)
    return _("Not possible: %(reasons)s", reasons=reasons)


def _finish_incident(task_id: int, outcome: str, actor: Actor, text: str | None) -> None:
    if outcome == "retry":
        retry_incident(of(), task_id, actor, text)
    elif outcome == "resolve":
        resolve_incident(of(), task_id, actor, text or "")
    else:
        raise ValidationError({"outcome": "must be one of retry, resolve"})


@bp.post("/<int:task_id>/contact")
@login_required_role()
def contact(task_id: int) -> BaseResponse:
    actor = current_actor()
    app = of()
    with app.engine.session_factory() as s:
        ref, _task = _task_row(s, task_id, actor)
        subject = load_subject(s, ref.instance_id)
    if subject.customer is None:
        raise NotFoundError("no customer")
    try:
        app.customers.log_contact(
            subject.customer.id,
            request.form.get("channel", ""),
            request.form.get("direction", ""),
            request.form.get("summary", ""),
            actor,
            order_id=subject.order.id if subject.order else None,
            invoice_id=subject.invoice.id if subject.invoice else None,
        )
        flash(_("Contact recorded."), "success")
    except ValidationError as exc:
        for field, message in exc.errors.items():
            flash(f"{field}: {_(message)}", "error")
    return redirect(url_for("tasks.show", task_id=task_id) + "#customer")
