"""Display names of the fixed words the UI shows: priorities, roles, outcomes, events."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l


def priority_label(name: str) -> str:
    labels = {"urgent": _("Urgent"), "high": _("High"), "normal": _("Normal"), "low": _("Low")}
    return labels.get(name, name)


def role_label(role: str) -> str:
    labels = {
        "clerk": _("Clerk"),
        "supervisor": _("Supervisor"),
        "admin": _("Admin"),
        "system": _("System"),
    }
    return labels.get(role, role)


def outcome_label(name: str) -> str:
    labels = {
        "approve": _("Approve"),
        "reject": _("Reject"),
        "recheck": _("Re-check"),
        "override": _("Override"),
        "cancel": _("Cancel"),
        "retry": _("Retry"),
        "resolve": _("Resolved by hand"),
        "fix": _("Fixed"),
        "reverse": _("Reverse"),
        "partly_reverse": _("Reverse in part"),
    }
    return labels.get(name, name)


def trigger_label(trigger: str) -> str:
    """A workflow trigger; those a task outcome fires read like the outcome's button."""
    labels = {
        "submit": _("Submit"),
        "checks_passed": _("Checks passed"),
        "needs_review": _("Needs double review"),
        "needs_feasibility": _("Needs sign-off"),
        "hold": _("Put on hold"),
        "sign_off": _("Sign off"),
        "review_approve": outcome_label("approve"),
        "fulfilled": _("Fulfilled"),
        "close": _("Close"),
        "amend": _("Amend"),
        "prepared": _("Prepared"),
        "issue": _("Issue"),
        "sent": _("Sent"),
        "fail": _("Failed"),
        "flag": _("Flag as a problem"),
        "fixed": outcome_label("fix"),
        "request_red": _("Request a red-letter invoice"),
    }
    return labels.get(trigger) or outcome_label(trigger)


def guard_label(name: str) -> str:
    """What a refusing guard asks for; ``not x`` is an ``unless`` guard that holds."""
    if name.startswith("not "):
        return _("not while: %(what)s", what=guard_label(name.removeprefix("not ")))
    labels = {
        "reason_given": _("a reason is needed"),
        "reviewer_not_creator": _("the reviewer may not be who entered it"),
        "first_approval_by_actor": _("each person approves only once"),
        "second_distinct_reviewer": _("a second reviewer is needed"),
        "all_signed_off": _("every group must sign off"),
        "no_invoice_issued": _("an order with an issued invoice cannot be cancelled"),
        "fully_delivered_and_billed": _("everything must be delivered and invoiced"),
        "reviewer_not_preparer": _("the reviewer may not be who prepared the invoice"),
        "fully_reversed": _("the whole amount must be reversed"),
    }
    return labels.get(name, name)


def step_label(step: str) -> str:
    """An automated step the instance waits for."""
    labels = {
        "order.run_checks": _("Automatic checks"),
        "order.reserve_and_invoice": _("Reserve stock and draft invoices"),
        "invoice.prepare": _("Prepare the invoice"),
        "invoice.issue": _("Issue the invoice"),
        "invoice.notify": _("Send the invoice"),
        "invoice.release_lines": _("Release the invoiced quantities"),
        "notify.order": _("Notify the customer"),
    }
    return labels.get(step, step)


def job_status_label(status: str) -> str:
    labels = {"pending": _("queued"), "published": _("running"), "failed": _("failed")}
    return labels.get(status, status)


def hold_reason_label(code: str) -> str:
    """An order's hold reason code (DOMAIN: on_hold)."""
    labels = {
        "DATA": _("Data missing or wrong"),
        "DUPLICATE": _("Possible duplicate order"),
        "CREDIT": _("Credit limit exceeded"),
        "STOCK_SHORT": _("Stock short"),
        "CUSTOMER_BLOCKED": _("Customer blocked"),
        "SPECIAL": _("Special order sign-off"),
    }
    return labels.get(code, code)


_HOLD_TITLE = re.compile(r"(?P<head>.*: ?)(?P<code>[A-Z][A-Z_]+)")


def task_title(title: str) -> str:
    """A task title as the UI shows it: a trailing hold reason code (order.yaml's
    ``{hold_reason}``, which the hold-reasons report reads) becomes its label."""
    found = _HOLD_TITLE.fullmatch(title or "")
    if found is None:
        return title
    label = hold_reason_label(found["code"])
    return title if label == found["code"] else found["head"] + label


