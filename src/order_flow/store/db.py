"""Engines and sessions: one ``sessionmaker`` per process, nothing at import time."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, create_engine, event, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import Insert

# SQLite keeps NUMERIC as 15 significant digits; the domain bounds amounts and
# quantities to fit (see docs/configuration.md), so the driver warning is noise.
warnings.filterwarnings("ignore", message=r"Dialect sqlite\+pysqlite does \*not\* support Decimal")

#: SQLite waits this long for the write lock before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine; SQLite gets WAL mode, foreign keys and explicit BEGIN."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # No pre-ping: it costs a round trip per transaction on the hot path; a dropped
        # connection fails one unit of work, which the caller or the job runner retries.
        return create_engine(url, echo=echo, pool_recycle=1800)

    database = parsed.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the lock up front, so a read-then-write never fails mid-way
        # with a stale snapshot; readers stay deferred and never block writers.
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def writer(engine: Engine) -> Engine:
    """The engine to use for read-write units of work."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_begin="IMMEDIATE")
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=writer(engine), expire_on_commit=False)


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def insert_ignoring(
    s: Session, table: Table, values: Mapping[str, Any], on: Sequence[ColumnElement[Any]] = ()
) -> Insert:
    """``INSERT ... ON CONFLICT (on) DO NOTHING`` for PostgreSQL and SQLite (``on``
    empty: any unique constraint).

    Add ``.returning(...)`` to learn whether the row went in (no row: a twin was
    there first). On another backend a plain INSERT, whose conflict raises.
    """
    dialect = s.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
        return ins(table).values(**values).on_conflict_do_nothing(index_elements=list(on) or None)
    return insert(table).values(**values)
