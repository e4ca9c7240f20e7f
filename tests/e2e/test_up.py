"""`order-flow up` on the embedded default: everything starts, a demo clerk signs in,
Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import WORKFLOWS, service_missing
from tests.e2e.conftest import free_port, wait_until

#: Migrate, deploy, load the demo, start four processes (gunicorn, celery x2, relay).
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc; Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    if not Path("/proc/self/stat").exists():
        service_missing("/proc (to find the child processes)", "not mounted")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDER_FLOW_")}
    env.update(
        ORDER_FLOW_DATA_DIR=str(tmp_path / "data"),
        ORDER_FLOW_WORKFLOWS_DIR=str(WORKFLOWS),
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "order_flow.cli", "up", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield proc, port, log
    finally:
        if proc.poll() is None:
            for pid in descendants(proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.kill()
            proc.wait(timeout=10)


def healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_up_runs_everything_with_demo_data_and_ctrl_c_stops_every_process(
    up: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, port, log = up

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"up exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        return healthy(port)

    wait_until(ready, START_TIMEOUT_S, "/healthz to answer 200")
    printed = log.read_text()
    assert f"http://127.0.0.1:{port}/" in printed
    assert "clerk1-demo" in printed and "boss-demo" in printed

    # A demo clerk signs in over HTTP and sees the inbox; the supervisor the console.
    base = f"http://127.0.0.1:{port}"
    for username, page in (("clerk1", "/inbox/"), ("boss", "/supervisor/")):
        with requests.Session() as web:
            login = web.get(f"{base}/login", timeout=10)
            assert login.status_code == 200
            token = _TOKEN.search(login.text)
            assert token is not None
            signed = web.post(
                f"{base}/login",
                data={
                    "csrf_token": token.group(1),
                    "username": username,
                    "password": f"{username}-demo",
                },
                allow_redirects=False,
                timeout=10,
            )
            assert signed.status_code == 302, signed.text[:500]
            assert web.get(base + page, timeout=10).status_code == 200

    # The worker consumes from the embedded broker: beat's relay runs go through it.
    wait_until(
        lambda: re.search(r"worker +\| .*order_flow\.relay\[.*\] succeeded", log.read_text()),
        60,
        "the worker to run a task from the embedded broker",
    )

    processes = descendants(proc.pid)
    assert len(processes) >= 4  # web (and its worker), worker, beat, relay
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=STOP_TIMEOUT_S) == 0
    wait_until(lambda: not any(alive(p) for p in processes), 15, "every child process to be gone")
    assert "stopped" in log.read_text()
