"""The library API for agents: `await tts.solve(question, ...)`, and `tts.solve_sync` for code without a loop (or
inside one: it then runs on a worker thread with its own loop, never `run_until_complete` on a running loop)."""
from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from pydantic import ConfigDict

from tts.kernel.budget import BudgetConfig
from tts.kernel.engine import Engine
from tts.kernel.errors import TtsError
from tts.kernel.types import Answer, Frozen, Problem, Usage


class Result(Frozen):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    answer: str | None
    votes: dict[str, int]
    usage: Usage
    strategy: str
    engine: str  # the engine's kind ("vllm", "openai", "pool", "sim", or the class of an Engine passed in)
    simulated: bool  # True when the answer came from the simulator: invented text, not a model's
    details: Answer
    trace: list[dict[str, Any]]
    dag: dict[str, Any]


async def solve(question: str, *, strategy: str = "self-consistency", engine: Engine | str = "vllm",
                task: str = "gsm8k", budget: BudgetConfig | None = None, model: str | None = None,
                base_url: str | None = None, **options: Any) -> Result:
    """Solve one question with a strategy (a name, or a composition such as `sc(n=8, prune='step') | pdr(rounds=1)`)
    on an engine (an Engine object, or a name: "vllm" by default, "openai", or "sim", the simulator, which runs
    only when asked for by name and says so in the result). Runs through the same path as `tts eval`."""
    from tts import tasks
    from tts.app.runner import resolve_strategy, solve_one
    from tts.engine_adapters import make_engine

    spec, config = resolve_strategy(strategy, options)
    t = tasks.get(task)
    problem = Problem(id="q", question=question)
    owned = isinstance(engine, str)
    eng = await make_engine(engine, model=model, base_url=base_url, problems=[problem]) if owned else engine
    try:
        solved = await solve_one(eng, t, spec, config, problem, budget or BudgetConfig())
    finally:
        if owned:
            await eng.aclose()
    if solved.answer is None:
        raise TtsError(f"strategy '{spec.name}' failed: {solved.row.get('error')}")
    answer = solved.answer
    from tts.engine_adapters.sim import SimulatedEngine

    kind = engine if owned else type(engine).__name__
    return Result(answer=answer.answer, votes=answer.votes, usage=solved.usage, strategy=spec.name, engine=kind,
                  simulated=isinstance(eng, SimulatedEngine), details=answer,
                  trace=solved.tracer.events, dag=solved.tracer.dag_json())


def solve_sync(question: str, **kwargs: Any) -> Result:
    """`solve` for synchronous code; safe to call from inside a running event loop (e.g. a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(solve(question, **kwargs))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, solve(question, **kwargs)).result()
