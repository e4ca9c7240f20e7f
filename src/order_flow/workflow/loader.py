"""Read workflow YAML files into :class:`WorkflowDefinition` and check them.

The YAML is read as a node tree (``yaml.compose``) so that every problem can name
its line. Reading collects problems instead of stopping at the first one.
"""

from __future__ import annotations

import string
from collections.abc import Collection, Iterable
from datetime import timedelta
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from order_flow.errors import DefinitionError, DefinitionProblem
from order_flow.workflow.checks import check_definition
from order_flow.workflow.definition import (
    KNOWN_ROLES,
    FrozenMap,
    StateSpec,
    TaskSpec,
    TransitionSpec,
    WorkflowDefinition,
    parse_duration,
)

__all__ = [
    "KNOWN_ROLES",
    "check_files",
    "load_dir",
    "load_file",
    "parse_definition",
    "validate",
]

YAML_SUFFIXES = (".yaml", ".yml")
DEFAULT_ACTORS: tuple[str, ...] = ("system",)
DEFAULT_PRIORITY = "normal"

_TOP_KEYS = ("name", "initial", "states", "transitions")
_STATE_KEYS = ("name", "label", "final", "step", "task")
_TASK_KEYS = ("title", "candidates", "priority", "sla", "follow_up", "outcomes")
_TRANSITION_KEYS = ("trigger", "source", "dest", "conditions", "unless", "actor")
_STR_TAG = "tag:yaml.org,2002:str"
_BOOL_TAG = "tag:yaml.org,2002:bool"

_Entries = dict[str, tuple[ScalarNode, Node]]


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _peek(node: Node, key: str, kind: str) -> str:
    """``kind 'value-of-key'`` for messages about a mapping not read yet, else its line."""
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if k.value == key and isinstance(v, ScalarNode) and v.tag == _STR_TAG:
                return f"{kind} '{v.value}'"
    return f"{kind} at line {_line(node)}"


