"""HumanEval-format code tasks: load, extract the completion from model output, and grade by running the tests in
the sandbox (tts/tools/sandbox.py); pass@k with the unbiased estimator."""
from __future__ import annotations

import ast
import re
from math import comb

from tts.kernel.errors import DataError
from tts.tools.sandbox import SandboxLimits, run_python
from tts.kernel.types import Problem

PROMPT = ("Complete the following Python function. Reply with the whole function in one ```python code block.\n\n"
          "```python\n{question}```")
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.DOTALL)
LIMITS = SandboxLimits(timeout_s=10, cpu_s=10, memory_mb=512)


def parse_row(obj: dict, fields, where: str) -> tuple[str, str | None, dict]:
    missing = [k for k in ("prompt", "entry_point", "test") if not isinstance(obj.get(k), str)]
    if missing:
        raise DataError(f"{where}: missing HumanEval field(s) {', '.join(missing)}")
    return obj["prompt"], None, {"entry_point": obj["entry_point"], "test": obj["test"], "prompt": obj["prompt"]}


def extract(text: str) -> str | None:
    """The code a completion proposes: the fenced block that defines something (the last such), else the text
    itself if it parses as Python."""
    blocks = [b for b in _FENCE.findall(text or "") if b.strip()]
    for block in reversed(blocks):
        if re.search(r"^\s*def |^\s*return ", block, re.MULTILINE):
            return block
    if blocks:
        return blocks[-1]
    if not text or not text.strip():
        return None
    for wrapped in (text, "def _body():\n" + text):  # a bare function body is a valid completion too
        try:
            ast.parse(wrapped)
            return text
        except SyntaxError:
            continue
    return None


def program(problem: Problem, code: str) -> str:
    """The candidate as a runnable module: the prompt's imports and helpers, then the candidate; a bare body
    (no `def` of the entry point) is appended to the prompt's signature."""
    entry = problem.meta["entry_point"]
    if re.search(rf"^\s*def {re.escape(entry)}\s*\(", code, re.MULTILINE):
        return problem.meta["prompt"] + "\n    pass\n\n" + code  # keep the prompt's imports; the candidate redefines
    return problem.meta["prompt"] + code


async def run_tests(problem: Problem, code: str | None) -> bool:
    if not code:
        return False
    source = program(problem, code) + "\n\n" + problem.meta["test"] + f"\n\ncheck({problem.meta['entry_point']})\n"
    return (await run_python(source, LIMITS)).ok


async def grade(problem: Problem, predicted: str | None) -> bool:
    return await run_tests(problem, predicted)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c pass (Chen et al., 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def example_calls(problem: Problem) -> list[str]:
    """Calls shown in the prompt's docstring examples (`>>> f(...)`), to run candidates on."""
    entry = problem.meta["entry_point"]
    return [m.strip() for m in re.findall(r">>>\s*(.+)", problem.meta["prompt"]) if m.strip().startswith(entry)]
