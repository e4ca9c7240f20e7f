"""Reading order files row by row: CSV (UTF-8 or GBK) and XLSX, Chinese or English headers.

Nothing is held beyond the current row: CSV is decoded as a stream, XLSX is read
with openpyxl's read-only mode. Each row comes out as its spreadsheet row number,
the original cells (for the rejects file) and the recognised fields as text.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from order_flow.domain.text import neutralize_csv_cell
from order_flow.errors import ValidationError

#: Field -> the header names it is recognised by (compared after folding: NFKC,
#: lower case, no spaces, underscores or hyphens).
COLUMNS: dict[str, tuple[str, ...]] = {
    "customer": ("客户", "客户编码", "客户代码", "客户编号", "customer", "customer_code"),
    "customer_po": (
        "客户订单号", "客户采购单号", "采购单号", "客户po", "po号", "customer_po", "po",
    ),
    "sku": ("商品编码", "物料编码", "产品编码", "商品编号", "sku", "product_sku"),
    "quantity": ("数量", "quantity", "qty"),
    "unit_price": ("单价", "unit_price", "price"),
    "urgent": ("紧急", "加急", "urgent"),
    "priority": ("优先级", "priority"),
    "note": ("备注", "note", "notes"),
    "promised_date": ("交货日期", "交期", "承诺交期", "promised_date", "delivery_date"),
    "pricing": ("计价方式", "pricing"),
    "description": ("品名", "描述", "说明", "description"),
}  # fmt: skip
REQUIRED = ("customer", "customer_po", "sku", "quantity")
#: Columns the rejects file adds; a fixed rejects file is read back without them.
REJECT_COLUMNS = ("row", "column", "reason")
_IGNORED = {"row", "column", "reason", "行号", "列", "原因"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_SNIFF_BYTES = 1 << 16
_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")


def fold(header: str) -> str:
    text = unicodedata.normalize("NFKC", header).strip().lower()
    return re.sub(r"[\s_\-]+", "", text)


_BY_NAME = {fold(name): key for key, names in COLUMNS.items() for name in names}


@dataclass(frozen=True)
class Row:
    number: int  # the spreadsheet's row number (the header is usually row 1)
    cells: tuple[str, ...]  # as read, one per header column
    fields: dict[str, str]  # recognised field -> stripped text ("" when empty)


class OrderFile:
    """An open order file: ``header``, ``columns`` (field -> header name), ``rows()``."""

    def __init__(self, header: list[str], header_row: int, rows: Iterator[tuple[int, list[Any]]]):
        self.header = header
        self.header_row = header_row
        self._rows = rows
        self.columns: dict[str, str] = {}
        self._index: dict[str, int] = {}
        self.ignored: list[str] = []
        errors: dict[str, str] = {}
        for i, name in enumerate(header):
            key = _BY_NAME.get(fold(name))
            if key is None:
                if name.strip() and fold(name) not in _IGNORED:
                    self.ignored.append(name)
                continue
            if key in self.columns:
                errors[name] = f"the same column as {self.columns[key]}"
                continue
            self.columns[key] = name
            self._index[key] = i
        missing = [k for k in REQUIRED if k not in self.columns]
        if missing:
            names = ", ".join(f"{COLUMNS[k][0]}/{k}" for k in missing)
            errors["file"] = f"missing column(s): {names} (row {header_row})"
        if errors:
            raise ValidationError(errors)
        #: Rows read so far (the header's and the blank ones included).
        self.position = header_row

    def rows(self) -> Iterator[Row]:
        width = len(self.header)
        for number, raw in self._rows:
            self.position = number
            cells = [_text(v) for v in raw[:width]] + [""] * (width - len(raw))
            if not any(c.strip() for c in cells):
                continue
            fields = {key: cells[i].strip() for key, i in self._index.items()}
            yield Row(number, tuple(cells), fields)

    def column_name(self, field: str) -> str:
        return self.columns.get(field, field)

    def close(self) -> None:
        """Close the file now (reading every row closes it too)."""
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()


def open_order_file(source: Path | IO[bytes], name: str | None = None) -> OrderFile:
    """CSV or XLSX by the file name's extension; ValidationError({"file": ...}) otherwise."""
    filename = name or (source.name if isinstance(source, Path) else "upload.csv")
    suffix = Path(filename).suffix.lower()
    stream: IO[bytes] = source.open("rb") if isinstance(source, Path) else source
    if suffix == ".xlsx":
        rows = _xlsx_rows(stream)
    elif suffix in (".csv", ".txt", ""):
        rows = _csv_rows(stream)
    else:
        raise ValidationError({"file": f"{suffix} files are not read; use .csv or .xlsx"})
    if isinstance(source, Path):
        rows = _closing(rows, stream)
    for number, raw in rows:
        header = [_text(v).strip() for v in raw]
        if any(header):
            return OrderFile(header, number, rows)
    raise ValidationError({"file": "the file is empty: no header row"})


