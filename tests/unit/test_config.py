"""Settings: parsing from the environment, and the operators' table kept in step."""

from __future__ import annotations

from decimal import Decimal

import pytest

from order_flow.config import Settings
from tools.gen_config_doc import DOC, render


def test_every_setting_is_read_from_its_environment_variable() -> None:
    s = Settings.from_env(
        {
            "ORDER_FLOW_INVOICE_MAX_LINES": "5",
            "ORDER_FLOW_DOUBLE_REVIEW_AMOUNT": "100.50",
            "ORDER_FLOW_INVOICE_REVIEW": "yes",
        }
    )
    assert s.invoice_max_lines == 5
    assert s.double_review_amount == Decimal("100.50")
    assert s.invoice_review is True


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(ValueError, match="ORDER_FLOW_INVOICE_MAX_LINES"):
        Settings.from_env({"ORDER_FLOW_INVOICE_MAX_LINES": "eight"})
    with pytest.raises(ValueError, match="ORDER_FLOW_SQL_ECHO"):
        Settings.from_env({"ORDER_FLOW_SQL_ECHO": "maybe"})


def test_the_configuration_doc_lists_every_setting() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text, "run: .venv/bin/python tools/gen_config_doc.py"