def event_label(kind: str) -> str:
    labels = {
        "start": _("Started"),
        "transition": _("Transition"),
        "claim": _("Claimed"),
        "unclaim": _("Unclaimed"),
        "complete": _("Completed"),
        "reassign": _("Reassigned"),
        "unassign": _("Unassigned"),
        "comment": _("Comment"),
        "incident": _("Incident"),
        "incident_retry": _("Incident retried"),
        "incident_resolve": _("Incident resolved"),
        "escalate": _("Escalated"),
        "delegate": _("Delegated"),
        "sla_remind": _("SLA reminder"),
        "sla_requeue": _("SLA breached: back to the queue"),
        "sla_escalate": _("SLA breached: escalated to supervisors"),
    }
    if kind.startswith("contact_"):
        return channel_label(kind.removeprefix("contact_"))
    return labels.get(kind, kind)


def channel_label(channel: str) -> str:
    labels = {
        "email": _("Email"),
        "phone": _("Phone"),
        "wechat": _("WeChat"),
        "visit": _("Visit"),
        "letter": _("Letter"),
        "other": _("Other"),
    }
    return labels.get(channel, channel)


def task_status_label(status: str) -> str:
    labels = {"open": _("Open"), "completed": _("Completed"), "cancelled": _("Cancelled")}
    return labels.get(status, status)


def group_label(group: str) -> str:
    labels = {
        "sales": _("Sales"),
        "warehouse": _("Warehouse"),
        "finance": _("Finance"),
        "production": _("Production"),
        "logistics": _("Logistics"),
    }
    return labels.get(group, group)


def workflow_label(name: str) -> str:
    labels = {"order": _("Order"), "invoice": _("Invoice")}
    return labels.get(name, name)


def red_reason_label(code: str) -> str:
    labels = {
        "WRONG_INVOICE": _("Wrong invoice"),
        "GOODS_RETURNED": _("Goods returned"),
        "SERVICE_TERMINATED": _("Service terminated"),
        "SALES_ALLOWANCE": _("Sales allowance"),
    }
    return labels.get(code, code)


LABELS = {
    "priority_label": priority_label,
    "role_label": role_label,
    "outcome_label": outcome_label,
    "event_label": event_label,
    "channel_label": channel_label,
    "task_status_label": task_status_label,
    "group_label": group_label,
    "red_reason_label": red_reason_label,
    "workflow_label": workflow_label,
    "trigger_label": trigger_label,
    "guard_label": guard_label,
    "step_label": step_label,
    "job_status_label": job_status_label,
    "hold_reason_label": hold_reason_label,
    "task_title": task_title,
}


#: Fixed messages the services put in errors, marked here so they are translated
#: (core.translate looks them up at run time; messages with values pass through).
SERVICE_MESSAGES = (
    _l("required"),
    _l("required: the id of a customer"),
    _l("required: the id of a product"),
    _l("no such customer"),
    _l("no such product"),
    _l("must be a number"),
    _l("must be greater than 0"),
    _l("must not be negative"),
    _l("must not be in the past"),
    _l("must be a date like 2026-03-31"),
    _l("at most 64 characters"),
    _l("at least one line is required"),
    _l("a special order needs at least one sign-off group"),
    _l("must be a number written as text or an integer (never a float)"),
    _l("text of at most 200 characters"),
    _l("a reason is required"),
    _l("a comment cannot be empty"),
    _l("must be in or out"),
    _l("approved orders are frozen; amend instead"),
    # supervision and delegation
    _l("task is not open"),
    _l("no such active user"),
    _l("must be after the start"),
    _l("must be in the future"),
    _l("must be someone else"),
    _l("this person already has a substitute then"),
    _l("the substitute is away then too"),
    _l("this person stands in for someone then"),
    _l("only a supervisor may do that"),
)

#: Service messages that carry a value: the English pattern, and its translation
#: with the same named parts (core.translate tries them before the fixed ones).
VALUED_MESSAGES: tuple[tuple[re.Pattern[str], Callable[..., str]], ...] = (
    (
        re.compile(r"(?P<who>.+) is in none of the task's groups"),
        lambda **kw: _("%(who)s is in none of the task's groups", **kw),
    ),
    (re.compile(r"already with (?P<who>.+)"), lambda **kw: _("already with %(who)s", **kw)),
    (
        re.compile(r"at most (?P<n>\d+) tasks at once"),
        lambda **kw: _("at most %(n)s tasks at once", **kw),
    ),
)
