"""Real worker processes on real Redis and PostgreSQL.

Each test gets a throwaway PostgreSQL database migrated with Alembic, its own
Redis key space (kombu's ``global_keyprefix``), and a ``stack`` that starts
``celery -A worker.celery_app worker`` subprocesses and an ``order-flow relay``
loop. Everything a test starts is stopped at teardown: SIGTERM, then SIGKILL of
the whole process group after a timeout. The prefixed Redis keys are deleted.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from sqlalchemy import func, select

from order_flow.bootstrap import App, bootstrap
from order_flow.config import Settings
from order_flow.engine.versions import deploy_files
from order_flow.store import migrate
from order_flow.store.db import make_engine
from order_flow.store.tables import instances, outbox
from tests.conftest import ROOT, WORKFLOWS, service_missing, throwaway_pg_database
from worker.app import create_celery
from worker.publisher import CeleryPublisher

BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("ORDER_FLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ALL_QUEUES = "urgent,default,pdf,email"
#: How long a SIGTERMed process may take to finish its current task.
STOP_TIMEOUT_S = 20.0
#: Startup of a worker (import, connect, fork the pool).
READY_TIMEOUT_S = 60.0


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.25) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- processes -------------------------------------------------------------------------


def _die_with_parent() -> None:
    """SIGTERM the child when pytest dies without its teardown (killed by a timeout)."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


#: A log line worth showing when a test times out.
_ALARM = re.compile(r"WARNING|ERROR|CRITICAL|Traceback|[Cc]onnection|relay: ")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def children(self) -> list[int]:
        """The pids of the direct children (a prefork worker's pool processes)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            return []

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (warm shutdown), then SIGKILL the whole process group."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        """SIGKILL the process and everything it started (its own process group)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.popen.wait(10)


