"""Shared fixtures: throwaway databases on SQLite and PostgreSQL, and a wired app.

Tests that need a server (PostgreSQL, Redis) skip when it is down, unless
ORDER_FLOW_REQUIRE_SERVICES=1 (set by .ci/run), which turns every such skip
into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from order_flow.bootstrap import App, bootstrap
from order_flow.config import Settings
from order_flow.engine.publisher import RecordingPublisher
from order_flow.engine.versions import deploy_files
from order_flow.store.db import make_engine
from order_flow.store.schema import Base

#: Cheap password hashing for the tests (the default scrypt costs ~100 ms per hash);
#: set in the environment too, so the subprocesses the tests start use it.
FAST_PASSWORD_HASH = "scrypt:1024:8:1"
os.environ.setdefault("ORDER_FLOW_PASSWORD_HASH", FAST_PASSWORD_HASH)

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"
REQUIRE_SERVICES = os.environ.get("ORDER_FLOW_REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get(
    "ORDER_FLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def service_missing(what: str, why: object) -> None:
    """Skip locally; fail in CI, where every service must be up."""
    message = f"{what} is not reachable: {why}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (ORDER_FLOW_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(message)


@contextmanager
def throwaway_pg_database(prefix: str) -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its URL, drop it afterwards."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure means no server for us
        admin.dispose()
        service_missing("PostgreSQL", exc)
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test process, with the schema, dropped at the end."""
    with throwaway_pg_database("of_test") as url:
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        yield url


def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on an empty SQLite file and on an emptied PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        return url
    url = str(request.getfixturevalue("pg_url"))
    _truncate_all(url)
    return url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        data_dir=tmp_path,
        workflows_dir=WORKFLOWS,
        password_hash=FAST_PASSWORD_HASH,
    )


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def app(settings: Settings, publisher: RecordingPublisher) -> Iterator[App]:
    """The real wiring, with the shipped workflows deployed."""
    application = bootstrap(settings, publisher=publisher)
    deploy_files(application.engine, [WORKFLOWS])
    try:
        yield application
    finally:
        application.close()
