"""Bulk order intake (services/importing.py) on SQLite and PostgreSQL: per-order
validation by the order service's rules, the report, idempotent re-imports, the
rejects file round trip, CSV and XLSX, Chinese and English headers."""

from __future__ import annotations

import csv
import io
import threading
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.errors import ValidationError
from order_flow.services.importing import ImportService
from order_flow.store.imports import ImportBatch
from order_flow.store.tables import audit, instances, outbox
from tests.integration.import_helpers import (
    EN,
    ZH,
    good_rows,
    orders_by_po,
    shop,
    write_csv,
    written,
)
from tests.integration.order_helpers import order_body, state, work


def problems(report_rejects: list) -> dict[int, list[tuple[str, str]]]:  # type: ignore[type-arg]
    return {r.row.number: [(p.column, p.message) for p in r.problems] for r in report_rejects}


def test_a_file_with_5_percent_bad_rows_imports_every_good_row_and_reports_every_bad_one(
    app: App, tmp_path: Path
) -> None:
    s = shop(app)
    rows = good_rows(s, 38, lines=2)  # 76 good rows in 38 orders, rows 2..77
    code = s.customers[0].code
    bad = [
        (code, "BAD-1", s.skus[0], "0", "", "", "", ""),  # row 78: quantity
        (code, "BAD-2", "NO-SUCH-SKU", "1", "", "", "", ""),  # row 79: SKU
        ("NO-SUCH-CUSTOMER", "BAD-3", s.skus[0], "1", "", "", "", ""),  # row 80: customer
        (code, "BAD-4", s.skus[1], "1", "", "", "2020-01-01", ""),  # row 81: date in the past
    ]
    path = write_csv(tmp_path / "orders.csv", ZH, rows + bad)  # 4 of 80 rows: 5 %
    before = written(app)
    rejects = io.StringIO()

    report = ImportService(app).import_file(path, s.clerk, rejects=rejects)

    assert (report.rows_total, report.rows_imported, report.rows_rejected) == (80, 76, 4)
    assert (report.orders_created, report.rows_already) == (38, 0)
    assert problems(report.rejects) == {
        78: [("数量", "must be greater than 0")],
        79: [("商品编码", "no product with this SKU")],
        80: [("客户", "no customer with this code or name")],
        81: [("交货日期", "must not be in the past")],
    }
    after = written(app)
    delta = {k: after[k] - before[k] for k in after}
    # per order: 2 lines, 1 instance, start + submit audit, 1 run_checks job, 1 key
    assert delta == {
        "orders": 38,
        "lines": 76,
        "instances": 38,
        "audit": 76,
        "jobs": 38,
        "keys": 38,
    }
    by_po = orders_by_po(app)
    assert not any(po.startswith("BAD") for po in by_po)
    first = by_po["PO-0000"][0]
    # 1 x 100 + 2 x 50 net, VAT 13 %
    assert (first.total_net, first.total_tax, first.total_gross) == (
        Decimal("200.00"),
        Decimal("26.00"),
        Decimal("226.00"),
    )
    assert [ln.qty for ln in first.lines] == [Decimal("1"), Decimal("2")]
    assert state(app, first) == "submitted" == first.state  # the engine's copy on the row
    assert first.submitted_at == first.created_at  # and when it was first submitted
    lines = list(csv.reader(io.StringIO(rejects.getvalue())))
    assert lines[0] == [*ZH, "row", "column", "reason"]
    assert lines[1] == [code, "BAD-1", s.skus[0], "0", "", "", "", "", "78", "数量",
                        "must be greater than 0"]  # fmt: skip
    assert [ln[8] for ln in lines[1:]] == ["78", "79", "80", "81"]


def test_reimporting_the_same_file_creates_nothing_and_says_already_imported(
    app: App, tmp_path: Path
) -> None:
    s = shop(app)
    path = write_csv(tmp_path / "orders.csv", ZH, good_rows(s, 5, lines=3))
    service = ImportService(app)
    first = service.import_file(path, s.clerk)
    before = written(app)

    again = service.import_file(path, s.clerk)

    assert (first.orders_created, first.rows_imported) == (5, 15)
    assert (again.rows_total, again.rows_imported, again.rows_already) == (15, 0, 15)
    assert (again.orders_created, again.orders_already, again.rows_rejected) == (0, 5, 0)
    assert written(app) == before
    assert {po: len(found) for po, found in orders_by_po(app).items()} == {
        f"PO-{n:04d}": 1 for n in range(5)
    }
    with app.engine.session_factory() as db:
        batches = db.scalars(select(ImportBatch).order_by(ImportBatch.id)).all()
    assert [(b.orders_created, b.rows_already, b.finished_at is not None) for b in batches] == [
        (5, 0, True),
        (0, 15, True),
    ]


