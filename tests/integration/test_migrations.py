"""The Alembic migrations build the schema the models describe, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from order_flow.store import migrate
from order_flow.store.db import make_engine
from order_flow.store.schema import Base
from tests.conftest import throwaway_pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with throwaway_pg_database("of_mig") as url:
        yield url


def test_migrations_build_every_table_on_an_empty_database(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    migrate.upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    engine.dispose()


def test_models_and_migrations_agree(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    migrate.upgrade(engine)
    assert migrate.pending_differences(engine) == []
    migrate.upgrade(engine)  # a second run is a no-op
    engine.dispose()
