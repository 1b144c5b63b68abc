"""Paired replay of sampling policies on one fixed set of traces (benchmarks/collect_traces.py: 16 per problem, with
per-token confidences), so that every policy is judged on the same samples, free of sampling noise.

Policies: SC@n; SC with adaptive stop (traces taken in their recorded order, one wave at a time); DeepConf online
(the first `warmup` traces calibrate a threshold, later traces end at their first window under it, the group stops
on consensus); the job-level budget (tts/kit/allocation.py, the live run's own policy) at a range of totals.
For each: tokens, accuracy with a 95% interval, and problems lost / gained against SC@16 (paired).

Usage: python benchmarks/policy_replay.py gsm8k=/tmp/traces/gsm8k-1.5b.jsonl svamp=/tmp/traces/svamp-1.5b.jsonl
Writes results/bench/policy_replay.json and its frontier plot (tts report --replay), policy_replay.png.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent))

from tts.app.report import replay_plot  # noqa: E402
from tts.app.runner import wilson  # noqa: E402
from tts.kernel.confidence import calibrate, first_stop, lowest_group  # noqa: E402
from tts.kernel.types import ConfidenceStop  # noqa: E402
from tts.kit import stopping  # noqa: E402
from tts.kit.allocation import AllocationConfig, ProblemVotes, plan_round  # noqa: E402

N = 16


def load(path: str) -> list[dict]:
    rows = [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]
    return [r for r in rows if len(r["traces"]) >= N]


def majority(answers: list[str | None], weights: list[float] | None = None) -> str | None:
    scores: dict[str, float] = {}
    for i, a in enumerate(answers):
        if a is not None:
            scores[a] = scores.get(a, 0.0) + (weights[i] if weights else 1.0)
    return max(scores, key=lambda a: (scores[a], -answers.index(a))) if scores else None


def right(row: dict, answer: str | None) -> bool:
    return answer is not None and any(t["answer"] == answer and t["correct"] for t in row["traces"])


def sc(row: dict, n: int) -> tuple[str | None, int]:
    ts = row["traces"][:n]
    return majority([t["answer"] for t in ts]), sum(t["tokens"] for t in ts)


def adaptive(row: dict, rule: str, params: dict, wave: int) -> tuple[str | None, int]:
    """Traces in waves of `wave` (a wave runs in parallel and is paid for in full), stop when the rule says so."""
    criterion = stopping.make(rule, **params)
    votes: Counter = Counter()
    used = tokens = 0
    while used < N:
        for t in row["traces"][used: used + wave]:
            tokens += t["tokens"]
            if t["answer"] is not None:
                votes[t["answer"]] += 1
        used = min(N, used + wave)
        if votes and criterion(dict(votes), N - used):
            break
    return majority([t["answer"] for t in row["traces"][:used]]), tokens


def deepconf(row: dict, warmup: int, keep: float, window: int, rule: str | None, params: dict,
             weighted: bool, in_flight: int = 1) -> tuple[str | None, int, int]:
    """DeepConf online; returns (answer, tokens, traces cut). After the warm-up, `in_flight` traces run at once, all
    decoding at one speed (a batched engine); when the vote settles, the running traces are paid for up to then and
    the ones not started cost nothing. in_flight=1 is one trace at a time; n - warmup is the live default (all)."""
    ts = row["traces"]
    lows = [lowest_group(t["conf"], window) for t in ts[:warmup]]
    stop = ConfidenceStop(threshold=calibrate(lows, keep), window=window)
    criterion = stopping.make(rule, **params) if rule else None
    answers, weights, votes = [], [], Counter()

    def vote(t: dict) -> None:
        answers.append(t["answer"])
        weights.append(lowest_group(t["conf"], window))
        if t["answer"] is not None:
            votes[t["answer"]] += 1

    tokens = cut = 0
    for t in ts[:warmup]:
        tokens += t["tokens"]
        vote(t)
    rest = ts[warmup:]
    settled = criterion is not None and bool(votes) and criterion(dict(votes), len(rest))
    queue, running, now, done = list(range(len(rest))), {}, 0, 0
    while queue and not settled or running:
        while queue and len(running) < in_flight and not settled:
            j = queue.pop(0)
            at = first_stop(rest[j]["conf"], stop)
            ends_low = at is not None and at < rest[j]["tokens"]
            running[j] = (now, now + (at if ends_low else rest[j]["tokens"]), ends_low)
        if settled:  # the running traces were cancelled now: they cost what they generated so far
            tokens += sum(now - start for start, _, _ in running.values())
            break
        j = min(running, key=lambda k: (running[k][1], k))
        start, now, ends_low = running.pop(j)
        tokens += now - start
        done += 1
        if ends_low:
            cut += 1
        else:
            vote(rest[j])
        settled = criterion is not None and bool(votes) and criterion(dict(votes), len(rest) - done)
    return majority(answers, weights if weighted else None), tokens, cut


def job_budget(rows: list[dict], total: float, config: AllocationConfig) -> tuple[list[str | None], int]:
    drawn = {r["id"]: config.initial for r in rows}
    while True:
        spent = sum(sum(t["tokens"] for t in r["traces"][: drawn[r["id"]]]) for r in rows)
        states = {}
        for r in rows:
            c = Counter(t["answer"] for t in r["traces"][: drawn[r["id"]]] if t["answer"] is not None)
            states[r["id"]] = ProblemVotes(votes=dict(c), samples=drawn[r["id"]])
        plan = plan_round(states, total - spent, spent / sum(drawn.values()), config)
        if not plan:
            break
        for pid, k in plan.items():
            drawn[pid] += k
    answers = [majority([t["answer"] for t in r["traces"][: drawn[r["id"]]]]) for r in rows]
    return answers, spent


def score(rows: list[dict], answers: list[str | None], tokens: int, ref: list[bool] | None) -> dict:
    ok = [right(r, a) for r, a in zip(rows, answers)]
    out = {"tokens": tokens, "correct": sum(ok), "accuracy": round(sum(ok) / len(rows), 4),
           "ci95": wilson(sum(ok), len(rows))}
    if ref is not None:
        out["lost_vs_sc16"] = sum(r and not o for r, o in zip(ref, ok))
        out["gained_vs_sc16"] = sum(o and not r for r, o in zip(ref, ok))
    return out


def replay(rows: list[dict]) -> dict:
    res: dict[str, dict] = {}
    sc16 = [sc(r, 16) for r in rows]
    ref = [right(r, a) for r, (a, _) in zip(rows, sc16)]
    total16 = sum(t for _, t in sc16)
    for n in (1, 2, 4, 8, 12, 16):
        got = [sc(r, n) for r in rows]
        res[f"sc@{n}"] = score(rows, [a for a, _ in got], sum(t for _, t in got), ref)
    for name, rule, params in (("decided", "decided", {}), ("lead2", "lead", {"k": 2}), ("lead3", "lead", {"k": 3}),
                               ("beta0.95", "beta", {"confidence": 0.95})):
        for wave in (1, 2, 4):
            got = [adaptive(r, rule, params, wave) for r in rows]
            res[f"adaptive-{name}-wave{wave}"] = score(rows, [a for a, _ in got], sum(t for _, t in got), ref)
    for keep in (0.9, 0.5, 0.1):
        for window in (16, 32, 64):
            for rule, params in ((None, {}), ("lead", {"k": 2}), ("beta", {"confidence": 0.95})):
                got = [deepconf(r, 4, keep, window, rule, params, True) for r in rows]
                key = f"deepconf-keep{keep}-w{window}-{rule or 'none'}"
                res[key] = score(rows, [a for a, _, _ in got], sum(t for _, t, _ in got), ref)
                res[key]["traces_cut"] = sum(c for _, _, c in got)
    # the chosen setting with its traces in flight a few at a time, and all at once (the live default)
    for in_flight in (2, 4, N - 4):
        got = [deepconf(r, 4, 0.9, 16, "lead", {"k": 2}, True, in_flight) for r in rows]
        key = f"deepconf-keep0.9-w16-lead-in_flight{in_flight}"
        res[key] = score(rows, [a for a, _, _ in got], sum(t for _, t, _ in got), ref)
    sc8_tokens = res["sc@8"]["tokens"]
    for share in (0.15, 0.25, 0.4, 0.6):
        answers, spent = job_budget(rows, share * total16, AllocationConfig(total_tokens=1, max_samples=16))
        res[f"job-budget-{share:.0%}-of-sc16"] = score(rows, answers, spent, ref)
    answers, spent = job_budget(rows, sc8_tokens, AllocationConfig(total_tokens=1, max_samples=16))
    res["job-budget-at-sc8-tokens"] = score(rows, answers, spent, ref)
    for k, v in res.items():
        v["token_share_of_sc16"] = round(v["tokens"] / total16, 4)
    return res


def main() -> None:
    out: dict = {"command": "python benchmarks/policy_replay.py " + " ".join(sys.argv[1:]), "n": N, "sets": {}}
    for arg in sys.argv[1:]:
        name, path = arg.split("=", 1)
        rows = load(path)
        res = replay(rows)
        out["sets"][name] = {"problems": len(rows), "source": path, "policies": res}
        best = {k: v for k, v in res.items() if v["lost_vs_sc16"] == 0 or v["accuracy"] >= res["sc@16"]["accuracy"]}
        cheapest = min(best.items(), key=lambda kv: kv[1]["tokens"])
        print(f"{name}: {len(rows)} problems; SC@16 {res['sc@16']['accuracy']}, SC@8 {res['sc@8']['accuracy']}; "
              f"cheapest at SC@16 accuracy: {cheapest[0]} {cheapest[1]}")
    bench = ROOT / "results" / "bench"
    (bench / "policy_replay.json").write_text(json.dumps(out, indent=1))
    print(f"plot: {replay_plot(bench / 'policy_replay.json', bench)}")


if __name__ == "__main__":
    main()
