import pytest

from order_flow.domain.text import (
    check_gbk_max,
    fuzzy_matches,
    gbk_len,
    neutralize_csv_cell,
    normalize_company_name,
    similar_names,
)
from order_flow.errors import ValidationError


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("", 0),
        ("abc", 3),
        ("中文", 4),
        ("ABC有限公司", 11),
        ("北京市海淀区 1号 010-12345678", 29),  # 7 hanzi x 2 + 15 ASCII
        ("（）", 4),  # full-width brackets are two bytes each
        ("()", 2),
    ],
)
def test_gbk_length_counts_chinese_as_two_bytes_and_ascii_as_one(text, length):
    assert gbk_len(text) == length


def test_character_outside_gbk_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"'😀' \(U\+1F600\) at position 3"):
        gbk_len("ab😀")


def test_check_gbk_max_reports_the_field_when_too_long():
    assert check_gbk_max("name", "中" * 50, 100) == 100
    with pytest.raises(ValidationError) as exc:
        check_gbk_max("name", "中" * 50 + "a", 100)
    assert exc.value.errors == {"name": "101 GBK bytes, at most 100 allowed"}


def test_check_gbk_max_reports_unencodable_characters_on_the_field():
    with pytest.raises(ValidationError) as exc:
        check_gbk_max("address", "路😀", 100)
    assert "address" in exc.value.errors
    assert "not in GBK" in exc.value.errors["address"]


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("深圳市腾讯计算机系统有限公司", "深圳市腾讯计算机系统有限公司"),
        ("华为技术（深圳）有限公司", "华为技术(深圳)有限公司"),
        ("北京某某科技有限责任公司", "北京某某科技有限公司"),
        ("上海 某某 贸易 有限公司", "上海某某贸易有限公司"),
        ("上海\u3000某某贸易有限公司", "上海某某贸易有限公司"),
        ("ＡＢＣ（中国）有限责任公司", "abc(中国)有限公司"),
        ("Acme Trading Co., Ltd.", "acmetradingco.,ltd."),
    ],
)
def test_company_names_normalise_width_brackets_company_form_spaces_and_case(raw, normalised):
    assert normalize_company_name(raw) == normalised


def test_names_differing_only_by_form_and_width_are_identical():
    assert similar_names("ＡＢＣ（中国）有限责任公司", "abc(中国) 有限公司") == 1.0


def test_similar_names_scores_between_zero_and_one():
    assert 0.85 < similar_names("杭州甲乙丙贸易有限公司", "杭州甲乙丙贸易有限公") < 1.0
    assert similar_names("杭州甲乙丙贸易有限公司", "成都子丑寅科技有限公司") < 0.6
    assert similar_names("", "anything") == 0.0


def test_fuzzy_matches_return_close_candidates_best_first():
    candidates = ["杭州甲乙丙贸易有限公司", "杭州甲乙丙贸易有限责任公司", "成都子丑寅科技有限公司",
                  "杭州甲乙丁贸易有限公司"]
    hits = fuzzy_matches("杭州甲乙丙贸易（有限公司）", candidates, threshold=0.85)
    names = [name for name, _ in hits]
    assert "成都子丑寅科技有限公司" not in names
    assert names[0] in {"杭州甲乙丙贸易有限公司", "杭州甲乙丙贸易有限责任公司"}
    assert all(score >= 0.85 for _, score in hits)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
        ("+1+1", "'+1+1"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("普通文字", "普通文字"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_csv_cells_that_could_be_formulas_get_a_quote_prefix(cell, safe):
    assert neutralize_csv_cell(cell) == safe


def test_plain_negative_amounts_stay_numbers_in_csv():
    assert neutralize_csv_cell("-12.50") == "-12.50"
    assert neutralize_csv_cell("-3") == "-3"
    assert neutralize_csv_cell("-1e5") == "'-1e5"
