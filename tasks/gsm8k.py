"""GSM8K-style word problems: prompted for a final number, graded numerically (the gold is the number after `#### `
in GSM8K's own rows; tasks/mapping.py reads it)."""
from __future__ import annotations

from tts.kernel.types import Problem
from tts.tasks.extract import extract_answer, is_correct


PROMPT = (
    "Solve the following math problem. Reason step by step, then give the final answer as a number on the last line "
    "in the form 'The answer is N.'\n\nProblem: {question}"
)


def grade(problem: Problem, predicted: str | None) -> bool:
    return is_correct(predicted, problem.gold)


extract = extract_answer
