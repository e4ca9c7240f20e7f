"""The unit of work: one database transaction, and the jobs to publish after it."""

from __future__ import annotations

import logging
from types import TracebackType

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from order_flow.engine.publisher import JobRef, Publisher
from order_flow.store.tables import outbox
from order_flow.store.types import utcnow

log = logging.getLogger(__name__)


class UnitOfWork:
    """``with UnitOfWork(...) as uow: ...; uow.commit()`` — without commit it rolls back.

    Jobs collected in ``uow.jobs`` are handed to the publisher only after the
    commit succeeded (DESIGN invariant 4); a publish failure is logged and left
    to the relay, because the rows are already safe in the outbox.
    """

    def __init__(self, session_factory: sessionmaker[Session], publisher: Publisher) -> None:
        self._factory = session_factory
        self._publisher = publisher
        self.jobs: list[JobRef] = []
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("unit of work used outside its with-block")
        return self._session

    def __enter__(self) -> UnitOfWork:
        self._session = self._factory()
        self._session.begin()
        self.jobs = []
        return self

    def commit(self) -> None:
        self.session.commit()
        jobs, self.jobs = self.jobs, []
        if jobs:
            try:
                if self._publisher.publish(jobs):
                    self._mark_published([j.id for j in jobs])
            except Exception:  # the relay re-publishes pending rows
                log.exception("publishing %d job(s) failed; the relay will retry", len(jobs))

    def _mark_published(self, job_ids: list[int]) -> None:
        with self._factory.begin() as s:
            s.execute(
                update(outbox)
                .where(outbox.c.id.in_(job_ids), outbox.c.status == "pending")
                .values(status="published", published_at=utcnow())
            )

    def rollback(self) -> None:
        self.session.rollback()
        self.jobs = []

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            if session.in_transaction():
                session.rollback()
        finally:
            session.close()
            self._session = None
