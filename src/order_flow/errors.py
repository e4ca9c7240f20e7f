"""Every exception order_flow raises on purpose lives here."""

from __future__ import annotations

from dataclasses import dataclass


class OrderFlowError(Exception):
    """Base class of all order_flow errors."""


@dataclass(frozen=True)
class DefinitionProblem:
    """One problem found in a workflow definition file."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


class DefinitionError(OrderFlowError):
    """A workflow definition is invalid; carries every problem found."""

    def __init__(self, problems: list[DefinitionProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class NotFoundError(OrderFlowError):
    """A workflow, instance, task or other object does not exist."""


class ConflictError(OrderFlowError):
    """Another transaction changed the object first (optimistic lock lost)."""


class TransitionNotAllowedError(OrderFlowError):
    """The trigger is not declared from the current state, or a guard refused it."""


class PermissionDeniedError(OrderFlowError):
    """The actor's role or groups do not allow the action."""


class TaskStateError(OrderFlowError):
    """The task is not in a state that allows the action (claimed, closed...)."""


class ValidationError(OrderFlowError):
    """Input failed validation; ``errors`` maps field name to message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class MigrationError(OrderFlowError):
    """A workflow-version migration cannot be carried out."""
