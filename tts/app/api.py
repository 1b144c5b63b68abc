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
    text: str  # the chosen response's whole text (what an agent reads)
    tool_calls: list[dict] | None  # the chosen tool calls in OpenAI's shape, when the request offered tools
    votes: dict[str, int]
    usage: Usage
    strategy: str
    engine: str  # the engine's kind ("vllm", "openai", "pool", "sim", or the class of an Engine passed in)
    simulated: bool  # True when the answer came from the simulator: invented text, not a model's
    details: Answer
    trace: list[dict[str, Any]]
    dag: dict[str, Any]


async def solve(question: str | list[dict], *, strategy: str = "self-consistency", engine: Engine | str = "vllm",
                task: str = "chat", tools: list[dict] | None = None, response_format: dict | None = None,
                budget: BudgetConfig | None = None, model: str | None = None, base_url: str | None = None,
                **options: Any) -> Result:
    """Solve one request with a strategy (a name, or a composition such as `sc(n=8) | usc()`) on an engine (an
    Engine object, or a name: "vllm" by default, "openai", or "sim", the simulator, which runs only when asked for
    by name and says so in the result). Runs through the same path as `tts eval`.

    `question` is a string or an OpenAI-style message list (system, multi-turn, tool calls and results); `tools`
    are OpenAI function schemas and `response_format` a `json_schema` or `json_object` format, checked as the server
    checks them. The `chat` task (the default) votes tool calls and JSON objects in canonical form and whole texts
    as written (use `usc` or `medoid` to choose among open-ended texts); a benchmark task (`gsm8k`, `math500`, ...)
    votes its extracted answers."""
    from tts.app import wire
    from tts.app.session import opened
    from tts.engine_adapters.sim import SimulatedEngine

    messages = wire.messages([{"role": "user", "content": question}] if isinstance(question, str) else question)
    asked = next((m.content for m in reversed(messages) if m.role == "user"), "")
    problem = Problem(id="q", question=asked, messages=None if isinstance(question, str) else messages,
                      tools=wire.tools(tools, None), response_format=wire.response_format(response_format))
    engine_options = {"model": model, "base_url": base_url} if isinstance(engine, str) else {}
    async with opened(engine, task=task, strategy=strategy, options=options, budget=budget, problems=[problem],
                      **engine_options) as session:
        solved = await session.solve(problem)
        simulated = isinstance(session.engine, SimulatedEngine)
    spec = session.strategy
    if solved.answer is None:
        raise TtsError(f"strategy '{spec.name}' failed: {solved.row.get('error')}")
    answer = solved.answer
    kind = engine if isinstance(engine, str) else type(engine).__name__
    return Result(answer=answer.answer, text=wire.response_text(answer), tool_calls=wire.chosen_calls(answer),
                  votes=answer.votes, usage=solved.usage, strategy=spec.name, engine=kind,
                  simulated=simulated, details=answer,
                  trace=solved.tracer.events, dag=solved.tracer.dag_json())


def solve_sync(question: str, **kwargs: Any) -> Result:
    """`solve` for synchronous code; safe to call from inside a running event loop (e.g. a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(solve(question, **kwargs))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, solve(question, **kwargs)).result()
