"""HumanEval-format tasks: extraction, sandboxed grading, pass@k, and behaviour voting on the simulator."""
import json

import pytest

from tts.kernel.engine import EngineBase
from tts import tasks
from tts.strategies.code_sc import CodeSCConfig, run, valid_calls
from tts.tasks import humaneval
from tts.kernel.context import Context
from tts.kernel.types import Completion

ROW = {"task_id": "T/0", "entry_point": "add",
       "prompt": 'def add(a: int, b: int) -> int:\n    """Add.\n    >>> add(2, 3)\n    5\n    >>> add(-1, 1)\n    0\n    """\n',
       "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(10, -4) == 6\n"}


@pytest.fixture
def problem(tmp_path):
    path = tmp_path / "he.jsonl"
    path.write_text(json.dumps(ROW) + "\n")
    return tasks.get("humaneval").load(path)[0]


@pytest.mark.parametrize("code,ok", [
    ("    return a + b\n", True),
    ("def add(a, b):\n    return a + b\n", True),
    ("def add(a, b):\n    return a - b\n", False),
    ("def add(a, b):\n    while True: pass\n", False),
    ("import os\ndef add(a, b):\n    os.remove('/etc/hostname')\n", False),
    (None, False),
])
async def test_grading_runs_tests_in_the_sandbox(problem, code, ok):
    assert await humaneval.grade(problem, code) is ok


def test_extract_and_examples(problem):
    text = "Sure!\n```python\ndef add(a, b):\n    return a + b\n```\nThat is it."
    assert humaneval.extract(text) == "def add(a, b):\n    return a + b\n"
    assert humaneval.extract("    return a + b") == "    return a + b"
    assert humaneval.extract("this is not code (") is None
    assert humaneval.example_calls(problem) == ["add(2, 3)", "add(-1, 1)"]
    assert valid_calls("add(1, 2)\n>>> add(0, 0)\nprint('x')\nadd(1,", "add") == ["add(1, 2)", "add(0, 0)"]


def test_pass_at_k():
    assert humaneval.pass_at_k(8, 0, 1) == 0.0 and humaneval.pass_at_k(8, 8, 1) == 1.0
    assert humaneval.pass_at_k(8, 2, 1) == pytest.approx(0.25)
    assert humaneval.pass_at_k(8, 1, 8) == 1.0 and humaneval.pass_at_k(8, 2, 4) == pytest.approx(1 - 15 / 70)


def test_missing_fields_are_a_clear_error(tmp_path):
    from tts.kernel.errors import DataError
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"task_id": "x", "prompt": "def f(): pass"}) + "\n")
    with pytest.raises(DataError, match="bad.jsonl:1: missing HumanEval field"):
        tasks.get("humaneval").load(path)


class Candidates(EngineBase):
    """Returns candidate programs in turn: three that behave alike (two right, written differently), two wrong."""

    name = "candidates"
    codes = ["def add(a, b):\n    return a - b\n", "def add(a, b):\n    return a + b\n",
             "def add(x, y):\n    return sum([x, y])\n", "def add(a, b):\n    return b + a\n",
             "def add(a, b):\n    raise ValueError\n"]

    async def generate(self, request):
        return [Completion(text=f"```python\n{self.codes[i % 5]}```", completion_tokens=10) for i in range(request.n)]

    async def aclose(self):
        pass


async def test_code_sc_votes_by_behaviour(problem):
    ctx = Context(Candidates(), task=tasks.get("humaneval"))
    answer = await run(ctx, problem, CodeSCConfig(n=5))
    assert answer.meta["clusters"][0] == [1, 2, 3]  # same outputs on the examples, different text
    assert await humaneval.grade(problem, answer.answer)
