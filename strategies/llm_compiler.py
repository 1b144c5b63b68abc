"""LLMCompiler: a planner streams a DAG of tool calls; each call runs as soon as its `$N` dependencies are done,
while the plan is still streaming; a joiner answers from the observations or asks for a new plan.

Every task is a branch of one BranchGroup: a tool error or timeout is that task's outcome, its dependants see it as
an observation ("failed: ..."), and nothing waits forever (a dependency that failed ends its dependants at once).
The answer's meta records the plan, the observations, malformed lines, and timings: when each task started and
ended and when the plan finished streaming, so that the overlap of planning with execution can be measured.
"""
from __future__ import annotations

import time
from functools import partial

from pydantic import Field, field_validator

from tts.strategies.registry import StrategySpec, register
from tts.strategies.plan_parser import PlanError, PlanTask, StreamingPlanParser, substitute
from tts.kernel.context import Context
from tts.tools.registry import Tool, ToolError
from tts.kernel.types import Answer, Frozen, GenerateRequest, Message, Problem, Sample

PLANNER = """PLANNER. Answer the question by planning calls to these tools:
{tools}
Write the plan as numbered lines, one tool call per line, with literal arguments (strings in double quotes). Refer to
the result of an earlier line N as $N. Put calls that do not depend on each other first, so they can run in
parallel. End the plan with a line `N. join()`. Example:
1. lookup("Veloria", "capital")
2. lookup($1, "mayor")
3. join()
{history}
Question: {question}
Plan:
"""
JOINER = """JOINER. Question: {question}
Tool results:
{observations}
If these results answer the question, reply with one line 'Answer: <the answer only>'. If something is missing or
failed, reply with one line 'Replan: <what to do differently>'."""


class LLMCompilerConfig(Frozen):
    max_replans: int = Field(1, ge=0)
    plan_tokens: int = Field(256, ge=16)
    join_tokens: int = Field(128, ge=8)
    temperature: float = Field(0.0, ge=0.0)
    reasoner: str | None = Field(None, description="a strategy expression offered to the planner as a `reason` tool")
    reasoner_task: str = Field("math", description="the task whose prompt and answer format the reasoner uses")

    @field_validator("reasoner_task")
    @classmethod
    def _known_task(cls, name: str) -> str:
        from tts import tasks

        tasks.get(name)  # an unknown task is a ConfigError now, before any engine starts
        return name


def reasoning_tool(ctx: Context, expr: str, task_name: str) -> Tool:
    from tts import tasks
    from tts.strategies.compose import parse, run_stages

    stages = parse(expr)
    sub = ctx.derive(tasks.get(task_name))  # answers read in that task's format; same budget, trace and usage

    async def reason(question: str) -> str:
        """Think a sub-question through with a reasoning strategy and return its answer."""
        answer = await run_stages(sub, Problem(id="sub", question=question), stages)
        return answer.answer if answer.answer is not None else "no answer"

    return Tool(reason, timeout_s=600)


def _observation(task: PlanTask, outcome) -> str:
    if outcome.status == "ok":
        return f"${task.index} = {task.line.split('.', 1)[1].strip()} -> {outcome.value!r}"
    return f"${task.index} = {task.line.split('.', 1)[1].strip()} -> failed: {outcome.error}"


async def execute_plan(ctx: Context, problem: Problem, tools: dict[str, Tool], config: LLMCompilerConfig,
                       history: str, timings: dict) -> tuple[list[str], list[PlanError]]:
    """Stream one plan and run its tasks as they appear; returns the observations and malformed lines."""
    parser = StreamingPlanParser(set(tools))
    tasks: dict[int, tuple[PlanTask, int]] = {}
    errors: list[PlanError] = []
    t0 = timings.setdefault("t0", time.monotonic())

    async with ctx.group("tool") as group:
        async def run_task(task: PlanTask):
            results = {}
            for dep in sorted(task.deps):
                outcome = await group.wait(tasks[dep][1])
                if outcome.status != "ok":
                    raise ToolError(f"dependency ${dep} failed")
                results[dep] = outcome.value
            start = time.monotonic() - t0
            try:
                return await tools[task.tool](*substitute(task.args, results), **substitute(task.kwargs, results))
            finally:
                timings.setdefault("tasks", []).append({"task": task.index, "tool": task.tool, "start": start,
                                                        "end": time.monotonic() - t0})

        def accept(items) -> None:
            for item in items:
                if isinstance(item, PlanError):
                    errors.append(item)
                    ctx.emit("plan_error", line=item.line, error=item.error)
                else:
                    tasks[item.index] = (item, group.spawn(partial(run_task, item)))
                    ctx.emit("plan_task", index=item.index, tool=item.tool, deps=sorted(item.deps),
                             t=round(time.monotonic() - t0, 4))

        prompt = PLANNER.format(tools="\n".join(f"- {t.signature()}" for t in tools.values()), history=history,
                                question=problem.question)
        request = GenerateRequest(messages=(Message(role="user", content=prompt),), max_tokens=config.plan_tokens,
                                  temperature=config.temperature)
        timings.setdefault("plans", []).append({"start": time.monotonic() - t0})
        await ctx.stream(request, on_chunk=lambda chunk: accept(parser.feed(chunk.text)))
        accept(parser.close())
        timings["plans"][-1]["end"] = time.monotonic() - t0
    observations = [_observation(task, group.outcome(i)) for task, i in sorted(tasks.values(), key=lambda x: x[0].index)]
    return observations, errors


async def run(ctx: Context, problem: Problem, config: LLMCompilerConfig) -> Answer:
    tools = ctx.task.tools()
    if config.reasoner:
        tools["reason"] = reasoning_tool(ctx, config.reasoner, config.reasoner_task)
    timings: dict = {}
    history, all_obs, all_errors, text = "", [], [], ""
    for attempt in range(config.max_replans + 1):
        observations, errors = await execute_plan(ctx, problem, tools, config, history, timings)
        all_obs += observations
        all_errors += errors
        lines = observations + [f"(unreadable plan line: {e.line!r}: {e.error})" for e in errors]
        prompt = JOINER.format(question=problem.question, observations="\n".join(lines) or "(no results)")
        [c] = await ctx.generate(GenerateRequest(messages=(Message(role="user", content=prompt),),
                                                 max_tokens=config.join_tokens, temperature=config.temperature))
        text = c.text
        answer = ctx.task.extract(text)
        if answer is not None or "replan" not in text.lower() or attempt == config.max_replans:
            break
        history = ("Earlier attempt, whose results did not suffice:\n" + "\n".join(lines) +
                   f"\nJoiner's note: {text.strip()}\n")
        ctx.emit("replan", note=text.strip())
    answer = ctx.task.extract(text)
    meta = {"observations": all_obs, "plan_errors": [e.__dict__ for e in all_errors], "replans": attempt,
            "timings": {k: v for k, v in timings.items() if k != "t0"}}
    return Answer(answer=answer, votes={answer: 1} if answer else {},
                  samples=(Sample(index=0, text=text, answer=answer, completion_tokens=c.completion_tokens),),
                  meta=meta)


register(StrategySpec("llm-compiler", run, LLMCompilerConfig, aliases=("llmcompiler",),
                      description="LLMCompiler: a plan of tool calls run as a DAG, then joined"))
