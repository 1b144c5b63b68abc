"""A job-level token budget: the allocation policy, and `tts eval --budget-tokens-total` end to end on the simulator
(decisions in allocation.jsonl, every draw kept, resume after a kill with nothing drawn twice)."""
import json
import os
import subprocess
import sys

import pytest

from tts.kit.allocation import AllocationConfig, Draw, ProblemVotes, next_draw, plan_round, uncertainty

TTS = [sys.executable, "-m", "tts.app.cli"]


def tts(*args, cwd):
    return subprocess.run([*TTS, *args], cwd=cwd, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_uncertainty_follows_the_beta_rule():
    assert uncertainty(ProblemVotes()) == 1.0
    assert uncertainty(ProblemVotes(votes={"a": 1, "b": 1}, samples=2)) == pytest.approx(0.5)
    assert uncertainty(ProblemVotes(votes={"a": 2}, samples=2)) == pytest.approx(1 / 8)
    assert uncertainty(ProblemVotes(votes={"a": 4}, samples=4)) == pytest.approx(1 / 32)


def test_plan_round_serves_the_least_settled_first_within_the_budget():
    config = AllocationConfig(total_tokens=10_000, step=2, max_samples=6)
    states = {
        "settled": ProblemVotes(votes={"7": 5}, samples=5),  # 1/64 < 0.05: gets nothing
        "agree2": ProblemVotes(votes={"7": 2}, samples=2),
        "split": ProblemVotes(votes={"7": 1, "8": 1}, samples=2),
        "full": ProblemVotes(votes={"7": 1, "8": 1}, samples=6),  # at max_samples
        "none": ProblemVotes(votes={}, samples=2),  # no answer yet
    }
    assert plan_round(states, 10_000, 100, config) == {"none": 2, "split": 2, "agree2": 2}
    # 450 tokens at 100 per sample: two problems of 2 samples fit, the third does not
    assert plan_round(states, 450, 100, config) == {"none": 2, "split": 2}
    assert plan_round(states, 50, 100, config) == {}
    near_cap = {"p": ProblemVotes(votes={"7": 1, "8": 1}, samples=5)}
    assert plan_round(near_cap, 10_000, 100, config) == {"p": 1}  # topped up to max_samples, no further


def test_next_draw_tops_up_first_skips_busy_problems_and_shares_what_is_left():
    config = AllocationConfig(total_tokens=10_000, initial=2, step=2, max_samples=6)
    fresh = {"a": ProblemVotes(), "b": ProblemVotes(), "c": ProblemVotes(votes={"7": 1, "8": 1}, samples=2)}
    # a and b still need their first 2 samples: 4 samples share 1,000 tokens, a goes first
    assert next_draw(fresh, set(), 1_000, 100, config) == Draw(problem="a", samples=2, cap=500)
    assert next_draw(fresh, {"a"}, 1_000, 100, config) == Draw(problem="b", samples=2, cap=1000)
    # every problem topped up or in flight: the policy's least settled free problem
    assert next_draw(fresh, {"a", "b"}, 1_000, 100, config) == Draw(problem="c", samples=2, cap=1000)
    # nothing free, or too little left to share: wait for a draw in flight
    assert next_draw(fresh, {"a", "b", "c"}, 1_000, 100, config) is None
    assert next_draw(fresh, set(), 3, 100, config) is None
    settled = {"x": ProblemVotes(votes={"7": 6}, samples=6)}
    assert next_draw(settled, set(), 10_000, 100, config) is None


def _run(tmp_path, *extra):
    return tts("eval", "--engine", "sim", "--task", "demo", "--sim-accuracy", "0.6", "--no-progress",
               "--output", str(tmp_path), *extra, cwd=tmp_path)


def test_budget_run_spends_where_votes_are_unsettled_and_resumes(tmp_path):
    r = _run(tmp_path, "--budget-tokens-total", "4000", "-n", "12", "--run-id", "a")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "a"
    summary = json.loads((run / "summary.json").read_text())
    per_problem = summary["allocation"]["samples_per_problem"]
    assert len(per_problem) == 20 and min(per_problem) >= 2 and max(per_problem) > min(per_problem)
    # reserved caps never exceed what is left: the budget is spent, never overspent
    assert 3000 < summary["completion_tokens"] <= 4000
    rows = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]
    draws = [json.loads(x) for x in (run / "draws.jsonl").read_text().splitlines()]
    decisions = [json.loads(x) for x in (run / "allocation.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and [d["id"] for d in decisions[:20]] == [r["id"] for r in rows]  # every problem first
    assert [d["draw"] for d in decisions] == list(range(len(decisions))) == sorted(d["draw"] for d in draws)
    assert summary["allocation"]["draws"] == len(decisions)
    by_id = {r["id"]: r for r in rows}
    for pid, row in by_id.items():
        drawn = sum(d["k"] for d in draws if d["id"] == pid)
        assert len(row["samples"]) == drawn == sum(row["votes"].values()) + sum(
            s["answer"] is None for s in row["samples"])
        assert row["usage"]["completion_tokens"] == sum(s["tokens"] for s in row["samples"])
    # problems whose first two samples disagreed got more samples than those that agreed
    first = {}
    for d in draws:
        if d["draw"] < 20:
            first[d["id"]] = {s["answer"] for s in d["samples"]}
    split = [len(by_id[p]["samples"]) for p, answers in first.items() if len(answers) > 1]
    agreed = [len(by_id[p]["samples"]) for p, answers in first.items() if len(answers) == 1]
    assert split and agreed and sum(split) / len(split) > sum(agreed) / len(agreed)

    # a kill: draws after the 25th and the results are gone, one draw inside the kept range too; resume redraws only
    # what is missing and decides the rest as before
    kept = [d for d in draws if d["draw"] < 25 and d["draw"] != 21]
    (run / "draws.jsonl").write_text("".join(json.dumps(d) + "\n" for d in kept) + '{"draw": 30, "id": "demo-1", "s')
    (run / "results.jsonl").write_text("")
    r = _run(tmp_path, "--budget-tokens-total", "4000", "-n", "12", "--run-id", "a", "--resume")
    assert r.returncode == 0, r.stderr
    again = [json.loads(x) for x in (run / "draws.jsonl").read_text().splitlines()]
    assert again[: len(kept)] == kept  # the cut line was dropped, the kept draws are untouched
    resumed = json.loads((run / "summary.json").read_text())
    assert sorted(resumed["allocation"]["samples_per_problem"]) == sorted(per_problem)  # same decisions
    assert [json.loads(x) for x in (run / "allocation.jsonl").read_text().splitlines()] == decisions
    assert len((run / "results.jsonl").read_text().splitlines()) == 20


def test_budget_total_is_refused_for_other_strategies_before_anything_runs(tmp_path):
    r = _run(tmp_path, "--budget-tokens-total", "4000", "--strategy", "pdr", "--run-id", "x")
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        "error: --budget-tokens-total allocates samples across problems: it applies to strategy self-consistency (sc)"]
    assert not (tmp_path / "x").exists()
