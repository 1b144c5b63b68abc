"""LLMCompiler and ReAct on the simulator with scripted plans, the plan parser, tools and the sandbox."""
import asyncio
import time

import pytest

from tts import tasks
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.strategies.llm_compiler import LLMCompilerConfig, run as run_compiler
from tts.strategies.plan_parser import PlanError, PlanTask, Ref, StreamingPlanParser, parse_call, substitute
from tts.strategies.react import ReActConfig, run as run_react
from tts.tasks import tool_qa
from tts.kernel.context import Context
from tts.tools.sandbox import SandboxLimits, run_python
from tts.tools.registry import ToolError, calculator, tool
from tts.kernel.types import Problem


def test_plan_parser_streams_lines_and_types_references():
    p = StreamingPlanParser({"lookup", "calculator"})
    items = p.feed('Thought: go\n1. lookup("Veloria", "capi')
    assert items == []  # the line is not complete yet
    items = p.feed('tal")\n2. lookup($1, "mayor")\n3. calculator("$1 * 2")\n4. join()\n5. lookup("x", "y")\n')
    assert [i.index for i in items] == [1, 2, 3]
    assert items[1].args == [Ref(1), "mayor"] and items[1].deps == {1}
    assert items[2].deps == {1}
    assert substitute(items[1].args, {1: "Marsh Harbor"}) == ["Marsh Harbor", "mayor"]
    assert substitute([Ref(1), "$1 km"], {1: [2, 3]}) == [[2, 3], "[2, 3] km"]


@pytest.mark.parametrize("line,error", [
    ("1. lookup(Veloria, capital)", "not a literal"),
    ("1. fly(1)", "unknown tool 'fly'"),
    ("1. lookup($2, 'x')", "refers to $2"),
    ("1. lookup('a', 'b'", "cannot parse"),
])
def test_malformed_plan_lines_are_errors_not_crashes(line, error):
    [item] = StreamingPlanParser({"lookup"}).feed(line + "\n")
    assert isinstance(item, PlanError) and error in item.error


def test_parse_call_never_evaluates():
    with pytest.raises(ValueError):
        parse_call("lookup(__import__('os').system('true'))")


def sim_for(problems, **kw):
    return SimulatedEngine(SimConfig(**{"latency_per_token_s": 0.001, **kw}), responder=tool_qa.sim_responder(problems))


async def test_llm_compiler_runs_independent_calls_in_parallel_while_the_plan_streams():
    task = tasks.get("tools")
    problem = next(p for p in task.load() if p.id == "parallel-0")
    engine = sim_for([problem], latency_per_token_s=0.01)  # the plan streams for ~0.3 s
    ctx = Context(engine, task=task)
    t0 = time.monotonic()
    answer = await run_compiler(ctx, problem, LLMCompilerConfig())
    wall = time.monotonic() - t0
    assert answer.answer == problem.gold and task.grade(problem, answer.answer)
    timings = answer.meta["timings"]
    first_start = min(t["start"] for t in timings["tasks"])
    assert first_start < timings["plans"][0]["end"], "no task started before the plan finished streaming"
    serial = sum(tool_qa._latency(k) for k in problem.meta["critical_path"])
    assert wall < serial * 0.8, f"{wall:.2f}s: the four prime_factors calls did not overlap ({serial:.2f}s serial)"
    assert len(answer.meta["observations"]) == 8


async def test_a_failing_tool_is_an_observation_and_dependants_do_not_hang():
    task = tasks.get("tools")
    problem = Problem(id="x", question="What is the mayor of the capital of Atlantis?", gold="?")

    def responder(request):
        text = request.prompt_text()
        if "PLANNER" in text:
            return '1. lookup("Atlantis", "capital")\n2. lookup($1, "mayor")\n3. calculator("1/0")\n4. join()'
        if "JOINER" in text:
            return "Replan: the atlas has no Atlantis"
        return None

    ctx = Context(SimulatedEngine(SimConfig(latency_per_token_s=0.0), responder=responder), task=task)
    answer = await asyncio.wait_for(run_compiler(ctx, problem, LLMCompilerConfig(max_replans=1)), timeout=20)
    obs = answer.meta["observations"]
    assert any("no entry for 'Atlantis'" in o for o in obs)
    assert any("dependency $1 failed" in o for o in obs)
    assert any("division by zero" in o for o in obs)
    assert answer.meta["replans"] == 1 and answer.answer is None
    assert sum(e["kind"] == "replan" for e in ctx.tracer.events) == 1


async def test_react_takes_one_call_per_turn():
    task = tasks.get("tools")
    problem = next(p for p in task.load() if p.id == "chain-2")
    ctx = Context(sim_for([problem]), task=task)
    answer = await run_react(ctx, problem, ReActConfig())
    assert answer.answer == problem.gold
    steps = [e for e in ctx.tracer.events if e["kind"] == "react_step"]
    assert len(steps) == 3 and ctx.usage.calls == 4


async def test_tool_decorator_validates_and_times_out():
    @tool(timeout_s=0.1)
    async def slow(n: int) -> int:
        """sleeps"""
        await asyncio.sleep(1)
        return n

    @tool
    def double(n: int) -> int:
        """Doubles n."""
        return 2 * n

    assert await double(21) == 42 and await double(n="4") == 8
    assert double.signature() == "double(n: int): Doubles n."
    with pytest.raises(ToolError, match="bad argument n"):
        await double("four")
    with pytest.raises(ToolError, match="timed out"):
        await slow(1)
    with pytest.raises(ToolError, match="not allowed"):
        await calculator("open('/etc/passwd')")
    assert await calculator("2 ** 10 - 24 / 8") == 1021


@pytest.mark.parametrize("code,check", [
    ("print(6 * 7)", lambda r: r.ok and r.stdout.strip() == "42"),
    ("while True: pass", lambda r: r.timed_out),
    ("x = bytearray(2 * 1024**3)", lambda r: not r.ok and "MemoryError" in r.stderr),
    ("import os\nwhile True: os.fork()", lambda r: not r.ok),
    ("import os; os.remove('/etc/hostname')", lambda r: not r.ok),
    ("import socket; socket.create_connection(('127.0.0.1', 9), timeout=1)", lambda r: not r.ok),
    ("print('y' * 10**7)", lambda r: len(r.stdout) == 1000),
])
async def test_sandbox_contains_hostile_code(code, check):
    result = await run_python(code, SandboxLimits(timeout_s=2, memory_mb=256, output_bytes=1000))
    assert check(result), result
    import os
    assert os.path.exists("/etc/hostname")
