"""Sandbox start-up cost: calls per second of a trivial program and of one HumanEval canonical solution with its
tests, for the bubblewrap sandbox and for the previous sandbox (process group + rlimits + audit hook, and as root
unshare --net + setpriv), side by side in one run. Also checks that every HumanEval dev canonical solution passes.

    python benchmarks/sandbox_rate.py --humaneval ../shared/data/humaneval_dev.jsonl
Writes results/bench/sandbox_rate.json.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tts.tools import sandbox as new  # noqa: E402

OLD_REV = "e290ebb"  # the last revision with the audit-hook sandbox


def load_old():
    src = subprocess.run(["git", "show", f"{OLD_REV}:tts/sandbox.py"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.replace("from tts.types import Frozen", "from tts.kernel.types import Frozen")
    path = Path(tempfile.mkdtemp()) / "old_sandbox.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("old_sandbox", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def rate(module, code: str, calls: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one():
        async with sem:
            r = await module.run_python(code, module.SandboxLimits(timeout_s=20))
            assert r.ok, r.stderr

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(calls)))
    return calls / (time.monotonic() - t0)


async def main(args) -> None:
    old = load_old()
    problems = [json.loads(line) for line in Path(args.humaneval).read_text().splitlines() if line.strip()]
    p = problems[0]
    graded = p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n"
    figures = {"isolation": new.isolation(), "calls": args.calls}
    for name, code in [("trivial", "print(1)"), ("humaneval_0", graded)]:
        for conc in (1, 4):
            # interleaved, best of 3 rounds each, so that machine noise hits both alike
            o, n = [], []
            for _ in range(3):
                o.append(await rate(old, code, args.calls, conc))
                n.append(await rate(new, code, args.calls, conc))
            figures[f"{name}_c{conc}"] = {"before_calls_per_s": round(max(o), 1), "after_calls_per_s": round(max(n), 1),
                                         "after_over_before": round(max(n) / max(o), 3)}
    passed = 0
    for q in problems:
        code = q["prompt"] + q["canonical_solution"] + "\n" + q["test"] + f"\ncheck({q['entry_point']})\n"
        passed += (await new.run_python(code, new.SandboxLimits(timeout_s=20))).ok
    figures["humaneval_canonical_pass"] = f"{passed}/{len(problems)}"
    out = ROOT / "results" / "bench" / "sandbox_rate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--humaneval", default=str(ROOT.parent / "shared" / "data" / "humaneval_dev.jsonl"))
    ap.add_argument("--calls", type=int, default=40)
    asyncio.run(main(ap.parse_args()))
