"""Who fires a trigger or acts on a task."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Roles in rising order of power; a role may do what the roles below it may.
ROLE_ORDER = ("clerk", "supervisor", "admin")


@dataclass(frozen=True)
class Actor:
    name: str
    role: str
    groups: frozenset[str] = frozenset()
    user_id: int | None = None
    #: The user this actor stands in for (delegation); recorded in the audit trail.
    acting_for: str | None = None

    @property
    def is_system(self) -> bool:
        return self.role == "system"

    @property
    def is_supervisor(self) -> bool:
        return self.role in ("supervisor", "admin")

    def has_role(self, role: str) -> bool:
        if role == "system" or self.role == "system":
            return role == self.role
        if self.role not in ROLE_ORDER or role not in ROLE_ORDER:
            return False
        return ROLE_ORDER.index(self.role) >= ROLE_ORDER.index(role)

    def may_fire(self, actors: Iterable[str]) -> bool:
        """True if any of the transition's actor roles is covered by this actor."""
        return any(self.has_role(r) for r in actors)

    def in_any_group(self, groups: Iterable[str]) -> bool:
        return not self.groups.isdisjoint(groups)


SYSTEM = Actor(name="system", role="system")
