"""A replica pool with one hung and one slow replica against a healthy pool, side by side on the simulator: wall time
of the same SC run (12 problems, 4 samples each, round-robin so that every replica is hit), and what the pool did
(timeouts retried elsewhere, slow replica drained). Writes results/bench/pool_slow.json.
Usage: python benchmarks/pool_slow.py"""
from __future__ import annotations

import asyncio
import time

from common import write

from tts.engine_adapters.pool import EnginePool
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.kernel.context import Context
from tts.kernel.engine import EngineWrapper
from tts.kernel.types import Problem
from tts.strategies import get, make_config
from tts.tasks import get as get_task

PROBLEMS = [Problem(id=str(i), question=f"Sam has {i} cards and gets {i} more. How many?", gold=str(2 * i))
            for i in range(1, 13)]


class Hung(EngineWrapper):
    async def generate(self, request):
        await asyncio.Event().wait()


def sim(latency: float) -> SimulatedEngine:
    return SimulatedEngine.for_problems(PROBLEMS, SimConfig(latency_per_token_s=latency))


async def run(pool) -> tuple[float, int]:
    task, spec = get_task("gsm8k"), get("sc")
    config = make_config(spec, n=4, early_stop=False, batch=False)
    t0, answered = time.perf_counter(), 0
    for p in PROBLEMS:
        answer = await spec.run(Context(pool, task=task), p, config)
        answered += answer.answer is not None
    return time.perf_counter() - t0, answered


async def main() -> None:
    figures = {}
    for trial in range(2):  # alternated, side by side
        healthy = EnginePool([sim(0.002), sim(0.002)], names=["a", "b"], policy="round-robin")
        troubled = EnginePool([sim(0.002), sim(0.002), sim(0.04), Hung(sim(0.002))],
                              names=["a", "b", "slow", "hung"], policy="round-robin", min_deadline_s=2.0)
        h_s, h_n = await run(healthy)
        t_s, t_n = await run(troubled)
        stats = {st.name: {"requests": st.requests, "timeouts": st.timeouts, "drained_slow": st.drained_slow,
                           "healthy": st.healthy} for st in troubled.stats}
        figures[f"trial{trial}"] = {"healthy_pool_s": round(h_s, 2), "hung_and_slow_pool_s": round(t_s, 2),
                                    "ratio": round(t_s / h_s, 2), "answered": [h_n, t_n], "replicas": stats}
        print(figures[f"trial{trial}"], flush=True)
    figures["note"] = ("before: a hung replica cost its 300 s read timeout x 2 attempts per call before failover, and a "
                       "20 s/request replica was never marked unhealthy")
    print(write("pool_slow", figures))


if __name__ == "__main__":
    asyncio.run(main())
