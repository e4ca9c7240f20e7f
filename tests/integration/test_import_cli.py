"""`order-flow import orders`: the report, the rejects file, exit codes, and a real
process killed half-way through a file, then run again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from order_flow.bootstrap import App
from order_flow.cli import main
from order_flow.store.imports import ImportBatch, ImportKey
from tests.conftest import WORKFLOWS
from tests.integration.import_helpers import ZH, good_rows, orders_by_po, shop, write_csv, written


@pytest.fixture
def env(app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "ORDER_FLOW_DATABASE_URL": app.settings.database_url,
        "ORDER_FLOW_DATA_DIR": str(tmp_path / "data"),
        "ORDER_FLOW_WORKFLOWS_DIR": str(WORKFLOWS),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["import", "orders", *args])
    return result.exit_code, result.stdout, result.stderr


def test_import_prints_the_counts_writes_the_rejects_and_exits_1(
    app: App, env: dict[str, str], tmp_path: Path
) -> None:
    s = shop(app)
    bad = (s.customers[0].code, "BAD", s.skus[0], "abc", "", "", "", "")
    path = write_csv(tmp_path / "orders.csv", ZH, [*good_rows(s, 4), bad])
    rejects = tmp_path / "rejects.csv"

    code, out, err = run(str(path), "--rejects", str(rejects), "--as", "alice")

    assert code == 1
    assert "9 rows; 8 imported (4 orders), 0 already imported (0 orders), 1 rejected" in out
    assert "must be a number" in out and "rows/s" in err  # the progress bar, on stderr
    assert rejects.read_text(encoding="utf-8-sig").splitlines() == [
        ",".join([*ZH, "row", "column", "reason"]),
        f"{s.customers[0].code},BAD,{s.skus[0]},abc,,,,,10,数量,must be a number",
    ]
    assert {o.created_by for found in orders_by_po(app).values() for o in found} == {"alice"}

    code, out, _ = run(str(path), "--quiet")
    assert code == 1 and "0 imported (0 orders), 8 already imported (4 orders)" in out


def test_a_clean_file_exits_0_and_an_unreadable_one_exits_2_writing_nothing(
    app: App, env: dict[str, str], tmp_path: Path
) -> None:
    s = shop(app)
    code, out, _ = run(str(write_csv(tmp_path / "ok.csv", ZH, good_rows(s, 2))), "--quiet")
    assert code == 0 and "4 imported (2 orders)" in out
    before = written(app)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip file")

    code, _, err = run(str(broken), "--quiet")

    assert code == 2 and "not a readable XLSX file" in err and "nothing was imported" in err
    assert written(app) == before
    code, _, err = run(str(tmp_path / "ok.csv"), "--as", "nobody", "--quiet")
    assert code == 2 and "no user 'nobody'" in err
    app.users.disable("bob")
    code, _, err = run(str(tmp_path / "ok.csv"), "--as", "bob", "--quiet")
    assert code == 2 and "user 'bob' is disabled" in err


def test_a_run_killed_half_way_then_run_again_leaves_exactly_one_order_per_po(
    app: App, env: dict[str, str], tmp_path: Path
) -> None:
    s = shop(app)
    total = 600
    path = write_csv(tmp_path / "orders.csv", ZH, good_rows(s, total, lines=2))

    def committed() -> int:
        with app.engine.session_factory() as db:
            return int(db.scalar(select(func.count()).select_from(ImportKey)) or 0)

    command = [sys.executable, "-m", "order_flow.cli", "import", "orders", str(path)]
    proc = subprocess.Popen(
        [*command, "--chunk", "2", "--quiet"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while committed() < 100 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    at_kill = committed()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    assert 100 <= at_kill < total  # killed half-way, after some chunks were committed
    assert sorted(len(found) for found in orders_by_po(app).values()) == [1] * at_kill

    again = subprocess.run([*command, "--quiet"], env={**os.environ, **env},
                           capture_output=True, text=True, timeout=300)  # fmt: skip

    assert again.returncode == 0, again.stderr
    assert f"{2 * total:,} rows; {2 * (total - at_kill):,} imported" in again.stdout
    assert f"already imported ({at_kill:,} orders)" in again.stdout
    by_po = orders_by_po(app)
    assert len(by_po) == total and all(len(found) == 1 for found in by_po.values())
    assert all(len(found[0].lines) == 2 for found in by_po.values())
    with app.engine.session_factory() as db:
        runs = db.execute(select(ImportBatch.finished_at).order_by(ImportBatch.id)).all()
    assert [r.finished_at is not None for r in runs] == [False, True]  # the killed run shows
