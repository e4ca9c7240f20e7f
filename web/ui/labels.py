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
    labels = {"clerk": _("Clerk"), "supervisor": _("Supervisor"), "admin": _("Admin")}
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
