"""The clerks' upload page: the report in Chinese (or English), the rejects download,
and who may import."""

from __future__ import annotations

import csv
import io
import os
import re
import time
from datetime import timedelta
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy import update

from order_flow.bootstrap import App
from order_flow.services.importing import ImportService
from order_flow.store.imports import ImportBatch
from tests.e2e.ui_support import signed_in, user, web
from tests.integration.import_helpers import EN, ZH, good_rows, orders_by_po, shop, write_csv
from web.ui.imports import prune_imports


def _upload(b, path: Path, lang: str = "zh_CN"):  # type: ignore[no-untyped-def]
    """Upload as a browser does; a good file is imported in the background and its
    page (303) follows it: the page once the import has finished."""
    with path.open("rb") as f:
        response = b.post(
            f"/orders/import?lang={lang}",
            {"file": (f, path.name)},
            content_type="multipart/form-data",
        )
    if response.status_code != 303:
        return response
    location = response.headers["Location"]
    assert re.fullmatch(r"/orders/import/\d+", location), location
    deadline = time.monotonic() + 60
    while True:
        page = b.client.get(f"{location}?lang={lang}")
        if "import-report running" not in page.get_data(as_text=True):
            return page
        assert 'http-equiv="refresh"' in page.get_data(as_text=True)
        assert time.monotonic() < deadline, "the import did not finish"
        time.sleep(0.1)


def test_a_clerk_uploads_a_file_sees_the_report_in_chinese_and_downloads_the_rejects(
    app: App, tmp_path: Path
) -> None:
    s = shop(app)
    user(app, "carl")  # sales clerk
    site = web(app)
    clerk = signed_in(site, "carl")
    bad = (s.customers[0].code, "BAD", s.skus[0], "-1", "", "", "", "=cmd|' /C calc'!A0")
    path = write_csv(tmp_path / "订单.csv", ZH, [*good_rows(s, 3), bad])

    form = clerk.page("/orders/import?lang=zh_CN")
    assert "导入订单" in form and 'enctype="multipart/form-data"' in form
    assert "客户订单号" in form and "customer_po" in form
    response = _upload(clerk, path)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "导入报告" in page and "6 行，3 个订单" in page
    assert '<dd class="rows-rejected">1</dd>' in page
    assert "<tr><td>8</td><td>数量</td><td>必须大于 0</td></tr>" in page
    assert "SO" in page and "/orders/" in page  # links to the imported orders
    assert {po for po in orders_by_po(app)} == {"PO-0000", "PO-0001", "PO-0002"}
    assert {o.created_by for found in orders_by_po(app).values() for o in found} == {"carl"}

    link = next(part.split('"', 1)[0] for part in page.split('href="') if "rejects.csv" in part)
    download = clerk.client.get(link)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == [*ZH, "行号", "列", "原因"]
    assert rows[1][:3] == [s.customers[0].code, "BAD", s.skus[0]]
    assert rows[1][7] == "'=cmd|' /C calc'!A0"  # the formula is neutralised
    assert rows[1][8:] == ["8", "数量", "必须大于 0"]

    user(app, "dora")
    other = signed_in(site, "dora")
    assert other.client.get(link).status_code == 404  # another clerk's batch


def test_the_page_speaks_english_too_and_refuses_a_missing_file_or_column(
    app: App, tmp_path: Path
) -> None:
    shop(app)
    user(app, "carl")
    clerk = signed_in(web(app), "carl")

    empty = clerk.post("/orders/import?lang=en", {})
    broken = _upload(clerk, write_csv(tmp_path / "x.csv", ("客户", "数量"), [("C1", "1")]), "en")

    assert empty.status_code == 422 and "Choose a CSV or XLSX file." in empty.get_data(as_text=True)
    assert broken.status_code == 422
    text = broken.get_data(as_text=True)
    assert "missing column(s): 客户订单号/customer_po, 商品编码/sku (row 1)" in text
    assert "Import orders" in clerk.page("/inbox/?lang=en")  # in the navigation


def test_an_xlsx_upload_is_read_from_the_request_stream(app: App, tmp_path: Path) -> None:
    s = shop(app)
    user(app, "carl")
    clerk = signed_in(web(app), "carl")
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(list(EN[:4]))
    ws.append([s.customers[1].code, "X-1", s.skus[2], 4])
    path = tmp_path / "orders.xlsx"
    wb.save(path)

    response = _upload(clerk, path, "en")

    assert response.status_code == 200
    assert "1 rows, 1 orders" in response.get_data(as_text=True)
    (order,) = orders_by_po(app)["X-1"]
    assert str(order.total_net) == "50.00"  # 4 x 12.5


