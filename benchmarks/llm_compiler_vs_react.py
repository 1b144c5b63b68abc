"""LLMCompiler vs ReAct on the team's tool questions, on the simulator and on the default CPU engine.

Per strategy: accuracy, wall time, tokens, model calls; LLMCompiler's speedup against the critical-path bound (the
longest chain of tool latencies) and the overlap of planning with execution (share of tool time spent while the plan
was still streaming). Writes results/bench/llm_compiler.json.
Usage: python benchmarks/llm_compiler_vs_react.py [--engines sim vllm]
"""
from __future__ import annotations

import argparse
import asyncio
import json

from common import BENCH, evaluate, start_vllm, write

from tts import tasks
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.strategies.llm_compiler import LLMCompilerConfig
from tts.strategies.react import ReActConfig
from tts.tasks import tool_qa


def plan_figures(rows: list[dict], problems) -> dict:
    by_id = {p.id: p for p in problems}
    overlap_num = overlap_den = 0.0
    bounds, walls = [], []
    for r in rows:
        t = (r.get("meta") or {}).get("timings", {})
        plans, runs = t.get("plans", []), t.get("tasks", [])
        if not plans or not runs:
            continue
        plan_end = plans[0].get("end", 0)
        for task in runs:
            overlap_num += max(0.0, min(task["end"], plan_end) - task["start"])
            overlap_den += task["end"] - task["start"]
        bounds.append(tool_qa.critical_path_seconds(by_id[r["id"]]))
        walls.append(r["seconds"])
    return {"tool_time_overlapped_with_planning": round(overlap_num / overlap_den, 4) if overlap_den else None,
            "mean_wall_per_question_s": round(sum(walls) / len(walls), 3) if walls else None,
            "mean_critical_path_bound_s": round(sum(bounds) / len(bounds), 3) if bounds else None}


async def main(args) -> None:
    task = tasks.get("tools")
    problems = task.load()
    previous = BENCH / "llm_compiler.json"
    out = json.loads(previous.read_text()) if previous.exists() else {}  # keep the other engine's figures
    for kind in args.engines:
        if kind == "sim":
            engine = SimulatedEngine(SimConfig(latency_per_token_s=0.02), responder=tool_qa.sim_responder(problems))
        else:
            engine = start_vllm()
        try:
            figures = {}
            for name, config in [("llm-compiler", LLMCompilerConfig()), ("react", ReActConfig())]:
                f, rows = await evaluate(engine, task, name, config, problems, f"tools-{name}-{kind}", concurrency=1)
                if name == "llm-compiler":
                    f.update(plan_figures(rows, problems))
                f["per_question_wall_s"] = {r["id"]: r["seconds"] for r in rows}
                figures[name] = f
            lc, re_ = figures["llm-compiler"], figures["react"]
            figures["latency_speedup_vs_react"] = round(re_["wall_seconds"] / lc["wall_seconds"], 3)
            figures["token_ratio_react_over_compiler"] = round(
                (re_["completion_tokens"] + re_["prompt_tokens"]) / max(1, lc["completion_tokens"] + lc["prompt_tokens"]), 3)
            bound = lc.get("mean_critical_path_bound_s")
            if bound and lc.get("mean_wall_per_question_s"):
                figures["compiler_wall_over_critical_path"] = round(lc["mean_wall_per_question_s"] / bound, 3)
            out[kind] = figures
        finally:
            await engine.aclose()
    out["anchors"] = "LLMCompiler paper: up to 3.7x latency and 6.7x cost vs ReAct"
    print(write("llm_compiler", out))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--engines", nargs="+", default=["sim", "vllm"])
    asyncio.run(main(ap.parse_args()))
