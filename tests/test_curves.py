"""Accuracy at n: exact expected majority over all n-subsets, checked against brute-force enumeration; no bias toward
the first samples; memory linear in n at sizes where listing the subsets would not fit."""
import random
import subprocess
import sys
from collections import Counter
from itertools import combinations

import pytest

from tts.kit.curves import accuracy_curve, majority_win_probabilities


def brute(answers: list, right: str, n: int) -> float:
    """Every n-subset, each tie split evenly: the definition the exact sum must reproduce."""
    total = 0.0
    subsets = list(combinations(range(len(answers)), n))
    for sub in subsets:
        votes = Counter(answers[i] for i in sub if answers[i] is not None)
        if not votes:
            continue
        top = max(votes.values())
        tied = [a for a, c in votes.items() if c == top]
        total += (right in tied) / len(tied)
    return total / len(subsets)


def row(answers: list) -> dict:
    return {"id": "p", "gold": "1", "samples": [{"index": i, "answer": a, "tokens": 10, "status": "ok"}
                                                for i, a in enumerate(answers)]}


@pytest.mark.parametrize("seed", range(12))
def test_exact_majority_matches_enumeration(seed):
    rng = random.Random(seed)
    size = rng.randint(3, 9)
    answers = [rng.choice(["1", "2", "3", None]) for _ in range(size)]
    for n in range(1, size + 1):
        got = accuracy_curve([row(answers)], lambda r, a: a == "1", [n])
        expected = brute(answers, "1", n)
        assert (got[n].accuracy if n in got else 0.0) == pytest.approx(expected, abs=1e-12)
        probs = majority_win_probabilities(Counter(a for a in answers if a), answers.count(None), n)
        assert sum(probs.values()) <= 1 + 1e-12  # the abstaining-only subsets name no winner


def test_no_bias_toward_the_first_samples():
    """The right answer only in the last half: every subset of the first 8 would miss it (the old lexicographic
    slice saw mostly those); the exact curve gives it its share."""
    answers = ["2"] * 8 + ["1"] * 8
    got = accuracy_curve([row(answers)], lambda r, a: a == "1", [1, 8])
    assert got[1].accuracy == pytest.approx(0.5) and got[8].accuracy == pytest.approx(0.5)
    assert got[8].method == "exact" and got[8].problems == 1


def test_problems_with_too_few_samples_are_left_out_and_counted():
    rows = [row(["1"] * 4), row(["1", "2"])]
    got = accuracy_curve(rows, lambda r, a: a == "1", [1, 4])
    assert got[4].problems == 1 and got[4].accuracy == 1.0
    assert got[1].problems == 2 and got[1].accuracy == pytest.approx(0.75)


def test_weighted_rules_use_seeded_random_subsets():
    answers = ["1", "2", "1", "3", "1", "2"]
    r = row(answers)
    for s in r["samples"]:
        s["stats"] = {"tokens": 10, "mean_logprob": -0.1 if s["answer"] == "1" else -2.0}
    a = accuracy_curve([r], lambda r, x: x == "1", [3], rule="logprob", subsets=500, seed=7)
    b = accuracy_curve([r], lambda r, x: x == "1", [3], rule="logprob", subsets=500, seed=7)
    assert a == b and "seed 7" in a[3].method
    # the weighted vote favours the confident class: at least as often right as the brute-force majority
    assert a[3].accuracy >= brute(answers, "1", 3) - 0.05


def test_memory_stays_linear_at_n_32():
    """C(32,16) is 6e8 subsets: listing them needed more than 1.5 GB. Under a 600 MB cap the exact sum finishes."""
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (600 << 20, 600 << 20))\n"
        "import random\n"
        "from tts.kit.curves import accuracy_curve\n"
        "rng = random.Random(1)\n"
        "rows = [{'id': str(p), 'gold': '1', 'samples': [{'index': i, 'answer': rng.choice('1123'), 'tokens': 1,"
        " 'status': 'ok'} for i in range(32)]} for p in range(5)]\n"
        "c = accuracy_curve(rows, lambda r, a: a == '1', [1, 16, 32])\n"
        "print(round(c[16].accuracy, 6), c[32].problems)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-400:]
    acc, problems = out.stdout.split()
    assert 0.5 < float(acc) <= 1.0 and problems == "5"
