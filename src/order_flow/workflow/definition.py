"""A workflow definition as plain, frozen data.

Nothing here reads files or knows about ``transitions``; the loader builds these
objects and the machine module turns them into a state machine.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

PRIORITIES = ("urgent", "high", "normal", "low")
PRIORITY_FROM_SUBJECT = "from_subject"
KNOWN_ROLES = ("system", "clerk", "supervisor", "admin")

# A business day is 8 business hours; the engine's calendar decides which hours count.
BUSINESS_DAY = timedelta(hours=8)
_DURATION_PART = re.compile(r"(\d+)([dhm])")
_DURATION = re.compile(r"(?:\d+[dhm])+")
_UNIT = {"d": BUSINESS_DAY, "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_duration(text: str) -> timedelta:
    """Parse a business-time duration such as ``4h``, ``30m``, ``2d`` or ``1d4h``.

    Raises ValueError for anything else (including zero).
    """
    compact = text.strip().replace(" ", "")
    if not _DURATION.fullmatch(compact):
        raise ValueError(f"bad duration {text!r}: use e.g. '30m', '4h' or '2d'")
    total = sum((int(n) * _UNIT[u] for n, u in _DURATION_PART.findall(compact)), timedelta())
    if total <= timedelta():
        raise ValueError(f"bad duration {text!r}: must be positive")
    return total


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`, in the shortest spelling."""
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 8 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (mins, "m")) if n]
    return "".join(parts) or "0m"


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable str -> str mapping that keeps insertion order."""

    __slots__ = ("_items", "_index")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = tuple(items.items()) if isinstance(items, Mapping) else tuple(items)
        self._items: tuple[tuple[str, str], ...] = pairs
        self._index: dict[str, str] = dict(pairs)

    def __getitem__(self, key: str) -> str:
        return self._index[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._index) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._index!r})"


@dataclass(frozen=True)
class TaskSpec:
    """The human task created when an instance enters a state."""

    title: str
    candidates: tuple[str, ...]
    priority: str
    sla: timedelta | None
    follow_up: timedelta | None
    outcomes: Mapping[str, str]  # outcome name -> trigger name (a FrozenMap)
    line: int = 0
    # Line of each outcome entry, for precise error messages; not part of equality.
    outcome_lines: tuple[tuple[str, int], ...] = field(default=(), compare=False, repr=False)

    def to_canonical(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "candidates": list(self.candidates),
            "priority": self.priority,
            "sla": None if self.sla is None else format_duration(self.sla),
            "follow_up": None if self.follow_up is None else format_duration(self.follow_up),
            "outcomes": dict(self.outcomes),
        }


@dataclass(frozen=True)
class StateSpec:
    name: str
    label: Mapping[str, str] = field(default_factory=FrozenMap)  # {"zh": ..., "en": ...}
    final: bool = False
    step: str | None = None  # automated step run on a worker on entry
    task: TaskSpec | None = None  # human task created on entry
    line: int = 0

    def display(self, lang: str = "zh") -> str:
        """The label in ``lang``, falling back to any label, then the name."""
        return self.label.get(lang) or next(iter(self.label.values()), None) or self.name

    def to_canonical(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": dict(self.label),
            "final": self.final,
            "step": self.step,
            "task": None if self.task is None else self.task.to_canonical(),
        }


@dataclass(frozen=True)
class TransitionSpec:
    trigger: str
    source: str
    dest: str
    conditions: tuple[str, ...] = ()  # guards that must be True
    unless: tuple[str, ...] = ()  # guards that must be False
    actors: tuple[str, ...] = ()  # roles allowed to fire it
    line: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.trigger, self.source, self.dest)

    def to_canonical(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "source": self.source,
            "dest": self.dest,
            "conditions": list(self.conditions),
            "unless": list(self.unless),
            "actors": list(self.actors),
        }


@dataclass(frozen=True)
class WorkflowDefinition:
    name: str
    initial: str
    states: tuple[StateSpec, ...]
    transitions: tuple[TransitionSpec, ...]
    path: str = "<memory>"
    content_hash: str = ""  # filled in from to_canonical() when left empty
    # Lines of the top-level keys, for error messages; not part of equality.
    initial_line: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.content_hash:
            object.__setattr__(self, "content_hash", canonical_hash(self.to_canonical()))

    def state(self, name: str) -> StateSpec:
        for spec in self.states:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.name for s in self.states))

    def transitions_from(self, source: str) -> tuple[TransitionSpec, ...]:
        return tuple(t for t in self.transitions if t.source == source)

    def triggers_from(self, source: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.trigger for t in self.transitions_from(source)))

    @property
    def guard_names(self) -> frozenset[str]:
        return frozenset(g for t in self.transitions for g in (*t.conditions, *t.unless))

    @property
    def step_names(self) -> frozenset[str]:
        return frozenset(s.step for s in self.states if s.step)

    def to_canonical(self) -> dict[str, Any]:
        """A plain JSON-able dict without lines or path: what the content hash covers."""
        return {
            "name": self.name,
            "initial": self.initial,
            "states": [s.to_canonical() for s in self.states],
            "transitions": [t.to_canonical() for t in self.transitions],
        }


def canonical_hash(canonical: Mapping[str, Any]) -> str:
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
