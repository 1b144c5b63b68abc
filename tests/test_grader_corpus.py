"""tts's graders against a corpus of real model outputs (Qwen2.5-Coder 1.5B on GSM8K and SVAMP, 0.5B on Minerva MATH
and Gaokao 2023), each with the verdict of the community's reference graders (lm-eval's GSM8K filters, math-verify)
and, where tts and a reference disagreed, a verdict given by reading the output (with the reason). Built by
benchmarks/grader_agreement.py --write-corpus; tts must match every verdict."""
import json
from pathlib import Path

import pytest

from tts.kernel.types import Problem
from tts.tasks import get

CORPUS = Path(__file__).parent / "data" / "grader_corpus.jsonl"
CASES = [json.loads(x) for x in CORPUS.read_text().splitlines() if x.strip()]


def test_corpus_covers_the_answer_shapes():
    sets = {c["set"] for c in CASES}
    assert {"gsm8k", "svamp", "minerva", "gaokao"} <= sets
    assert sum(c["truth"] for c in CASES) > 20 and sum(not c["truth"] for c in CASES) > 20  # right and wrong outputs
    assert any("\\boxed" in c["output"] for c in CASES) and any("\\frac" in c["output"] for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c['set']}:{c['id']}:{c['trace']}" for c in CASES])
def test_grader_matches_the_verdict(case):
    task = get(case["task"])
    verdict = task.grade(Problem(id=case["id"], question="", gold=case["gold"]), task.extract(case["output"]))
    assert bool(verdict) == case["truth"], case.get("why") or f"references said {case['refs']}"
