"""The `order-flow` command line, run in-process with click's runner."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from order_flow.cli import main
from tests.conftest import WORKFLOWS


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ORDER_FLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ORDER_FLOW_WORKFLOWS_DIR", str(WORKFLOWS))
    monkeypatch.delenv("ORDER_FLOW_DATABASE_URL", raising=False)
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_check_passes_on_the_shipped_workflows(env: Path) -> None:
    code, out, _ = run("workflows", "check")
    assert code == 0 and "ok" in out


def test_check_names_file_and_line_and_exits_non_zero(env: Path) -> None:
    bad = env / "order.yaml"
    text = (WORKFLOWS / "order.yaml").read_text(encoding="utf-8")
    bad.write_text(text.replace("dest: approved", "dest: aproved", 1), encoding="utf-8")
    line = next(i for i, ln in enumerate(bad.read_text().splitlines(), 1) if "aproved" in ln)
    code, _, err = run("workflows", "check", str(bad))
    assert code == 1
    assert f"{bad}:{line}:" in err and "aproved" in err


def test_check_of_a_missing_path_is_a_usage_error(env: Path) -> None:
    code, _, err = run("workflows", "check", str(env / "nope.yaml"))
    assert code == 2 and "no such file" in err


def test_init_then_deploy_again_reports_unchanged(env: Path) -> None:
    code, out, _ = run("init")
    assert code == 0 and "order: v1 deployed" in out
    code, out, _ = run("workflows", "deploy")
    assert code == 0 and "order: v1 unchanged" in out
    code, out, _ = run("db", "check")
    assert code == 0 and "agree" in out


def test_migrate_dry_run_and_bad_map_through_the_cli(env: Path) -> None:
    run("init")
    changed = env / "wf"
    changed.mkdir()
    shutil.copy(WORKFLOWS / "invoice.yaml", changed / "invoice.yaml")
    text = (WORKFLOWS / "order.yaml").read_text(encoding="utf-8")
    (changed / "order.yaml").write_text(text.replace("sla: 4h", "sla: 2h"), "utf-8")
    code, out, _ = run("workflows", "deploy", str(changed))
    assert code == 0 and "order: v2 deployed" in out
    code, out, _ = run("workflows", "migrate", "order", "--from", "1", "--to", "2", "--dry-run")
    assert code == 0 and "would move 0 instance(s)" in out
    code, _, err = run("workflows", "migrate", "order", "--from", "1", "--to", "2", "--map", "x")
    assert code == 2 and "OLD=NEW" in err
    code, out, _ = run("workflows", "diff", "order", "1", "2")
    assert code == 0 and "~ state on_hold" in out


def test_diagram_writes_mermaid_and_svg(env: Path) -> None:
    run("init")
    code, out, _ = run("workflows", "diagram", "order")
    assert code == 0 and "stateDiagram-v2" in out and "on_hold" in out
    svg = env / "order.svg"
    code, _, _ = run("workflows", "diagram", "order", "--format", "svg", "-o", str(svg))
    assert code == 0 and svg.read_text(encoding="utf-8").startswith("<svg")


def test_why_explains_a_missing_instance_clearly(env: Path) -> None:
    run("init")
    code, _, err = run("why", "99")
    assert code == 1 and "instance 99 does not exist" in err
