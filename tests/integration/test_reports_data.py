"""The small hand-built data set every report test reads (no tests in this module).

Rows are made with the ORM directly, at fixed UTC instants; the business time zone is
Asia/Shanghai (UTC+8), so 2026-03-02 20:00 UTC is the local day 2026-03-03.

Orders (state, customer, clerk, local day, lines):
  O1 approved  C1 ann 2026-03-02  P1 10 x 10.00 (13 %), P3 1 x 100.00 (6 %)  gross 219.00
  O2 completed C1 ben 2026-03-03  P2 2 x 50.00                                gross 113.00
  O3 closed    C2 ann 2026-03-10  P1 5 x 10.00                                gross  56.50
  O4 cancelled C3 ben 2026-04-05  P1 1 x 1000.00                              gross 1130.00
  O5 approved  C3 cat 2026-04-06  P2 10 x 20.00, 5 reserved                   gross 226.00
  O6 on_hold   C2 ann 2026-04-07  P2 8 x 20.00, STOCK_SHORT                   gross 180.80
  O7 completed C3 ann 2025-10-30  P1 1 x 44.25                                gross  50.00
Blue invoices: I1 (O1, sent, 219.00, due 04-04, 100.00 paid), I2 (O2, partly reversed,
113.00, due 03-10, overdue, red -13.00 销售折让), I3 (O3, issued, 56.50, paid), I4 (O5
part 1, pending, 126.00), I5 (O5 part 2, problem, 100.00), I7 (O7, sent, 50.00, due
2025-12-01, overdue, red -10.00 销货退回).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.store.catalog import Product, Reservation
from order_flow.store.customers import Customer
from order_flow.store.invoices import Invoice, Payment
from order_flow.store.models import AuditEvent, Instance, Task, WorkflowVersion
from order_flow.store.orders import Order, OrderLine

#: The clock of the data set: ageing and backlog are measured from here.
NOW = datetime(2026, 4, 8, 6, 0, tzinfo=UTC)
INJECTION = "=cmd|' /C calc'!A0"


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def D(value: str) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(value)


@dataclass(frozen=True)
class World:
    customers: dict[str, int]
    products: dict[str, int]
    orders: dict[str, int]


def build_world(app: App) -> World:
    with app.engine.session_factory.begin() as s:
        versions = {
            name: s.scalar(select(WorkflowVersion.id).where(WorkflowVersion.name == name).limit(1))
            for name in ("order", "invoice")
        }

        def instance(workflow: str, state: str, created: datetime, entered: datetime) -> Instance:
            row = Instance(
                workflow=workflow, definition_id=versions[workflow], subject_type=workflow,
                subject_id="0", state=state, created_by="system", created_at=created,
                updated_at=entered, entered_at=entered,
            )  # fmt: skip
            s.add(row)
            s.flush()
            return row

        cust = {
            "C1": Customer(code="C001", name="Alpha 甲公司", name_key="alpha"),
            "C2": Customer(code="C002", name=INJECTION, name_key="cmd"),
            "C3": Customer(code="C003", name="Gamma", name_key="gamma"),
        }
        prod = {
            "P1": Product(sku="P-1", name="Widget", on_hand=D("100"), reserved=D("10")),
            "P2": Product(sku="P-2", name="Gadget", on_hand=D("5"), reserved=D("5")),
            "P3": Product(
                sku="P-3", name="Service", tax_category="general_6", on_hand=D("1"), reserved=D("1")
            ),  # fmt: skip
        }
        s.add_all([*cust.values(), *prod.values()])
        s.flush()

        def order(
            key: str, customer: str, clerk: str, created: datetime, state: str,
            entered: datetime, lines: list[tuple[str, str, str, str, str]],
            approved: datetime | None = None, hold: str | None = None,
        ) -> Order:  # fmt: skip
            inst = instance("order", state, created, entered)
            o = Order(
                number=f"SO-{key}", customer_id=cust[customer].id, instance_id=inst.id,
                state=state,  # the engine keeps this copy of the instance's state
                created_by=clerk, created_at=created, approved_at=approved, hold_reason=hold,
            )  # fmt: skip
            for no, (p, qty, price, rate, reserved) in enumerate(lines, start=1):
                net = (D(qty) * D(price)).quantize(D("0.01"))
                tax = (net * D(rate)).quantize(D("0.01"))
                o.lines.append(
                    OrderLine(
                        line_no=no,
                        product_id=prod[p].id,
                        description=prod[p].name,
                        qty=D(qty),
                        unit_price=D(price),
                        tax_category="general",
                        tax_rate=D(rate),
                        net=net,
                        tax=tax,
                        gross=net + tax,
                        qty_reserved=D(reserved),
                    )  # fmt: skip
                )
            o.total_net = sum((ln.net for ln in o.lines), D("0"))
            o.total_tax = sum((ln.tax for ln in o.lines), D("0"))
            o.total_gross = o.total_net + o.total_tax
            s.add(o)
            s.flush()
            return o

        o1 = order("1", "C1", "ann", at(3, 2, 2), "approved", at(3, 2, 4, 10),
                   [("P1", "10", "10", "0.13", "10"), ("P3", "1", "100", "0.06", "1")],
                   approved=at(3, 2, 4, 10))  # fmt: skip
        o2 = order("2", "C1", "ben", at(3, 2, 20), "completed", at(3, 5),
                   [("P2", "2", "50", "0.13", "0")], approved=at(3, 3, 0, 20))  # fmt: skip
        o2.lines[0].qty_delivered = D("2")
        o3 = order("3", "C2", "ann", at(3, 10, 1), "closed", at(3, 13),
                   [("P1", "5", "10", "0.13", "0")], approved=at(3, 10, 7, 10))  # fmt: skip
        o3.lines[0].qty_delivered = D("5")
        o4 = order("4", "C3", "ben", at(4, 5, 3), "cancelled", at(4, 5, 6),
                   [("P1", "1", "1000", "0.13", "0")], hold="CREDIT")  # fmt: skip
        o5 = order("5", "C3", "cat", at(4, 6, 3), "approved", at(4, 6, 11, 10),
                   [("P2", "10", "20", "0.13", "5")], approved=at(4, 6, 11, 10))  # fmt: skip
        o6 = order("6", "C2", "ann", at(4, 7, 3), "on_hold", at(4, 7, 3, 20),
                   [("P2", "8", "20", "0.13", "0")], hold="STOCK_SHORT")  # fmt: skip
        o7 = order("7", "C3", "ann", at(10, 30, 0, 30, year=2025), "completed",
                   at(11, 2, year=2025), [("P1", "1", "44.25", "0.13", "0")],
                   approved=at(10, 30, 11, year=2025))  # fmt: skip
        o7.lines[0].qty_delivered = D("1")

        # -- invoices, payments, red letters --------------------------------------------
        def invoice(
            o: Order, part: int, state: str | None, gross: str, net: str, created: datetime,
            number: int | None = None, due: date | None = None, status: str = "unpaid",
            kind: str = "blue", original: Invoice | None = None, reason: str | None = None,
            entered: datetime | None = None,
        ) -> Invoice:  # fmt: skip
            inst = instance("invoice", state, created, entered or created) if state else None
            inv = Invoice(
                order_id=o.id, instance_id=inst.id if inst else None, state=state, part=part,
                kind=kind,
                red_seq=1 if kind == "red" else 0, original_id=original.id if original else None,
                red_reason=reason, invoice_type="ordinary", series="2026-ordinary" if number
                else None, number=number, buyer_name="x", total_net=D(net),
                total_tax=D(gross) - D(net), total_gross=D(gross), payment_status=status,
                due_date=due, issued_at=created if number else None, created_at=created,
            )  # fmt: skip
            s.add(inv)
            s.flush()
            return inv

        i1 = invoice(o1, 1, "sent", "219.00", "200.00", at(3, 5, 2, 10), 1, date(2026, 4, 4),
                     "partial")  # fmt: skip
        i2 = invoice(o2, 1, "partly_reversed", "113.00", "100.00", at(3, 6, 0, 20), 2,
                     date(2026, 3, 10), "overdue")  # fmt: skip
        invoice(o2, 1, None, "-13.00", "-11.50", at(3, 8), 3, kind="red", original=i2,
                reason="销售折让")  # fmt: skip
        i3 = invoice(o3, 1, "issued", "56.50", "50.00", at(3, 12, 7, 10), 4, date(2026, 3, 15),
                     "paid")  # fmt: skip
        invoice(o5, 1, "pending", "126.00", "111.50", at(4, 6, 6))
        invoice(o5, 2, "problem", "100.00", "88.50", at(4, 6, 6), entered=at(4, 7, 20))
        i7 = invoice(o7, 1, "sent", "50.00", "44.25", at(11, 1, 11, year=2025), 5,
                     date(2025, 12, 1), "overdue")  # fmt: skip
        invoice(o7, 1, None, "-10.00", "-8.85", at(4, 10), 6, kind="red", original=i7,
                reason="销货退回")  # fmt: skip
        s.add_all([
            Payment(invoice_id=i1.id, amount=D("100.00"), paid_on=date(2026, 3, 20),
                    recorded_by="fin"),
            Payment(invoice_id=i3.id, amount=D("56.50"), paid_on=date(2026, 3, 14),
                    recorded_by="fin"),
        ])  # fmt: skip

        # -- audit trail and tasks --------------------------------------------------------
        def moves(o: Order, *steps: tuple[str, str, str, str, datetime]) -> None:
            s.add(AuditEvent(instance_id=o.instance_id, kind="start", to_state="draft",
                             actor=o.created_by, at=o.created_at))  # fmt: skip
            for trigger, src, dest, actor, when in steps:
                s.add(AuditEvent(instance_id=o.instance_id, kind="transition", trigger=trigger,
                                 from_state=src, to_state=dest, actor=actor, at=when))  # fmt: skip
            # The engine keeps the first submission on the order too; O7 stands for an
            # order written after its instance started (bulk intake), which lacks it.
            if o is not o7:
                o.submitted_at = next(w for _t, _s, d, _a, w in steps if d == "submitted")

        moves(o1, ("submit", "draft", "submitted", "ann", at(3, 2, 2, 10)),
              ("checks_passed", "submitted", "approved", "system", at(3, 2, 4, 10)))  # fmt: skip
        moves(o2, ("submit", "draft", "submitted", "ben", at(3, 2, 20, 20)),
              ("needs_review", "submitted", "review", "system", at(3, 2, 20, 30)),
              ("review_approve", "review", "review", "ann", at(3, 2, 21)),
              ("review_approve", "review", "approved", "cat", at(3, 3, 0, 20)))  # fmt: skip
        moves(o3, ("submit", "draft", "submitted", "ann", at(3, 10, 1, 10)),
              ("hold", "submitted", "on_hold", "system", at(3, 10, 1, 20)),
              ("recheck", "on_hold", "submitted", "ann", at(3, 10, 5, 10)),
              ("checks_passed", "submitted", "approved", "system", at(3, 10, 7, 10)))  # fmt: skip
        moves(o4, ("submit", "draft", "submitted", "ben", at(4, 5, 3, 10)),
              ("hold", "submitted", "on_hold", "system", at(4, 5, 3, 20)),
              ("cancel", "on_hold", "cancelled", "ben", at(4, 5, 6)))  # fmt: skip
        moves(o5, ("submit", "draft", "submitted", "cat", at(4, 6, 3, 10)),
              ("checks_passed", "submitted", "approved", "system", at(4, 6, 11, 10)))  # fmt: skip
        moves(o6, ("submit", "draft", "submitted", "ann", at(4, 7, 3, 10)),
              ("hold", "submitted", "on_hold", "system", at(4, 7, 3, 20)))  # fmt: skip
        moves(o7, ("submit", "draft", "submitted", "ann", at(10, 30, 1, year=2025)),
              ("checks_passed", "submitted", "approved", "system",
               at(10, 30, 11, year=2025)))  # fmt: skip

        def task(
            o: Order, state: str, title: str, created: datetime, due: datetime,
            closed: datetime | None = None, by: str | None = None, outcome: str | None = None,
        ) -> None:  # fmt: skip
            assert o.instance_id is not None
            # The engine keeps the values a title is made from ("订单 {number} 需处理:
            # {hold_reason}") in the task's data.
            number, _, reason = title.removeprefix("订单 ").partition(" 需处理: ")
            data = {"number": number.split()[0]} | ({"hold_reason": reason} if reason else {})
            s.add(Task(
                instance_id=o.instance_id, state=state, title=title, created_at=created,
                due_at=due, closed_at=closed, closed_by=by, outcome=outcome, data=data,
                status="completed" if closed else "open",
            ))  # fmt: skip
            if closed:
                s.add(AuditEvent(instance_id=o.instance_id, kind="complete", actor=by,
                                 at=closed))  # fmt: skip

        task(o2, "review", "订单 SO-2 待复核", at(3, 2, 20, 30), at(3, 2, 22, 30),
             at(3, 3, 0, 20), "cat", "approve")  # fmt: skip
        task(o3, "on_hold", "订单 SO-3 需处理: DATA", at(3, 10, 1, 20), at(3, 10, 5, 20),
             at(3, 10, 5, 10), "ann", "recheck")  # fmt: skip
        task(o4, "on_hold", "订单 SO-4 需处理: CREDIT", at(4, 5, 3, 20), at(4, 5, 7, 20),
             at(4, 5, 6), "ben", "cancel")  # fmt: skip
        task(o6, "on_hold", "订单 SO-6 需处理: STOCK_SHORT", at(4, 7, 3, 20), at(4, 7, 7, 20))
        # An incident is no human review: O5 still counts as first pass.
        s.add(Task(instance_id=o5.instance_id, state="approved", kind="incident",
                   title="step failed", created_at=at(4, 6, 11, 20), status="open"))  # fmt: skip

        # -- stock movements ---------------------------------------------------------------
        def reservation(o: Order, qty: str, status: str, closed: datetime | None) -> None:
            line = o.lines[0]
            s.add(Reservation(order_line_id=line.id, product_id=line.product_id, qty=D(qty),
                              status=status, created_at=o.created_at,
                              closed_at=closed))  # fmt: skip

        reservation(o1, "10", "active", None)
        reservation(o5, "5", "active", None)
        reservation(o2, "2", "consumed", at(3, 4))
        reservation(o3, "5", "consumed", at(3, 11))
        reservation(o7, "1", "consumed", at(10, 31, year=2025))
        return World(
            {k: c.id for k, c in cust.items()},
            {k: p.id for k, p in prod.items()},
            {k: o.id for k, o in zip("1234567", (o1, o2, o3, o4, o5, o6, o7), strict=True)},
        )
