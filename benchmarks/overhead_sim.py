"""Orchestrator overhead on the simulator.

1. Self-consistency n=8 over 500 problems, 64 problems in flight, early stop off (so every branch's latency is
   known in advance): wall time / ideal, where ideal is the makespan the simulator's own latencies allow when
   problems are scheduled onto 64 lanes in the same order (a problem lasts as long as its slowest sample).
   Measured at several simulated decode speeds: 0.004 s/token (250 tokens/s per stream, the headline: faster than
   a batched GPU stream, so overhead shows) and slower, more typical ones, where the same CPU cost hides behind waits.
2. Per-branch scheduling overhead: the same run with zero-latency simulation, wall time / branches.
3. Streaming with logprobs (what DeepConf online and probing need): every sample streamed with per-token confidences
   through the context's confidence stop (a threshold no trace reaches, so the work equals plain SC's), at
   `chunk_tokens` tokens per streamed chunk (an engine's stream interval), same ideal as 1.
4. 1 and 3 again with samples as long as real ones (150-450 tokens, not the simulator's 20-60).

Writes results/bench/overhead_sim.json.
"""
from __future__ import annotations

import asyncio
import functools
import heapq
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
from tts.engine_adapters.sim import SimConfig, SimulatedEngine  # noqa: E402
from tts.strategies.self_consistency import SCConfig  # noqa: E402
from tts.app.runner import run_eval  # noqa: E402
from tts.app.session import Session  # noqa: E402
from tts.kernel.types import ConfidenceStop, GenerateRequest, Problem  # noqa: E402
from tts.strategies.samples import answer_from, outcome_sample, to_sample  # noqa: E402

N, PROBLEMS, IN_FLIGHT = 8, 500, 64
REAL_LENGTHS = (150, 450)  # uniform: a mean of 300 tokens, as the 1.5B model's GSM8K traces (306)


def problems() -> list[Problem]:
    return [Problem(id=f"p{i}", question=f"Problem {i}: what is {i} times 3?", gold=str(3 * i))
            for i in range(PROBLEMS)]


def ideal_makespan(engine: SimulatedEngine, task, probs: list[Problem], config: SCConfig) -> float:
    lanes = [0.0] * IN_FLIGHT
    for p in probs:
        base = GenerateRequest(messages=task.messages(p), max_tokens=config.max_tokens,
                               temperature=config.temperature, top_p=config.top_p)
        plans = [(r, engine.plan(r, 0)) for r in (base.model_copy(update={"seed": config.seed + i})
                                                   for i in range(config.n))]
        for r, plan in plans:  # the simulator's own work, done before the clock starts (as its plans are)
            engine.confidences(r, plan[0])
        dur = max(plan[2] for _, plan in plans)
        start = heapq.heappop(lanes)
        heapq.heappush(lanes, start + dur)
    return max(lanes)


async def sc_streamed(ctx, problem, config: SCConfig):
    """SC whose samples all stream with confidences (DeepConf's client path, with a stop that never fires)."""
    never = ConfidenceStop(threshold=-1e9)
    base = GenerateRequest(messages=ctx.task.messages(problem), max_tokens=config.max_tokens,
                           temperature=config.temperature, top_p=config.top_p, confidence_stop=never)

    async def draw(i: int):
        [c] = await ctx.generate(base.model_copy(update={"seed": config.seed + i}))
        return to_sample(ctx, i, c)

    outcomes = await ctx.branches([functools.partial(draw, i) for i in range(config.n)], label="sample")
    return answer_from(ctx, [outcome_sample(o) for o in outcomes], "majority")