class _Reader:
    """Turns one composed YAML document into specs, noting every problem on the way."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[DefinitionProblem] = []

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append(DefinitionProblem(self.path, line, message))

    # -- generic node readers -------------------------------------------------------------

    def mapping(
        self, node: Node, where: str, allowed: Iterable[str], required: Iterable[str] = ()
    ) -> _Entries | None:
        if not isinstance(node, MappingNode):
            self.problem(_line(node), f"{where}: expected a mapping")
            return None
        allowed = tuple(allowed)
        entries: _Entries = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag != _STR_TAG:
                self.problem(_line(key), f"{where}: keys must be strings")
                continue
            if key.value in entries:
                self.problem(_line(key), f"{where}: duplicate key '{key.value}'")
                continue
            if key.value not in allowed:
                self.problem(_line(key), f"{where}: unknown key '{key.value}'")
                continue
            entries[key.value] = (key, value)
        for name in required:
            if name not in entries:
                self.problem(_line(node), f"{where}: missing '{name}'")
        return entries

    def text(self, node: Node, where: str) -> str | None:
        if isinstance(node, ScalarNode) and node.tag == _STR_TAG and node.value.strip():
            return str(node.value)
        self.problem(_line(node), f"{where}: expected a non-empty string")
        return None

    def flag(self, node: Node, where: str) -> bool:
        if isinstance(node, ScalarNode) and node.tag == _BOOL_TAG:
            return bool(yaml.SafeLoader.bool_values[node.value.lower()])
        self.problem(_line(node), f"{where}: expected true or false")
        return False

    def names(self, node: Node, where: str, *, allow_single: bool) -> tuple[str, ...]:
        if allow_single and isinstance(node, ScalarNode):
            one = self.text(node, where)
            return (one,) if one else ()
        if not isinstance(node, SequenceNode):
            self.problem(_line(node), f"{where}: expected a list of strings")
            # Keep a lone string so one typo does not also read as "no candidates".
            lone = node.value if isinstance(node, ScalarNode) and node.tag == _STR_TAG else None
            return (lone,) if lone else ()
        items = [self.text(item, where) for item in node.value]
        return tuple(dict.fromkeys(i for i in items if i))

    def optional_names(self, entries: _Entries, key: str, where: str) -> tuple[str, ...]:
        if key not in entries:
            return ()
        return self.names(entries[key][1], f"{where}: {key}", allow_single=True)

    def duration(self, node: Node, where: str) -> timedelta | None:
        raw = self.text(node, where)
        if raw is None:
            return None
        try:
            return parse_duration(raw)
        except ValueError:
            self.problem(_line(node), f"{where}: bad duration '{raw}' (use e.g. 30m, 4h, 2d)")
            return None

    # -- the document ---------------------------------------------------------------------

    def document(self, root: Node) -> WorkflowDefinition | None:
        top = self.mapping(root, "top level", _TOP_KEYS, required=("name", "initial", "states"))
        if top is None:
            return None
        name = self.text(top["name"][1], "name") if "name" in top else None
        initial, initial_line = "", None
        if "initial" in top:
            initial_line = _line(top["initial"][1])
            initial = self.text(top["initial"][1], "initial") or ""
        states: list[StateSpec] = []
        if "states" in top:
            node = top["states"][1]
            if isinstance(node, SequenceNode) and node.value:
                states = [s for s in map(self.state, node.value) if s is not None]
            else:
                self.problem(_line(node), "states: expected a non-empty list")
        transitions: list[TransitionSpec] = []
        if "transitions" in top:
            node = top["transitions"][1]
            if isinstance(node, SequenceNode):
                for item in node.value:
                    transitions.extend(self.transition(item))
            else:
                self.problem(_line(node), "transitions: expected a list")
        return WorkflowDefinition(
            name=name or "",
            initial=initial,
            states=tuple(states),
            transitions=tuple(transitions),
            path=self.path,
            initial_line=initial_line,
        )

    def state(self, node: Node) -> StateSpec | None:
        entries = self.mapping(node, _peek(node, "name", "state"), _STATE_KEYS, ("name",))
        if entries is None or "name" not in entries:
            return None
        name = self.text(entries["name"][1], "state name")
        if name is None:
            return None
        where = f"state '{name}'"
        label: FrozenMap = FrozenMap()
        if "label" in entries:
            label = self.label(entries["label"][1], where)
        final = self.flag(entries["final"][1], f"{where}: final") if "final" in entries else False
        step = self.text(entries["step"][1], f"{where}: step") if "step" in entries else None
        task = None
        if "task" in entries:
            key, value = entries["task"]
            task = self.task(value, where, _line(key))
        return StateSpec(name, label, final, step, task, _line(node))

    def label(self, node: Node, where: str) -> FrozenMap:
        if not isinstance(node, MappingNode):
            self.problem(_line(node), f"{where}: label must be a mapping like {{zh: ..., en: ...}}")
            return FrozenMap()
        pairs = []
        for key, value in node.value:
            lang = self.text(key, f"{where}: label language")
            text = self.text(value, f"{where}: label")
            if lang and text:
                pairs.append((lang, text))
        return FrozenMap(pairs)

    def task(self, node: Node, where: str, line: int) -> TaskSpec | None:
        where = f"{where}: task"
        entries = self.mapping(node, where, _TASK_KEYS, ("title", "candidates", "outcomes"))
        if entries is None:
            return None
        title = ""
        if "title" in entries:
            title_node = entries["title"][1]
            title = self.text(title_node, f"{where} title") or ""
            try:
                list(string.Formatter().parse(title))
            except ValueError:
                self.problem(_line(title_node), f"{where} title: bad template '{title}'")
        candidates: tuple[str, ...] = ()
        if "candidates" in entries:
            candidates = self.names(
                entries["candidates"][1], f"{where} candidates", allow_single=False
            )
        priority = DEFAULT_PRIORITY
        if "priority" in entries:
            priority = self.text(entries["priority"][1], f"{where} priority") or DEFAULT_PRIORITY
        sla = self.duration(entries["sla"][1], f"{where} sla") if "sla" in entries else None
        follow_up = None
        if "follow_up" in entries:
            follow_up = self.duration(entries["follow_up"][1], f"{where} follow_up")
        outcomes: list[tuple[str, str]] = []
        outcome_lines: list[tuple[str, int]] = []
        if "outcomes" in entries:
            out_node = entries["outcomes"][1]
            if isinstance(out_node, MappingNode) and out_node.value:
                for key, value in out_node.value:
                    outcome = self.text(key, f"{where} outcome")
                    trigger = self.text(value, f"{where} outcome '{key.value}'")
                    if outcome and trigger:
                        outcomes.append((outcome, trigger))
                        outcome_lines.append((outcome, _line(key)))
            else:
                self.problem(
                    _line(out_node), f"{where} outcomes: expected a mapping of outcome: trigger"
                )
        return TaskSpec(
            title=title,
            candidates=candidates,
            priority=priority,
            sla=sla,
            follow_up=follow_up,
            outcomes=FrozenMap(outcomes),
            line=line,
            outcome_lines=tuple(outcome_lines),
        )

    def transition(self, node: Node) -> list[TransitionSpec]:
        line = _line(node)
        where = _peek(node, "trigger", "transition")
        entries = self.mapping(node, where, _TRANSITION_KEYS, ("trigger", "source", "dest"))
        if entries is None or not {"trigger", "source", "dest"} <= entries.keys():
            return []
        trigger = self.text(entries["trigger"][1], "transition trigger")
        where = f"transition '{trigger}'"
        sources = self.names(entries["source"][1], f"{where}: source", allow_single=True)
        dest = self.text(entries["dest"][1], f"{where}: dest")
        conditions = self.optional_names(entries, "conditions", where)
        unless = self.optional_names(entries, "unless", where)
        actors = DEFAULT_ACTORS
        if "actor" in entries:
            actors = self.optional_names(entries, "actor", where)
        if trigger is None or dest is None:
            return []
        return [
            TransitionSpec(trigger, source, dest, conditions, unless, actors, line)
            for source in sources
        ]


def _read(text: str, path: str) -> tuple[WorkflowDefinition | None, list[DefinitionProblem]]:
    reader = _Reader(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else None
        message = f"yaml syntax error: {exc.problem or exc.context}"
        if exc.context and exc.context_mark is not None and exc.problem_mark is not None:
            message += f" ({exc.context} at line {int(exc.context_mark.line) + 1})"
        reader.problem(line, message)
        return None, reader.problems
    except yaml.YAMLError as exc:
        reader.problem(None, f"yaml error: {exc}")
        return None, reader.problems
    if root is None:
        reader.problem(None, "file is empty")
        return None, reader.problems
    return reader.document(root), reader.problems


def _sorted(problems: Iterable[DefinitionProblem]) -> list[DefinitionProblem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.path, p.line or 0))


def parse_definition(text: str, path: str) -> WorkflowDefinition:
    """Parse one definition; raise DefinitionError listing every structural problem.

    Structural means everything that can be checked without the guard and step
    registries: shape, types, the graph, outcomes, roles and priorities.
    """
    defn, problems = _read(text, path)
    if defn is not None:
        problems += check_definition(defn)
    if problems or defn is None:
        raise DefinitionError(_sorted(problems))
    return defn


def load_file(path: str | Path) -> WorkflowDefinition:
    path = Path(path)
    return parse_definition(path.read_text(encoding="utf-8"), str(path))


def _yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in YAML_SUFFIXES)


def load_dir(directory: str | Path) -> list[WorkflowDefinition]:
    """Load every ``*.yaml`` / ``*.yml`` file in ``directory``, sorted by file name."""
    return [load_file(p) for p in _yaml_files(Path(directory))]


def validate(
    defn: WorkflowDefinition, known_guards: Collection[str], known_steps: Collection[str]
) -> list[DefinitionProblem]:
    """Every problem in ``defn``, including guard and step names missing from the registries."""
    return _sorted(check_definition(defn, known_guards, known_steps))


def check_files(
    paths: Iterable[str | Path], known_guards: Collection[str], known_steps: Collection[str]
) -> list[DefinitionProblem]:
    """Parse and validate every file (a directory means its YAML files); never raises for them."""
    problems: list[DefinitionProblem] = []
    for raw in paths:
        path = Path(raw)
        files = _yaml_files(path) if path.is_dir() else [path]
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(DefinitionProblem(str(file), None, f"cannot read file: {exc}"))
                continue
            defn, found = _read(text, str(file))
            if defn is not None:
                found += check_definition(defn, known_guards, known_steps)
            problems += _sorted(found)
    return problems
