"""Regenerate the settings table of docs/configuration.md from order_flow.config.

Run: .venv/bin/python tools/gen_config_doc.py   (a test fails when the table is stale)
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from order_flow.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"
SHOWN = {
    "data_dir": "./data",
    "workflows_dir": "./workflows",
    "database_url": "sqlite:///./data/order_flow.db",
    "broker_url": "sqla+sqlite:///./data/broker.db",
}


def table() -> str:
    source = (ROOT / "src" / "order_flow" / "config.py").read_text(encoding="utf-8")
    docs = {
        m.group(2): " ".join(line.strip()[3:] for line in m.group(1).splitlines())
        for m in re.finditer(r"((?:    #: .*\n)+)    (\w+): ", source)
    }
    defaults = Settings(data_dir=Path("data"))
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(Settings):
        value = SHOWN.get(f.name, getattr(defaults, f.name))
        rows.append(f"| `ORDER_FLOW_{f.name.upper()}` | `{value}` | {docs.get(f.name, '')} |")
    return "\n".join(rows)


def render(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)}")
