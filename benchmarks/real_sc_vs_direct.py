"""Self-consistency through tts against the same requests sent straight to vLLM, on the real CPU engine.

Phase A: tts, SC n=8 with early stop off (one request with n=8 per problem, all problems in flight), through the
         VLLMEngine adapter (AsyncLLM), plus greedy on the same problems.
Phase B: the same 20 prompts with SamplingParams(n=8) in one `vllm.LLM.generate` call (offline engine, same
         engine settings), after phase A's engine is shut down.
Reports the ratio of wall times (goal <= 1.10) and greedy vs vote accuracy. Writes results/bench/real_sc_vs_direct.json.
Usage: python benchmarks/real_sc_vs_direct.py [--problems 20] [--data FILE] [--max-tokens 256] [--model NAME]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tts import strategies  # noqa: E402
from tts import tasks  # noqa: E402
from tts.engine_adapters.vllm_engine import VLLMEngine  # noqa: E402
from tts.strategies.self_consistency import GreedyConfig, SCConfig  # noqa: E402
from tts.kit.aggregate import majority, vote_counts  # noqa: E402
from tts.engine_adapters.local_models import resolve  # noqa: E402
from tts.app.runner import run_eval  # noqa: E402
from tts.app.session import Session  # noqa: E402
from tts.kernel.types import Sample  # noqa: E402

MAX_LEN = 2048


async def phase_a(model: str, probs, task, max_tokens: int, tmp: Path) -> dict:
    engine = VLLMEngine.start(model, max_model_len=MAX_LEN)
    try:
        # Warm-up outside the timing: the first request of an engine pays one-off costs.
        await engine.generate(_req(task, probs[0], 8, 1))
        sc = SCConfig(n=8, max_tokens=max_tokens, early_stop=False, batch=True)
        t0 = time.perf_counter()
        s_sc = await run_eval(Session(engine, task, strategies.get("sc"), sc), probs, tmp / "sc", {}, concurrency=len(probs),
                              progress=False)
        wall_sc = time.perf_counter() - t0
        t0 = time.perf_counter()
        s_g = await run_eval(Session(engine, task, strategies.get("greedy"), GreedyConfig(max_tokens=max_tokens)), probs,
                             tmp / "greedy", {}, concurrency=len(probs), progress=False)
        wall_g = time.perf_counter() - t0
    finally:
        await engine.aclose()
    return {"sc": s_sc, "sc_wall_s": wall_sc, "greedy": s_g, "greedy_wall_s": wall_g}


def _req(task, problem, max_tokens, n):
    from tts.kernel.types import GenerateRequest
    return GenerateRequest(messages=task.messages(problem), max_tokens=max_tokens, n=n, temperature=0.7)


def phase_b(model: str, probs, task, max_tokens: int) -> dict:
    from vllm import LLM, SamplingParams

    llm = LLM(model=model, enable_prefix_caching=True, enforce_eager=True, dtype="bfloat16", max_model_len=MAX_LEN,
              max_num_seqs=64, disable_log_stats=True)
    tok = llm.get_tokenizer()
    prompts = [tok.apply_chat_template([m.model_dump() for m in task.messages(p)], tokenize=False,
                                       add_generation_prompt=True) for p in probs]
    params = SamplingParams(n=8, temperature=0.7, top_p=0.95, max_tokens=max_tokens)
    llm.generate(prompts[:1], SamplingParams(n=8, temperature=0.7, max_tokens=1), use_tqdm=False)  # warm-up
    t0 = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    wall = time.perf_counter() - t0
    correct = tokens = 0
    for p, out in zip(probs, outs):
        samples = [Sample(index=i, text=o.text, answer=task.extract(o.text), completion_tokens=len(o.token_ids))
                   for i, o in enumerate(out.outputs)]
        tokens += sum(s.completion_tokens for s in samples)
        correct += task.grade(p, majority(vote_counts(samples)))
    return {"wall_s": wall, "accuracy": correct / len(probs), "completion_tokens": tokens}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--data", default=None, help="GSM8K-format JSONL (default: the bundled problems)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    args = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    task = tasks.get("gsm8k")
    probs = task.load(args.data)[: args.problems]
    model = resolve(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        a = asyncio.run(phase_a(model, probs, task, args.max_tokens, Path(tmp)))
    b = phase_b(model, probs, task, args.max_tokens)
    result = {
        "model": args.model, "problems": len(probs), "data": args.data or "bundled", "n": 8,
        "max_tokens": args.max_tokens,
        "tts_sc_wall_s": round(a["sc_wall_s"], 2), "direct_vllm_generate_wall_s": round(b["wall_s"], 2),
        "wall_ratio_tts_over_direct": round(a["sc_wall_s"] / b["wall_s"], 4),
        "tts_sc_completion_tokens": a["sc"]["completion_tokens"], "direct_completion_tokens": b["completion_tokens"],
        "tts_tokens_per_s": round(a["sc"]["completion_tokens"] / a["sc_wall_s"], 2),
        "direct_tokens_per_s": round(b["completion_tokens"] / b["wall_s"], 2),
        "accuracy_greedy": a["greedy"]["accuracy"], "accuracy_greedy_ci95": a["greedy"]["accuracy_ci95"],
        "accuracy_sc8_vote_tts": a["sc"]["accuracy"], "accuracy_sc8_vote_tts_ci95": a["sc"]["accuracy_ci95"],
        "accuracy_sc8_vote_direct": b["accuracy"],
        "greedy_wall_s": round(a["greedy_wall_s"], 2), "cached_prompt_tokens_sc": a["sc"]["cached_prompt_tokens"],
        "note": "wall ratio compares tokens/s-normalised work only if token counts are similar: sampling differs "
                "between the runs (no shared seed on the CPU build), so compare tokens_per_s too",
    }
    out = ROOT / "results" / "bench" / "real_sc_vs_direct.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
