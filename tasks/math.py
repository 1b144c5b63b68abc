"""MATH-style problems with LaTeX answers, read from any of the common JSONL shapes, graded by math-verify.

Accepted rows (the first shape that fits wins):
- `problem` + `answer` (MATH-500, AIME, AMC)           - `problem` + `solution` with \\boxed{} (MATH, Minerva)
- `question` + `answer` (Gaokao; GSM8K's `#### N`)     - `Body` + `Question` + `Answer` (SVAMP)
"""
from __future__ import annotations

import sys
from pathlib import Path

from tts.tasks.extract import last_boxed
from tts.tasks.gsm8k import read_jsonl
from tts.kit.equivalence import canonicalize, equivalent, extract_math_answer
from tts.kernel.errors import DataError
from tts.kernel.types import Problem

PROMPT = ("Solve the following problem. Reason step by step, and put your final answer within \\boxed{{}}."
          "\n\nProblem: {question}")


def _number(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_row(obj: dict) -> tuple[str, str]:
    """(question, gold answer) from a row of any accepted shape; raises KeyError naming what is missing."""
    if "Body" in obj and "Question" in obj and "Answer" in obj:
        return f"{obj['Body'].strip()} {obj['Question'].strip()}", _number(obj["Answer"])
    question = obj.get("problem", obj.get("question"))
    if not isinstance(question, str):
        raise KeyError("'problem' or 'question'")
    if obj.get("answer") not in (None, ""):
        answer = _number(obj["answer"])
        if "####" in answer:
            answer = answer.rsplit("####", 1)[1].strip()
        return question, answer.strip().strip("$").strip()
    if isinstance(obj.get("solution"), str):
        boxed = last_boxed(obj["solution"])
        if boxed is None:
            raise KeyError("a \\boxed{} answer in 'solution'")
        return question, boxed.strip()
    raise KeyError("'answer' or 'solution'")


def load(path: str | Path | None = None) -> list[Problem]:
    if path is None:
        raise DataError("task 'math' has no bundled problems: pass --data FILE (MATH, AIME, Minerva, Gaokao, SVAMP)")
    path = Path(path)
    problems, no_gold = [], []
    for number, obj in read_jsonl(path):
        if "answer" in obj and obj["answer"] in (None, "") and "solution" not in obj:
            no_gold.append(number)  # present but empty: a row that cannot be graded, not a malformed file
            continue
        try:
            question, gold = parse_row(obj)
        except KeyError as e:
            raise DataError(f"{path}:{number}: missing {e.args[0]} (see `tasks/math.py` for accepted shapes)") from None
        pid = str(obj.get("id", obj.get("ID", obj.get("unique_id", f"{path.stem}-{number}"))))
        problems.append(Problem(id=pid, question=question, gold=gold, meta={"line": number}))
    if no_gold:
        print(f"warning: {path}: skipped {len(no_gold)} row(s) with an empty answer (lines "
              f"{', '.join(map(str, no_gold[:10]))})", file=sys.stderr)
    return problems


def grade(problem: Problem, predicted: str | None) -> bool:
    return predicted is not None and problem.gold is not None and equivalent(problem.gold, predicted)


extract = extract_math_answer
__all__ = ["PROMPT", "load", "grade", "extract", "canonicalize"]
