"""GSM8K-format problems: JSONL lines with `question` and `answer` (the gold number after `#### `)."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from tts.tasks.extract import extract_answer, is_correct, normalize_gold
from tts.kernel.errors import DataError
from tts.kernel.types import Problem

BUNDLED = "bundled_math.jsonl"


def read_jsonl(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; a clear DataError for a missing file or a bad line."""
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if path.is_dir():
        raise DataError(f"data path is a directory, not a JSONL file: {path}")
    rows = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}:{number}: not UTF-8 text (is this a JSONL file?)") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{number}: not valid JSON ({e.msg})") from None
            except (RecursionError, ValueError) as e:  # nesting too deep; a number too long to convert
                raise DataError(f"{path}:{number}: unreadable JSON ({type(e).__name__}: {str(e)[:80]})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            rows.append((number, obj))
    if not rows:
        raise DataError(f"data file has no problems: {path}")
    return rows


def gold_from_solution(answer: str) -> str | None:
    if "####" in answer:
        return normalize_gold(answer.rsplit("####", 1)[1])
    return normalize_gold(answer)


def load(path: str | Path | None = None) -> list[Problem]:
    """Problems from a GSM8K-format file, or the bundled set when no path is given."""
    if path is None:
        ref = resources.files("tts.tasks") / "data" / BUNDLED
        with resources.as_file(ref) as p:
            return _parse(Path(p), source="bundled")
    return _parse(Path(path), source=str(path))


def _parse(path: Path, source: str) -> list[Problem]:
    problems = []
    for number, obj in read_jsonl(path):
        for field in ("question", "answer"):
            if not isinstance(obj.get(field), (str, int, float)):
                raise DataError(f"{path}:{number}: missing or non-text field '{field}' (GSM8K format needs "
                                f"'question' and 'answer')")
        gold = gold_from_solution(str(obj["answer"]))
        if gold is None:
            raise DataError(f"{path}:{number}: no numeric gold answer in 'answer' (expected '#### N')")
        pid = str(obj.get("id", f"{Path(source).stem}-{number}"))
        problems.append(Problem(id=pid, question=str(obj["question"]), gold=gold, meta={"line": number}))
    return problems


PROMPT = (
    "Solve the following math problem. Reason step by step, then give the final answer as a number on the last line "
    "in the form 'The answer is N.'\n\nProblem: {question}"
)


def grade(problem: Problem, predicted: str | None) -> bool:
    return is_correct(predicted, problem.gold)


extract = extract_answer
