"""Shared helpers for benchmark scripts: import path, engine start, resumable runs, figures out."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tts import strategies  # noqa: E402
from tts.app.runner import read_finished, run_eval  # noqa: E402
from tts.app.session import Session  # noqa: E402

RUNS = ROOT / "results" / "runs"
BENCH = ROOT / "results" / "bench"

SUMMARY_KEYS = ("problems", "graded", "accuracy", "accuracy_ci95", "completion_tokens", "prompt_tokens", "cached_prompt_tokens",
                "max_prompt_tokens", "calls", "wall_seconds")


def start_vllm(model: str = "qwen2.5-coder-0.5b", max_model_len: int = 4096):
    from tts.engine_adapters.vllm_engine import VLLMEngine
    from tts.engine_adapters.local_models import resolve

    return VLLMEngine.start(resolve(model), max_model_len=max_model_len)


async def evaluate(engine, task, name: str, config, problems, run_name: str, concurrency: int = 8) -> tuple[dict, list]:
    """Run (or resume) one strategy over the problems; returns its summary figures and result rows."""
    run_dir = RUNS / run_name
    identity = {"strategy": name, "task": task.name, "strategy_config": config.model_dump(), "seed": 0,
                "engine": type(engine).__name__, "data": run_name, "model": getattr(engine, "model", None)}
    t0 = time.perf_counter()
    summary = await run_eval(Session(engine, task, strategies.get(name), config), problems, run_dir, identity,
                             resume=(run_dir / "config.json").exists(), concurrency=concurrency, progress=False)
    figures = {k: summary[k] for k in SUMMARY_KEYS}
    figures["wall_seconds_this_session"] = round(time.perf_counter() - t0, 2)
    rows = list(read_finished(run_dir / "results.jsonl").values())
    print(run_name, json.dumps(figures), flush=True)
    return figures, rows


def write(name: str, figures: dict) -> Path:
    BENCH.mkdir(parents=True, exist_ok=True)
    path = BENCH / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2))
    return path
