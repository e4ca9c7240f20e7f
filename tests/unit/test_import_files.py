"""Reading order files (no database): headers in Chinese or English, encodings, cells
as Excel stores them, row numbers, grouping, and the rejects file."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from openpyxl import Workbook

from order_flow.errors import ValidationError
from order_flow.services.import_files import (
    RejectsWriter,
    count_rows,
    iso_date,
    open_order_file,
)
from order_flow.services.import_rows import group_rows


def _file(text: str, encoding: str = "utf-8", name: str = "o.csv"):  # type: ignore[no-untyped-def]
    return open_order_file(io.BytesIO(text.encode(encoding)), name)


def test_chinese_and_english_headers_map_to_the_same_fields_and_others_are_ignored() -> None:
    zh = _file("客户,客户订单号,商品编码,数量,备用\nC1,PO,A,1,x\n")
    en = _file("Customer, Customer PO ,SKU,QTY,Unit-Price,row,reason\nC1,PO,A,1,2,9,why\n")

    assert zh.columns == {"customer": "客户", "customer_po": "客户订单号", "sku": "商品编码",
                          "quantity": "数量"}  # fmt: skip
    assert zh.ignored == ["备用"]
    assert en.columns["customer_po"] == "Customer PO" and en.columns["unit_price"] == "Unit-Price"
    assert en.ignored == []  # row and reason come from our own rejects file
    (row,) = en.rows()
    assert row.fields == {"customer": "C1", "customer_po": "PO", "sku": "A", "quantity": "1",
                          "unit_price": "2"}  # fmt: skip


def test_a_missing_or_doubled_column_refuses_the_file() -> None:
    with pytest.raises(ValidationError) as missing:
        _file("客户,数量\nC1,1\n")
    with pytest.raises(ValidationError) as doubled:
        _file("客户,客户订单号,商品编码,数量,qty\n")
    with pytest.raises(ValidationError) as empty:
        _file("\n\n")
    with pytest.raises(ValidationError) as other:
        _file("a", name="orders.pdf")

    assert missing.value.errors == {
        "file": "missing column(s): 客户订单号/customer_po, 商品编码/sku (row 1)"
    }
    assert doubled.value.errors == {"qty": "the same column as 数量"}
    assert empty.value.errors == {"file": "the file is empty: no header row"}
    assert other.value.errors == {"file": ".pdf files are not read; use .csv or .xlsx"}


def test_gbk_tabs_a_bom_and_blank_rows_keep_the_spreadsheet_row_numbers() -> None:
    gbk = _file(
        "\n客户\t客户订单号\t商品编码\t数量\n福州\tPO\t甲\t1\n\t\t\t\n福州\tPO\t乙\t2\n", "gbk"
    )
    bom = _file('\ufeff客户,客户订单号,商品编码,数量\r\nC,P,S,"1,5"\r\n')

    assert [(r.number, r.fields["sku"]) for r in gbk.rows()] == [(3, "甲"), (5, "乙")]
    assert gbk.header_row == 2
    assert [r.cells for r in bom.rows()] == [("C", "P", "S", "1,5")]


def test_xlsx_cells_come_out_as_the_text_excel_shows(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["客户", "客户订单号", "商品编码", "数量", "单价", "交货日期", "备注"])
    ws.append(["C1", 20260042, 1001, 0.1 + 0.2, 12.5, datetime(2026, 3, 31, 0, 0), "'=SUM(A1)"])
    ws.append([None] * 7)
    ws.append(["C1", "PO", "X", 3.0, None, None, True])
    path = tmp_path / "o.xlsx"
    wb.save(path)

    rows = list(open_order_file(path).rows())

    assert [r.number for r in rows] == [2, 4]
    assert rows[0].cells == ("C1", "20260042", "1001", "0.3", "12.5", "2026-03-31", "=SUM(A1)")
    assert rows[1].cells[3:] == ("3", "", "", "1")
    assert count_rows(path) == 3


def test_dates_in_chinese_and_slashed_forms_become_iso() -> None:
    assert iso_date("2026/3/1") == "2026-03-01"
    assert iso_date("2026年3月31日") == "2026-03-31"
    assert iso_date("2026.12.01") == "2026-12-01"
    assert iso_date("2026/2/30") == "2026/2/30"  # no such day: left for the order's own check
    assert iso_date("next week") == "next week"


def test_adjacent_rows_of_one_customer_and_po_are_one_order() -> None:
    f = _file(
        "客户,客户订单号,商品编码,数量\nC1,A,x,1\nC1,A,y,1\nC2,A,x,1\nC2,,x,1\nC2,,y,1\nC1,A,z,1\n"
    )
    groups = [[r.number for r in g.rows] for g in group_rows(f.rows())]
    assert groups == [[2, 3], [4], [5], [6], [7]]  # a row without a PO stands alone


def test_the_rejects_file_keeps_the_columns_adds_row_column_reason_and_guards_formulas() -> None:
    out = io.StringIO()
    zh = {"row": "行号", "column": "列", "reason": "原因", "must be greater than 0": "必须大于 0"}
    writer = RejectsWriter(out, ["客户", "数量", "备注"], translate=lambda m: zh.get(m, m))
    row = SimpleNamespace(number=7, cells=("C1", "-1", "@SUM(1)"))
    problems = (SimpleNamespace(column="数量", message="must be greater than 0"),)
    writer.write_rejected(SimpleNamespace(row=row, problems=problems))

    lines = list(csv.reader(io.StringIO(out.getvalue())))
    assert lines == [
        ["客户", "数量", "备注", "行号", "列", "原因"],
        ["C1", "-1", "'@SUM(1)", "7", "数量", "必须大于 0"],
    ]
