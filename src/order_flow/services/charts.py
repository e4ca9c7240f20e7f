"""Server-side SVG charts: bar (grouped), stacked bar and line. No script, no CDN.

Every piece of text (labels, series names, titles) is XML-escaped here, so a customer
called ``<script>`` draws as text. Colours are presentation attributes, not ``style``
attributes, so the page's Content-Security-Policy (no inline styles) allows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

#: Colour-blind friendly (Okabe-Ito), one per series.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
WIDTH, HEIGHT = 720, 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 16, 28, 64
#: More categories than this: only every n-th x label is drawn.
MAX_X_LABELS = 16

Number = int | float | Decimal


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Number | None]


def _num(v: Number | None) -> float:
    return 0.0 if v is None else float(v)


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    exp = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1.0
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


def _text(x: float, y: float, body: str, anchor: str = "middle", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="11" '
        f'fill="#333"{extra}>{escape(body)}</text>'
    )


def _frame(
    title: str, labels: Sequence[str], series: Sequence[Series], top: float, bottom: float
) -> list[str]:
    """Axes, grid, y ticks, x labels and the legend."""
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="chart" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    span = top - bottom or 1.0
    for i in range(5):
        value = bottom + span * i / 4
        y = MARGIN_TOP + plot_h - plot_h * (value - bottom) / span
        out.append(
            f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#ddd" stroke-width="1"/>'
        )
        out.append(_text(MARGIN_LEFT - 6, y + 4, _fmt(value), "end"))
    every = max(1, -(-len(labels) // MAX_X_LABELS))
    step = plot_w / max(len(labels), 1)
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = MARGIN_LEFT + step * (i + 0.5)
        short = label if len(label) <= 14 else label[:13] + "…"
        y = HEIGHT - MARGIN_BOTTOM + 14
        out.append(_text(x, y, short, "end", f' transform="rotate(-30 {x:.1f} {y:.1f})"'))
    for i, s in enumerate(series):
        x = MARGIN_LEFT + i * 150
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x}" y="8" width="10" height="10" fill="{colour}"/>')
        out.append(_text(x + 14, 17, s.name, "start"))
    return out


def _scale(values: Sequence[float]) -> tuple[float, float]:
    low = min([0.0, *values])
    high = max([0.0, *values])
    return _nice_max(high) if high > 0 else 0.0, -_nice_max(-low) if low < 0 else 0.0


def _y(value: float, top: float, bottom: float) -> float:
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    return MARGIN_TOP + plot_h - plot_h * (value - bottom) / ((top - bottom) or 1.0)


def _empty(title: str, message: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} 60" class="chart" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        + _text(WIDTH / 2, 34, message)
        + "</svg>"
    )


def bar_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], empty: str = "No data"
) -> str:
    """Grouped bars: one group per label, one bar per series."""
    if not labels:
        return _empty(title, empty)
    top, bottom = _scale([_num(v) for s in series for v in s.values])
    out = _frame(title, labels, series, top, bottom)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    group = plot_w / len(labels)
    bar = group * 0.8 / max(len(series), 1)
    zero = _y(0.0, top, bottom)
    for si, s in enumerate(series):
        colour = PALETTE[si % len(PALETTE)]
        for i, v in enumerate(s.values):
            y = _y(_num(v), top, bottom)
            x = MARGIN_LEFT + group * i + group * 0.1 + bar * si
            out.append(
                f'<rect x="{x:.1f}" y="{min(y, zero):.1f}" width="{bar:.1f}" '
                f'height="{abs(zero - y):.1f}" fill="{colour}">'
                f"<title>{escape(labels[i])}: {escape(_fmt(_num(v)))}</title></rect>"
            )
    return "\n".join([*out, "</svg>"])


def stacked_bar_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], empty: str = "No data"
) -> str:
    """One bar per label; the series stack (values are taken as non-negative)."""
    if not labels:
        return _empty(title, empty)
    totals = [sum(max(_num(s.values[i]), 0.0) for s in series) for i in range(len(labels))]
    top, bottom = _scale(totals)
    out = _frame(title, labels, series, top, bottom)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    group = plot_w / len(labels)
    base = [0.0] * len(labels)
    for si, s in enumerate(series):
        colour = PALETTE[si % len(PALETTE)]
        for i, v in enumerate(s.values):
            value = max(_num(v), 0.0)
            y0, y1 = _y(base[i], top, bottom), _y(base[i] + value, top, bottom)
            base[i] += value
            out.append(
                f'<rect x="{MARGIN_LEFT + group * i + group * 0.15:.1f}" y="{y1:.1f}" '
                f'width="{group * 0.7:.1f}" height="{y0 - y1:.1f}" fill="{colour}">'
                f"<title>{escape(labels[i])} · {escape(s.name)}: {escape(_fmt(value))}</title>"
                "</rect>"
            )
    return "\n".join([*out, "</svg>"])


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], empty: str = "No data"
) -> str:
    """A polyline per series with a dot per point (a gap where a value is missing)."""
    if not labels:
        return _empty(title, empty)
    top, bottom = _scale([_num(v) for s in series for v in s.values])
    out = _frame(title, labels, series, top, bottom)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    step = plot_w / len(labels)
    for si, s in enumerate(series):
        colour = PALETTE[si % len(PALETTE)]
        points = [
            (MARGIN_LEFT + step * (i + 0.5), _y(_num(v), top, bottom), i, v)
            for i, v in enumerate(s.values)
            if v is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _i, _v in points)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for x, y, i, v in points:
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(labels[i])}: {escape(_fmt(_num(v)))}</title></circle>"
            )
    return "\n".join([*out, "</svg>"])


CHARTS = {"bar": bar_chart, "stacked": stacked_bar_chart, "line": line_chart}


def chart(
    kind: str, title: str, labels: Sequence[str], series: Sequence[Series], empty: str = "No data"
) -> str:
    """The SVG markup of a chart of ``kind`` (bar, stacked or line)."""
    return CHARTS[kind](title, labels, series, empty)
