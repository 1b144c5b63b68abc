"""Branch-group scale: self-consistency with n = 10, 100, 1,000, 10,000 samples on the simulator (no latency), early
stop on with the `decided` rule so that the stop rule runs after every outcome. The stop rule is incremental, so
the time per branch should stay flat as n grows (it grew as O(n) per outcome before: n = 10,000 took over 100 s).
Also measures the event loop's responsiveness: the worst delay of a 50 ms ticker running beside the group.

    python benchmarks/scale_n.py          writes results/bench/scale_n.json
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tts import tasks  # noqa: E402
from tts.engine_adapters.sim import SimConfig, SimulatedEngine  # noqa: E402
from tts.kernel.context import Context  # noqa: E402
from tts.kernel.types import Problem  # noqa: E402
from tts.strategies.self_consistency import SCConfig, run  # noqa: E402


async def one(n: int) -> dict:
    problem = Problem(id="p", question="What is 2 plus 2?", gold="4")
    # answers split evenly over 3 values, so the vote is never decided early and all n branches run
    engine = SimulatedEngine(SimConfig(latency_per_token_s=0.0, slots=256, seed=1),
                             responder=lambda r: f"Thinking. The answer is {r.seed % 3}.")
    ctx = Context(engine, task=tasks.get("gsm8k"))
    worst = [0.0]
    stop = asyncio.Event()

    async def ticker():
        while not stop.is_set():
            t = time.monotonic()
            await asyncio.sleep(0.05)
            worst[0] = max(worst[0], time.monotonic() - t - 0.05)

    tick = asyncio.create_task(ticker())
    t0, c0 = time.monotonic(), time.process_time()
    answer = await run(ctx, problem, SCConfig(n=n, max_tokens=64))
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    stop.set()
    await tick
    return {"n": n, "branches": len(answer.samples), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "us_per_branch": round(1e6 * cpu / n, 1), "worst_loop_delay_ms": round(1000 * worst[0], 1)}


async def main() -> None:
    rows = [await one(n) for n in (10, 100, 1000, 10_000)]
    base = rows[1]["us_per_branch"]
    for r in rows:
        r["per_branch_vs_n100"] = round(r["us_per_branch"] / base, 2)
        print(r)
    out = ROOT / "results" / "bench" / "scale_n.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
