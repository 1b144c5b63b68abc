"""Pruning replayed on finished self-consistency samples: exact, paired figures without sampling noise.

A pruned and an unpruned run draw different samples: vLLM's CPU build drops per-request seeds (see
engine_adapters/vllm_engine.py), so samples are reproducible only as one engine-seeded stream of requests: the same
run repeated reproduces every text (compose_cpu.py --fresh twice gave 240 identical texts), but a prune changes the
requests that follow it (and SC's unpruned path sends one n=8 request), so on 30 problems the two runs' accuracy
difference is mostly sampling noise. Here the pruner's own clustering code
(tts.prune.cluster / select_prunes) is replayed over the full traces of one unpruned SC run: the streams advance in
lockstep (as the branches of one batch do), at every checkpoint each running trace is cut at the same share of its
text as of its tokens, and a pruned trace saves the tokens it would still have generated. The pruned vote and the
unpruned vote are taken over the same samples, so a lost problem is a problem that pruning lost. Two ways to vote
after pruning: drop the pruned traces' votes, or let each inherit its cluster representative's answer (a prune says
"this trace would end like that one", so it keeps the vote it would have cast and the plurality keeps its margin).

1. AUROC of each free signal (prefix embedding, last-step embedding, intermediate-numbers overlap) for "these two
   partial traces end with the same answer", at 25/50/75% of their length.
2. A sweep of signal x threshold x quota x checkpoint on the tuning set; the configuration saving most tokens with no
   problem lost is then replayed on the held-out set.
Writes results/bench/prune_replay.json (--out names another file). Needs no engine, only the embedding model.
Usage (from benchmarks/): python prune_replay.py --tune gsm8k ../results/runs/bench-strategies/gsm8k-sc/results.jsonl
    ../../shared/data/gsm8k_train.jsonl --heldout svamp ../results/runs/bench-strategies/svamp-sc/results.jsonl
    ../../shared/data/svamp_test.jsonl
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from common import write
from prune_cpu import auroc

from tts import tasks
from tts.tasks.extract import is_correct
from tts.kit.aggregate import majority
from tts.kit.embed import embed_sync
from tts.kit.prune import PruneConfig, cluster, jaccard, last_step, numbers, select_prunes

GRID = {"prefix": [0.8, 0.85, 0.9, 0.95], "step": [0.7, 0.8, 0.9], "numbers": [0.3, 0.5, 0.7, 0.9]}


class Problem:
    def __init__(self, row: dict, question: str) -> None:
        ok = sorted((s for s in row["samples"] if s["status"] == "ok" and s.get("text")), key=lambda s: s["index"])
        self.id, self.gold = row["id"], row["gold"]
        self.texts = [s["text"] for s in ok]
        self.tokens = [max(1, s["tokens"]) for s in ok]
        self.answers = [s["answer"] for s in ok]
        self.question_numbers = numbers(question)

    def prefix(self, i: int, t: int) -> str:
        if t >= self.tokens[i]:
            return self.texts[i]
        return self.texts[i][: max(1, round(len(self.texts[i]) * t / self.tokens[i]))]


class Embeddings:
    """Embeddings of (problem, trace, checkpoint, signal) texts, computed in batches and kept."""

    def __init__(self) -> None:
        self.cache: dict[str, object] = {}

    def get(self, texts: list[str]) -> list:
        todo = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if todo:
            self.cache.update(zip(todo, embed_sync(todo)))
        return [self.cache[t] for t in texts]


def vote(answers: list[str | None]) -> str | None:
    votes: dict[str, int] = {}
    for a in answers:
        if a is not None:
            votes[a] = votes.get(a, 0) + 1
    return majority(votes)


def replay(p: Problem, config: PruneConfig, emb: Embeddings) -> tuple[list[int], int, dict[int, int]]:
    """Indices kept, tokens saved, and each pruned trace's representative when `config` prunes this problem."""
    alive, saved, rep_of = set(range(len(p.texts))), 0, {}
    t = config.checkpoint_tokens
    while any(p.tokens[i] > t for i in alive):
        finished = [i for i in sorted(alive) if p.tokens[i] <= t]
        running = [i for i in sorted(alive) if p.tokens[i] > t and t >= config.min_tokens]
        if running:
            order = finished + running
            texts = {i: p.prefix(i, t) for i in order}
            if config.signal == "numbers":
                nums = {i: numbers(texts[i], p.question_numbers) for i in order}

                def similar(i: int, rep: int) -> tuple[bool, float]:
                    sim = jaccard(nums[i], nums[rep])
                    return sim >= config.threshold, sim
            else:
                shown = [texts[i] if config.signal == "prefix" else last_step(texts[i]) for i in order]
                vec = dict(zip(order, emb.get(shown)))

                def similar(i: int, rep: int) -> tuple[bool, float]:
                    sim = float(vec[i] @ vec[rep])
                    return sim >= config.threshold, sim
            clusters = cluster(order, similar)
            for i, k, _ in select_prunes(clusters, set(running), config.quota, config.min_alive, len(alive)):
                rep_of[i] = clusters[k][0][0]
                alive.discard(i)
                saved += p.tokens[i] - t
        t += config.checkpoint_tokens
    return sorted(alive), saved, rep_of


