import pytest

from tts.tasks.extract import extract_answer, is_correct, last_boxed
from tts.tasks.mapping import numeric_gold


@pytest.mark.parametrize("text,expected", [
    ("So she has 1,234 apples. The answer is 1,234.", "1234"),
    ("The answer is $18.00.", "18"),
    ("Total: 3 + 4 = 7 km. The answer is 7 km", "7"),
    ("We get \\boxed{\\frac{3}{4}} in the end", "0.75"),
    ("\\boxed{\\dfrac{1}{3}}", "1/3"),
    ("nested \\boxed{\\text{about } {1{,}200}} done", "1200"),
    ("first \\boxed{5} then corrected: \\boxed{6}", "6"),
    ("the answer is: -12 degrees", "-12"),
    ("Final answer: 75%", "75"),
    ("5 apples and 7 pears, so 12 fruits", "12"),
    ("#### 42", "42"),
    ("The answer is 3.50, which is 0.5 more than 3.", "3.5"),
    ("The answer is 2.5.", "2.5"),
    ("no digits here", None),
    ("", None),
])
def test_extract(text, expected):
    assert extract_answer(text) == expected


def test_last_boxed_handles_nesting_and_unclosed():
    assert last_boxed("x \\boxed{a{b}c} y") == "a{b}c"
    assert last_boxed("\\boxed{unclosed") is None


def test_grading_compares_numbers_not_strings():
    assert is_correct("18", "18.0") and is_correct("1/2", "0.5") and is_correct("1234", "1,234")
    assert not is_correct("17", "18") and not is_correct(None, "18")


def test_gold_after_hashes():
    assert numeric_gold("Natalia sold 48/2 = 24 clips.\n#### 72") == "72"
    assert numeric_gold("#### 1,000") == "1000"


def test_a_boxed_expression_in_a_variable_is_not_the_number_it_contains():
    from tts.tasks.extract import extract_answer, is_correct, to_number

    # seen in a real 1.5B output: asked how many cm shorter (8), it boxed the remaining length
    assert extract_answer("the length will be \\(L - 8\\) cm. The final answer is \\(\\boxed{L - 8}\\).") == "L - 8"
    assert not is_correct("L - 8", "8")
    assert to_number("8 + x") is None and to_number("2*n") is None
    # numbers with units, money, percentages and fractions still read as numbers
    assert [to_number(s) for s in ("18 km", "$1,234", "75%", "18/hour")] == [18, 1234, 75, 18]
    assert extract_answer("so \\boxed{18 \\text{ cm}}") == "18"
