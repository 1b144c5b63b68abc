"""Per-branch CPU of the orchestrator, from one checkout: the zero-latency runs of benchmarks/overhead_sim.py (SC n=8,
500 problems, not streamed and streamed at 16 tokens a chunk), imported from the checkout named by --root so that an
older commit (a worktree with strategies/, tasks/ and engine_adapters/ copied under tts/) runs its own code.
Prints one JSON line; benchmarks/overhead_alternate.sh runs two checkouts alternately and keeps the lines.
Usage: PYTHONPATH=ROOT python benchmarks/overhead_compare.py --root ROOT --label NAME"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path


async def main(args) -> None:
    spec = importlib.util.spec_from_file_location("overhead_sim", Path(args.root) / "benchmarks" / "overhead_sim.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(Path(args.root) / "benchmarks"))
    spec.loader.exec_module(module)
    branches = module.PROBLEMS * module.N
    out = {"label": args.label, "tts": module.run_eval.__module__ and sys.modules["tts"].__file__}
    with tempfile.TemporaryDirectory() as tmp:
        _, _, _, cpu = await module.one(0.0, Path(tmp) / "plain")
        _, _, _, cpu_s = await module.one(0.0, Path(tmp) / "streamed", stream=True, chunk_tokens=16)
    out.update(per_branch_cpu_us=round(cpu / branches * 1e6, 1), streamed16_per_branch_cpu_us=round(
        cpu_s / branches * 1e6, 1), load_1min=round(os.getloadavg()[0], 2))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--label", required=True)
    asyncio.run(main(ap.parse_args()))
