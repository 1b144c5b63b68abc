"""The library API for agents: `await tts.solve(question, ...)`, and `tts.solve_sync` for code without a loop (or
inside one: it then runs on a worker thread with its own loop, never `run_until_complete` on a running loop)."""
from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from pydantic import ConfigDict

from tts.kernel.budget import Budget, BudgetConfig
from tts.kernel.context import Context
from tts.kernel.engine import Engine
from tts.kernel.trace import Tracer
from tts.kernel.types import Answer, Frozen, Problem, Usage


class Result(Frozen):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    answer: str | None
    votes: dict[str, int]
    usage: Usage
    strategy: str
    details: Answer
    trace: list[dict[str, Any]]
    dag: dict[str, Any]


async def solve(question: str, *, strategy: str = "self-consistency", engine: Engine | str = "sim",
                task: str = "gsm8k", budget: BudgetConfig | None = None, model: str | None = None,
                base_url: str | None = None, **options: Any) -> Result:
    """Solve one question with a strategy on an engine (an Engine object, or a name: "vllm", "openai", "sim")."""
    from tts import strategies
    from tts import tasks
    from tts.engine_adapters import make_engine

    spec = strategies.get(strategy)
    config = strategies.make_config(spec, **options)
    t = tasks.get(task)
    problem = Problem(id="q", question=question)
    owned = isinstance(engine, str)
    eng = await make_engine(engine, model=model, base_url=base_url, problems=[problem]) if owned else engine
    tracer = Tracer(run="q")
    ctx = Context(eng, budget=Budget(budget), tracer=tracer, task=t)
    try:
        answer = await spec.run(ctx, problem, config)
    finally:
        if owned:
            await eng.aclose()
    return Result(answer=answer.answer, votes=answer.votes, usage=ctx.usage, strategy=spec.name, details=answer,
                  trace=tracer.events, dag=tracer.dag_json())


def solve_sync(question: str, **kwargs: Any) -> Result:
    """`solve` for synchronous code; safe to call from inside a running event loop (e.g. a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(solve(question, **kwargs))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, solve(question, **kwargs)).result()
