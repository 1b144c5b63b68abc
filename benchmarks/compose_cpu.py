"""A composed strategy against its parts, on the same problems and the default CPU engine (issue 8).

composed = `sc(n=8, prune=STEP) | pdr(drafts=4, rounds=1)`: eight samples pruned while they stream, the survivors
distilled into PDR's workspace, one refine round of four drafts. Its parts alone: the pruned SC (run here) and PDR
with its own first round (drafts=4, rounds=2: the same refine round after four fresh drafts instead of the pruned
samples), plus unpruned SC n=8; those are read from earlier runs of the same configuration on the same problems
(benchmarks/strategies_cpu.py for SC and PDR, benchmarks/prune_cpu.py --no-shadow for the pruned SC) when they exist,
and run here otherwise (always with --fresh, so that all four runs come from one session).
Accuracy and generated tokens of each; writes results/bench/compose_cpu.json.
Usage: python benchmarks/compose_cpu.py --data ../shared/data/gsm8k_train.jsonl [--problems 30] [--fresh]
"""
from __future__ import annotations

import argparse
import asyncio

from common import RUNS, evaluate, start_vllm, write

from tts import tasks
from tts.strategies.compose import ComposeConfig
from tts.strategies.pdr import PDRConfig
from tts.strategies.self_consistency import SCConfig
from tts.kit.prune import PruneConfig
from tts.app.runner import read_finished, summarize


def reuse(run_dir, problems) -> dict | None:
    """Figures of an earlier run of a part over exactly these problems, or None."""
    rows = read_finished(run_dir / "results.jsonl") if (run_dir / "results.jsonl").exists() else {}
    if set(rows) != {p.id for p in problems}:
        return None
    s = summarize(list(rows.values()), {}, 0.0)
    return {k: s[k] for k in ("problems", "accuracy", "accuracy_ci95", "completion_tokens", "calls")} | {
        "source": str(run_dir.relative_to(RUNS.parents[1]))}


async def main(args) -> None:
    task = tasks.get("gsm8k")
    problems = task.load(args.data)[: args.problems]
    # quota 1: the setting compose_cpu.json was measured with, and prune_cpu.py's (PruneConfig's default is now 2)
    prune = PruneConfig(signal=args.signal, threshold=args.threshold, checkpoint_tokens=48, quota=1)
    sc_pruned = SCConfig(n=8, max_tokens=args.max_tokens, early_stop=False, prune=prune)
    expr = (f"sc(n=8, max_tokens={args.max_tokens}, early_stop=False, prune={{'signal': '{args.signal}', "
            f"'threshold': {args.threshold}, 'checkpoint_tokens': 48, 'quota': 1}}) | "
            f"pdr(drafts=4, rounds=1, max_tokens={args.max_tokens})")
    out: dict = {"problems": len(problems), "model": "qwen2.5-coder-0.5b", "max_tokens": args.max_tokens,
                 "composed_expr": expr}
    engine = start_vllm()
    try:
        parts = {"sc8": ("sc", SCConfig(n=8, max_tokens=args.max_tokens, early_stop=False, batch=True, logprobs=5),
                         RUNS / "bench-strategies" / "gsm8k-sc"),
                 "pdr_m4_r2": ("pdr", PDRConfig(drafts=4, rounds=2, max_tokens=args.max_tokens),
                               RUNS / "bench-strategies" / "gsm8k-pdr")}
        for label, (name, config, earlier) in parts.items():
            out[label] = None if args.fresh else reuse(earlier, problems)
            if out[label] is None:
                out[label], _ = await evaluate(engine, task, name, config, problems, f"compose-{label}-{len(problems)}")
        # the pruning benchmark (prune_cpu.py --no-shadow) runs this very configuration as its step run
        label = f"sc8_prune_{args.signal}"
        earlier = RUNS / f"prune-{args.signal}-{len(problems)}"
        same = args.signal == "step" and args.threshold == 0.8 and not args.fresh
        out[label] = reuse(earlier, problems) if same else None
        if out[label] is None:
            out[label], _ = await evaluate(engine, task, "sc", sc_pruned, problems,
                                           f"compose-sc-prune-{args.signal}-{len(problems)}")
        write("compose_cpu", out)
        out["composed"], rows = await evaluate(engine, task, "compose", ComposeConfig(expr=expr), problems,
                                               f"compose-composed-{args.signal}-{len(problems)}")
        out["composed"]["calls_per_problem"] = round(out["composed"]["calls"] / len(problems), 2)
    finally:
        await engine.aclose()
    print(write("compose_cpu", out))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--problems", type=int, default=30)
    ap.add_argument("--max-tokens", type=int, default=320)
    ap.add_argument("--signal", default="step")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--fresh", action="store_true",
                    help="run every part here (in compose-* folders, resumed) instead of reusing earlier benchmarks' runs")
    asyncio.run(main(ap.parse_args()))
