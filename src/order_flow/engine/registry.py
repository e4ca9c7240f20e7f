"""Named guards and steps: the YAML refers to them by name, code registers them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from order_flow.engine.actors import Actor


@dataclass(frozen=True)
class GuardContext:
    """What a guard may look at. Guards read; they never write."""

    session: Session
    instance: Row[Any]
    trigger: str
    actor: Actor
    reason: str | None
    payload: Mapping[str, Any]
    now: datetime


Guard = Callable[[GuardContext], bool]
#: A step body; the worker calls it with the job's context (see worker/).
Step = Callable[..., Any]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Registry(Generic[F]):
    """A name -> callable table with a decorator for registration."""

    kind: str
    _items: dict[str, F] = field(default_factory=dict)

    def register(self, name: str) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            if name in self._items and self._items[name] is not fn:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = fn
            return fn

        return decorate

    def add(self, name: str, fn: F) -> None:
        self.register(name)(fn)

    def __getitem__(self, name: str) -> F:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} '{name}'") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> frozenset[str]:
        return frozenset(self._items)

    def merged(self, other: Registry[F]) -> Registry[F]:
        out: Registry[F] = Registry(self.kind, dict(self._items))
        for name in other:
            out.add(name, other[name])
        return out


def guard_registry() -> Registry[Guard]:
    return Registry("guard")


def step_registry() -> Registry[Step]:
    return Registry("step")
