from datetime import date

import pytest

from order_flow.domain.taxid import (
    USCC_WEIGHTS,
    compute_id_card_check,
    compute_uscc_check,
    is_valid_id_card,
    is_valid_uscc,
    normalize_tax_id,
    validate_id_card,
    validate_uscc,
)

VALID_USCC = [
    "91350100M000100Y43",  # the DOMAIN.md example
    "9144030071526726XG",
    "121000004000003980",
    "5311000050000115X1",
    "91110108MABCDE12P6",  # letters in positions 9-17
    "A1110000MA0123456N",  # registered under A, letters in 1-8
    "N2440300ABCDEFGH1A",  # registered under N, letters in positions 9-16
    "Y1110108MA001234XR",  # registered under Y
]


def test_weights_are_powers_of_three_mod_31():
    assert USCC_WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def test_domain_example_check_character_is_3():
    assert compute_uscc_check("91350100M000100Y4") == "3"


@pytest.mark.parametrize("code", VALID_USCC)
def test_valid_codes_pass_including_letters_in_the_first_eight_positions(code):
    assert validate_uscc(code) == code
    assert is_valid_uscc(code)


def test_letters_in_positions_three_to_eight_are_not_rejected():
    first17 = "91ABCDEF000100Y4K"
    code = first17 + compute_uscc_check(first17)
    assert validate_uscc(code) == code


def test_full_width_lowercase_spaces_and_hyphens_are_normalised():
    assert validate_uscc("９１３５０１００Ｍ０００１００Ｙ４３") == "91350100M000100Y43"
    assert validate_uscc("91350100m000100y43") == "91350100M000100Y43"
    assert validate_uscc(" 9135-0100-M000-100Y43 ") == "91350100M000100Y43"
    assert validate_uscc("91350100\u3000M000100Y43") == "91350100M000100Y43"
    assert normalize_tax_id("ａｂ－１ ２") == "AB12"


def test_wrong_length_says_so():
    with pytest.raises(ValueError, match="18 characters, got 17"):
        validate_uscc("91350100M000100Y4")


@pytest.mark.parametrize("letter", ["I", "O", "S", "V", "Z"])
def test_letters_outside_the_alphabet_are_named_with_their_position(letter):
    with pytest.raises(ValueError, match=f"bad character '{letter}' at position 9"):
        validate_uscc("91350100" + letter + "000100Y43")


@pytest.mark.parametrize("first", ["0", "B", "M", "X"])
def test_unknown_registering_authority_is_refused(first):
    first17 = first + "1350100M000100Y4"
    with pytest.raises(ValueError, match="registering authority"):
        validate_uscc(first17 + compute_uscc_check(first17))


def test_wrong_check_character_names_the_expected_one():
    with pytest.raises(ValueError, match="wrong check character '4', expected '3'"):
        validate_uscc("91350100M000100Y44")
    assert not is_valid_uscc("91350100M000100Y44")


def test_every_single_character_change_is_caught():
    code = "91350100M000100Y43"
    for pos in range(1, 17):
        ch = code[pos]
        other = "0" if ch != "0" else "1"
        assert not is_valid_uscc(code[:pos] + other + code[pos + 1 :])


def test_compute_uscc_check_needs_seventeen_valid_characters():
    with pytest.raises(ValueError):
        compute_uscc_check("9135")
    with pytest.raises(ValueError, match="position 9"):
        compute_uscc_check("91350100O000100Y4")


VALID_IDS = ["11010519491231002X", "440304199001010011", "320106198503151236", "510107200002294564"]


@pytest.mark.parametrize("number", VALID_IDS)
def test_valid_id_card_numbers_pass(number):
    assert validate_id_card(number) == number
    assert is_valid_id_card(number)


def test_id_card_check_x_may_be_lowercase_or_full_width():
    assert validate_id_card("11010519491231002x") == "11010519491231002X"
    assert validate_id_card("１１０１０５１９４９１２３１００２Ｘ") == "11010519491231002X"
    assert compute_id_card_check("11010519491231002") == "X"


def test_id_card_with_wrong_check_digit_names_the_expected_one():
    with pytest.raises(ValueError, match="expected 'X'"):
        validate_id_card("110105194912310021")


def test_id_card_with_x_in_the_middle_or_wrong_length_is_refused():
    with pytest.raises(ValueError, match="position 5"):
        validate_id_card("1101X519491231002X")
    with pytest.raises(ValueError, match="18 characters"):
        validate_id_card("11010519491231002")


@pytest.mark.parametrize(
    ("birth", "today"),
    [("19490230", None), ("18991231", None), ("20300101", date(2025, 1, 1)), ("20231301", None)],
)
def test_id_card_with_an_impossible_birth_date_is_refused(birth, today):
    first17 = "110105" + birth + "002"
    number = first17 + compute_id_card_check(first17)
    with pytest.raises(ValueError, match="birth date"):
        validate_id_card(number, today=today)
    assert not is_valid_id_card(number, today=today)


def test_leap_day_birth_date_is_plausible():
    assert is_valid_id_card("510107200002294564", today=date(2025, 1, 1))
