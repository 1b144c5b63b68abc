"""Two real vLLM-CPU servers (SmolLM2-135M, each bound to one core) behind tts's replica pool, under PDR (drafts
and refine calls that share the problem's prompt and a round's workspace):
1. prompt tokens served from the prefix cache, and wall time, with affinity routing vs round-robin, side by side
   (the servers are restarted between the two, so neither policy inherits the other's cache);
2. failover: the first server killed with SIGKILL mid-run; the run completes with every problem once and its
   tokens charged once (the summary's usage equals the tokens the surviving calls returned).

Usage: python benchmarks/pool_vllm_cpu.py [--limit 12]     Writes results/bench/pool_vllm_cpu.json.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(core: int, log: Path) -> tuple[subprocess.Popen, str]:
    from tts.engine_adapters.local_models import model_dir

    port = free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": str(core),
           "VLLM_LOGGING_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        ["taskset", "-c", str(core), sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model",
         str(model_dir(MODEL)), "--served-model-name", MODEL, "--host", "127.0.0.1", "--port", str(port),
         "--enable-prefix-caching", "--enforce-eager", "--max-model-len", "2048", "--enable-prompt-tokens-details"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}/v1"


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited")
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2)
            return
        except OSError:
            time.sleep(2)
    raise RuntimeError(f"server {url} did not start")


def stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def run(urls, route: str, out: Path, run_id: str, limit: int, kill: subprocess.Popen | None = None) -> dict:
    cmd = [sys.executable, "-m", "tts.app.cli", "eval", "--engine", "openai", "--model", MODEL, "--task", "gsm8k",
           "--strategy", "pdr", "-o", "drafts=4", "-o", "rounds=2", "--max-tokens", "96", "--limit", str(limit),
           "--concurrency", "4", "--route", route, "--output", str(out), "--run-id", run_id, "--no-progress"]
    for u in urls:
        cmd += ["--base-url", u]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    killed_at = None
    if kill is not None:
        results = out / run_id / "results.jsonl"
        while proc.poll() is None and not (results.exists() and len(results.read_text().splitlines()) >= limit // 3):
            time.sleep(0.2)
        os.killpg(kill.pid, signal.SIGKILL)
        killed_at = round(time.monotonic() - t0, 1)
    stdout, stderr = proc.communicate(timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(stderr[-2000:])
    summary = json.loads((out / run_id / "summary.json").read_text())
    rows = [json.loads(x) for x in (out / run_id / "results.jsonl").read_text().splitlines()]
    replicas = summary["engine_applied"]["pool"]["replicas"]
    return {"route": route, "wall_s": round(time.monotonic() - t0, 1), "problems": len(rows),
            "distinct_ids": len({r["id"] for r in rows}), "errors": sum("error" in r for r in rows),
            "accuracy": summary["accuracy"], "prompt_tokens": summary["prompt_tokens"],
            "cached_prompt_tokens": summary["cached_prompt_tokens"],
            "cached_share": round(summary["cached_prompt_tokens"] / max(1, summary["prompt_tokens"]), 4),
            "completion_tokens": summary["completion_tokens"],
            "completion_tokens_returned_by_replicas": sum(r["completion_tokens"] for r in replicas),
            "calls": summary["calls"], "killed_at_s": killed_at,
            "replicas": [{k: r[k] for k in ("requests", "completion_tokens", "cached_prompt_tokens", "failures",
                                            "healthy")} for r in replicas]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=12)
    args = ap.parse_args()
    out = {"model": MODEL, "workload": f"pdr drafts=4 rounds=2, max_tokens 96, {args.limit} GSM8K test problems",
           "servers": "2 x vLLM CPU OpenAI server, each bound to one core (taskset + VLLM_CPU_OMP_THREADS_BIND)"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for route in ("affinity", "round-robin", "failover"):
            procs = [start(core, tmp / f"{route}-{core}.log") for core in (0, 1)]
            try:
                for p, u in procs:
                    wait_ready(u, p)
                urls = [u for _, u in procs]
                if route == "failover":
                    out[route] = run(urls, "affinity", tmp, route, args.limit, kill=procs[0][0])
                else:
                    out[route] = run(urls, route, tmp, route, args.limit)
            finally:
                stop([p for p, _ in procs])
            print(route, json.dumps(out[route]), flush=True)
    a, r = out["affinity"], out["round-robin"]
    out["cached_tokens_affinity_over_round_robin"] = round(a["cached_prompt_tokens"] / max(1, r["cached_prompt_tokens"]), 3)
    out["wall_affinity_over_round_robin"] = round(a["wall_s"] / r["wall_s"], 3)
    (ROOT / "results" / "bench" / "pool_vllm_cpu.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
