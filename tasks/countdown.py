"""Countdown: reach a target from given numbers with + - * /, each number used at most once.

Instances come from a seeded generator that builds a random expression over the numbers, so every instance is
solvable. The verifier parses the proposed expression with `ast` and evaluates it over exact fractions, accepting
only numbers, parentheses and the four operators: model output is never evaluated as code.
"""
from __future__ import annotations

import ast
import json
import random
import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

from tts.tasks.sources import read_jsonl
from tts.tools import safe_math
from tts.kernel.errors import DataError
from tts.kernel.types import Problem

PROMPT = ("Using the numbers {numbers}, write an arithmetic expression that equals {target}. You may use + - * / "
          "and parentheses, and each number at most once. Reason step by step, then give the expression on the last "
          "line as 'Answer: <expression>'.")


def generate(count: int, size: int = 4, seed: int = 0, low: int = 1, high: int = 50) -> list[Problem]:
    """`count` solvable instances with `size` numbers each (difficulty grows with size)."""
    rng = random.Random(seed)
    problems = []
    while len(problems) < count:
        numbers = [rng.randint(low, high) for _ in range(size)]
        values = [(Fraction(n), str(n)) for n in numbers]
        rng.shuffle(values)
        while len(values) > 1:  # combine two at a time, like a solver would, keeping the result a positive integer
            (a, ea), (b, eb) = values.pop(), values.pop()
            options = [(a + b, f"({ea} + {eb})"), (a * b, f"({ea} * {eb})"), (abs(a - b),
                       f"({ea} - {eb})" if a >= b else f"({eb} - {ea})")]
            if b != 0 and a % b == 0:
                options.append((a / b, f"({ea} / {eb})"))
            if a != 0 and b % a == 0:
                options.append((b / a, f"({eb} / {ea})"))
            values.append(rng.choice(options))
        target, expr = values[0]
        if target.denominator != 1 or not 1 <= target <= 1000:
            continue
        pid = f"countdown-{size}-{seed}-{len(problems)}"
        problems.append(Problem(id=pid, question=question(numbers, int(target)), gold=str(int(target)),
                                meta={"numbers": numbers, "target": int(target), "solution": expr[1:-1]}))
    return problems


def question(numbers: list[int], target: int) -> str:
    return PROMPT.format(numbers=numbers, target=target)


def load(path: str | Path | None = None) -> list[Problem]:
    """Generated instances (30 with 4 numbers, seed 0), or a JSONL file of {"numbers": [...], "target": N}."""
    if path is None:
        return generate(30, 4, 0)
    problems = []
    for number, obj in read_jsonl(Path(path)):
        nums, target = obj.get("numbers", obj.get("nums")), obj.get("target")
        if not isinstance(nums, list) or not all(isinstance(n, int) for n in nums) or not isinstance(target, int):
            raise DataError(f"{path}:{number}: a Countdown row needs 'numbers' (list of ints) and 'target' (int)")
        problems.append(Problem(id=str(obj.get("id", f"{Path(path).stem}-{number}")), question=question(nums, target),
                                gold=str(target), meta={"numbers": nums, "target": target}))
    return problems


def evaluate(expr: str) -> tuple[Fraction, list[int]]:
    """Exact value and the numbers used, with only + - * / on integers (no unary minus, no powers)."""
    return safe_math.evaluate(expr.replace("×", "*").replace("÷", "/"), floats=False, unary=False, power=False,
                              ops=(ast.Add, ast.Sub, ast.Mult, ast.Div))


def verify(expr: str | None, numbers: list[int], target: int) -> bool:
    if not expr or len(expr) > 200:
        return False
    try:
        value, used = evaluate(expr)
    except safe_math.InvalidExpression:
        return False
    return value == target and not (Counter(used) - Counter(numbers))


_ANSWER = re.compile(r"answer\s*[:=]\s*(.+)", re.IGNORECASE)


def extract(text: str) -> str | None:
    """The expression after the last 'Answer:', cut at '=' (a model often writes 'expr = target')."""
    matches = _ANSWER.findall(text or "")
    if not matches:
        return None
    expr = matches[-1].strip().strip("$`*. ")
    expr = re.sub(r"\\times|\\cdot", "*", expr).replace("\\div", "/")
    return expr.split("=")[0].strip() or None


def grade(problem: Problem, predicted: str | None) -> bool:
    return verify(predicted, problem.meta["numbers"], problem.meta["target"])


def write(problems: list[Problem], path: Path) -> None:
    with path.open("w") as f:
        for p in problems:
            f.write(json.dumps({"id": p.id, "numbers": p.meta["numbers"], "target": p.meta["target"]}) + "\n")
