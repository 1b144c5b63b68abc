"""Live runs held against a recording of the same problems (`tts eval ... --record`).

A policy chosen on a replay is confirmed by running it live on the real engine. This script reads each live run
folder (results.jsonl, trace.jsonl, config.json) and sets beside it, on the same problems, through the replay engine
and the real strategies (benchmarks/policy_replay.py's `run_policy`):
- SC@16 and SC@8 on the recording (correct, tokens);
- the live run's own policy (its strategy, settings and job-level budget) replayed on the recording, so that live
  and replayed tokens can be compared;
- paired counts against SC@16: problems the live run lost and gained.
Live samples differ from the recorded ones (vLLM's CPU build drops per-request seeds), so live and recorded
accuracies differ by sampling noise as well; the intervals say how much.

Usage: python benchmarks/live_check.py NAME=RUN_DIR:RECORDING_RUN_DIR [...]
Writes results/bench/live_check.json.
"""
from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT / "benchmarks"))

from policy_replay import policies, run_policy  # noqa: E402
from tts.app.runner import wilson  # noqa: E402


def _events(run: Path) -> list[dict]:
    path = run / "trace.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def _policy_args(config: dict) -> list[str]:
    """The live run's policy as `tts eval` arguments."""
    args = ["-s", config["strategy"]]
    for key, value in (config.get("strategy_config") or {}).items():
        if value is not None and key != "seed":
            args += ["-o", f"{key}={json.dumps(value)}"]
    if config.get("allocation"):
        args += ["--budget-tokens-total", str(config["allocation"]["total_tokens"])]
    return args


def _on(got: dict, ids: list[str]) -> dict:
    return {"correct": sum(got["correct"].get(i, False) for i in ids), "tokens": got["summary"]["completion_tokens"]}


def check(run: Path, recording: Path) -> dict:
    config = json.loads((run / "config.json").read_text())
    live = {}
    for line in (run / "results.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            live[r["id"]] = r
    rec = json.loads((recording / "config.json").read_text())
    rec["limit"] = sum(1 for x in (recording / "results.jsonl").read_text().splitlines() if x.strip())
    rec["max_tokens"] = rec.get("max_tokens") or rec["strategy_config"]["max_tokens"]
    with tempfile.TemporaryDirectory() as tmp:
        table = policies(None)
        sc16 = run_policy(recording, rec, table["sc@16"], Path(tmp), "sc16")
        sc8 = run_policy(recording, rec, table["sc@8"], Path(tmp), "sc8")
        own = run_policy(recording, rec, _policy_args(config), Path(tmp), "own")
    ids = [i for i in sc16["correct"] if i in live]
    missing = sorted(set(live) - set(ids))
    ok = [bool(live[i].get("correct")) for i in ids]
    ref = [sc16["correct"][i] for i in ids]
    usage = [live[i].get("usage") or {} for i in ids]
    events = _events(run)
    ends = [e for e in events if e.get("kind") == "call_end"]
    stops = Counter(e.get("by") for e in events if e.get("kind") == "confidence_stop")
    out = {
        "run": str(run), "recording": str(recording), "strategy": config.get("strategy"),
        "strategy_config": config.get("strategy_config"),
        **({"allocation": config["allocation"]} if config.get("allocation") else {}),
        "problems": len(ids), **({"problems_not_recorded": missing} if missing else {}),
        "live": {"correct": sum(ok), "accuracy": round(sum(ok) / len(ids), 4) if ids else None,
                 "ci95": wilson(sum(ok), len(ids)),
                 "generated_tokens": sum(u.get("completion_tokens", 0) for u in usage),
                 "calls": sum(u.get("calls", 0) for u in usage),
                 "cancelled_calls": sum(e.get("status") == "cancelled" for e in ends),
                 "tokens_of_cancelled_calls": sum(e.get("completion_tokens", 0) for e in ends
                                                  if e.get("status") == "cancelled"),
                 "confidence_stops": dict(stops),
                 "stopped_early": sum(bool(live[i].get("stopped_early")) for i in ids),
                 "lost_vs_recorded_sc16": sum(f and not o for f, o in zip(ref, ok)),
                 "gained_vs_recorded_sc16": sum(o and not f for f, o in zip(ref, ok))},
        "recorded_sc16": {**_on(sc16, ids), "ci95": wilson(sum(ref), len(ids))},
        "recorded_sc8": _on(sc8, ids),
        "replayed_on_recorded": {**_on(own, ids), "command": own["command"]},
    }
    total16 = out["recorded_sc16"]["tokens"]
    out["live"]["token_share_of_recorded_sc16"] = round(out["live"]["generated_tokens"] / total16, 4) if total16 else None
    return out


def main() -> None:
    target = ROOT / "results" / "bench" / "live_check.json"
    result = json.loads(target.read_text()) if target.exists() else {}  # runs checked earlier stay
    for arg in sys.argv[1:]:
        name, spec = arg.split("=", 1)
        run, recording = spec.rsplit(":", 1)
        result[name] = {"command": f"python benchmarks/live_check.py {arg}", **check(Path(run), Path(recording))}
        print(name, json.dumps(result[name]["live"]), result[name]["recorded_sc16"], result[name]["recorded_sc8"],
              result[name].get("replayed_on_recorded"))
    target.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
