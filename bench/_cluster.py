"""Workers and the relay for benchmarks, started the way operators start them.

    from _cluster import Cluster, cluster_env, redis_keyspace

    with redis_keyspace() as (redis_url, prefix), Cluster(logs) as cluster:
        env = cluster_env(database_url, redis_url, prefix, data_dir)
        cluster.start_workers(2, env)              # 2 x `order-flow worker -c 1`
        cluster.start_relay(env)                    # `order-flow relay --every 2`
        ...                                         # load, then read cluster.cpu_seconds()
    # every process is gone here: SIGTERM, then SIGKILL of its whole process group

Each process runs in a process group of its own (``start_new_session``), so the
SIGKILL reaches a prefork worker's pool children too, and asks the kernel to
SIGTERM it should the benchmark die without cleaning up (``PR_SET_PDEATHSIG``).
SIGTERM and SIGHUP sent to the benchmark stop the cluster like Ctrl-C does.

CPU time and resident memory come from ``/proc`` (Linux): every process of a
worker counts, its pool children included. The module imports only the standard
library, like ``_common``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("ORDER_FLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: A SIGTERMed process gets this long to finish its current task (warm shutdown).
STOP_TIMEOUT_S = 15.0
#: Startup of a worker (imports, broker connection, forking the pool).
READY_TIMEOUT_S = 90.0
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# -- the environment ------------------------------------------------------------------------


def cluster_env(
    database_url: str,
    broker_url: str,
    key_prefix: str,
    data_dir: Path,
    **settings: object,
) -> dict[str, str]:
    """The processes' environment: this machine's, minus any ORDER_FLOW_* setting, plus
    the URLs, the data folder, the project's workflows and ``settings`` (each as
    ORDER_FLOW_<NAME>, e.g. ``double_review_without_template=False``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDER_FLOW_")}
    env.update(
        ORDER_FLOW_DATABASE_URL=database_url,
        ORDER_FLOW_BROKER_URL=broker_url,
        ORDER_FLOW_DATA_DIR=str(data_dir),
        ORDER_FLOW_WORKFLOWS_DIR=str(ROOT / "workflows"),
        PYTHONUNBUFFERED="1",
    )
    if key_prefix:
        env["ORDER_FLOW_BROKER_KEY_PREFIX"] = key_prefix
    for name, value in settings.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        env[f"ORDER_FLOW_{name.upper()}"] = text
    return env


@contextmanager
def redis_keyspace(url: str = REDIS_URL, prefix: str = "of-bench") -> Iterator[tuple[str, str]]:
    """(url, key prefix) of a Redis key space of this run alone; its keys are deleted at
    the end. Fails at once, naming the URL, when Redis does not answer."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise SystemExit(f"Redis at {url} does not answer ({exc}); start it first") from None
    keys = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}:"
    try:
        yield url, keys
    finally:
        try:
            found = list(client.scan_iter(match=keys + "*", count=1000))
            for i in range(0, len(found), 1000):
                client.delete(*found[i : i + 1000])
        finally:
            client.close()


def default_queues() -> str:
    """The queues ``order-flow worker`` consumes when given none (all of them)."""
    from order_flow.cli import worker_cmd

    return next(str(p.default) for p in worker_cmd.params if p.name == "queues")


# -- /proc -----------------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's list), [] when it is gone."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
        except OSError:
            continue
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are alive."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        if os.path.exists(f"/proc/{p}"):
            pids.append(p)
            todo += children_of(p)
    return pids


def floor_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with bench/ on PYTHONPATH, for workers of ``app="_floor"``."""
    path = os.pathsep.join(filter(None, [str(ROOT / "bench"), os.environ.get("PYTHONPATH")]))
    return {**env, "PYTHONPATH": path}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime (fields 14, 15)


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


# -- processes -------------------------------------------------------------------------------


def _die_with_parent() -> None:
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Proc:
    name: str
    role: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def pids(self) -> list[int]:
        """The process and its descendants (a prefork worker's pool)."""
        return tree(self.pid)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (warm shutdown), then SIGKILL the whole process group."""
        if self.alive():
            try:
                self.popen.send_signal(signal.SIGTERM)
                self.popen.wait(timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        self.kill()

    def kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass


class _Stop(KeyboardInterrupt):
    """SIGTERM/SIGHUP to the benchmark: unwinds like Ctrl-C, so the cluster stops."""


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(f"signal {signum}")


def interrupt_on_sigterm() -> None:
    """From now on SIGTERM and SIGHUP unwind the benchmark like Ctrl-C, so that every
    with-block cleans up (processes, the throwaway database, the Redis keys)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_stop)


