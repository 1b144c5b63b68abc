"""The session: what every problem of a run is solved with (the engine, opened once; the task; the strategy and its
checked config; the per-problem budget; reasoning-model handling), and the one path a problem takes through it. The
CLI, TOML jobs, `tts.solve`, the server, the job-level budget and Ray workers all solve through `Session.solve`;
none assembles the path's arguments or builds a context itself.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import time
import traceback
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

from tts.strategies import StrategySpec
import tts.strategies as strategies
from tts.strategies.scorers import close_all as close_scorers
from tts.tasks import Task
from tts.kernel.budget import Budget, BudgetConfig
from tts.kernel.context import Context
from tts.kernel.reasoning import ReasoningConfig
from tts.kernel.engine import Engine
from tts.kernel.errors import ConfigError, EngineUnavailable
from tts.app.otel import export as export_spans
from tts.app.rows import ResultRow
from tts.kernel.trace import Tracer
from tts.kernel.types import Answer, Problem, Usage


def resolve_strategy(strategy: str, options: dict[str, Any] | None = None) -> tuple[StrategySpec, Any]:
    """A strategy name or a composition (`sc8 | pdr(rounds=1)`) and its options, as a spec and a checked config:
    the one way every front door (CLI, jobs, library, server, Ray) turns what a user asked for into a strategy.
    Options left unset (None) are dropped; unknown or invalid ones are a ConfigError, before any engine starts."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    from tts.strategies.compose import is_composition, parse

    if is_composition(strategy):
        parse(strategy)
        spec = strategies.get("compose")
        return spec, strategies.make_config(spec, expr=strategy)
    spec = strategies.get(strategy)
    unknown = set(options) - set(spec.config.model_fields)
    if unknown:
        raise ConfigError(f"strategy '{spec.name}' has no option {', '.join(sorted(unknown))} "
                          f"(it has: {', '.join(spec.config.model_fields)})")
    return spec, strategies.make_config(spec, **options)


@dataclass(frozen=True)
class Solved:
    """One problem solved: its result line, the strategy's Answer (None if it failed), trace and usage."""

    row: dict[str, Any]
    answer: Answer | None
    tracer: Tracer
    usage: Usage


async def _solve(engine: Engine, task: Task, spec: StrategySpec, config: Any, problem: Problem,
                    budget: BudgetConfig, trace_sink=None, *,
                    on_answer: Callable[[str | None], None] | None = None,
                    reasoning: ReasoningConfig | None = None, run: str | None = None,
                    judge: Engine | None = None) -> Solved:
    """The one path of a problem through a strategy, for every front door: context, budget, trace, grading (when
    the problem has a gold answer), the DAG and telemetry. A strategy's failure is recorded on the row."""
    # `run` names the trace when a problem is solved in several draws (a job-level budget): one timeline per draw
    tracer = Tracer(run=run or problem.id, sink=trace_sink)
    ctx = Context(engine, budget=Budget(budget), tracer=tracer, task=task.bind(problem), reasoning=reasoning,
                  route_key=problem.id, on_answer=on_answer, judge=judge)
    t0 = time.monotonic()
    answer = error = correct = None
    try:
        answer = await spec.run(ctx, problem, config)
    except EngineUnavailable:
        raise
    except Exception as e:  # a strategy bug or bad problem: recorded on its line, the batch goes on
        error = f"{type(e).__name__}: {e}"
        tracer.emit("problem_error", error=error, traceback=traceback.format_exc(limit=-4))
    else:
        correct = task.grade(problem, answer.answer) if task.gradable(problem) else None
        if inspect.isawaitable(correct):
            correct = await correct
    seconds = round(time.monotonic() - t0, 4)
    typed = (ResultRow.failed(problem.id, problem.gold, error, ctx.usage, seconds) if error is not None else
             ResultRow.solved(problem.id, problem.gold, answer, None if correct is None else bool(correct), ctx.usage,
                              seconds))
    row = typed.line()
    tracer.set_status("root", "error" if "error" in row else "done", seconds=row["seconds"])
    # what the model saw, as lm-eval's --log_samples keeps it: the question, and each distinct prompt once (the
    # call_start events name their prompt's id and carry the sampling parameters)
    tracer.emit("inputs", question=problem.question, prompts=tracer.prompts)
    tracer.emit("dag", dag=tracer.dag_json())
    tracer.flush()
    export_spans(tracer)  # OpenTelemetry, when TTS_OTEL names an exporter
    return Solved(row, answer, tracer, ctx.usage)



@dataclass(frozen=True)
class Session:
    """A run's engine and how its problems are solved. `replace` gives the same engine another strategy, task or
    budget (the server answers each request's model name that way)."""

    engine: Engine
    task: Task
    strategy: StrategySpec
    config: Any
    budget: BudgetConfig = BudgetConfig()
    reasoning: ReasoningConfig | None = None
    judge: Engine | None = None  # what judges and verifiers call; None: this engine

    async def solve(self, problem: Problem, *, trace_sink=None, on_answer: Callable[[str | None], None] | None = None,
                    run: str | None = None, budget: BudgetConfig | None = None, config: Any = None) -> Solved:
        """One problem, through the one path: `config` and `budget` override the session's for this problem (a
        job-level budget's draws); `run` names its trace; `on_answer` hears each sample's answer as it is read."""
        return await _solve(self.engine, self.task, self.strategy, self.config if config is None else config,
                            problem, budget or self.budget, trace_sink, on_answer=on_answer,
                            reasoning=self.reasoning, run=run, judge=self.judge)

    def replace(self, **changes: Any) -> "Session":
        return dataclasses.replace(self, **changes)


@contextlib.asynccontextmanager
async def opened(engine: Engine | str | None, *, task: str | Task = "gsm8k",
                 strategy: str | tuple[StrategySpec, Any] = "self-consistency",
                 options: dict[str, Any] | None = None, budget: BudgetConfig | None = None,
                 reasoning: ReasoningConfig | None = None, problems: list[Problem] | None = None,
                 judge: Engine | None = None, **engine_options: Any) -> AsyncIterator[Session]:
    """A session over an Engine given (left open) or one opened here by kind and options (closed on exit). The
    strategy (a name or composition with `options`, or a resolved spec and config), task and engine options are
    checked before the engine starts. `judge`: an engine judges and verifiers ask (left open), else the policy's.
    Scorers that keep a model open (an in-process reward model) are closed on exit."""
    from tts import tasks
    from tts.engine_adapters import engine_spec, open_engine

    spec, config = resolve_strategy(strategy, options) if isinstance(strategy, str) else strategy
    t = tasks.get(task) if isinstance(task, str) else task
    if not isinstance(engine, (str, type(None))):
        yield Session(engine, t, spec, config, budget or BudgetConfig(), reasoning, judge)
        return
    espec = engine_spec(engine, **engine_options)
    responder = t.sim_responder(problems or []) if t.sim_responder else None
    eng = await open_engine(espec, problems=problems or [], responder=responder)
    try:
        yield Session(eng, t, spec, config, budget or BudgetConfig(), reasoning, judge)
    finally:
        await eng.aclose()
        await close_scorers()
