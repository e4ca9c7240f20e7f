"""Lifecycles as data: load, check, diff, draw and run workflow definitions."""

from order_flow.workflow.definition import (
    KNOWN_ROLES,
    PRIORITIES,
    StateSpec,
    TaskSpec,
    TransitionSpec,
    WorkflowDefinition,
)
from order_flow.workflow.diagram import to_mermaid, to_svg
from order_flow.workflow.diff import DefinitionDiff, diff
from order_flow.workflow.loader import check_files, load_dir, load_file, parse_definition, validate
from order_flow.workflow.machine import attach, build_machine, detach

__all__ = [
    "KNOWN_ROLES",
    "PRIORITIES",
    "DefinitionDiff",
    "StateSpec",
    "TaskSpec",
    "TransitionSpec",
    "WorkflowDefinition",
    "attach",
    "build_machine",
    "check_files",
    "detach",
    "diff",
    "load_dir",
    "load_file",
    "parse_definition",
    "to_mermaid",
    "to_svg",
    "validate",
]
