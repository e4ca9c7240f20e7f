"""Helpers shared by the benchmarks in bench/.

Importing this module re-executes the running script under the project's .venv
when it is not already running there, so `bench/<name>` works from any shell.
It imports only the standard library at import time for that reason.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
DOCS = ROOT / "docs" / "benchmarks.md"
PG_ADMIN_URL = os.environ.get(
    "ORDER_FLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _reexec_in_venv() -> None:
    python = VENV / "bin" / "python"
    if not python.exists() or Path(sys.prefix).resolve() == VENV.resolve():
        return
    script = os.path.abspath(sys.argv[0])
    os.execv(str(python), [str(python), script, *sys.argv[1:]])


_reexec_in_venv()


@contextmanager
def pg_database(admin_url: str = PG_ADMIN_URL, prefix: str = "of_bench") -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped (WITH FORCE) at the end."""
    from sqlalchemy import create_engine, text

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database(backend: str, tmp: Path, pg_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """A URL: a SQLite file in ``tmp``, or a throwaway PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
    elif backend == "postgresql":
        with pg_database(pg_url) as url:
            yield url
    else:
        raise SystemExit(f"unknown backend {backend!r}: use sqlite and/or postgresql")


@contextmanager
def analyzing(url: str, every_s: float) -> Iterator[bool]:
    """Where the server runs with autovacuum off (the reference VM), ANALYZE the
    database every ``every_s`` seconds while the block runs, as autovacuum's analyze
    would in production; yields whether it does. Without it, plans made while a
    table was small or its rows in another state stay: a foreign-key check planned
    on an empty table scans the whole table for each row once it has grown, and a
    query by state scans what it thinks is a handful of rows."""
    import threading

    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    stop = threading.Event()
    try:
        with engine.connect() as conn:
            off = conn.execute(text("SHOW autovacuum")).scalar_one() == "off"

        def loop() -> None:
            while not stop.wait(every_s):
                with engine.connect() as conn:
                    conn.execute(text("ANALYZE"))

        thread = threading.Thread(target=loop, name="analyze", daemon=True)
        if off:
            thread.start()
        try:
            yield off
        finally:
            stop.set()
            if off:
                thread.join()
    finally:
        engine.dispose()


def pg_server_version(url: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
            sync = conn.execute(text("SHOW synchronous_commit")).scalar_one()
        return f"{version} (synchronous_commit={sync})"
    finally:
        engine.dispose()


def code_version(package_file: str) -> str:
    """The commit benchmarked, and whether the imported source differs from it."""

    def git(*args: str) -> str:
        run = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return run.stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    if not Path(package_file).resolve().is_relative_to(ROOT / "src"):
        return f"{sha} (source imported from {Path(package_file).parent})"
    return sha + (" + uncommitted changes in src/" if git("status", "--porcelain", "src") else "")


def machine_info(extra: dict[str, str] | None = None) -> dict[str, str]:
    import sqlalchemy

    info = {
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
        "SQLAlchemy": sqlalchemy.__version__,
        "platform": platform.platform(terse=True),
    }
    info.update(extra or {})
    return info


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def replace_docs_section(name: str, body: str, path: Path = DOCS) -> None:
    """Replace (or append) the section between the markers of benchmark `name`."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip() + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
