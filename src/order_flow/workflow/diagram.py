"""Diagrams generated from a definition: Mermaid text and a self-contained SVG.

The SVG needs no external tool: states are laid out in columns by their BFS depth
from the initial state, and edges between the same two states share one arrow.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from xml.sax.saxutils import escape

from order_flow.workflow.definition import StateSpec, WorkflowDefinition

FONT = "PingFang SC, Microsoft YaHei, Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif"
HIGHLIGHT_FILL, HIGHLIGHT_STROKE = "#ffe08a", "#b8860b"
BOX_FILL, BOX_STROKE, FINAL_FILL = "#eef4fb", "#4a6fa5", "#e8e8e8"
BOX_HEIGHT, ROW_GAP, COL_GAP, MARGIN = 46, 64, 150, 60


def _edges(defn: WorkflowDefinition) -> dict[tuple[str, str], list[str]]:
    """(source, dest) -> unique trigger names, in file order."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for t in defn.transitions:
        triggers = grouped.setdefault((t.source, t.dest), [])
        if t.trigger not in triggers:
            triggers.append(t.trigger)
    return grouped


def _unique_states(defn: WorkflowDefinition) -> list[StateSpec]:
    return list({s.name: s for s in reversed(defn.states)}.values())[::-1]


# -- Mermaid ----------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    # Mermaid's own entity syntax (#code;); '#' first so later codes are not re-escaped.
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text.replace("&", "#amp;").replace("\n", " ")


def to_mermaid(defn: WorkflowDefinition, highlight: str | None = None, lang: str = "zh") -> str:
    """A ``stateDiagram-v2``; the ``highlight`` state (if it exists) gets class ``current``."""
    lines = ["stateDiagram-v2", "    direction LR"]
    states = _unique_states(defn)
    for s in states:
        lines.append(f'    state "{_mermaid_text(s.display(lang))}" as {s.name}')
    lines.append(f"    [*] --> {defn.initial}")
    for (source, dest), triggers in _edges(defn).items():
        lines.append(f"    {source} --> {dest}: {_mermaid_text(' / '.join(triggers))}")
    lines += [f"    {s.name} --> [*]" for s in states if s.final]
    if highlight is not None and any(s.name == highlight for s in states):
        lines.append(
            f"    classDef current fill:{HIGHLIGHT_FILL},stroke:{HIGHLIGHT_STROKE},stroke-width:2px"
        )
        lines.append(f"    class {highlight} current")
    return "\n".join(lines) + "\n"


# -- SVG --------------------------------------------------------------------------------------


def _text_width(text: str, size: float) -> float:
    wide = sum(1 for c in text if unicodedata.east_asian_width(c) in "WF")
    return (wide * 1.0 + (len(text) - wide) * 0.58) * size


@dataclass
class _Box:
    state: StateSpec
    title: str
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def cy(self) -> float:
        return self.y + BOX_HEIGHT / 2


def _layers(defn: WorkflowDefinition, names: list[str]) -> dict[str, int]:
    """Longest-path layering after dropping the back edges that a DFS from the initial finds."""
    succ: dict[str, list[str]] = {n: [] for n in names}
    for t in defn.transitions:
        if t.source in succ and t.dest in succ and t.dest != t.source:
            succ[t.source].append(t.dest)
    order: list[str] = []  # reverse post-order of the acyclic part
    forward: dict[str, list[str]] = {n: [] for n in names}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str) -> None:
        state[node] = 1
        for nxt in succ[node]:
            if state.get(nxt) != 1:  # an edge back onto the stack closes a cycle: skip it
                forward[node].append(nxt)
                if nxt not in state:
                    visit(nxt)
        state[node] = 2
        order.append(node)

    roots = [defn.initial] if defn.initial in succ else []
    for root in roots + names:
        if root not in state:
            visit(root)
    layer = dict.fromkeys(names, 0)
    for node in reversed(order):
        for nxt in forward[node]:
            layer[nxt] = max(layer[nxt], layer[node] + 1)
    return layer


