"""Answer extraction and numeric grading for math word problems (GSM8K-style answers are numbers)."""
from __future__ import annotations

import re
from fractions import Fraction

from tts.kit.equivalence import last_boxed  # noqa: F401  (re-exported: graders use it)

_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?|-?\.\d+")
_ANSWER_IS = re.compile(r"(?:final answer|answer)\s*(?:is|:|=)\s*", re.IGNORECASE)
_LATEX_TEXT = re.compile(r"\\(?:text|mathrm|mbox)\{[^{}]*\}")
_SLASH = re.compile(r"(-?\d+)\s*/\s*(\d+)(?![\d.])")
# a single-letter variable next to + - * and a number: "L - 8", "8 + x", "2*n" (units such as "km/h" are words)
_VARIABLE = re.compile(r"(?<![A-Za-z\\])[A-Za-z]\s*[-+*]\s*\d|\d\s*[-+*]\s*[A-Za-z](?![A-Za-z])")
_FRAC = re.compile(r"\\d?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}|\\d?frac(\d)(\d)")


def to_number(s: str) -> Fraction | None:
    """Parse the first number in a short answer string ("$1,234.50", "\\frac{3}{4}", "75%", "18 km"); None for an
    expression in a variable ("L - 8" answers with a length, not with the 8 it contains)."""
    if "\\" in s or "{" in s:  # LaTeX: most answers have none, and this runs once per sample
        s = s.replace("\\!", "").replace("{,}", ",").replace("\\$", "$")
        s = _LATEX_TEXT.sub(" ", s)
    if _VARIABLE.search(s):
        return None
    frac = _FRAC.search(s) if "frac" in s else None
    if frac:
        num, den = (frac.group(1), frac.group(2)) if frac.group(1) is not None else (frac.group(3), frac.group(4))
        a, b = to_number(num), to_number(den)
        if a is not None and b not in (None, 0):
            return a / b
    m = _SLASH.search(s) if "/" in s else None
    if m and int(m.group(2)) != 0 and not _NUMBER.search(s[: m.start()]):
        return Fraction(int(m.group(1)), int(m.group(2)))
    m = _NUMBER.search(s)
    if not m:
        return None
    return Fraction(m.group(0).replace(",", ""))


def canonical(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    as_float = float(value)
    text = f"{as_float:.10g}"
    return text if Fraction(text) == value else f"{value.numerator}/{value.denominator}"


def extract_answer(text: str) -> str | None:
    """The final numeric answer a completion states, in canonical form, or None.

    Priority: the last \\boxed{}, then the last "answer is / answer:", then "#### N", then the last number.
    """
    if not text:
        return None
    boxed = last_boxed(text)
    if boxed is not None and boxed.strip():
        value = to_number(boxed)
        # a boxed answer that is not a number (an expression in a variable) is the answer as written
        return canonical(value) if value is not None else boxed.strip()
    phrases = list(_ANSWER_IS.finditer(text))
    if phrases:
        tail = text[phrases[-1].end():].split("\n", 1)[0]
        value = to_number(tail)
        if value is not None:
            return canonical(value)
    if "####" in text:
        value = to_number(text.rsplit("####", 1)[1])
        if value is not None:
            return canonical(value)
    numbers = _NUMBER.findall(text)
    if numbers:
        return canonical(Fraction(numbers[-1].replace(",", "")))
    return None


def normalize_gold(gold: str) -> str | None:
    value = to_number(gold)
    return None if value is None else canonical(value)


def is_correct(predicted: str | None, gold: str | None) -> bool:
    if predicted is None or gold is None:
        return False
    a, b = to_number(predicted), to_number(gold)
    if a is None or b is None:
        return predicted.strip() == gold.strip()
    return abs(a - b) <= Fraction(1, 10**6) * max(1, abs(b))
