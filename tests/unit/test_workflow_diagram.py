"""Diagrams are generated from definitions and never let label text out as markup."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from order_flow.workflow import load_dir, parse_definition, to_mermaid, to_svg

SHIPPED = load_dir(Path(__file__).resolve().parents[2] / "workflows")
HOSTILE = parse_definition(
    """\
name: hostile
initial: draft
states:
  - name: draft
    label: {zh: "<script>alert('x')</script>", en: "a & \\"b\\""}
  - name: done
    final: true
transitions:
  - {trigger: finish, source: draft, dest: done}
""",
    "hostile.yaml",
)
SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("defn", SHIPPED, ids=lambda d: d.name)
def test_mermaid_names_every_state_and_transition(defn) -> None:  # type: ignore[no-untyped-def]
    text = to_mermaid(defn)
    assert text.startswith("stateDiagram-v2\n")
    for state in defn.states:
        assert f"as {state.name}\n" in text
    for t in defn.transitions:
        assert f"{t.source} --> {t.dest}: " in text and t.trigger in text
    assert f"[*] --> {defn.initial}" in text


@pytest.mark.parametrize("defn", SHIPPED, ids=lambda d: d.name)
def test_svg_is_well_formed_and_shows_every_state(defn) -> None:  # type: ignore[no-untyped-def]
    root = ET.fromstring(to_svg(defn))
    assert root.tag == f"{SVG}svg"
    drawn = {g.get("data-state") for g in root.iter(f"{SVG}g")}
    assert drawn == {s.name for s in defn.states}
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {s.label["zh"] for s in defn.states} <= texts


def test_the_highlighted_state_gets_its_own_class() -> None:
    order = next(d for d in SHIPPED if d.name == "order")
    assert "class on_hold current" in to_mermaid(order, highlight="on_hold")
    root = ET.fromstring(to_svg(order, highlight="on_hold"))
    groups = root.iter(f"{SVG}g")
    current = [g.get("data-state") for g in groups if "current" in (g.get("class") or "")]
    assert current == ["on_hold"]


def test_english_labels_can_be_chosen() -> None:
    order = next(d for d in SHIPPED if d.name == "order")
    assert 'state "Draft" as draft' in to_mermaid(order, lang="en")
    assert ">Draft<" in to_svg(order, lang="en")


def test_script_in_a_label_is_escaped_in_svg_and_mermaid() -> None:
    svg = to_svg(HOSTILE)
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    root = ET.fromstring(svg)
    assert not list(root.iter(f"{SVG}script"))
    mermaid = to_mermaid(HOSTILE)
    assert "<script>" not in mermaid and "#lt;script#gt;" in mermaid
    assert 'state "a #amp; #quot;b#quot;" as draft' in to_mermaid(HOSTILE, lang="en")