def _closing(rows: Iterator[tuple[int, list[Any]]], stream: IO[bytes]) -> Iterator[Any]:
    try:
        yield from rows
    finally:
        stream.close()


def count_rows(path: Path) -> int | None:
    """Data rows of a CSV (newlines minus the header; a quoted newline counts too), or of
    an XLSX sheet as its dimension says; None when unknown. For the progress bar."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except Exception:  # noqa: BLE001 - the import itself reports the bad file
            return None
        try:
            rows = wb.worksheets[0].max_row
        finally:
            wb.close()
        return max(0, rows - 1) if rows else None
    with path.open("rb") as f:
        n = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    return max(0, n - 1)


def _csv_rows(stream: IO[bytes]) -> Iterator[tuple[int, list[Any]]]:
    head = stream.read(_SNIFF_BYTES)
    encoding = "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        encoding = "gb18030"  # what Excel writes for "CSV" on a Chinese Windows
    text = io.TextIOWrapper(
        io.BufferedReader(_Prefixed(head, stream)), encoding=encoding, newline=""
    )
    sample = head.decode(encoding, errors="ignore")
    first = next((ln for ln in sample.splitlines() if ln.strip()), "")
    dialect = "excel-tab" if first.count("\t") > first.count(",") else "excel"
    lines: Iterator[str] = text
    try:
        yield from enumerate(csv.reader(lines, dialect=dialect), start=1)
    except UnicodeDecodeError as exc:
        raise ValidationError({"file": f"not {encoding} text: {exc.reason}"}) from None
    except csv.Error as exc:
        raise ValidationError({"file": f"not a readable CSV file: {exc}"}) from None


class _Prefixed(io.RawIOBase):
    """The sniffed head, then the rest of the stream: one readable byte stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _xlsx_rows(stream: IO[bytes]) -> Iterator[tuple[int, list[Any]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(stream, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        raise ValidationError({"file": f"not a readable XLSX file: {exc}"}) from None
    try:
        sheet = wb.worksheets[0]
        for i, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield i, list(values)
    finally:
        wb.close()


def _text(value: Any) -> str:
    """A cell as text: numbers without float noise (Excel keeps 15 digits), dates as
    ISO, a formula-guard quote from our own rejects file taken off again."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return format(Decimal(format(value, ".15g")).normalize(), "f")
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return unguard_csv_cell(str(value))


def unguard_csv_cell(text: str) -> str:
    """A cell of our own rejects file without its formula guard (neutralize_csv_cell)."""
    if text.startswith("'") and text[1:2] and text[1] in _FORMULA:
        return text[1:]
    return text


def iso_date(text: str) -> str:
    """2026/3/31, 2026.03.31 and 2026年3月31日 as 2026-03-31; anything else unchanged."""
    m = _DATE.fullmatch(text.strip())
    if not m:
        return text
    y, mo, d = (int(g) for g in m.groups())
    try:
        return date(y, mo, d).isoformat()
    except ValueError:
        return text


class RejectsWriter:
    """The rejects file: the original columns, then row, column and reason; every cell
    guarded against formula injection (a reader of ours takes the guard off again)."""

    def __init__(
        self, out: IO[str], header: list[str], translate: Callable[[str], str] = str
    ) -> None:
        self._csv = csv.writer(out, lineterminator="\r\n")
        self._width = len(header)
        self._translate = translate
        names = [*header, *(translate(c) for c in REJECT_COLUMNS)]
        self._csv.writerow([neutralize_csv_cell(c) for c in names])

    def write_rejected(self, rejected: Any) -> None:
        """A services.importing.Rejected: its row's cells, number and problems."""
        problems = rejected.problems
        columns = "; ".join(dict.fromkeys(p.column for p in problems if p.column))
        reasons = "; ".join(self._translate(p.message) for p in problems)
        row = [*rejected.row.cells[: self._width], str(rejected.row.number), columns, reasons]
        self._csv.writerow([neutralize_csv_cell(c) for c in row])
