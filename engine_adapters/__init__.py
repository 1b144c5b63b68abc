"""Engine construction by name: `vllm` (in-process, GPU or CPU build), `openai` (any compatible server), `sim`."""
from __future__ import annotations

import os

from tts.kernel.engine import Engine
from tts.kernel.errors import ConfigError
from tts.kernel.types import Problem

ENGINES = ("vllm", "openai", "sim")


def default_engine() -> str:
    """vLLM in-process: on a machine with no GPU that is vLLM's CPU build with the default local model."""
    return "vllm"


async def make_engine(kind: str | None, *, model: str | None = None, base_url: str | None = None,
                      problems: list[Problem] | None = None, seed: int = 0, sim: dict | None = None,
                      max_model_len: int = 4096, rate_limit: float | None = None, responder=None,
                      price=None) -> Engine:
    """`price` (tts.budget.Price) is what the engine's tokens cost, for money budgets and usage reports."""
    engine = await _make(kind or default_engine(), model=model, base_url=base_url, problems=problems, seed=seed,
                         sim=sim, max_model_len=max_model_len, rate_limit=rate_limit, responder=responder)
    engine.price = price
    return engine


async def _make(kind: str, *, model, base_url, problems, seed, sim, max_model_len, rate_limit, responder) -> Engine:
    if kind == "sim":
        from tts.engine_adapters.sim import SimConfig, SimulatedEngine

        engine = SimulatedEngine.for_problems(problems or [], SimConfig(seed=seed, **(sim or {})))
        engine._responder = responder or engine._responder
        return engine
    if kind == "openai":
        from tts.engine_adapters.openai_http import OpenAIEngine

        url = base_url or os.environ.get("OPENAI_BASE_URL") or "http://127.0.0.1:8000/v1"
        if not model:
            raise ConfigError("--engine openai needs --model (the name the server serves)")
        engine = OpenAIEngine(url, model, rate_limit=rate_limit)
        await engine.check()
        return engine
    if kind == "vllm":
        from tts.engine_adapters.vllm_engine import VLLMEngine
        from tts.engine_adapters.local_models import resolve

        return VLLMEngine.start(resolve(model), max_model_len=max_model_len, seed=seed)
    raise ConfigError(f"unknown engine '{kind}'; known: {', '.join(ENGINES)}")
