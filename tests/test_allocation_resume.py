"""A run under a job-level budget that binds, killed at random moments and resumed until it finishes, takes the same
decisions as an uninterrupted run (samples per problem, answers, every draw decided) and never spends past its
budget."""
import json
import random
import signal
import subprocess
import time

import pytest

from tests.test_cli import TTS

ARGS = ["eval", "--engine", "sim", "--task", "gsm8k", "--limit", "60", "-n", "8", "--budget-tokens-total", "7000",
        "--sim-latency", "0.004", "--concurrency", "4", "--no-progress"]


def _summary(run):
    return json.loads((run / "summary.json").read_text())


def _rows(run):
    return {r["id"]: r for r in (json.loads(x) for x in (run / "results.jsonl").read_text().splitlines())}


@pytest.mark.parametrize("seed", [1, 2])
def test_kills_at_random_moments_change_no_decision_and_never_overspend(tmp_path, seed):
    whole = subprocess.run([*TTS, *ARGS, "--run-id", "whole"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)
    assert whole.returncode == 0, whole.stderr
    rng = random.Random(seed)
    kills = 0
    for attempt in range(30):
        started = (tmp_path / "results" / "killed" / "config.json").exists()  # a kill may land before it is written
        args = [*TTS, *ARGS, "--run-id", "killed", *(["--resume"] if started else [])]
        proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # start-up is a second or two of it; later attempts get longer, so that the run surely ends
            proc.wait(timeout=rng.uniform(1.5, 3.0) + 0.5 * attempt)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
        assert proc.returncode == 0, proc.stderr.read()
        break
    else:
        pytest.fail("the run never finished")
    assert kills >= 1
    a, b = tmp_path / "results" / "whole", tmp_path / "results" / "killed"
    sa, sb = _summary(a), _summary(b)
    assert sb["completion_tokens"] <= 7000 and sa["completion_tokens"] <= 7000
    ra, rb = _rows(a), _rows(b)
    assert {k: len(v["samples"]) for k, v in ra.items()} == {k: len(v["samples"]) for k, v in rb.items()}
    assert {k: v["answer"] for k, v in ra.items()} == {k: v["answer"] for k, v in rb.items()}
    assert sa["allocation"]["draws"] == sb["allocation"]["draws"]
    decisions = [(run / "allocation.jsonl").read_text().splitlines() for run in (a, b)]
    assert decisions[0] == decisions[1]
    assert sa["completion_tokens"] == sb["completion_tokens"]
