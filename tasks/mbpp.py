"""MBPP-format code tasks (`text`/`prompt`, `test_list`, optional `test_imports` and `code`): the candidate is graded
by running the row's asserts in the sandbox, as the reference harness does."""
from __future__ import annotations

import ast

from tts.kernel.errors import DataError
from tts.kernel.types import Problem
from tts.tasks.humaneval import LIMITS, extract  # noqa: F401  (the same fenced-code extraction)
from tts.tools.sandbox import run_python

PROMPT = ("{question}\n\nReply with the whole function (and any imports it needs) in one ```python code block.")


def _entry(test: str) -> str | None:
    try:
        node = ast.parse(test).body[0]
    except (SyntaxError, IndexError):
        return None
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
            return sub.func.id
    return None


def parse_row(obj: dict, fields, where: str) -> tuple[str, str | None, dict]:
    text = obj.get(fields.question) if fields.question else obj.get("text", obj.get("prompt"))
    tests = obj.get("test_list")
    if not isinstance(text, str) or not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
        raise DataError(f"{where}: missing MBPP field(s): 'text' (or 'prompt') and a non-empty 'test_list'")
    imports = [i for i in obj.get("test_imports") or [] if isinstance(i, str)]
    entry = _entry(tests[0])
    if entry is None:
        raise DataError(f"{where}: cannot find the function the first test calls")
    question = f"{text.strip()}\nYour code should pass these tests:\n" + "\n".join(tests)
    return question, None, {"entry_point": entry, "tests": tests, "imports": imports}


def program(problem: Problem, code: str) -> str:
    return "\n".join(problem.meta["imports"]) + "\n" + code


def example_calls(problem: Problem) -> list[str]:
    """The calls the asserts make (`assert f(x) == y` -> `f(x)`), to compare candidates' behaviour on."""
    calls = []
    for test in problem.meta["tests"]:
        try:
            node = ast.parse(test).body[0]
        except (SyntaxError, IndexError):
            continue
        if isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare) and isinstance(node.test.left, ast.Call):
            calls.append(ast.unparse(node.test.left))
    return calls


async def grade(problem: Problem, predicted: str | None) -> bool:
    if not predicted:
        return False
    source = program(problem, predicted) + "\n\n" + "\n".join(problem.meta["tests"]) + "\n"
    return (await run_python(source, LIMITS)).ok
