"""MATH-style problems with LaTeX answers (MATH-500, AIME, AMC, Minerva, Gaokao), graded by math-verify; the
common row shapes are read by tasks/mapping.py."""
from __future__ import annotations

import re

from tts.kit.equivalence import canonicalize, equivalent, extract_math_answer
from tts.kernel.types import Problem

PROMPT = ("Solve the following problem. Reason step by step, and put your final answer within \\boxed{{}}."
          "\n\nProblem: {question}")


# "x = 5" or "a_{n} = 3": a value named by a variable, which a bare "5" answers (math-verify's convention)
_NAMED_VALUE = re.compile(r"\s*\\?[A-Za-z]+(?:_\{?\w+\}?)?\s*")


def grade(problem: Problem, predicted: str | None) -> bool:
    gold = problem.gold
    if predicted is None or gold is None:
        return False
    # a gold that is an equation of an expression (a curve, an identity) is not answered by its right-hand side
    if "=" in gold and "=" not in predicted and not _NAMED_VALUE.fullmatch(gold.split("=", 1)[0]):
        return False
    return equivalent(gold, predicted)


extract = extract_math_answer
__all__ = ["PROMPT", "grade", "extract", "canonicalize"]
