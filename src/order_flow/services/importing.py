"""Bulk order intake: order files (CSV, XLSX) and API batches, per order, idempotent.

Every order is checked by the order service's own rules (order_input.parse_order,
order_lines.prepare) and, when good, created and submitted into the workflow in
the same transaction as its import key, like an order a clerk enters and submits.
A bad order is reported and writes nothing; the good ones around it are imported.

Orders are written in chunks of ``chunk_orders``, one transaction each, so a file of
any size streams through in flat memory and a crash loses at most the chunk in
flight. The import key (customer, customer PO) is the primary key of import_keys:
an order that exists already (imported before, or entered by hand with the same
PO) is reported as already imported, and two imports racing on one PO cannot both
commit it: the loser's chunk rolls back and is redone, finding the winner's order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from order_flow.engine.actors import Actor
from order_flow.errors import ConflictError
from order_flow.services.import_files import OrderFile, RejectsWriter, Row, open_order_file
from order_flow.services.import_rows import Group, Resolver, group_rows, key_digest, locate
from order_flow.services.import_writer import Candidate, OrderWriter, Outcome
from order_flow.store.imports import ImportBatch, ImportKey
from order_flow.store.orders import Order

if TYPE_CHECKING:
    from order_flow.bootstrap import App

#: Orders per transaction: big enough to batch the statements, small enough that a
#: crash redoes little and another writer never waits long.
CHUNK_ORDERS = 200
#: Rejects and created orders a report keeps for showing (all are counted, and every
#: reject goes to the rejects file).
KEPT = 200


@dataclass(frozen=True)
class Problem:
    column: str
    message: str


@dataclass(frozen=True)
class Rejected:
    row: Row
    problems: tuple[Problem, ...]


@dataclass
class ImportReport:
    batch_id: int
    source: str
    header: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    rows_total: int = 0
    rows_imported: int = 0
    rows_already: int = 0
    rows_rejected: int = 0
    orders_created: int = 0
    orders_already: int = 0
    #: The file's rows as counted before the import (None: not counted).
    rows_expected: int | None = None
    rejects: list[Rejected] = field(default_factory=list)
    created: list[tuple[int, str]] = field(default_factory=list)


class ImportService:
    def __init__(self, app: App, chunk_orders: int = CHUNK_ORDERS) -> None:
        self.app = app
        self.chunk_orders = max(1, chunk_orders)

    # -- files ------------------------------------------------------------------------

    def import_file(
        self,
        source: Path | IO[bytes],
        actor: Actor,
        *,
        name: str | None = None,
        rejects: IO[str] | None = None,
        translate: Callable[[str], str] = str,
        on_progress: Callable[[int], None] | None = None,
        batch_id: int | None = None,
        rows_expected: int | None = None,
    ) -> ImportReport:
        """Import every good order of the file; ValidationError only for the file itself
        (unreadable, no header, a required column missing): then nothing is written.

        Every rejected row goes to ``rejects`` as CSV (reasons through ``translate``);
        the report keeps the first few for showing. The batch row (``batch_id``, or a
        new one) holds the running counts after every chunk, for a progress page, and
        the file's summary (``file_summary``; ``rows_expected``: the rows counted
        before, for a progress bar)."""
        f = open_order_file(source, name)
        label = name or (source.name if isinstance(source, Path) else "upload")
        if batch_id is None:
            batch_id = self.new_batch(label, actor)
        report = ImportReport(batch_id, label, f.header, f.ignored, rows_expected=rows_expected)
        out = None if rejects is None else RejectsWriter(rejects, f.header, translate)
        on_reject = None if out is None else out.write_rejected
        resolver, seen = Resolver(), set[int]()
        with OrderWriter(self.app, actor, report.batch_id) as writer:
            for chunk in _chunks(group_rows(f.rows()), self.chunk_orders):
                self._chunk(writer, resolver, seen, chunk, f, report, on_reject)
                if rejects is not None:  # on disk before the count that claims them
                    rejects.flush()
                self._save(report, finished=False)
                if on_progress is not None:
                    on_progress(f.position - f.header_row)
        self._save(report)
        return report

    def _chunk(
        self,
        writer: OrderWriter,
        resolver: Resolver,
        seen: set[int],
        chunk: list[Group],
        f: OrderFile,
        report: ImportReport,
        on_reject: Callable[[Rejected], None] | None,
    ) -> None:
        with self.app.engine.session_factory() as s:
            resolver.load(s, chunk)
        candidates = []
        for group in chunk:
            resolver.body(group)
            if group.key is not None:
                digest = key_digest(group.key)
                if digest in seen:
                    group.errors["customer_po"] = (
                        "this order's rows must be next to each other: "
                        "the same customer and PO came earlier in the file"
                    )
                seen.add(digest)
            key = None if group.errors else group.key
            candidates.append(Candidate(key, group.data, group.errors))
        outcomes = writer.write(candidates)
        for group, outcome in zip(chunk, outcomes, strict=True):
            self._tally(report, f, group, outcome, on_reject)

    def _tally(
        self,
        report: ImportReport,
        f: OrderFile,
        group: Group,
        outcome: Outcome,
        on_reject: Callable[[Rejected], None] | None,
    ) -> None:
        n = len(group.rows)
        report.rows_total += n
        if outcome.status == "created":
            report.rows_imported += n
            report.orders_created += 1
            if len(report.created) < KEPT and outcome.order_id and outcome.number:
                report.created.append((outcome.order_id, outcome.number))
            return
        if outcome.status == "already":
            report.rows_already += n
            report.orders_already += 1
            return
        report.rows_rejected += n
        by_row: dict[int, list[Problem]] = {}
        for key, message in outcome.errors.items():
            row, column = locate(group, key, f)
            by_row.setdefault(row.number, []).append(Problem(column, message))
        first = min(by_row)
        for row in group.rows:
            problems = by_row.get(row.number) or [
                Problem("", f"not imported: row {first} of the same order has an error")
            ]
            rejected = Rejected(row, tuple(problems))
            if len(report.rejects) < KEPT:
                report.rejects.append(rejected)
            if on_reject is not None:
                on_reject(rejected)

    # -- API batches ----------------------------------------------------------------------

    def import_bodies(
        self,
        bodies: Sequence[Mapping[str, Any]],
        actor: Actor,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> tuple[int, list[Outcome]]:
        """Order bodies as POST /orders takes them, each with its customer_po: the batch
        and one outcome per body, in order. The same customer and PO twice: the second
        is refused."""
        try:
            batch_id = self.new_batch(
                "api", actor, idempotency_key=idempotency_key, request_hash=request_hash
            )
        except IntegrityError:  # a twin request holds the key; the PO keys still dedupe
            batch_id = self.new_batch("api", actor)
        candidates: list[Candidate] = []
        seen: dict[tuple[int, str], int] = {}
        for i, body in enumerate(bodies):
            po = str(body.get("customer_po") or "").strip()
            customer_id = body.get("customer_id")
            errors: dict[str, str] = {}
            if not po:
                errors["customer_po"] = (
                    "required for an import: it groups the lines and makes a re-import safe"
                )
            key = (customer_id, po) if isinstance(customer_id, int) and po else None
            if key is not None and key in seen:
                errors["customer_po"] = f"the same customer and PO as orders[{seen[key]}]"
            elif key is not None:
                seen[key] = i
            candidates.append(Candidate(None if errors else key, body, errors))
        outcomes: list[Outcome] = []
        with OrderWriter(self.app, actor, batch_id) as writer:
            for start in range(0, len(candidates), self.chunk_orders):
                outcomes += writer.write(candidates[start : start + self.chunk_orders])
        report = ImportReport(batch_id, "api")
        for outcome in outcomes:
            report.rows_total += 1
            report.rows_imported += outcome.status == "created"
            report.orders_created += outcome.status == "created"
            report.rows_already += outcome.status == "already"
            report.rows_rejected += outcome.status == "rejected"
        self._save(report, summary=False)
        return batch_id, outcomes

    # -- batches ------------------------------------------------------------------------

    def new_batch(self, source: str, actor: Actor, **extra: Any) -> int:
        """A batch row for an import about to run (``import_file(batch_id=...)``)."""
        with self.app.engine.uow() as uow:
            batch = ImportBatch(
                source=source[:200], created_by=actor.name, created_at=self.app.engine.clock(),
                **extra,
            )  # fmt: skip
            uow.session.add(batch)
            uow.session.flush()
            uow.commit()
            return batch.id

    def _save(self, report: ImportReport, finished: bool = True, summary: bool = True) -> None:
        """The batch's counts so far; ``finished``: the end time too. ``summary``: a file
        import's extras in ``result`` (an API batch keeps its answer there instead)."""
        values: dict[str, Any] = dict(
            rows_total=report.rows_total,
            rows_imported=report.rows_imported,
            rows_already=report.rows_already,
            rows_rejected=report.rows_rejected,
            orders_created=report.orders_created,
        )
        if finished:
            values["finished_at"] = self.app.engine.clock()
        if summary:  # saved_at: an unfinished batch that stops saving was cut off
            saved_at = self.app.engine.clock().isoformat()
            values["result"] = {**file_summary(report), "saved_at": saved_at}
        with self.app.engine.uow() as uow:
            uow.session.execute(
                update(ImportBatch).where(ImportBatch.id == report.batch_id).values(**values)
            )
            uow.commit()

    def fail(self, batch_id: int, error: str) -> None:
        """An import that stopped on an error (the file, or the database): it ends here;
        what its finished chunks wrote stays, and importing the file again resumes."""
        with self.app.engine.uow() as uow:
            batch = uow.session.get(ImportBatch, batch_id)
            if batch is not None:
                batch.finished_at = self.app.engine.clock()
                batch.result = {**(batch.result or {}), "error": error}
            uow.commit()

    def created_orders(self, batch_id: int, limit: int) -> list[tuple[int, str]]:
        """(id, number) of the first ``limit`` orders the batch created."""
        with self.app.engine.session_factory() as s:
            rows = s.execute(
                select(Order.id, Order.number)
                .join(ImportKey, ImportKey.order_id == Order.id)
                .where(ImportKey.batch_id == batch_id)
                .order_by(Order.id)
                .limit(limit)
            ).all()
        return [(int(r.id), str(r.number)) for r in rows]

    def batch(self, batch_id: int) -> ImportBatch | None:
        with self.app.engine.session_factory() as s:
            return s.get(ImportBatch, batch_id)

    def by_key(self, key: str, digest: str) -> ImportBatch | None:
        """The answered API batch of this Idempotency-Key; 409 for another body."""
        with self.app.engine.session_factory() as s:
            batch = s.scalar(select(ImportBatch).where(ImportBatch.idempotency_key == key))
        if batch is not None and batch.request_hash != digest:
            raise ConflictError("Idempotency-Key reused with a different body")
        return batch if batch is not None and batch.result is not None else None

    def store_result(self, batch_id: int, result: Mapping[str, Any]) -> None:
        """Keep an API batch's answer, replayed for a retry with its Idempotency-Key."""
        with self.app.engine.uow() as uow:
            uow.session.execute(
                update(ImportBatch).where(ImportBatch.id == batch_id).values(result=dict(result))
            )
            uow.commit()


def file_summary(report: ImportReport) -> dict[str, Any]:
    """What a file import's page shows besides the batch row's counts."""
    return {
        "orders_already": report.orders_already,
        "ignored_columns": report.ignored_columns,
        "rows_expected": report.rows_expected,
    }


def _chunks(groups: Iterator[Group], size: int) -> Iterator[list[Group]]:
    chunk: list[Group] = []
    for group in groups:
        chunk.append(group)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
