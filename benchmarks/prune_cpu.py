"""Pruning on the default CPU engine: how well each signal predicts agreement, and what pruning saves and costs.

1. AUROC of each signal for "these two partial traces end with the same answer", at 25%, 50% and 75% of their length,
   over every pair of the full self-consistency samples of an earlier run (--sc-rows): prefix embeddings (the naive
   baseline; DeepPrune reports 0.58), last-step embeddings, intermediate-answer probes (model calls on each prefix),
   and a mix (probe agreement plus step similarity).
2. SC n=8 on the same problems with no pruning (the earlier run), naive prefix pruning, step pruning, and probe
   pruning (each with a shadow audit unless --no-shadow): accuracy and generated tokens.
Writes results/bench/prune_cpu.json.
Usage: python benchmarks/prune_cpu.py --sc-rows results/runs/bench-strategies/gsm8k-sc/results.jsonl --data FILE
"""
from __future__ import annotations

import argparse
import asyncio
import json
from itertools import combinations
from pathlib import Path

from common import evaluate, start_vllm, write

from tts import tasks
from tts.strategies.self_consistency import SCConfig
from tts.kernel.context import Context
from tts.kit.embed import embed
from tts.kit.prune import PruneConfig, last_step
from tts.kit.watched import PROBE_LEAD
from tts.kernel.types import GenerateRequest, Message


def auroc(scores: list[float], labels: list[bool]) -> float | None:
    """Probability that a random positive pair scores above a random negative one (ties count half)."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return round(wins / (len(pos) * len(neg)), 4)


async def probe_answers(ctx: Context, task, problem, prefixes: list[str]) -> list[str | None]:
    async def one(prefix: str):
        messages = (*task.messages(problem), Message(role="assistant", content=prefix + PROBE_LEAD + task.answer_cue))
        [c] = await ctx.generate(GenerateRequest(messages=messages, continue_final=True, max_tokens=12))
        return task.extract(task.answer_cue + c.text)

    outcomes = await ctx.branches([lambda p=p: one(p) for p in prefixes], label="probe")
    return task.canonicalize([o.value if o.status == "ok" else None for o in outcomes])


async def signal_auroc(engine, task, problems, rows) -> dict:
    by_id = {p.id: p for p in problems}
    out = {}
    for frac in (0.25, 0.5, 0.75):
        scores = {"prefix": [], "step": [], "probe": [], "mix": []}
        labels = []
        for row in rows:
            samples = [s for s in row["samples"] if s["status"] == "ok" and s.get("text") and s["answer"] is not None]
            if len(samples) < 2:
                continue
            prefixes = [s["text"][: max(1, int(len(s["text"]) * frac))] for s in samples]
            pre = await embed(prefixes)
            step = await embed([last_step(p) for p in prefixes])
            probes = await probe_answers(Context(engine, task=task), task, by_id[row["id"]], prefixes)
            for i, j in combinations(range(len(samples)), 2):
                labels.append(samples[i]["answer"] == samples[j]["answer"])
                scores["prefix"].append(float(pre[i] @ pre[j]))
                scores["step"].append(float(step[i] @ step[j]))
                same = float(probes[i] is not None and probes[i] == probes[j])
                scores["probe"].append(same)
                scores["mix"].append(same + 0.5 * float(step[i] @ step[j]))
        out[f"{int(frac * 100)}%"] = {k: auroc(v, labels) for k, v in scores.items()}
        out[f"{int(frac * 100)}%"]["pairs"] = len(labels)
        out[f"{int(frac * 100)}%"]["same_answer_share"] = round(sum(labels) / len(labels), 4) if labels else None
        print(frac, out[f"{int(frac * 100)}%"], flush=True)
    return out


async def main(args) -> None:
    task = tasks.get(args.task)
    rows = [json.loads(line) for line in Path(args.sc_rows).read_text().splitlines() if line.strip()]
    problems = [p for p in task.load(args.data) if p.id in {r["id"] for r in rows}]
    base = {k: sum(r["usage"][k] for r in rows) for k in ("completion_tokens", "calls")}
    figures: dict = {"problems": len(problems), "no_pruning": {
        "accuracy": sum(r["correct"] for r in rows) / len(rows), **base, "source": args.sc_rows}}
    engine = start_vllm()
    try:
        figures["auroc"] = await signal_auroc(engine, task, problems, rows)
        for name, prune in [("naive_prefix", PruneConfig(signal="prefix", threshold=args.prefix_threshold)),
                            ("step", PruneConfig(signal="step", threshold=args.step_threshold)),
                            ("probe", PruneConfig(signal="probe"))]:
            # quota 1: the setting prune_cpu.json was measured with (PruneConfig's default is now 2)
            prune = prune.model_copy(update={"shadow": args.shadow, "checkpoint_tokens": 48, "quota": 1})
            config = SCConfig(n=8, max_tokens=args.max_tokens, early_stop=False, prune=prune)
            f, run_rows = await evaluate(engine, task, "sc", config, problems, f"prune-{name}-{len(problems)}")
            prunes = [p for r in run_rows for p in (r.get("meta") or {}).get("prunes", [])]
            lost = 0
            for r in run_rows:
                kept = {s["answer"] for s in r["samples"] if s["status"] == "ok"}
                lost += sum(1 for p in (r.get("meta") or {}).get("prunes", [])
                            if p.get("shadow_answer") is not None and p["shadow_answer"] not in kept)
            # without a shadow run no pruned trace has an answer to compare: say "not measured", not 0
            audited = any("shadow_answer" in p for p in prunes)
            f.update(prunes=len(prunes), prunes_that_discarded_a_distinct_answer=lost if audited else None,
                     token_saving_vs_no_pruning=round(1 - f["completion_tokens"] / base["completion_tokens"], 4))
            figures[name] = f
            write("prune_cpu", figures)
    finally:
        await engine.aclose()
    figures["goal"] = ">= 50% tokens saved at <= 1 point accuracy lost; AUROC above DeepPrune's 0.58 for embeddings"
    print(write("prune_cpu", figures))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--sc-rows", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--task", default="gsm8k")
    ap.add_argument("--max-tokens", type=int, default=320)
    ap.add_argument("--prefix-threshold", type=float, default=0.9)
    ap.add_argument("--step-threshold", type=float, default=0.8)
    ap.add_argument("--shadow", action=argparse.BooleanOptionalAction, default=True,
                    help="finish pruned traces afterwards to count prunes that discarded a distinct answer "
                         "(doubles the engine time of the pruned runs)")
    asyncio.run(main(ap.parse_args()))