def _ordered_columns(
    defn: WorkflowDefinition, boxes: dict[str, _Box], layer: dict[str, int]
) -> list[list[_Box]]:
    columns: dict[int, list[_Box]] = {}
    for name, box in boxes.items():
        columns.setdefault(layer[name], []).append(box)
    result = [columns[c] for c in sorted(columns)]
    row = {b.state.name: i for col in result for i, b in enumerate(col)}
    preds: dict[str, list[str]] = {n: [] for n in boxes}
    for t in defn.transitions:
        if t.dest in preds and t.source in layer and layer[t.source] < layer.get(t.dest, 0):
            preds[t.dest].append(t.source)
    for col in result[1:]:  # one barycentre sweep keeps most arrows from crossing

        def centre(box: _Box) -> float:
            ps = preds[box.state.name]
            return sum(row[p] for p in ps) / len(ps) if ps else row[box.state.name]

        col.sort(key=centre)
        for i, box in enumerate(col):
            row[box.state.name] = i
    return result


def _layout(defn: WorkflowDefinition, lang: str) -> tuple[dict[str, _Box], float, float]:
    boxes = {s.name: _Box(s, s.display(lang)) for s in _unique_states(defn)}
    for name, box in boxes.items():
        title_w = _text_width(box.title, 15)
        name_w = _text_width(name, 11) if name != box.title else 0
        box.width = max(96.0, title_w + 32, name_w + 32)
    x = MARGIN + 40.0  # room for the start dot
    height = 0.0
    for column in _ordered_columns(defn, boxes, _layers(defn, list(boxes))):
        width = max(b.width for b in column)
        for row, box in enumerate(column):
            box.x = x + (width - box.width) / 2
            box.y = MARGIN + 30 + row * (BOX_HEIGHT + ROW_GAP)
            height = max(height, box.y + BOX_HEIGHT)
        x += width + COL_GAP
    return boxes, x - COL_GAP + MARGIN, height + MARGIN + 30


def _label(x: float, y: float, text: str) -> str:
    w = _text_width(text, 12) + 8
    return (
        f'<rect x="{x - w / 2:.1f}" y="{y - 9:.1f}" width="{w:.1f}" height="16" rx="3" '
        f'fill="#ffffff" fill-opacity="0.85"/>'
        f'<text x="{x:.1f}" y="{y + 3:.1f}" class="edge-label">{escape(text)}</text>'
    )


Point = tuple[float, float]


def _curve(p0: Point, c1: Point, c2: Point, p3: Point) -> tuple[str, Point]:
    """An SVG cubic path and its point at t = 0.5 (where the label goes)."""
    path = "M{:.1f},{:.1f} C{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}".format(*p0, *c1, *c2, *p3)
    mid = ((p0[0] + 3 * c1[0] + 3 * c2[0] + p3[0]) / 8, (p0[1] + 3 * c1[1] + 3 * c2[1] + p3[1]) / 8)
    return path, mid


def _blocked(a: _Box, b: _Box, others: list[_Box]) -> bool:
    """Would the straight line from ``a`` to ``b`` run through a box in between?"""
    for c in others:
        if c is a or c is b or not (a.x + a.width < c.x and c.x + c.width < b.x):
            continue
        t = (c.cx - a.cx) / (b.cx - a.cx)
        y = a.cy + t * (b.cy - a.cy)
        if c.y - 6 <= y <= c.y + BOX_HEIGHT + 6:
            return True
    return False


