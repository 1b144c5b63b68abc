"""Live runs held against the recorded traces of the same problems (benchmarks/collect_traces.py).

A policy chosen on a replay is confirmed by running it live on the real engine. This script reads each live run
folder (results.jsonl, trace.jsonl, config.json) and sets beside it, on the same problems:
- SC@16 and SC@8 on the recorded traces (correct, tokens);
- the same policy replayed on the recorded traces, where the replay can express it (DeepConf online, the job-level
  budget), so that live and replayed tokens can be compared;
- paired counts against SC@16: problems the live run lost and gained.
Live samples differ from the recorded ones (vLLM's CPU build drops per-request seeds), so live and recorded
accuracies differ by sampling noise as well; the intervals say how much.

Usage: python benchmarks/live_check.py NAME=RUN_DIR:TRACES.jsonl [...]
Writes results/bench/live_check.json.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT / "benchmarks"))

from policy_replay import deepconf, job_budget, load, right, sc  # noqa: E402
from tts.app.runner import wilson  # noqa: E402
from tts.kit.allocation import AllocationConfig  # noqa: E402


def _events(run: Path) -> list[dict]:
    path = run / "trace.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def _replayed(config: dict, rows: list[dict]) -> dict | None:
    """The live run's policy on the recorded traces, where the replay expresses it."""
    sc_ = config.get("strategy_config", {})
    if config.get("allocation"):
        total = config["allocation"]["total_tokens"]
        answers, spent = job_budget(rows, total, AllocationConfig(total_tokens=1, max_samples=16))
        return {"correct": sum(right(r, a) for r, a in zip(rows, answers)), "tokens": spent}
    if config.get("strategy") == "deepconf":
        rule = sc_.get("stop_rule") if sc_.get("early_stop", True) else None
        in_flight = sc_.get("in_flight") or sc_["n"] - sc_["warmup"]  # None: every post-warm-up trace at once
        got = [deepconf(r, sc_["warmup"], sc_["keep"], sc_["window"], rule, sc_.get("stop_params", {}), True,
                        in_flight) for r in rows]
        return {"correct": sum(right(r, a) for r, (a, _, _) in zip(rows, got)), "tokens": sum(t for _, t, _ in got)}
    return None


def check(run: Path, traces: str) -> dict:
    config = json.loads((run / "config.json").read_text())
    live = {}
    for line in (run / "results.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            live[r["id"]] = r
    rows = [r for r in load(traces) if r["id"] in live]
    missing = sorted(set(live) - {r["id"] for r in rows})
    ok = [bool(live[r["id"]].get("correct")) for r in rows]
    usage = [live[r["id"]].get("usage") or {} for r in rows]
    events = _events(run)
    ends = [e for e in events if e.get("kind") == "call_end"]
    stops = Counter(e.get("by") for e in events if e.get("kind") == "confidence_stop")
    probes = {(e.get("run"), tuple(e.get("path", ()))) for e in events
              if e.get("kind") == "branch_start" and e.get("label") == "probe"}
    probe_ends = [e for e in ends if (e.get("run"), tuple(e.get("path", ()))) in probes]
    sc16 = [sc(r, 16) for r in rows]
    sc8 = [sc(r, 8) for r in rows]
    ref = [right(r, a) for r, (a, _) in zip(rows, sc16)]
    out = {
        "run": str(run), "strategy": config.get("strategy"), "strategy_config": config.get("strategy_config"),
        **({"allocation": config["allocation"]} if config.get("allocation") else {}),
        "problems": len(rows), **({"problems_without_traces": missing} if missing else {}),
        "live": {"correct": sum(ok), "accuracy": round(sum(ok) / len(rows), 4) if rows else None,
                 "ci95": wilson(sum(ok), len(rows)),
                 "generated_tokens": sum(u.get("completion_tokens", 0) for u in usage),
                 "calls": sum(u.get("calls", 0) for u in usage),
                 "seconds_summed_over_problems": round(sum(live[r["id"]].get("seconds") or 0 for r in rows), 1),
                 "cancelled_calls": sum(e.get("status") == "cancelled" for e in ends),
                 "tokens_of_cancelled_calls": sum(e.get("completion_tokens", 0) for e in ends
                                                  if e.get("status") == "cancelled"),
                 "confidence_stops": dict(stops),
                 "probe_calls": len(probe_ends),
                 "probe_generated_tokens": sum(e.get("completion_tokens", 0) for e in probe_ends),
                 "probe_prompt_tokens": sum(e.get("prompt_tokens", 0) for e in probe_ends),
                 "probe_cached_prompt_tokens": sum(e.get("cached_prompt_tokens", 0) for e in probe_ends),
                 "stopped_early": sum(bool(live[r["id"]].get("stopped_early")) for r in rows),
                 "lost_vs_recorded_sc16": sum(f and not o for f, o in zip(ref, ok)),
                 "gained_vs_recorded_sc16": sum(o and not f for f, o in zip(ref, ok))},
        "recorded_sc16": {"correct": sum(ref), "ci95": wilson(sum(ref), len(rows)),
                          "tokens": sum(t for _, t in sc16)},
        "recorded_sc8": {"correct": sum(right(r, a) for r, (a, _) in zip(rows, sc8)),
                         "tokens": sum(t for _, t in sc8)},
    }
    replayed = _replayed(config, rows)
    if replayed is not None:
        out["replayed_on_recorded"] = replayed
    total16 = out["recorded_sc16"]["tokens"]
    out["live"]["token_share_of_recorded_sc16"] = round(out["live"]["generated_tokens"] / total16, 4) if total16 else None
    return out


def main() -> None:
    target = ROOT / "results" / "bench" / "live_check.json"
    result = json.loads(target.read_text()) if target.exists() else {}  # runs checked earlier stay
    for arg in sys.argv[1:]:
        name, spec = arg.split("=", 1)
        run, traces = spec.rsplit(":", 1)
        result[name] = {"command": f"python benchmarks/live_check.py {arg}", **check(Path(run), traces)}
        print(name, json.dumps(result[name]["live"]), result[name]["recorded_sc16"], result[name]["recorded_sc8"],
              result[name].get("replayed_on_recorded"))
    target.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
