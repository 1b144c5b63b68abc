"""Math answer extraction and equivalence, for any strategy's voting.

Equivalence is math-verify's (sympy underneath): `0.5`, `1/2`, `\\frac{1}{2}` and `\\dfrac12` are one answer.
Answers are grouped into classes by comparing each new answer with one representative per class; a cache keeps the
parse of each distinct string, so a vote over n samples costs at most n parses.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (or \\fbox{...}), with nested braces."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


_ANSWER_IS = re.compile(r"(?:final answer|answer)\s*(?:is|:|=)\s*", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?|-?\.\d+")
logging.getLogger("math_verify").setLevel(logging.ERROR)


def extract_math_answer(text: str) -> str | None:
    """The answer a completion states, as written: the last \\boxed{}, else "the answer is ...", else the last number."""
    if not text:
        return None
    boxed = last_boxed(text)
    if boxed is not None and boxed.strip():
        return boxed.strip()
    phrases = list(_ANSWER_IS.finditer(text))
    if phrases:
        tail = text[phrases[-1].end():].split("\n", 1)[0].strip()
        tail = re.sub(r"^\$+|\$+$", "", tail.rstrip(". ")).strip()
        if tail:
            return tail
    # the last number written as a value: an exponent or an index (x^2, PF_1, a_{10}) is not an answer
    numbers = [m.group(0) for m in _NUMBER.finditer(text)
               if text[max(0, m.start() - 1): m.start()] not in ("^", "_")
               and text[max(0, m.start() - 2): m.start()] not in ("^{", "_{")]
    return numbers[-1].replace(",", "") if numbers else None


@lru_cache(maxsize=65536)
def _parsed(answer: str):
    from math_verify import parse

    s = answer.strip()
    if "$" not in s:
        s = f"${s}$"  # math-verify finds LaTeX inside math delimiters; bare strings often parse to nothing
    try:
        return tuple(parse(s, parsing_timeout=2))
    except Exception:
        return ()


@lru_cache(maxsize=65536)
def equivalent(a: str, b: str) -> bool:
    if a.strip() == b.strip():
        return True
    from math_verify import verify

    pa, pb = _parsed(a), _parsed(b)
    if not pa or not pb:
        return _plain(a) == _plain(b)
    try:
        return bool(verify(list(pb), list(pa), timeout_seconds=2))
    except Exception:
        return False


def _plain(s: str) -> str:
    return re.sub(r"\s+|\\[,!;: ]|\\text\{|\}|\{|\$", "", s).lower()


def canonicalize(answers: list[str | None]) -> list[str | None]:
    """Map each answer to the first-seen member of its equivalence class (None stays None)."""
    reps: list[str] = []
    out: list[str | None] = []
    for a in answers:
        if a is None:
            out.append(None)
            continue
        rep = next((r for r in reps if equivalent(r, a)), None)
        if rep is None:
            reps.append(a)
            rep = a
        out.append(rep)
    return out