def _edge(a: _Box, b: _Box, text: str, bend: float, others: list[_Box]) -> str:
    if a is b:
        top = a.y
        path = (
            f"M{a.cx - 14:.1f},{top:.1f} C{a.cx - 40:.1f},{top - 42:.1f} "
            f"{a.cx + 40:.1f},{top - 42:.1f} {a.cx + 14:.1f},{top:.1f}"
        )
        mid = (a.cx, top - 36.0)
    elif b.x > a.x + a.width:  # forward: right side to left side
        x0, y0, x3, y3 = a.x + a.width, a.cy, b.x, b.cy
        dx = (x3 - x0) / 2
        if _blocked(a, b, others):  # hop over (top row) or under the boxes in between
            top = min(o.y for o in others)
            bend += -62 if a.y == top and b.y == top else 62
        c1, c2 = (x0 + dx, y0 + bend), (x3 - dx, y3 + bend)
        path, mid = _curve((x0, y0), c1, c2, (x3, y3))
    else:  # backward or same column: bottom to bottom, bulging downwards
        x0, y0, x3, y3 = a.cx + 10, a.y + BOX_HEIGHT, b.cx - 10, b.y + BOX_HEIGHT
        drop = 46 + abs(x3 - x0) * 0.12 + bend
        c1, c2 = (x0, max(y0, y3) + drop), (x3, max(y0, y3) + drop)
        path, mid = _curve((x0, y0), c1, c2, (x3, y3))
    return f'<path d="{path}" class="edge"/>' + _label(mid[0], mid[1], text)


def _box(box: _Box, highlight: str | None) -> str:
    s = box.state
    cls = "state current" if s.name == highlight else "state final" if s.final else "state"
    parts = [
        f'<g class="{cls}" data-state="{escape(s.name)}">',
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" height="{BOX_HEIGHT}" '
        f'rx="8"/>',
    ]
    if s.final:  # a double border marks a final state
        parts.append(
            f'<rect x="{box.x + 3:.1f}" y="{box.y + 3:.1f}" width="{box.width - 6:.1f}" '
            f'height="{BOX_HEIGHT - 6}" rx="6" class="inner"/>'
        )
    title_y = box.cy + (0 if box.title != s.name else 5)
    parts.append(
        f'<text x="{box.cx:.1f}" y="{title_y:.1f}" class="title">{escape(box.title)}</text>'
    )
    if box.title != s.name:
        parts.append(
            f'<text x="{box.cx:.1f}" y="{box.cy + 15:.1f}" class="name">{escape(s.name)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def to_svg(defn: WorkflowDefinition, highlight: str | None = None, lang: str = "zh") -> str:
    """A standalone SVG document of ``defn``; the ``highlight`` state is filled differently."""
    boxes, width, height = _layout(defn, lang)
    height += 40  # room for the bottom arcs of backward edges
    style = (
        f"text{{font-family:{FONT};text-anchor:middle}}"
        f".state rect{{fill:{BOX_FILL};stroke:{BOX_STROKE};stroke-width:1.5}}"
        f".state.final rect{{fill:{FINAL_FILL};stroke:#555}}"
        f".state rect.inner{{fill:none}}"
        f".state.current rect{{fill:{HIGHLIGHT_FILL};stroke:{HIGHLIGHT_STROKE};stroke-width:3}}"
        ".title{font-size:15px;fill:#1a1a1a}.name{font-size:11px;fill:#666}"
        ".edge{fill:none;stroke:#7a869a;stroke-width:1.3;marker-end:url(#arrow)}"
        ".edge-label{font-size:12px;fill:#333}"
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{escape(defn.name, {chr(34): "&quot;"})}">',
        f"<title>{escape(defn.name)}</title>",
        f"<style>{style}</style>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#7a869a"/></marker></defs>',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
    ]
    if defn.initial in boxes:
        start = boxes[defn.initial]
        out.append(f'<circle cx="{MARGIN:.1f}" cy="{start.cy:.1f}" r="7" fill="#333"/>')
        out.append(
            f'<path d="M{MARGIN + 7:.1f},{start.cy:.1f} L{start.x:.1f},{start.cy:.1f}" '
            'class="edge"/>'
        )
    counts: dict[frozenset[str], int] = {}
    all_boxes = list(boxes.values())
    for (source, dest), triggers in _edges(defn).items():
        if source in boxes and dest in boxes:
            pair = frozenset((source, dest))
            bend = 18.0 * counts.get(pair, 0)  # a return edge between the same pair bends away
            counts[pair] = counts.get(pair, 0) + 1
            out.append(_edge(boxes[source], boxes[dest], " / ".join(triggers), bend, all_boxes))
    out += [_box(b, highlight) for b in boxes.values()]
    out.append("</svg>")
    return "\n".join(out) + "\n"
