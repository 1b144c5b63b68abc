"""Answer extraction and grading for word problems: golds and stated answers are read by tasks/quantities.py (a
number, a time, a ratio or a list, each in its own kind) and voted on as canonical strings."""
from __future__ import annotations

import re
from fractions import Fraction

from tts.kit.equivalence import last_boxed  # noqa: F401  (re-exported: graders use it)
from tts.tasks.quantities import read_gold, read_stated, last_value

_ANSWER_IS = re.compile(r"(?:final answer|answer)\s*(?:is|:|=)\s*", re.IGNORECASE)


def to_number(s: str) -> Fraction | None:
    """The number a short answer string states ("$1,234.50", "\\frac{3}{4}", "75%", "18 km"); None for anything
    that is not one number (a time, a list, an expression in a variable such as "L - 8")."""
    value = read_stated(s)
    return value.parts[0] if value is not None and value.kind == "number" else None


def extract_answer(text: str) -> str | None:
    """The final answer a completion states, in canonical form, or None.

    Priority: the last \\boxed{}, then the last "answer is / answer:", then "#### N", then the last value.
    """
    if not text:
        return None
    boxed = last_boxed(text)
    if boxed is not None and boxed.strip():
        value = read_stated(boxed)
        # a boxed answer that is not a value (an expression in a variable) is the answer as written
        return value.text() if value is not None else boxed.strip()
    phrases = list(_ANSWER_IS.finditer(text))
    if phrases:
        tail = text[phrases[-1].end():].split("\n", 1)[0]
        value = read_stated(tail)
        if value is not None:
            return value.text()
    if "####" in text:
        value = read_stated(text.rsplit("####", 1)[1])
        if value is not None:
            return value.text()
    value = last_value(text)
    return value.text() if value is not None else None


def normalize_gold(gold: str) -> str | None:
    """A gold as its canonical string, or None when it is not one readable value (the loader refuses it)."""
    value = read_gold(gold)
    return None if value is None else value.text()


def is_correct(predicted: str | None, gold: str | None) -> bool:
    if predicted is None or gold is None:
        return False
    a, b = read_gold(predicted), read_gold(gold)
    if a is None or b is None:
        return predicted.strip() == gold.strip()
    return a.equals(b)
