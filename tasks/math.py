"""MATH-style problems with LaTeX answers (MATH-500, AIME, AMC, Minerva, Gaokao), graded by math-verify; the
common row shapes are read by tasks/mapping.py."""
from __future__ import annotations

from tts.kit.equivalence import canonicalize, equivalent, extract_math_answer
from tts.kernel.types import Problem

PROMPT = ("Solve the following problem. Reason step by step, and put your final answer within \\boxed{{}}."
          "\n\nProblem: {question}")


def grade(problem: Problem, predicted: str | None) -> bool:
    return predicted is not None and problem.gold is not None and equivalent(problem.gold, predicted)


extract = extract_math_answer
__all__ = ["PROMPT", "grade", "extract", "canonicalize"]
