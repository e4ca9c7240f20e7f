"""Invoices: drafting and splitting, gapless numbers, problems, red letters, payments, buckets."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from order_flow.bootstrap import App
from order_flow.domain.enums import RedReason
from order_flow.domain.money import Totals, line_amounts
from order_flow.engine.actors import Actor
from order_flow.engine.steps import run_job
from order_flow.errors import TransitionNotAllowedError, ValidationError
from order_flow.store.catalog import Product
from order_flow.store.customers import Customer
from order_flow.store.invoices import Invoice, InvoiceCounter, Payment
from order_flow.store.orders import Order, OrderLine
from order_flow.store.tables import instances, outbox
from tests.integration.helpers import add_user, snapshot, state_of
from tests.integration.order_helpers import customer, order_body, people, product, submit

D = Decimal
TAX_CODE = "1090101010000000000"
#: invoice.notify belongs to a later issue; its placeholder body raises.
INVOICE_STEPS = ("invoice.prepare", "invoice.issue")
_seq = itertools.count(1)


def add_customer(app: App, invoice_type: str = "ordinary", **fields: object) -> int:
    n = next(_seq)
    values: dict[str, object] = dict(
        code=f"C{n:04d}",
        name=f"客户{n}有限公司",
        name_key=f"客户{n}有限公司",
        tax_id=f"9135010000000{n:05d}",
        invoice_type=invoice_type,
        address="福州市鼓楼区1号",
        phone="0591-1234567",
        bank="工商银行",
        account="1402020000000000000",
        payment_days=30,
    )
    values.update(fields)
    with app.engine.session_factory.begin() as s:
        customer = Customer(**values)
        s.add(customer)
        s.flush()
        return customer.id


def add_order(
    app: App,
    lines: list[tuple[str, str]],
    *,
    customer_id: int | None = None,
    reserved: list[str] | None = None,
    tax_code: str = TAX_CODE,
    pricing: str = "exclusive",
) -> int:
    """An approved-looking order: (qty, unit price) lines at 13 %, reserved in full by default."""
    customer_id = customer_id or add_customer(app)
    n = next(_seq)
    with app.engine.session_factory.begin() as s:
        order = Order(
            number=f"SO-{n}", customer_id=customer_id, pricing=pricing, created_by="alice"
        )
        for no, (qty, price) in enumerate(lines, start=1):
            product = Product(
                sku=f"P{n}-{no}", name=f"商品{n}-{no}", tax_code=tax_code, price=D(price)
            )
            s.add(product)
            s.flush()
            amounts = line_amounts(qty, price, "0.13", pricing == "inclusive")
            order.lines.append(
                OrderLine(
                    line_no=no,
                    product_id=product.id,
                    description=product.name,
                    qty=D(qty),
                    unit_price=D(price),
                    tax_category="general_13",
                    tax_rate=D("0.13"),
                    net=amounts.net,
                    tax=amounts.tax,
                    gross=amounts.gross,
                    qty_reserved=D(reserved[no - 1] if reserved else qty),
                )
            )
        totals = Totals.sum(order.lines)
        order.total_net, order.total_tax, order.total_gross = totals.net, totals.tax, totals.gross
        s.add(order)
        s.flush()
        return order.id


def create_invoices(app: App, order_id: int) -> list[int]:
    with app.engine.uow() as uow:
        created = app.invoices.create_for_order_in(uow, order_id)
        uow.commit()
    return [i.id for i in created]


def run_invoice_steps(app: App, steps: tuple[str, ...] = INVOICE_STEPS) -> int:
    """The worker, in-process, for the invoice steps only."""
    ran = 0
    while True:
        with app.engine.session_factory() as s:
            ids = list(
                s.scalars(
                    select(outbox.c.id)
                    .where(outbox.c.status.in_(("pending", "published")), outbox.c.step.in_(steps))
                    .order_by(outbox.c.id)
                )
            )
        if not ids:
            return ran
        for job_id in ids:
            run_job(app, job_id)
            ran += 1


def invoice_state(app: App, invoice_id: int) -> str:
    return state_of(app, app.invoices.get(invoice_id).instance_id or 0)[0]


def issued_invoice(app: App, lines: list[tuple[str, str]], **kw: object) -> Invoice:
    (invoice_id,) = create_invoices(app, add_order(app, lines, **kw))  # type: ignore[arg-type]
    run_invoice_steps(app)
    return app.invoices.get(invoice_id)


def local_today(app: App) -> date:
    """The issue date: today on the business calendar's clock, not the test machine's."""
    return app.engine.clock().astimezone(ZoneInfo(app.settings.timezone)).date()


def with_settings(app: App, **changes: object) -> None:
    app.settings = dataclasses.replace(app.settings, **changes)  # type: ignore[arg-type]


@pytest.fixture
def finance(app: App) -> Actor:
    return add_user(app, "fiona", groups=("finance",))


# -- drafting and splitting -----------------------------------------------------------


def test_an_order_over_the_limit_splits_into_invoices_that_add_up_exactly_to_the_order(
    app: App,
) -> None:
    with_settings(app, invoice_max_net=D("1000.00"), invoice_max_lines=2)
    order_id = add_order(
        app, [("3", "333.333"), ("7", "101.01"), ("1", "12.34"), ("25", "99.99"), ("2", "5")]
    )
    ids = create_invoices(app, order_id)
    assert len(ids) > 2
    invoices = [app.invoices.get(i) for i in ids]
    with app.engine.session_factory() as s:
        order = s.get_one(Order, order_id)
        assert all(line.qty_invoiced == line.qty for line in order.lines)
    assert [i.part for i in invoices] == list(range(1, len(ids) + 1))
    assert sum(i.total_net for i in invoices) == order.total_net
    assert sum(i.total_tax for i in invoices) == order.total_tax
    assert sum(i.total_gross for i in invoices) == order.total_gross
    for invoice in invoices:
        assert invoice.total_net <= D("1000.00") and len(invoice.lines) <= 2
        assert Totals.sum(invoice.lines) == Totals(
            invoice.total_net, invoice.total_tax, invoice.total_gross
        )
        assert invoice.number is None and invoice.series is None
        assert invoice.buyer_address_phone == "福州市鼓楼区1号 0591-1234567"
        assert {line.tax_code for line in invoice.lines} == {TAX_CODE}
        assert {line.tax_label for line in invoice.lines} == {"13%"}
        assert invoice_state(app, invoice.id) == "pending"


def test_creating_again_with_nothing_newly_reserved_creates_nothing(app: App) -> None:
    order_id = add_order(app, [("2", "10")])
    assert len(create_invoices(app, order_id)) == 1
    assert create_invoices(app, order_id) == []
    with app.engine.session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Invoice)) == 1


def test_only_the_reserved_unbilled_quantity_is_invoiced_and_the_last_piece_takes_the_rest(
    app: App,
) -> None:
    order_id = add_order(app, [("3", "0.335"), ("4", "2")], reserved=["1", "0"])
    (first,) = create_invoices(app, order_id)
    assert [(x.qty, x.net) for x in app.invoices.get(first).lines] == [(D(1), D("0.34"))]
    with app.engine.session_factory.begin() as s:
        s.execute(update(OrderLine).values(qty_reserved=OrderLine.qty))
    (second,) = create_invoices(app, order_id)
    again = app.invoices.get(second)
    assert again.part == 2
    assert [(x.qty, x.net) for x in again.lines] == [(D(2), D("0.67")), (D(4), D("8.00"))]
    with app.engine.session_factory() as s:
        order = s.get_one(Order, order_id)
    both = app.invoices.get(first).total_gross + again.total_gross
    assert both == order.total_gross  # 1.01 net for line 1, not 0.34 + 0.67 recomputed


def test_an_approved_order_is_invoiced_by_its_step_and_delivered_stock_stays_billed(
    app: App,
) -> None:
    with_settings(app, double_review_without_template=False)
    who = people(app)
    buyer = customer(app, who.alice, stock_policy="partial")
    item = product(app, who.alice, price="100", on_hand="4", tax_code=TAX_CODE)
    order = app.orders.create(order_body(buyer.id, (item.id, "10")), who.alice)
    assert submit(app, order, who.alice) == "approved"
    (first,) = app.invoices.list(order_id=order.id)
    assert [(x.qty, x.net) for x in first.invoice.lines] == [(D(4), D("400.00"))]
    line_id = app.orders.get(order.id).lines[0].id
    app.orders.record_delivery(order.id, {line_id: "4"}, who.alice)  # reserved 4 -> 0
    app.catalog.receive(item.id, "6", who.alice)
    with app.engine.uow() as uow:
        app.catalog.reserve_in(uow, line_id, item.id, D(6), True)
        (second,) = app.invoices.create_for_order_in(uow, order.id)
        uow.commit()
    assert (second.part, second.lines[0].qty, second.total_gross) == (2, D(6), D("678.00"))


# -- numbering -------------------------------------------------------------------------


def test_numbers_are_taken_only_at_issue_consecutively_and_a_cancelled_draft_leaves_no_gap(
    app: App,
) -> None:
    clerk = add_user(app, "alice")
    with_settings(app, invoice_max_lines=1)
    customer_id = add_customer(app, payment_days=45)
    ids = create_invoices(app, add_order(app, [("1", "10")] * 4, customer_id=customer_id))
    cancelled = app.invoices.get(ids[1])
    app.engine.fire(cancelled.instance_id or 0, "cancel", clerk, reason="客户不要了")
    run_invoice_steps(app)
    year = local_today(app).year
    issued = [app.invoices.get(i) for i in ids if i != ids[1]]
    assert [(i.series, i.number) for i in issued] == [(f"{year}-ordinary", n) for n in (1, 2, 3)]
    assert issued[0].display_number == f"{year}-ordinary-00000001"
    assert all(invoice_state(app, i.id) == "issued" for i in issued)
    assert issued[0].issued_at is not None
    assert issued[0].due_date == local_today(app) + timedelta(days=45)
    assert app.invoices.get(ids[1]).number is None
    assert invoice_state(app, ids[1]) == "cancelled"
    with app.engine.session_factory() as s:
        context = app.engine.load(s, issued[0].instance_id or 0).context
    assert context["number"] == issued[0].display_number


def test_each_invoice_type_numbers_its_own_series(app: App) -> None:
    special = issued_invoice(app, [("1", "5")], customer_id=add_customer(app, "special"))
    ordinary = issued_invoice(app, [("1", "5")])
    year = local_today(app).year
    assert (special.series, special.number) == (f"{year}-special", 1)
    assert (ordinary.series, ordinary.number) == (f"{year}-ordinary", 1)


def test_with_invoice_review_on_the_draft_waits_for_a_reviewer_other_than_the_preparer(
    app: App, finance: Actor
) -> None:
    with_settings(app, invoice_review=True)
    (invoice_id,) = create_invoices(app, add_order(app, [("1", "5")]))
    run_invoice_steps(app)
    assert invoice_state(app, invoice_id) == "review"
    instance_id = app.invoices.get(invoice_id).instance_id or 0
    app.engine.fire(instance_id, "review_approve", finance)
    run_invoice_steps(app)
    assert app.invoices.get(invoice_id).number == 1


# -- problems ----------------------------------------------------------------------------


def test_a_product_without_tax_code_becomes_a_problem_and_issues_once_fixed_and_retried(
    app: App, finance: Actor
) -> None:
    (invoice_id,) = create_invoices(app, add_order(app, [("1", "5")], tax_code=""))
    run_invoice_steps(app)
    invoice = app.invoices.get(invoice_id)
    assert invoice_state(app, invoice_id) == "problem"
    assert invoice.number is None
    assert invoice.problem is not None and "缺少税收分类编码" in invoice.problem
    with app.engine.session_factory.begin() as s:
        s.execute(update(Product).values(tax_code=TAX_CODE))
    app.invoices.retry_problem(invoice_id, finance, "补了税收分类编码")
    assert app.invoices.get(invoice_id).problem is None
    run_invoice_steps(app)
    invoice = app.invoices.get(invoice_id)
    assert invoice_state(app, invoice_id) == "issued"
    assert invoice.number == 1 and invoice.lines[0].tax_code == TAX_CODE


def test_a_special_invoice_without_the_buyer_bank_details_is_a_problem(app: App) -> None:
    customer_id = add_customer(app, "special", bank="", account="")
    invoice = issued_invoice(app, [("1", "5")], customer_id=customer_id)
    assert invoice_state(app, invoice.id) == "problem"
    assert invoice.problem == "购买方信息不全: 缺少开户行及账号"


def test_a_line_tax_outside_the_tolerance_is_a_problem_and_takes_no_number(app: App) -> None:
    (invoice_id,) = create_invoices(app, add_order(app, [("1", "100")]))
    run_invoice_steps(app, ("invoice.prepare",))
    with app.engine.session_factory.begin() as s:
        invoice = s.get_one(Invoice, invoice_id)
        invoice.lines[0].tax += D("0.07")
        invoice.lines[0].gross += D("0.07")
        invoice.total_tax += D("0.07")
        invoice.total_gross += D("0.07")
    run_invoice_steps(app)
    assert invoice_state(app, invoice_id) == "problem"
    assert "超出容差" in (app.invoices.get(invoice_id).problem or "")
    with app.engine.session_factory() as s:
        assert s.scalar(select(func.count()).select_from(InvoiceCounter)) == 0


def test_retrying_an_invoice_that_has_no_problem_is_refused(app: App, finance: Actor) -> None:
    invoice = issued_invoice(app, [("1", "5")])
    with pytest.raises(TransitionNotAllowedError):
        app.invoices.retry_problem(invoice.id, finance, "x")


# -- red letter ------------------------------------------------------------------------------


def test_a_partial_then_a_full_red_letter_reverses_the_blue_invoice_with_negative_invoices(
    app: App, finance: Actor
) -> None:
    blue = issued_invoice(app, [("2", "100"), ("3", "33.33")])  # gross 226.00 + 112.99
    assert blue.total_gross == D("338.99")
    app.invoices.request_red(
        blue.id, finance, RedReason.SALES_ALLOWANCE, D("100.00"), comment="折让100元"
    )
    assert invoice_state(app, blue.id) == "red_requested"
    first = app.invoices.approve_red(blue.id, finance, "同意折让")
    assert invoice_state(app, blue.id) == "partly_reversed"
    assert (first.kind, first.original_id, first.red_seq) == ("red", blue.id, 1)
    assert first.total_gross == D("-100.00")
    assert first.total_net + first.total_tax == first.total_gross
    assert all(x.gross < 0 and x.net <= 0 and x.qty < 0 for x in first.lines)
    assert (first.series, first.number) == (blue.series, 2)
    assert first.red_reason == "销售折让"

    app.invoices.request_red(blue.id, finance, "GOODS_RETURNED", comment="全部退货")
    second = app.invoices.approve_red(blue.id, finance, "退货入库")
    assert invoice_state(app, blue.id) == "reversed"
    assert (second.red_seq, second.number, second.total_gross) == (2, 3, D("-238.99"))
    assert first.total_net + second.total_net == -blue.total_net
    assert first.total_tax + second.total_tax == -blue.total_tax
    by_line: dict[int | None, Decimal] = {}
    for x in first.lines + second.lines:
        by_line[x.order_line_id] = by_line.get(x.order_line_id, D(0)) + x.gross
    assert by_line == {x.order_line_id: -x.gross for x in blue.lines}


def test_a_red_request_beyond_the_unreversed_amount_is_refused_and_writes_nothing(
    app: App, finance: Actor
) -> None:
    blue = issued_invoice(app, [("1", "100")])  # gross 113.00
    app.invoices.request_red(blue.id, finance, "开票有误", D("13.00"), comment="多开13元")
    app.invoices.approve_red(blue.id, finance, "ok")
    with app.engine.session_factory() as s:
        before = snapshot(s)
    for amount, reason in ((D("100.01"), "开票有误"), (D("0"), "开票有误"), (D("1"), "随便")):
        with pytest.raises(ValidationError) as info:
            app.invoices.request_red(blue.id, finance, reason, amount, comment="再冲")
        assert set(info.value.errors) == ({"amount"} if reason == "开票有误" else {"reason_code"})
    with pytest.raises(ValidationError) as info:
        app.invoices.request_red(blue.id, finance, "开票有误", D("1"), comment=" ")
    assert set(info.value.errors) == {"comment"}
    with app.engine.session_factory() as s:
        assert snapshot(s) == before
        assert s.scalar(select(func.count()).select_from(Invoice)) == 2
    assert invoice_state(app, blue.id) == "partly_reversed"


def test_a_red_letter_cannot_be_requested_for_an_unissued_invoice(app: App, finance: Actor) -> None:
    (invoice_id,) = create_invoices(app, add_order(app, [("1", "5")]))
    with pytest.raises(TransitionNotAllowedError):
        app.invoices.request_red(invoice_id, finance, "开票有误", comment="x")


# -- payments -----------------------------------------------------------------------------


def test_payments_move_the_status_from_partial_to_paid_and_refuse_more_than_outstanding(
    app: App, finance: Actor
) -> None:
    invoice = issued_invoice(app, [("1", "100")])  # 113.00
    app.invoices.record_payment(invoice.id, D("50.00"), date.today(), finance, reference="B1")
    assert app.invoices.get(invoice.id).payment_status == "partial"
    with pytest.raises(ValidationError) as info:
        app.invoices.record_payment(invoice.id, D("63.01"), date.today(), finance)
    assert set(info.value.errors) == {"amount"}
    with pytest.raises(ValidationError) as info:
        app.invoices.record_payment(invoice.id, D("1.00"), date.today(), finance, reference="B1")
    assert set(info.value.errors) == {"reference"}
    app.invoices.record_payment(invoice.id, "63.00", date.today(), finance, reference="B2")
    assert app.invoices.get(invoice.id).payment_status == "paid"
    with app.engine.session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Payment)) == 2


def test_a_payment_against_an_unissued_invoice_or_of_a_bad_amount_is_refused(
    app: App, finance: Actor
) -> None:
    (invoice_id,) = create_invoices(app, add_order(app, [("1", "5")]))
    with pytest.raises(ValidationError) as info:
        app.invoices.record_payment(invoice_id, D("-1"), date.today(), finance)
    assert set(info.value.errors) == {"amount", "invoice_id"}


def test_the_daily_job_marks_unpaid_invoices_past_their_due_date_overdue(
    app: App, finance: Actor
) -> None:
    paid = issued_invoice(app, [("1", "10")])
    partly = issued_invoice(app, [("1", "20")])
    unpaid = issued_invoice(app, [("1", "30")])
    app.invoices.record_payment(paid.id, paid.total_gross, date.today(), finance)
    app.invoices.record_payment(partly.id, D("1.00"), date.today(), finance)
    due = unpaid.due_date
    assert due is not None
    assert app.invoices.refresh_payment_status(due) == 0
    assert app.invoices.refresh_payment_status(due + timedelta(days=1)) == 2
    statuses = [app.invoices.get(i.id).payment_status for i in (paid, partly, unpaid)]
    assert statuses == ["paid", "overdue", "overdue"]
    assert app.invoices.refresh_payment_status(due + timedelta(days=2)) == 0
    app.invoices.record_payment(partly.id, partly.total_gross - 1, date.today(), finance)
    assert app.invoices.get(partly.id).payment_status == "paid"


# -- buckets and lists ---------------------------------------------------------------------


def test_the_buckets_count_and_sum_the_invoices_clerks_look_at(app: App, finance: Actor) -> None:
    issued_invoice(app, [("1", "3")], tax_code="")  # problem: 3.39
    issued_invoice(app, [("1", "10")])  # issued: 11.30
    overdue = issued_invoice(app, [("1", "20")])  # issued and overdue: 22.60
    old_red = issued_invoice(app, [("1", "100")])  # red_requested for 4 days: 113.00
    new_red = issued_invoice(app, [("1", "1000")])  # red_requested just now: 1130.00
    for invoice in (old_red, new_red):
        app.invoices.request_red(invoice.id, finance, "开票有误", comment="错了")
    create_invoices(app, add_order(app, [("1", "1")]))  # pending: 1.13 ...
    run_invoice_steps(app, ("invoice.prepare",))  # ... now issuing, still pending for clerks
    create_invoices(app, add_order(app, [("1", "2")]))  # pending: 2.26
    with app.engine.session_factory.begin() as s:
        s.execute(
            update(instances)
            .where(instances.c.id == old_red.instance_id)
            .values(entered_at=app.engine.clock() - timedelta(days=4))
        )
        s.execute(
            update(Invoice)
            .where(Invoice.id == overdue.id)
            .values(due_date=date.today() - timedelta(days=1))
        )
    assert app.invoices.refresh_payment_status(date.today()) == 1
    assert app.invoices.buckets() == {
        "pending": {"count": 2, "amount": D("3.39")},
        "issued": {"count": 2, "amount": D("33.90")},
        "problem": {"count": 3, "amount": D("138.99")},
    }
    listed = app.invoices.list(bucket="problem")
    assert sorted(x.invoice.total_gross for x in listed) == [D("3.39"), D("22.60"), D("113.00")]
    assert [x.invoice.id for x in app.invoices.list(state="red_requested")] == [
        new_red.id,
        old_red.id,
    ]


def test_the_buckets_of_an_empty_book_are_zero(app: App) -> None:
    assert app.invoices.buckets() == {
        name: {"count": 0, "amount": D("0.00")} for name in ("pending", "issued", "problem")
    }


def test_the_list_filters_by_customer_and_order_and_shows_red_invoices_as_issued(
    app: App, finance: Actor
) -> None:
    customer_id = add_customer(app)
    blue = issued_invoice(app, [("1", "10")], customer_id=customer_id)
    issued_invoice(app, [("1", "10")])
    app.invoices.request_red(blue.id, finance, "开票有误", comment="错了")
    red = app.invoices.approve_red(blue.id, finance, "ok")
    mine = app.invoices.list(customer_id=customer_id)
    assert [(x.invoice.id, x.state) for x in mine] == [(red.id, "issued"), (blue.id, "reversed")]
    assert [x.invoice.id for x in app.invoices.list(order_id=blue.order_id, limit=1)] == [red.id]
    with pytest.raises(ValidationError):
        app.invoices.list(bucket="everything")