@dataclass
class Cluster:
    """The processes of one benchmark run; all stopped on leaving the with-block."""

    logs: Path
    procs: list[Proc] = field(default_factory=list)
    _old: dict[int, Any] = field(default_factory=dict)

    def __enter__(self) -> Cluster:
        self.logs.mkdir(parents=True, exist_ok=True)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                self._old[sig] = signal.signal(sig, _raise_stop)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType
    ) -> None:
        try:
            self.stop_all()
        finally:
            for sig, old in self._old.items():
                signal.signal(sig, old)
            self._old.clear()

    # -- starting ----------------------------------------------------------------------

    def spawn(self, name: str, role: str, argv: list[str], env: Mapping[str, str]) -> Proc:
        log = self.logs / f"{name}.log"
        with log.open("ab") as handle:
            popen = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=dict(env),
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # own process group: killpg reaches the pool too
                preexec_fn=_die_with_parent,
            )
        proc = Proc(name, role, popen, log)
        self.procs.append(proc)
        return proc

    def start_worker(
        self,
        env: Mapping[str, str],
        name: str = "w1",
        queues: str = "",
        concurrency: int = 1,
        app: str = "",
        loglevel: str = "INFO",
        extra: tuple[str, ...] = (),
        wait: bool = True,
    ) -> Proc:
        """``order-flow worker -c concurrency`` (prefork, like docs/operations.md), on
        ``queues`` (comma-separated) or else the command's default: every queue. With
        ``app`` (a module for ``celery -A``, e.g. a floor's tasks) ``celery -A app
        worker`` with the same options instead (by default on the same queues)."""
        if app and not queues:
            queues = default_queues()  # the same BRPOP over the same keys as the real ones
        args = ["-Q", queues] if queues else []
        args += ["-c", str(concurrency)]
        args += ["-n", f"{name}-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle"]
        if app:
            argv = [str(BIN / "celery"), "-A", app, "worker", "-l", loglevel, *args, *extra]
        else:
            argv = [str(BIN / "order-flow"), "worker", *args, *extra]
            if loglevel != "INFO":
                raise ValueError("order-flow worker always logs at INFO")
        proc = self.spawn(name, "worker", argv, env)
        if wait:
            self.wait_ready([proc])
        return proc

    def start_workers(self, n: int, env: Mapping[str, str], **options: Any) -> list[Proc]:
        """``n`` workers named w1..wn, started together, returned once all are ready."""
        prefix = options.pop("name", "w")
        procs = [
            self.start_worker(env, name=f"{prefix}{i + 1}", wait=False, **options) for i in range(n)
        ]
        self.wait_ready(procs)
        return procs

    def wait_ready(self, procs: list[Proc], timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        for proc in procs:
            while " ready." not in proc.output():
                if not proc.alive():
                    raise RuntimeError(f"worker {proc.name} died:\n{proc.output()[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker {proc.name} not ready after {timeout:.0f} s")
                time.sleep(0.1)

    def start_relay(self, env: Mapping[str, str], every: float = 2.0) -> Proc:
        """``order-flow relay --every N``: publishes what the after-commit publish missed."""
        argv = [str(BIN / "order-flow"), "relay", "--every", str(every)]
        return self.spawn("relay", "relay", argv, env)

    # -- stopping ----------------------------------------------------------------------

    def stop(self, procs: list[Proc]) -> None:
        """Stop some processes (SIGTERM all at once, then SIGKILL what is left)."""
        for proc in procs:
            if proc.alive():
                try:
                    proc.popen.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in procs:
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            proc.kill()
        self.procs = [p for p in self.procs if p not in procs]

    def stop_all(self) -> None:
        # Interrupting the stop (a second Ctrl-C) must still kill everything.
        try:
            self.stop(list(self.procs))
        finally:
            for proc in self.procs:
                proc.kill()
            self.procs.clear()

    # -- watching ----------------------------------------------------------------------

    def workers(self) -> list[Proc]:
        return [p for p in self.procs if p.role == "worker"]

    def cpu_seconds(self, role: str = "worker") -> float:
        """CPU used so far by every live process of ``role`` (pool children included)."""
        return sum(cpu_seconds(pid) for p in self.procs if p.role == role for pid in p.pids())

    def dump_logs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.output()[-tail:]}" for p in self.procs)


@dataclass(frozen=True)
class RssSample:
    at: float  # time.monotonic()
    worker: str  # the worker's name
    pid: int
    parent: bool  # the worker's main process (else a pool child)
    rss: int  # bytes


class RssSampler:
    """Samples the RSS of every process of every worker (pool children included) every
    ``every`` seconds, in a thread, while ``progress()`` (e.g. jobs done) is recorded
    with each round; ``with RssSampler(cluster) as rss: ...`` then ``rss.samples``."""

    def __init__(
        self, cluster: Cluster, every: float = 1.0, progress: Callable[[], float] | None = None
    ) -> None:
        self.cluster, self.every, self.progress = cluster, every, progress
        self.samples: list[RssSample] = []
        self.marks: list[tuple[float, float]] = []  # (at, progress)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sample()

    def sample(self) -> None:
        now = time.monotonic()
        for proc in self.cluster.workers():
            for pid in proc.pids():
                if rss := rss_bytes(pid):
                    self.samples.append(RssSample(now, proc.name, pid, pid == proc.pid, rss))
        if self.progress is not None:
            try:
                self.marks.append((now, float(self.progress())))
            except Exception:  # noqa: BLE001 - a failed progress read skips one mark
                pass

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()
