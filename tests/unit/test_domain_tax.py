from datetime import date
from decimal import Decimal

import pytest

from order_flow.domain.enums import TaxKind
from order_flow.domain.money import line_amounts
from order_flow.domain.tax import (
    EXEMPT,
    GENERAL_0,
    GENERAL_6,
    GENERAL_9,
    GENERAL_13,
    NOT_TAXABLE,
    SMALL_SCALE_1,
    SMALL_SCALE_3,
    RateTable,
    TaxRate,
    default_rate_table,
    is_valid_tax_class_code,
    validate_tax_class_code,
)
from order_flow.errors import NotFoundError

TODAY = date(2025, 6, 1)


@pytest.mark.parametrize(
    ("code", "rate", "label"),
    [
        (GENERAL_13, "0.13", "13%"),
        (GENERAL_9, "0.09", "9%"),
        (GENERAL_6, "0.06", "6%"),
        (GENERAL_0, "0", "0%"),
        (SMALL_SCALE_3, "0.03", "3%"),
        (SMALL_SCALE_1, "0.01", "1%"),
    ],
)
def test_default_table_has_the_current_standard_rates(code, rate, label):
    r = default_rate_table().rate_for(code, TODAY)
    assert r.kind is TaxKind.STANDARD
    assert r.arithmetic_rate == Decimal(rate)
    assert r.label == label


def test_exempt_counts_as_zero_but_prints_mianshui():
    r = default_rate_table().rate_for(EXEMPT, TODAY)
    assert r.rate is None
    assert r.arithmetic_rate == 0
    assert r.label == "免税"
    assert line_amounts("2", "50", r.arithmetic_rate, False).tax == 0


def test_not_taxable_counts_as_zero_but_prints_buzhengshui():
    r = default_rate_table().rate_for(NOT_TAXABLE, TODAY)
    assert (r.arithmetic_rate, r.label, r.kind) == (0, "不征税", TaxKind.NOT_TAXABLE)


def test_rate_is_chosen_by_the_date_it_applies_on():
    table = default_rate_table()
    assert table.rate_for(GENERAL_13, date(2019, 3, 31)).rate == Decimal("0.16")
    assert table.rate_for(GENERAL_13, date(2019, 4, 1)).rate == Decimal("0.13")
    assert table.rate_for(GENERAL_9, date(2018, 12, 1)).rate == Decimal("0.10")


def test_unknown_category_or_date_outside_every_period_is_not_found():
    table = default_rate_table()
    with pytest.raises(NotFoundError):
        table.rate_for("nope", TODAY)
    with pytest.raises(NotFoundError):
        table.rate_for(GENERAL_13, date(2017, 1, 1))
    with pytest.raises(NotFoundError):
        table.rate_for(SMALL_SCALE_1, date(2028, 1, 1))


def test_overlapping_periods_of_one_category_are_refused():
    a = TaxRate("x", Decimal("0.1"), TaxKind.STANDARD, date(2020, 1, 1), date(2020, 12, 31))
    b = TaxRate("x", Decimal("0.2"), TaxKind.STANDARD, date(2020, 6, 1))
    with pytest.raises(ValueError, match="overlap"):
        RateTable([a, b])


def test_tax_rate_refuses_floats_and_inconsistent_markers():
    with pytest.raises(TypeError):
        TaxRate("x", 0.13, TaxKind.STANDARD)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TaxRate("x", None, TaxKind.STANDARD)
    with pytest.raises(ValueError):
        TaxRate("x", Decimal("0.13"), TaxKind.EXEMPT)
    with pytest.raises(ValueError):
        TaxRate("x", Decimal("13"), TaxKind.STANDARD)


def test_table_lists_its_codes():
    assert GENERAL_13 in default_rate_table().codes()
    assert len(list(default_rate_table())) == 10


def test_tax_classification_code_is_nineteen_digits():
    assert is_valid_tax_class_code("1090511990000000000")
    assert validate_tax_class_code("109051199 0000000000") == "1090511990000000000"
    for bad in ["109051199000000000", "10905119900000000000", "109051199000000000A", ""]:
        assert not is_valid_tax_class_code(bad)
        with pytest.raises(ValueError, match="19 digits"):
            validate_tax_class_code(bad)


def test_full_width_digits_are_not_a_tax_classification_code():
    assert not is_valid_tax_class_code("１０９０５１１９９００００００００００")
