"""Paired replay of sampling policies through the real strategies: every policy runs as `tts eval --engine replay`
on one recording (`tts eval ... --record`), so each is judged on the same samples, free of sampling noise, by the
same code a live run uses (strategies/, tts/app/allocate.py).

Record once (16 samples per problem, every one whole, with top-10 logprobs for DeepConf's confidences):
    tts eval --task gsm8k --limit 40 -s sc -n 16 --no-early-stop -o batch=false -o logprobs=10 --max-tokens 384 \\
        --model qwen2.5-coder-1.5b --record --run-id gsm8k-1.5b-sc16
Then:
    python benchmarks/policy_replay.py gsm8k=results/gsm8k-1.5b-sc16 [svamp=RUN_DIR ...] [--only REGEX] [--limit K]
(a recording cut short is replayed on the set's first problems whose samples it holds in full)

Policies: SC@n; SC with an early-stop rule, its samples in flight a few at a time or all at once; DeepConf online
(warm-up traces set the bar, later ones stop under it inside the engine, the group stops on its rule); the job-level
budget at several totals, with its draws in flight as slots free. For each: generated tokens (a cancelled trace is
charged what it had generated), accuracy with a 95% interval, problems lost / gained against SC@16 (paired), and the
replay's wall time (every trace decodes at one speed, `--sim-latency` s/token, the replay engine's model of a batched
engine). Writes results/bench/policy_replay.json and its frontier plot (tts report --replay), policy_replay.png.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent))

from tts.app.report import replay_plot  # noqa: E402
from tts.app.runner import wilson  # noqa: E402

N = 16
LATENCY = "0.0005"  # s/token: 384 tokens in 0.19 s, far above the event loop's jitter between traces
LEAD2 = ["-o", "stop_rule=lead", "-o", 'stop_params={"k":2}']


def policies(sc16_tokens: int | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {f"sc@{n}": ["-s", "sc", "-n", str(n), "--no-early-stop"] for n in (1, 2, 4, 8, 16)}
    for name, rule in (("decided", ["-o", "stop_rule=decided"]), ("lead2", LEAD2),
                       ("lead3", ["-o", "stop_rule=lead", "-o", 'stop_params={"k":3}'])):
        for in_flight in (1, 4, N):
            out[f"sc-{name}-in_flight{in_flight}"] = ["-s", "sc", "-n", str(N), *rule, "-o", "batch=false",
                                                     "-o", f"in_flight={in_flight}"]
    for keep in (0.9, 0.5):
        for window in (16, 32):
            for name, rule in (("none", ["-o", "early_stop=false"]), ("lead2", LEAD2)):
                out[f"deepconf-keep{keep}-w{window}-{name}"] = [
                    "-s", "deepconf", "-n", str(N), "-o", "warmup=4", "-o", f"keep={keep}", "-o", f"window={window}",
                    "-o", "top_k=10", *rule]
    for in_flight in (2, 4):
        out[f"deepconf-keep0.9-w16-lead2-in_flight{in_flight}"] = [
            *out["deepconf-keep0.9-w16-lead2"], "-o", f"in_flight={in_flight}"]
    if sc16_tokens:
        for share in (0.25, 0.4, 0.5, 0.6):
            out[f"job-budget-{share:.0%}-of-sc16"] = ["-s", "sc", "-n", str(N),
                                                      "--budget-tokens-total", str(int(share * sc16_tokens))]
    return out


def run_policy(recording: Path, config: dict, args: list[str], work: Path, name: str) -> dict:
    cmd = [sys.executable, "-m", "tts.app.cli", "eval", "--engine", "replay", "--traces",
           str(recording / "recorded_traces.jsonl"), "--task", config["task"], "--limit", str(config["limit"]),
           "--max-tokens", str(config["max_tokens"]), "--sim-latency", LATENCY, "--concurrency", str(config["limit"]),
           "--no-progress", "--output", str(work), "--run-id", re.sub(r"[^A-Za-z0-9._-]", "_", name), *args]
    if config.get("data") and not str(config["data"]).startswith("packaged:"):
        cmd += ["--data", config["data"]]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    if done.returncode != 0:
        raise SystemExit(f"{name}: {done.stderr.strip().splitlines()[-1:]}")
    run = work / re.sub(r"[^A-Za-z0-9._-]", "_", name)
    summary = json.loads((run / "summary.json").read_text())
    rows = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines() if x.strip()]
    return {"summary": summary, "correct": {r["id"]: bool(r.get("correct")) for r in rows},
            "errors": sum(1 for r in rows if r.get("error")), "command": " ".join(cmd[3:])}


def score(got: dict, ref: dict | None) -> dict:
    s, ok = got["summary"], got["correct"]
    out = {"problems": len(ok), "tokens": s["completion_tokens"], "correct": sum(ok.values()),
           "accuracy": round(sum(ok.values()) / len(ok), 4),
           "ci95": wilson(sum(ok.values()), len(ok)), "wall_s": s.get("wall_seconds"), "errors": got["errors"]}
    if ref is not None:
        out["lost_vs_sc16"] = sum(ref[k] and not v for k, v in ok.items())
        out["gained_vs_sc16"] = sum(v and not ref[k] for k, v in ok.items())
    for key in ("allocation", "budget_cut_samples"):
        if key in s:
            out[key] = {k: v for k, v in s[key].items() if k in ("draws", "samples_per_problem")} \
                if isinstance(s[key], dict) else s[key]
    return out


def recorded_prefix(recording: Path) -> int:
    """How many of the set's first problems the recording holds whole (a problem's row is written when all its
    samples are in; a recording cut short is used up to its first missing problem)."""
    finished = [json.loads(x)["id"] for x in (recording / "results.jsonl").read_text().splitlines() if x.strip()]
    config = json.loads((recording / "config.json").read_text())
    from tts.tasks import get

    ids = [p.id for p in get(config["task"]).load(None if str(config.get("data", "")).startswith("packaged:")
                                                   else config.get("data"))]
    k = 0
    while k < len(ids) and ids[k] in finished:
        k += 1
    return k


def replay(recording: Path, only: str | None, limit: int | None = None) -> dict:
    config = json.loads((recording / "config.json").read_text())
    config["limit"] = limit or recorded_prefix(recording)
    config["max_tokens"] = config.get("max_tokens") or config["strategy_config"]["max_tokens"]
    res: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sc16 = run_policy(recording, config, policies(None)["sc@16"], work, "sc@16")
        ref = sc16["correct"]
        res["sc@16"] = score(sc16, ref)
        total16 = res["sc@16"]["tokens"]
        for name, args in policies(total16).items():
            if name == "sc@16" or (only and not re.search(only, name)):
                continue
            res[name] = score(run_policy(recording, config, args, work, name), ref)
            res[name]["args"] = " ".join(args)
            print(f"  {name}: {res[name]['correct']}/{config['limit']}, {res[name]['tokens']:,} tokens "
                  f"({res[name]['tokens'] / total16:.0%}), lost {res[name]['lost_vs_sc16']}, "
                  f"wall {res[name]['wall_s']} s", flush=True)
    for v in res.values():
        v["token_share_of_sc16"] = round(v["tokens"] / total16, 4)
    return res


def main() -> None:
    argv = sys.argv[1:]
    only = limit = None
    if "--only" in argv:
        i = argv.index("--only")
        only = argv[i + 1]
        del argv[i: i + 2]
    if "--limit" in argv:
        i = argv.index("--limit")
        limit = int(argv[i + 1])
        del argv[i: i + 2]
    out: dict = {"command": "python benchmarks/policy_replay.py " + " ".join(sys.argv[1:]), "n": N,
                 "engine": f"replay (tts eval --engine replay, {LATENCY} s/token)", "sets": {}}
    for arg in argv:
        name, path = arg.split("=", 1)
        recording = Path(path)
        print(f"{name}: replaying {recording}", flush=True)
        res = replay(recording, only, limit)
        out["sets"][name] = {"problems": res["sc@16"]["problems"], "source": str(recording), "policies": res}
        best = {k: v for k, v in res.items() if v["lost_vs_sc16"] == 0 or v["accuracy"] >= res["sc@16"]["accuracy"]}
        cheapest = min(best.items(), key=lambda kv: kv[1]["tokens"])
        print(f"{name}: SC@16 {res['sc@16']['accuracy']}, cheapest at SC@16's accuracy: {cheapest[0]} "
              f"({cheapest[1]['token_share_of_sc16']:.0%} of its tokens)")
    bench = ROOT / "results" / "bench"
    (bench / "policy_replay.json").write_text(json.dumps(out, indent=1))
    print(f"plot: {replay_plot(bench / 'policy_replay.json', bench)}")


if __name__ == "__main__":
    main()
