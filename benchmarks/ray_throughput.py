"""Problems per second on the simulator: the in-process executor against the Ray executor with 2 local workers,
at the same total number of problems in flight. Writes results/bench/ray_throughput.json."""
from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from common import write

from tts.app.jobs import RunSpec, make_spec, run_spec

PROBLEMS, IN_FLIGHT = 200, 16


async def timed(spec: RunSpec) -> tuple[float, dict]:
    t0 = time.perf_counter()
    summary, _ = await run_spec(spec, {}, progress=False)
    return time.perf_counter() - t0, summary


async def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    data = tmp / "p.jsonl"
    data.write_text("".join(f'{{"question": "Problem {i}: what is {i} plus {i}?", "answer": "#### {2 * i}"}}\n'
                            for i in range(PROBLEMS)))
    base = dict(engine="sim", data=data, n=8, early_stop=False, sim_latency=0.002, output=tmp)
    local_s, local = await timed(make_spec(dict(**base, concurrency=IN_FLIGHT, run_id="local")))
    ray_s, ray = await timed(make_spec(dict(**base, concurrency=IN_FLIGHT // 2, run_id="ray", executor="ray", workers=2)))
    warm_s, _ = await timed(make_spec(dict(**base, concurrency=IN_FLIGHT // 2, run_id="ray2", executor="ray", workers=2)))
    shutil.rmtree(tmp)
    assert local["correct"] == ray["correct"] and local["problems"] == ray["problems"] == PROBLEMS
    print(write("ray_throughput", {
        "problems": PROBLEMS, "n": 8, "in_flight_total": IN_FLIGHT, "sim_latency_per_token_s": 0.002,
        "in_process_problems_per_s": round(PROBLEMS / local_s, 2), "ray_2_workers_problems_per_s": round(PROBLEMS / ray_s, 2),
        "ray_over_in_process": round(local_s / ray_s, 3), "ray_wall_includes_cluster_start": True,
        "ray_warm_cluster_problems_per_s": round(PROBLEMS / warm_s, 2),
        "ray_warm_over_in_process": round(local_s / warm_s, 3),
        "same_summary": True}))


if __name__ == "__main__":
    asyncio.run(main())
