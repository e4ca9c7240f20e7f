"""Typed Core handles on the mapped tables, for the hot paths that skip the ORM."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result, Table

from order_flow.store import models


def _table(model: type[models.Base]) -> Table:
    return cast(Table, model.__table__)


users = _table(models.User)
user_groups = _table(models.UserGroup)
workflow_versions = _table(models.WorkflowVersion)
instances = _table(models.Instance)
audit = _table(models.AuditEvent)
tasks = _table(models.Task)
candidates = _table(models.TaskCandidate)
comments = _table(models.TaskComment)
outbox = _table(models.OutboxJob)


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE or DELETE."""
    return cast(CursorResult[Any], result).rowcount
