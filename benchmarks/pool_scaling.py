"""Does a replica pool scale? 1, 2, 4 and 8 simulated replicas, each with a fixed throughput (16 concurrent
completions at 0.004 s/token), behind tts's EnginePool (affinity routing), running SC n=8 over enough problems to
keep them all busy. Job throughput relative to one replica should stay near k (0.9 x linear at least): the
orchestrator must not be the bottleneck.

Usage: python benchmarks/pool_scaling.py     Writes results/bench/pool_scaling.json.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tts import strategies, tasks  # noqa: E402
from tts.app.runner import run_eval  # noqa: E402
from tts.app.session import Session  # noqa: E402
from tts.engine_adapters.pool import EnginePool  # noqa: E402
from tts.engine_adapters.sim import SimConfig, SimulatedEngine  # noqa: E402
from tts.kernel.types import Problem  # noqa: E402
from tts.strategies.self_consistency import SCConfig  # noqa: E402

SLOTS, LATENCY, N = 16, 0.004, 8


async def one(k: int, out: Path) -> dict:
    probs = [Problem(id=f"p{i}", question=f"Problem {i}: what is {i} times 3?", gold=str(3 * i))
             for i in range(24 * k)]  # 12 problem-waves of 2 problems per replica: a busy pool
    replicas = [SimulatedEngine.for_problems(probs, SimConfig(latency_per_token_s=LATENCY, slots=SLOTS))
                for _ in range(k)]
    pool = EnginePool(replicas, policy="affinity", capacity=SLOTS)
    config = SCConfig(n=N, early_stop=False, batch=False)
    t0 = time.perf_counter()
    summary = await run_eval(Session(pool, tasks.get("gsm8k"), strategies.get("sc"), config), probs, out, {},
                             concurrency=2 * k * SLOTS // N + k, progress=False)
    wall = time.perf_counter() - t0
    tokens = summary["completion_tokens"]
    return {"replicas": k, "problems": len(probs), "wall_s": round(wall, 3), "tokens_per_s": round(tokens / wall, 1),
            "requests_per_replica": [st.requests for st in pool.stats]}


async def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in (1, 2, 4, 8):
            rows.append(await one(k, Path(tmp) / f"k{k}"))
    base = rows[0]["tokens_per_s"]
    for r in rows:
        r["speedup"] = round(r["tokens_per_s"] / base, 3)
        r["share_of_linear"] = round(r["speedup"] / r["replicas"], 3)
    out = {"slots_per_replica": SLOTS, "latency_per_token_s": LATENCY, "n": N, "runs": rows,
           "machine_load_1min": round(os.getloadavg()[0], 2)}
    (ROOT / "results" / "bench" / "pool_scaling.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