async def one(latency: float, out: Path, stream: bool = False, chunk_tokens: int = 4,
              lengths: tuple[int, int] = (20, 60)) -> tuple[float, float, int, float]:
    task, probs = tasks.get("gsm8k"), problems()
    engine = SimulatedEngine.for_problems(probs, SimConfig(latency_per_token_s=latency, slots=N * IN_FLIGHT,
                                                           chunk_tokens=chunk_tokens, min_tokens=lengths[0],
                                                           max_tokens=lengths[1]))
    config = SCConfig(n=N, early_stop=False, batch=False)
    ideal = ideal_makespan(engine, task, probs, config)
    spec = strategies.StrategySpec("sc-streamed", sc_streamed, SCConfig) if stream else strategies.get("sc")
    t0, c0 = time.perf_counter(), time.process_time()
    summary = await run_eval(Session(engine, task, spec, config), probs, out, {}, concurrency=IN_FLIGHT, progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert summary["problems"] == PROBLEMS and engine.finished == PROBLEMS * N
    return wall, ideal, engine.max_in_flight, cpu


async def main() -> None:
    sweep = {}
    with tempfile.TemporaryDirectory() as tmp:
        wall, ideal, peak, _ = await one(0.004, Path(tmp) / "a")
        wall0, _, _, cpu0 = await one(0.0, Path(tmp) / "b")
        for latency in (0.002, 0.01, 0.02):
            w, i, _, _ = await one(latency, Path(tmp) / f"s{latency}")
            sweep[str(latency)] = {"wall_s": round(w, 3), "ideal_s": round(i, 3), "wall_over_ideal": round(w / i, 4)}
        streamed = {}
        for chunk in (1, 4, 16):
            for latency in (0.002, 0.004):
                w, i, _, c = await one(latency, Path(tmp) / f"st{chunk}-{latency}", stream=True, chunk_tokens=chunk)
                streamed[f"{chunk}_tokens_per_chunk@{latency}"] = {
                    "wall_s": round(w, 3), "ideal_s": round(i, 3), "wall_over_ideal": round(w / i, 4),
                    "cpu_s": round(c, 3)}
            _, _, _, c0s = await one(0.0, Path(tmp) / f"st{chunk}-0", stream=True, chunk_tokens=chunk)
            streamed[f"{chunk}_tokens_per_chunk_per_branch_cpu_us"] = round(c0s / (PROBLEMS * N) * 1e6, 1)
        # The simulator's samples are 20-60 tokens, a seventh of a real trace (Qwen2.5-Coder-1.5B's GSM8K traces
        # average 306), so branches end 7x as often as on a real job and the per-branch CPU weighs 7x as much:
        # the same runs at a real trace's length.
        real_length = {}
        for stream_it in (False, True):
            for latency in (0.002, 0.004):
                w, i, _, c = await one(latency, Path(tmp) / f"rl{stream_it}-{latency}", stream=stream_it,
                                       chunk_tokens=16, lengths=REAL_LENGTHS)
                real_length[f"{'streamed_16' if stream_it else 'not_streamed'}@{latency}"] = {
                    "wall_s": round(w, 3), "ideal_s": round(i, 3), "wall_over_ideal": round(w / i, 4)}
    sweep["0.004"] = {"wall_s": round(wall, 3), "ideal_s": round(ideal, 3), "wall_over_ideal": round(wall / ideal, 4)}
    branches = PROBLEMS * N
    result = {
        "problems": PROBLEMS, "n": N, "in_flight": IN_FLIGHT, "latency_per_token_s": 0.004,
        "wall_s": round(wall, 3), "ideal_s": round(ideal, 3), "wall_over_ideal": round(wall / ideal, 4),
        "wall_over_ideal_by_latency_per_token_s": dict(sorted(sweep.items(), key=lambda kv: float(kv[0]))),
        "peak_concurrent_requests": peak,
        "zero_latency_wall_s": round(wall0, 3),
        "per_branch_overhead_us": round(wall0 / branches * 1e6, 1),
        "per_branch_cpu_us": round(cpu0 / branches * 1e6, 1),
        "streamed_with_confidence": streamed,
        "at_real_trace_length": {"sample_tokens": list(REAL_LENGTHS), **real_length},
        "machine_load_1min": round(os.getloadavg()[0], 2),
        "note": "per-branch overhead includes the whole pipeline: request building, budget, trace events, DAG, "
                "answer extraction, voting, results and trace files",
    }
    out = ROOT / "results" / "bench" / "overhead_sim.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