@dataclass
class Stack:
    """One system under test: database, broker key space, test-side app, processes."""

    env: dict[str, str]
    settings: Settings
    app: App
    celery: Celery
    logs: Path
    procs: list[Proc] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Proc:
        log = self.logs / f"{name}.log"
        handle = log.open("ab")
        popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env, **(extra_env or {})},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg reaches the pool too
            preexec_fn=_die_with_parent,
        )
        handle.close()
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def start_worker(
        self,
        name: str = "w1",
        queues: str = ALL_QUEUES,
        concurrency: int = 2,
        overrides: dict[str, str] | None = None,
        wait: bool = True,
    ) -> Proc:
        """A real ``celery -A worker.celery_app worker`` (prefork)."""
        args = ["-A", "worker.celery_app", "worker", "-Q", queues, "-c", str(concurrency)]
        args += ["-P", "prefork", "-l", "INFO", "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h"]
        args += ["--without-gossip", "--without-mingle"]
        if overrides:
            argv = [sys.executable, "-m", "tests.e2e.launch", "celery", *args]
        else:
            argv = [str(BIN / "celery"), *args]
        proc = self.spawn(name, argv, overrides)
        if wait:
            wait_until(
                lambda: " ready." in proc.output() or not proc.alive(),
                READY_TIMEOUT_S,
                f"worker {name} to be ready",
            )
            assert proc.alive(), f"worker {name} died:\n{proc.output()[-3000:]}"
        return proc

    def start_relay(self, every: float = 0.5, republish_after_s: float | None = None) -> Proc:
        """``order-flow relay``: publishes pending jobs (and lost ones, see launch.py)."""
        args = ["relay", "--every", str(every)]
        if republish_after_s is None:
            return self.spawn("relay", [str(BIN / "order-flow"), *args])
        argv = [sys.executable, "-m", "tests.e2e.launch", "order-flow", *args]
        return self.spawn(
            "relay", argv, {"ORDER_FLOW_OUTBOX_REPUBLISH_AFTER_S": str(int(republish_after_s))}
        )

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def dump_logs(self, tail: int = 4000) -> str:
        """Each process's log: its warnings and errors (connection losses, failed
        jobs: the story of a stall), then its last ``tail`` characters."""
        parts = []
        for p in self.procs:
            log = p.output()
            alarms = [line for line in log.splitlines() if _ALARM.search(line)]
            parts.append(
                f"--- {p.name}: {len(alarms)} warning/error line(s), the last 40 ---\n"
                + "\n".join(alarms[-40:])
                + f"\n--- {p.name}: the end ---\n{log[-tail:]}"
            )
        return "\n".join(parts)

    # -- reading the database -----------------------------------------------------------

    def states(self, workflow: str) -> dict[str, int]:
        with self.app.engine.session_factory() as s:
            rows = s.execute(
                select(instances.c.state, func.count())
                .where(instances.c.workflow == workflow)
                .group_by(instances.c.state)
            ).all()
        return {str(state): int(n) for state, n in rows}

    def outbox_counts(self) -> dict[str, int]:
        with self.app.engine.session_factory() as s:
            rows = s.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
            return {str(st): int(n) for st, n in rows}

    def wait_for(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """wait_until, with the outbox, the states and the process logs on failure."""
        try:
            return wait_until(check, timeout, what)
        except AssertionError as exc:
            detail = (
                f"orders {self.states('order')}, invoices {self.states('invoice')}, "
                f"outbox {self.outbox_counts()}\n{self.dump_logs()}"
            )
            raise AssertionError(f"{exc}\n{detail}") from None


def build_env(database_url: str, broker_url: str, prefix: str, data_dir: Path) -> dict[str, str]:
    """The processes' environment; an empty URL leaves the embedded default (SQLite files
    in the data folder)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDER_FLOW_")}
    env.update(
        ORDER_FLOW_DATA_DIR=str(data_dir),
        ORDER_FLOW_WORKFLOWS_DIR=str(WORKFLOWS),
        # Orders not made from a template would all wait for double review.
        ORDER_FLOW_DOUBLE_REVIEW_WITHOUT_TEMPLATE="false",
        PYTHONUNBUFFERED="1",
    )
    for name, value in (
        ("ORDER_FLOW_DATABASE_URL", database_url),
        ("ORDER_FLOW_BROKER_URL", broker_url),
        ("ORDER_FLOW_BROKER_KEY_PREFIX", prefix),
    ):
        if value:
            env[name] = value
    return env


@pytest.fixture
def smtp_sink() -> Iterator[Any]:
    """A real SMTP server (aiosmtpd) keeping every message it receives."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[Any] = []

    class Keep(Message):
        def handle_message(self, message: Any) -> None:
            received.append(message)

    controller = Controller(Keep(), hostname="127.0.0.1", port=free_port())
    controller.start()
    controller.received = received  # type: ignore[attr-defined]
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing("Redis", exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A Redis key space of this test alone; its keys are deleted afterwards."""
    prefix = f"of-e2e-{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, migrated with Alembic, then dropped."""
    with throwaway_pg_database("of_e2e") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


StackFactory = Callable[..., Stack]


@pytest.fixture
def make_stack(tmp_path: Path, smtp_sink: Any) -> Iterator[StackFactory]:
    """Build stacks; every process they start is stopped at teardown."""
    made: list[Stack] = []

    def make(database_url: str = "", broker_url: str = "", prefix: str = "") -> Stack:
        data_dir = tmp_path / f"data{len(made)}"
        data_dir.mkdir()
        env = build_env(database_url, broker_url, prefix, data_dir)
        env["ORDER_FLOW_SMTP_URL"] = f"smtp://127.0.0.1:{smtp_sink.port}"
        settings = Settings.from_env(env)
        celery = create_celery(settings)
        celery.set_current()  # CeleryPublisher sends through the current app
        app = bootstrap(settings, publisher=CeleryPublisher())
        migrate.upgrade(app.db)  # a no-op on an already migrated database
        deploy_files(app.engine, [WORKFLOWS])
        stack = Stack(env, settings, app, celery, tmp_path)
        made.append(stack)
        return stack

    try:
        yield make
    finally:
        for stack in made:
            try:
                stack.stop_all()
            finally:
                stack.app.close()
                stack.celery.close()


@pytest.fixture
def stack(pg_database: str, key_prefix: str, redis_url: str, make_stack: StackFactory) -> Stack:
    """PostgreSQL + the shared Redis under a private key prefix; no process started yet.

    make_stack comes last so that its processes stop before the database is dropped."""
    return make_stack(pg_database, redis_url, key_prefix)


class RedisServer:
    """A private ``redis-server`` on a free port that a test may stop and start."""

    def __init__(self, logs: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = logs / f"redis-{self.port}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        with self.log.open("ab") as handle:
            self.popen = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            wait_until(self._pings(client), 20, f"redis-server on port {self.port}")
        finally:
            client.close()

    @staticmethod
    def _pings(client: redis.Redis) -> Callable[[], bool]:
        def ping() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        return ping

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self.popen = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode != 0:
        service_missing("redis-server", "not installed")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