def test_an_order_entered_by_hand_with_the_same_po_counts_as_already_imported(
    app: App, tmp_path: Path
) -> None:
    s = shop(app)
    body = order_body(s.customers[0].id, (s.product_ids[0], "1"), customer_po="PO-0000")
    by_hand = app.orders.create(body, s.clerk)
    path = write_csv(tmp_path / "orders.csv", EN, good_rows(s, 2, lines=1))

    report = ImportService(app).import_file(path, s.clerk)

    assert (report.orders_already, report.orders_created) == (1, 1)
    assert [o.id for o in orders_by_po(app)["PO-0000"]] == [by_hand.id]


def test_one_bad_line_rejects_its_whole_order_and_names_the_other_rows(
    app: App, tmp_path: Path
) -> None:
    s = shop(app)
    code = s.customers[0].code
    rows = [
        (code, "PO-A", s.skus[0], "1", "", "", "", ""),
        (code, "PO-A", s.skus[1], "1.123456789", "", "", "", ""),  # row 3: 9 places
        (code, "PO-A", s.skus[2], "2", "-5", "", "", ""),  # row 4: negative price
        (code, "PO-B", s.skus[0], "1", "", "", "", ""),
    ]
    path = write_csv(tmp_path / "orders.csv", ZH, rows)

    report = ImportService(app).import_file(path, s.clerk)

    assert problems(report.rejects) == {
        2: [("", "not imported: row 3 of the same order has an error")],
        3: [("数量", "at most 8 decimal places")],
        4: [("单价", "must not be negative")],
    }
    assert set(orders_by_po(app)) == {"PO-B"}


def test_rows_of_one_order_disagreeing_on_an_order_field_are_refused(
    app: App, tmp_path: Path
) -> None:
    s = shop(app)
    code = s.customers[0].code
    rows = [
        (code, "PO-A", s.skus[0], "1", "", "是", "2099-01-31", "first"),
        (code, "PO-A", s.skus[1], "1", "", "", "2099-02-01", "second"),
        (code, "PO-B", s.skus[1], "1", "", "maybe", "", ""),
    ]
    path = write_csv(tmp_path / "orders.csv", ZH, rows)

    report = ImportService(app).import_file(path, s.clerk)

    assert problems(report.rejects) == {
        2: [("", "not imported: row 3 of the same order has an error")],
        3: [("交货日期", "differs from row 2 of the same order")],
        4: [("紧急", "must be yes or no (是/否)")],
    }
    assert report.orders_created == 0


def test_an_order_split_over_rows_apart_is_refused_the_second_time(
    app: App, tmp_path: Path
) -> None:
    s = shop(app)
    code = s.customers[0].code
    rows = [
        (code, "PO-A", s.skus[0], "1", "", "", "", ""),
        (code, "PO-B", s.skus[0], "1", "", "", "", ""),
        (code, "PO-A", s.skus[1], "1", "", "", "", ""),
    ]
    path = write_csv(tmp_path / "orders.csv", ZH, rows)

    report = ImportService(app).import_file(path, s.clerk)

    assert problems(report.rejects) == {
        4: [
            (
                "客户订单号",
                "this order's rows must be next to each other: "
                "the same customer and PO came earlier in the file",
            )
        ]
    }
    assert [len(o.lines) for o in orders_by_po(app)["PO-A"]] == [1]


def test_the_fixed_rejects_file_imports_the_rest_exactly_once(app: App, tmp_path: Path) -> None:
    s = shop(app)
    code = s.customers[1].code
    rows = good_rows(s, 3) + [
        (code, "PO-X", s.skus[0], "=1+1", "", "", "", ""),
        (code, "PO-X", s.skus[1], "2", "", "", "", "-note"),
    ]
    path = write_csv(tmp_path / "orders.csv", EN, rows)
    rejects = tmp_path / "rejects.csv"
    service = ImportService(app)
    with rejects.open("w", encoding="utf-8-sig", newline="") as out:
        service.import_file(path, s.clerk, rejects=out)
    text = rejects.read_text(encoding="utf-8-sig")
    assert "'=1+1" in text and "'-note" in text  # guarded against formula injection

    fixed = tmp_path / "fixed.csv"
    fixed.write_text(text.replace("'=1+1", "3"), encoding="utf-8-sig")
    report = service.import_file(fixed, s.clerk)

    assert (report.orders_created, report.rows_imported, report.rows_rejected) == (1, 2, 0)
    assert report.ignored_columns == []  # row, column and reason are ours
    (order,) = orders_by_po(app)["PO-X"]
    assert [ln.qty for ln in order.lines] == [Decimal("3"), Decimal("2")]
    assert order.notes == "-note"  # the guard quote came off again
    assert service.import_file(path, s.clerk).orders_created == 0