def evaluate(problems: list[Problem], config: PruneConfig, emb: Embeddings) -> dict:
    total = saved = base_ok = discarded = 0
    ok = {"drop": 0, "inherit": 0}
    lost = {"drop": 0, "inherit": 0}
    gained = {"drop": 0, "inherit": 0}
    for p in problems:
        kept, s, rep_of = replay(p, config, emb)
        total += sum(p.tokens)
        saved += s
        a = is_correct(vote(p.answers), p.gold)
        base_ok += a
        votes = {"drop": [p.answers[i] for i in kept],
                 "inherit": [p.answers[i] if i in kept else p.answers[inherited(i, rep_of)]
                             for i in range(len(p.texts))]}
        for mode, answers in votes.items():
            b = is_correct(vote(answers), p.gold)
            ok[mode] += b
            lost[mode] += a and not b
            gained[mode] += b and not a
        kept_answers = {p.answers[i] for i in kept}
        discarded += any(p.answers[i] not in kept_answers for i in range(len(p.texts)) if i not in kept)
    n = len(problems)
    return {"signal": config.signal, "threshold": config.threshold, "quota": config.quota,
            "checkpoint_tokens": config.checkpoint_tokens, "token_saving": round(saved / total, 4),
            "accuracy_unpruned": round(base_ok / n, 4), "accuracy_pruned": round(ok["drop"] / n, 4),
            "problems_lost": lost["drop"], "problems_gained": gained["drop"],
            "accuracy_pruned_inherit": round(ok["inherit"] / n, 4), "problems_lost_inherit": lost["inherit"],
            "problems_gained_inherit": gained["inherit"],
            "problems_where_a_prune_discarded_a_distinct_answer": discarded}


def inherited(i: int, rep_of: dict[int, int]) -> int:
    """The kept trace whose answer a pruned trace votes for: its representative, followed while that was pruned."""
    while i in rep_of:
        i = rep_of[i]
    return i


def pair_signals(p: Problem, emb: Embeddings, frac: float):
    """For each pair of answered traces cut at `frac` of their text: the free signals, and whether they end alike."""
    prefixes = [p.texts[i][: max(1, int(len(p.texts[i]) * frac))] for i in range(len(p.texts))]
    pre, step = emb.get(prefixes), emb.get([last_step(x) for x in prefixes])
    nums = [numbers(x, p.question_numbers) for x in prefixes]
    for i, j in itertools.combinations(range(len(prefixes)), 2):
        if p.answers[i] is None or p.answers[j] is None:
            continue
        li, lj = len(prefixes[i]), len(prefixes[j])
        yield ({"prefix": float(pre[i] @ pre[j]), "step": float(step[i] @ step[j]),
                "numbers": jaccard(nums[i], nums[j]), "length_ratio": min(li, lj) / max(li, lj, 1)},
               p.answers[i] == p.answers[j])


def signal_auroc(problems: list[Problem], emb: Embeddings) -> dict:
    out = {}
    for frac in (0.25, 0.5, 0.75):
        scores: dict[str, list[float]] = {"prefix": [], "step": [], "numbers": []}
        labels = []
        for p in problems:
            for signals, same in pair_signals(p, emb, frac):
                labels.append(same)
                for k in scores:
                    scores[k].append(signals[k])
        out[f"{int(frac * 100)}%"] = {**{k: auroc(v, labels) for k, v in scores.items()}, "pairs": len(labels),
                                      "same_answer_share": round(sum(labels) / max(1, len(labels)), 4)}
    return out


def load(task: str, rows_path: str, data_path: str) -> list[Problem]:
    questions = {p.id: p.question for p in tasks.get(task).load(data_path)}
    rows = [json.loads(line) for line in Path(rows_path).read_text().splitlines() if line.strip()]
    return [Problem(r, questions[r["id"]]) for r in rows]


def main(args) -> None:
    emb = Embeddings()
    tune = load(*args.tune)
    if args.heldout:
        sets = {"tune": tune, "heldout": load(*args.heldout)}
    else:  # no second run: tune on the first half of the problems, hold out the second half
        sets = {"tune": tune[: len(tune) // 2], "heldout": tune[len(tune) // 2:]}
    figures: dict = {"source": {"tune": args.tune, "heldout": args.heldout or "second half of the tuning rows"},
                     "auroc": {name: signal_auroc(ps, emb) for name, ps in sets.items()}}
    print(json.dumps(figures["auroc"], indent=1), flush=True)
    sweep = []
    for signal, thresholds in GRID.items():
        for threshold, quota, k in itertools.product(thresholds, (1, 2), (32, 64)):
            config = PruneConfig(signal=signal, threshold=threshold, quota=quota, checkpoint_tokens=k)
            sweep.append(evaluate(sets["tune"], config, emb))
            print(sweep[-1], flush=True)
    figures["sweep_tune"] = sweep
    for mode, lost_key in (("drop", "problems_lost"), ("inherit", "problems_lost_inherit")):
        safe = [r for r in sweep if r[lost_key] == 0]
        best = max(safe, key=lambda r: r["token_saving"]) if safe else None
        figures[f"chosen_on_tune_{mode}"] = best
        # the tuning set's safest-and-cheapest configuration per signal, replayed on the held-out set
        per_signal = [max((x for x in safe if x["signal"] == sig), key=lambda x: x["token_saving"], default=None)
                      for sig in GRID]
        figures[f"heldout_{mode}"] = [
            evaluate(sets["heldout"], PruneConfig(signal=r["signal"], threshold=r["threshold"], quota=r["quota"],
                                                  checkpoint_tokens=r["checkpoint_tokens"]), emb)
            for r in per_signal if r]
    figures["goal"] = ">= 50% tokens saved at <= 1 point accuracy lost; AUROC above DeepPrune's 0.58 for embeddings"
    print(write(args.out, figures))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tune", nargs=3, required=True, metavar=("TASK", "ROWS", "DATA"))
    ap.add_argument("--heldout", nargs=3, metavar=("TASK", "ROWS", "DATA"),
                    help="a second run to replay the chosen configurations on (default: half of --tune's problems)")
    ap.add_argument("--out", default="prune_replay", help="name of the figures file in results/bench/")
    main(ap.parse_args())