def test_only_who_may_enter_orders_may_import(app: App, tmp_path: Path) -> None:
    s = shop(app)
    user(app, "fin", groups=("finance",))
    finance = signed_in(web(app), "fin")

    assert finance.client.get("/orders/import").status_code == 403
    assert _upload(finance, write_csv(tmp_path / "o.csv", ZH, good_rows(s, 1))).status_code == 403
    assert orders_by_po(app) == {}


def test_a_running_import_shows_its_progress_and_a_stopped_one_says_why(app: App) -> None:
    actor = user(app, "carl")
    clerk = signed_in(web(app), "carl")
    service = ImportService(app)
    running = service.new_batch("大批.csv", actor, result={"rows_expected": 1000})
    with app.engine.uow() as uow:
        uow.session.execute(
            update(ImportBatch).where(ImportBatch.id == running).values(rows_total=250)
        )
        uow.commit()
    stopped = service.new_batch("坏.csv", actor)
    service.fail(stopped, "OperationalError: the database went away")

    page = clerk.page(f"/orders/import/{running}?lang=zh_CN")
    assert 'http-equiv="refresh"' in page and "正在导入 · 大批.csv" in page
    assert '<progress max="100" value="25">' in page and "已读取 250 / 1000 行" in page
    assert "rejects.csv" not in page  # nothing to download before the end

    page = clerk.page(f"/orders/import/{stopped}?lang=en")
    assert 'http-equiv="refresh"' not in page
    assert "The import stopped: OperationalError: the database went away." in page

    user(app, "dora")
    other = signed_in(web(app), "dora")
    assert other.client.get(f"/orders/import/{running}").status_code == 404  # not hers
    assert other.client.get("/orders/import/999999").status_code == 404


def test_a_batch_cut_off_with_the_web_process_ends_as_stopped_with_its_rejects(app: App) -> None:
    """A web restart kills the import thread: its batch saves nothing more. After
    STALLED_AFTER without a saved chunk its page stops reloading, says what happened and
    offers the rows it had rejected; a batch that saved a chunk lately still runs."""
    actor = user(app, "carl")
    clerk = signed_in(web(app), "carl")
    service = ImportService(app)
    now = app.engine.clock()
    cut = service.new_batch("断.csv", actor, result={"rows_expected": 1000})
    alive = service.new_batch(
        "慢.csv", actor, result={"saved_at": (now - timedelta(minutes=1)).isoformat()}
    )
    with app.engine.uow() as uow:
        uow.session.execute(
            update(ImportBatch)
            .where(ImportBatch.id.in_([cut, alive]))
            .values(created_at=now - timedelta(minutes=30), rows_total=300, rows_rejected=1)
        )
        uow.commit()
    part = Path(app.settings.data_dir) / "imports" / f"batch-{cut}-rejects.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_text("客户,行号,列,原因\nC9,7,客户,找不到该客户\n", encoding="utf-8-sig")

    page = clerk.page(f"/orders/import/{cut}?lang=en")
    assert 'http-equiv="refresh"' not in page and "Import report · 断.csv" in page
    assert "the web server was probably restarted" in page
    assert "找不到该客户" in page  # the rejected row it had written
    download = clerk.client.get(f"/orders/import/{cut}/rejects.csv")
    assert download.status_code == 200 and "C9,7" in download.get_data(as_text=True)

    assert "网页服务可能已重启" in clerk.page(f"/orders/import/{cut}?lang=zh_CN")

    page = clerk.page(f"/orders/import/{alive}?lang=en")
    assert 'http-equiv="refresh"' in page and "probably restarted" not in page
    part.rename(part.with_name(f"batch-{alive}-rejects.part"))
    # a running batch's rejects are offered once it has ended
    assert clerk.client.get(f"/orders/import/{alive}/rejects.csv").status_code == 404


def test_old_import_files_are_pruned_and_zero_keeps_them(tmp_path: Path) -> None:
    old, new = tmp_path / "upload-old.csv", tmp_path / "batch-1-rejects.csv"
    for path in (old, new):
        path.write_text("x")
    now = time.time()
    os.utime(old, (now - 31 * 86400, now - 31 * 86400))
    os.utime(new, (now - 29 * 86400, now - 29 * 86400))

    assert prune_imports(tmp_path, 0, now) == 0 and old.exists()
    assert prune_imports(tmp_path, 30, now) == 1
    assert not old.exists() and new.exists()
    assert prune_imports(tmp_path / "missing", 30, now) == 0
