"""`order-flow report NAME ...` in-process with click's runner, on both databases."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from order_flow.bootstrap import App
from order_flow.cli import main
from tests.integration.test_reports_data import INJECTION, build_world


def run(app: App, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("ORDER_FLOW_DATABASE_URL", app.settings.database_url)
    monkeypatch.setenv("ORDER_FLOW_DATA_DIR", str(app.settings.data_dir))
    result = CliRunner().invoke(main, ["report", *args])
    return result.exit_code, result.stdout, result.stderr


def test_report_prints_table_csv_and_json_with_the_filters_applied(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(app)
    span = ("--from", "2026-03-01", "--to", "2026-04-30")
    code, out, _ = run(app, monkeypatch, "sales-by-month", *span)
    assert code == 0
    assert "2026-03-01" in out and "388.50" in out and "614.50" in out
    code, out, _ = run(app, monkeypatch, "sales-by-customer", *span, "--format", "csv")
    assert code == 0
    cells = list(csv.reader(io.StringIO(out)))
    assert ["C002", "'" + INJECTION, "1", "50.00", "6.50", "56.50"] in cells
    customer = str(world.customers["C1"])
    code, out, _ = run(
        app, monkeypatch, "sales-by-day", *span, "--customer", customer, "--format", "json"
    )
    assert code == 0
    doc = json.loads(out)
    assert [(r["period"], r["gross"]) for r in doc["rows"]] == [
        ("2026-03-02", "219.00"),
        ("2026-03-03", "113.00"),
    ]
    assert doc["totals"]["gross"] == "332.00"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("no-such-report",), "NAME"),
        (("sales-by-day", "--from", "2026-02-30"), "--from"),
        (("sales-by-day", "--to", "31/03/2026"), "--to"),
        (("sales-by-day", "--from", "2026-04-01", "--to", "2026-03-01"), "--from"),
        (("sales-by-day", "--customer", "0"), "--customer"),
        (("sales-by-day", "--format", "xml"), "--format"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_option(
    args: tuple[str, ...], option: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("ORDER_FLOW_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["report", *args])
    assert result.exit_code == 2
    assert option in result.stderr
    assert result.stdout == ""
