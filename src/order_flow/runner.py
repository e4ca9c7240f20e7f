"""A small process supervisor for `order-flow up`: web, worker, beat and relay as children.

Each child runs in its own session (process group), so a Ctrl-C in the terminal reaches
only this supervisor, which then stops the children in order: SIGTERM to each group,
wait, SIGKILL whatever is still alive after the timeout. A child that dies on its own
stops the others too (a half-running system is worse than a stopped one).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from order_flow.config import Settings

#: Seconds a child gets between SIGTERM and SIGKILL.
STOP_TIMEOUT_S = 15.0
#: How often the supervisor looks at its children.
POLL_S = 0.2


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    env: Mapping[str, str] = field(default_factory=dict)


class Runner:
    """Start the specs, forward their output line by line with a prefix, stop them all."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        out: IO[str] | None = None,
        stop_timeout: float = STOP_TIMEOUT_S,
    ) -> None:
        self.specs = list(specs)
        self.out = out or sys.stdout
        self.stop_timeout = stop_timeout
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._width = max((len(s.name) for s in self.specs), default=4)

    # -- output -----------------------------------------------------------------

    def say(self, name: str, line: str) -> None:
        with self._lock:
            self.out.write(f"{name:<{self._width}} | {line}\n")
            self.out.flush()

    def _forward(self, name: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.say(name, raw.decode("utf-8", "replace").rstrip())
        stream.close()

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        for spec in self.specs:
            env = {**os.environ, "PYTHONUNBUFFERED": "1", **spec.env}
            proc = subprocess.Popen(
                spec.argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # Ctrl-C reaches us only; we stop the children
            )
            self.procs[spec.name] = proc
            assert proc.stdout is not None
            t = threading.Thread(target=self._forward, args=(spec.name, proc.stdout), daemon=True)
            t.start()
            self._threads.append(t)
            self.say(spec.name, f"started (pid {proc.pid})")

    def request_stop(self, *_: Any) -> None:
        self._stop.set()

    def wait(self) -> int:
        """Block until asked to stop or a child exits; stop everything; the exit code."""
        failed: str | None = None
        while not self._stop.is_set():
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    failed = name
                    break
            if failed:
                break
            self._stop.wait(POLL_S)
        if failed:
            code = self.procs[failed].returncode
            self.say(failed, f"exited with code {code}; stopping the others")
        self.stop()
        return 1 if failed else 0

    def stop(self) -> None:
        """SIGTERM every child's process group, wait, then SIGKILL the stragglers."""
        for name, proc in reversed(self.procs.items()):
            if proc.poll() is None:
                self.say(name, "stopping")
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(name, f"still running after {self.stop_timeout:.0f} s; killing it")
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            # The group may hold children that outlived their parent (a pool process).
            _signal_group(proc, signal.SIGKILL)
        for t in self._threads:
            t.join(timeout=2)

    def run(self) -> int:
        """Start, handle SIGINT and SIGTERM, wait; returns the exit code."""
        previous = {
            sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.start()
            return self.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# -- what `order-flow up` runs ----------------------------------------------------------


def _gunicorn_quiet_options() -> list[str]:
    """Newer gunicorn opens a control socket in $HOME; several local runs would share it."""
    try:
        from gunicorn.config import KNOWN_SETTINGS
    except ImportError:  # pragma: no cover - gunicorn is a dependency
        return []
    names = {getattr(s, "name", "") for s in KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in names else []


def embedded_specs(
    settings: Settings, host: str, port: int, concurrency: int = 2
) -> list[ProcessSpec]:
    """Web, one worker on every queue, beat and the relay, all on the same settings."""
    exe = sys.executable
    env = {
        "ORDER_FLOW_DATA_DIR": str(Path(settings.data_dir).resolve()),
        "ORDER_FLOW_WORKFLOWS_DIR": str(Path(settings.workflows_dir).resolve()),
        "ORDER_FLOW_DATABASE_URL": settings.database_url,
        "ORDER_FLOW_BROKER_URL": settings.broker_url,
    }
    cli = [exe, "-m", "order_flow.cli"]
    # SQLite allows one writer at a time: a threads pool shares one process (and its
    # connection pool) instead of forking writers that queue on the file lock.
    pool = ["--pool=threads"] if settings.is_sqlite else []
    web = [
        exe,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        "1",
        "--threads",
        "8",
        "--worker-class",
        "gthread",
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "5",
        *_gunicorn_quiet_options(),
        "web:create_app()",
    ]
    return [
        ProcessSpec("web", web, env),
        ProcessSpec("worker", [*cli, "worker", "-c", str(concurrency), *pool], env),
        ProcessSpec("beat", [*cli, "beat"], env),
        ProcessSpec("relay", [*cli, "relay"], env),
    ]
