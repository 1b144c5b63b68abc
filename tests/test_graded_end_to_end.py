"""`tts eval` end to end on every packaged set (and MBPP from a file), against a local OpenAI-compatible server that
answers each problem rightly or wrongly: a right answer must be graded right and a wrong one wrong, in the rows, the
summary and the console. (HumanEval rows carry tests, not a gold answer: they were once never graded at all.)"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_openai_server import FakeOpenAI
from tts import tasks

PACKAGED = Path(tasks.__file__).parent / "data"
MBPP_ROWS = [
    {"task_id": 2, "text": "Write a function to find the shared elements from the given two lists.",
     "code": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))",
     "test_list": ["assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))",
                   "assert set(similar_elements((1, 2, 3, 4),(5, 4, 3, 7))) == set((3, 4))"]},
    {"task_id": 3, "text": "Write a python function to identify non-prime numbers.",
     "code": "import math\ndef is_not_prime(n):\n    return n < 2 or any(n % i == 0 for i in range(2, int(math.sqrt(n)) + 1))",
     "test_list": ["assert is_not_prime(2) == False", "assert is_not_prime(10) == True"]},
]


def _right_and_wrong(task_name: str, data: Path | None, limit: int) -> dict[str, tuple[str, str]]:
    """Each problem's question -> (a right reply, a wrong reply), in the reply format the task asks for."""
    task = tasks.get(task_name)
    problems = task.load(data)[:limit]
    out = {}
    if task_name == "humaneval":
        solutions = {json.loads(line)["prompt"]: json.loads(line)["canonical_solution"]
                     for line in (PACKAGED / "humaneval.jsonl").read_text().splitlines()}
        for p in problems:
            entry = p.meta["entry_point"]
            out[p.question] = (f"```python\n{p.question}{solutions[p.question]}```",
                               f"```python\ndef {entry}(*args, **kwargs):\n    return None\n```")
    elif task_name == "mbpp":
        code = {r["text"]: r["code"] for r in MBPP_ROWS}
        for p in problems:
            text = next(t for t in code if p.question.startswith(t))
            out[p.question] = (f"```python\n{code[text]}\n```", "```python\ndef nothing():\n    return 0\n```")
    elif task.answer_cue and "boxed" in task.answer_cue:
        for p in problems:
            out[p.question] = (f"So the final answer is \\boxed{{{p.gold}}}.", "The final answer is \\boxed{123457}.")
    else:
        for p in problems:
            out[p.question] = (f"Working it out. The answer is {p.gold}.", "The answer is 123457.")
    assert len(out) == len(problems) == limit
    return out


def _responder(answers: dict[str, tuple[str, str]], right: bool):
    def respond(body: dict) -> str:
        content = body["messages"][-1]["content"]
        matches = [pair for question, pair in answers.items() if question in content]
        assert len(matches) == 1, content[:200]
        return matches[0][0 if right else 1]
    return respond


@pytest.mark.parametrize("task_name", ["gsm8k", "demo", "aime24", "amc23", "humaneval", "mbpp"])
@pytest.mark.parametrize("right", [True, False], ids=["right", "wrong"])
def test_eval_grades_every_packaged_set(tmp_path, task_name, right):
    data = None
    if task_name == "mbpp":  # MBPP is not packaged (its licence): a two-row file in its format
        data = tmp_path / "mbpp.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in MBPP_ROWS))
    answers = _right_and_wrong(task_name, data, limit=2)
    with FakeOpenAI(responder=_responder(answers, right)) as server:
        r = subprocess.run([sys.executable, "-m", "tts.app.cli", "eval", "--task", task_name, "-s", "greedy",
                            "--engine", "openai", "--base-url", server.url, "--model", "fake-model", "--limit", "2",
                            "--run-id", "r", "--no-progress", *(["--data", str(data)] if data else [])],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert r.returncode == 0, r.stderr
    run = tmp_path / "results" / "r"
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert [row["correct"] for row in rows] == [right, right], rows
    summary = json.loads((run / "summary.json").read_text())
    assert summary["graded"] == 2 and summary["correct"] == (2 if right else 0)
    assert summary["accuracy"] == (1.0 if right else 0.0) and "ungraded" not in summary
    assert f"accuracy: {'1.000' if right else '0.000'} ({2 if right else 0}/2" in r.stdout