def test_an_xlsx_with_numbers_and_dates_as_excel_stores_them(app: App, tmp_path: Path) -> None:
    s = shop(app)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["客户", "客户订单号", "商品编码", "数量", "单价", "优先级", "交货日期", "品名"])
    code = s.customers[0].code
    ws.append([code, 20260042, s.skus[0], 2, 10.1, "高", datetime(2099, 3, 31), "蓝色"])
    ws.append([code, 20260042, s.skus[1], 0.3, None, None, None, None])
    ws.append([code, 20260043, s.skus[2], 1, None, "紧急", None, None])
    path = tmp_path / "orders.xlsx"
    wb.save(path)

    report = ImportService(app).import_file(path, s.clerk)

    assert (report.orders_created, report.rows_imported, report.rows_rejected) == (2, 3, 0)
    (order,) = orders_by_po(app)["20260042"]
    assert order.priority == "high" and order.promised_date.isoformat() == "2099-03-31"
    assert [(ln.qty, ln.unit_price, ln.description) for ln in order.lines] == [
        (Decimal("2"), Decimal("10.1"), "蓝色"),
        (Decimal("0.3"), Decimal("50"), order.lines[1].description),
    ]
    assert order.total_net == Decimal("35.20")  # 20.20 + 15.00
    assert orders_by_po(app)["20260043"][0].priority == "urgent"


def test_english_headers_in_a_gbk_csv_and_urgent_rows_go_to_the_urgent_queue(
    app: App, tmp_path: Path
) -> None:
    s = shop(app)
    name = s.customers[0].name  # by name instead of code
    rows = [
        (name, "PO-1", s.skus[0], "1", "", "yes", "2099/12/1", "加急 备注"),
        (name, "PO-2", s.skus[0], "1", "", "no", "", ""),
    ]
    path = write_csv(tmp_path / "orders.csv", EN, rows, encoding="gbk")

    report = ImportService(app).import_file(path, s.clerk)

    assert report.orders_created == 2
    urgent, normal = orders_by_po(app)["PO-1"][0], orders_by_po(app)["PO-2"][0]
    assert (urgent.priority, urgent.notes, str(urgent.promised_date)) == (
        "urgent",
        "加急 备注",
        "2099-12-01",
    )
    with app.engine.session_factory() as db:
        queues = dict(
            db.execute(
                select(outbox.c.instance_id, outbox.c.queue).where(
                    outbox.c.step == "order.run_checks"
                )
            ).all()
        )
        ranks = dict(db.execute(select(instances.c.id, instances.c.priority)).all())
    assert queues == {urgent.instance_id: "urgent", normal.instance_id: "default"}
    assert (ranks[urgent.instance_id], ranks[normal.instance_id]) == (0, 2)


def test_an_imported_order_goes_through_the_checks_like_one_entered_by_hand(
    app: App, tmp_path: Path
) -> None:
    s = shop(app)
    by_hand = app.orders.create(
        order_body(s.customers[0].id, (s.product_ids[0], "1"), customer_po="HAND"), s.clerk
    )
    app.orders.submit(by_hand.id, s.clerk)
    path = write_csv(tmp_path / "o.csv", EN, [(s.customers[0].code, "FILE", s.skus[0], "1")
                                               + ("",) * 4])  # fmt: skip
    ImportService(app).import_file(path, s.clerk)
    (imported,) = orders_by_po(app)["FILE"]

    work(app)

    def trail(instance_id: int | None) -> list[tuple[object, ...]]:
        cols = (audit.c.kind, audit.c.trigger, audit.c.from_state, audit.c.to_state, audit.c.actor)
        with app.engine.session_factory() as db:
            stmt = select(*cols).where(audit.c.instance_id == instance_id).order_by(audit.c.id)
            return [tuple(r) for r in db.execute(stmt)]

    assert trail(imported.instance_id) == trail(by_hand.instance_id)
    assert trail(imported.instance_id)[:2] == [
        ("start", None, None, "draft", "alice"),
        ("transition", "submit", "draft", "submitted", "alice"),
    ]
    assert len(trail(imported.instance_id)) > 2  # the checks ran and moved it on
    assert imported.number.startswith("SO") and state(app, imported) == state(app, by_hand)


def test_a_file_without_a_required_column_writes_nothing(app: App, tmp_path: Path) -> None:
    s = shop(app)
    path = write_csv(tmp_path / "o.csv", ("客户", "商品编码", "数量"), [("C1", s.skus[0], "1")])
    before = written(app)

    with pytest.raises(ValidationError) as caught:
        ImportService(app).import_file(path, s.clerk)

    assert caught.value.errors == {"file": "missing column(s): 客户订单号/customer_po (row 1)"}
    assert written(app) == before


def test_two_imports_of_one_file_at_once_make_one_order_per_po(app: App, tmp_path: Path) -> None:
    s = shop(app)
    path = write_csv(tmp_path / "orders.csv", ZH, good_rows(s, 60, lines=2))
    reports = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(ImportService(app, chunk_orders=7).import_file(path, s.clerk))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    assert sorted(r.orders_created for r in reports) == sorted(
        [reports[0].orders_created, 60 - reports[0].orders_created]
    )
    assert sum(r.orders_created for r in reports) == 60
    assert sum(r.orders_already for r in reports) == 60
    assert {po: len(found) for po, found in orders_by_po(app).items()} == {
        f"PO-{n:04d}": 1 for n in range(60)
    }
