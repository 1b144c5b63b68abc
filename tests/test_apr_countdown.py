"""APR spawn/join scheduling with a scripted engine, the two parsers, and the Countdown generator and verifier."""
import asyncio
import time

import pytest

from tts.kernel.engine import EngineBase
from tts import tasks
from tts.strategies.apr import APRConfig, run
from tts.strategies.spawn_parsers import PARSERS
from tts.tasks import countdown
from tts.kernel.context import Context
from tts.kernel.types import Completion, Problem


class Scripted(EngineBase):
    """Answers by looking at the request: `script(request) -> (text, finish_reason)`, after `delay` seconds."""

    name = "scripted"

    def __init__(self, script, delay=0.0):
        self.script, self.delay, self.requests, self.aborted = script, delay, [], 0

    async def generate(self, request):
        self.requests.append(request)
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.aborted += 1
            raise
        text, finish = self.script(request)
        return [Completion(text=text, completion_tokens=len(text.split()), prompt_tokens=10, finish_reason=finish)]

    async def aclose(self):
        pass


PROBLEM = Problem(id="c", question=countdown.question([3, 4, 5], 35), gold="35",
                  meta={"numbers": [3, 4, 5], "target": 35})


def script_two_children(request):
    last = request.messages[-1]
    if last.role == "user" and last.content.startswith("You are helper"):
        return ("Tried it. Result: " + ("(3 + 4) * 5" if "first" in last.content else "none"), "stop")
    if not request.continue_final:
        return ("Let me split.\n<spawn>\n<task>try the first idea</task>\n<task limit=\"50\">second idea</task>", "stop")
    return ("Helper 1 found it.\nAnswer: (3 + 4) * 5", "stop")


async def test_parent_spawns_children_on_its_prefix_and_resumes_with_the_join():
    engine = Scripted(script_two_children, delay=0.1)
    ctx = Context(engine, task=tasks.get("countdown"))
    t0 = time.monotonic()
    answer = await run(ctx, PROBLEM, APRConfig())
    elapsed = time.monotonic() - t0
    assert answer.answer == "(3 + 4) * 5" and tasks.get("countdown").grade(PROBLEM, answer.answer)
    parent_first, *rest = engine.requests
    children = [r for r in rest if r.messages[-1].content.startswith("You are helper")]
    assert len(children) == 2
    for child in children:  # the child's prompt starts with the parent's whole context
        assert child.messages[: len(parent_first.messages)] == parent_first.messages
        assert child.messages[len(parent_first.messages)].role == "assistant"
        assert "<spawn>" in child.messages[len(parent_first.messages)].content
    assert elapsed < 0.35, "children did not run in parallel"  # 3 steps of 0.1 s, not 4
    resume = engine.requests[-1]
    assert resume.continue_final and "<join>" in resume.messages[-1].content
    assert "(3 + 4) * 5</result>" in resume.messages[-1].content
    threads = answer.meta["threads"]
    assert threads[0]["depth"] == 0 and len(threads[0]["children"]) == 2
    assert {tuple(t["path"]) for t in threads[1:]} == {tuple(p) for p in threads[0]["children"]}
    assert parent_first.stop == ("</spawn>",)


async def test_malformed_block_is_reported_back_not_a_crash():
    def script(request):
        if not request.continue_final:
            return ("<spawn> do things in parallel please", "stop")
        return ("OK, directly then. Answer: (3 + 4) * 5", "stop")

    engine = Scripted(script)
    answer = await run(Context(engine, task=tasks.get("countdown")), PROBLEM, APRConfig())
    assert answer.answer == "(3 + 4) * 5"
    assert "<error>no <task>" in engine.requests[1].messages[-1].content


async def test_depth_fanout_and_spawn_limits():
    def script(request):
        last = request.messages[-1]
        if last.role == "user" and last.content.startswith("You are helper"):
            if request.continue_final:
                return ("Result: done", "stop")
            return ("<spawn><task>deeper</task>", "stop")  # a child tries to spawn at max depth
        if not request.continue_final:
            return ("<spawn>" + "".join(f"<task>t{i}</task>" for i in range(6)), "stop")
        return ("Answer: 1", "stop")

    engine = Scripted(script)
    ctx = Context(engine, task=tasks.get("countdown"))
    answer = await run(ctx, PROBLEM, APRConfig(max_depth=1, max_children=4))
    spawn = next(e for e in ctx.tracer.events if e["kind"] == "spawn")
    assert len(spawn["children"]) == 4 and spawn["refused"] == 2
    refused = [e for e in ctx.tracer.events if e["kind"] == "spawn_refused"]
    assert len(refused) == 4 and all("not available" in e["error"] for e in refused)
    assert len(answer.meta["threads"]) == 5


async def test_cancelling_the_parent_cancels_its_children():
    def script(request):
        if request.messages[-1].content.startswith("You are helper"):
            return ("Result: slow", "stop")
        return ("<spawn><task>a</task><task>b</task><task>c</task>", "stop")

    engine = Scripted(script, delay=0.2)
    task = asyncio.create_task(run(Context(engine, task=tasks.get("countdown")), PROBLEM, APRConfig()))
    await asyncio.sleep(0.3)  # the parent's first step is done; its 3 children are in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.aborted == 3


def test_apr_paper_format_parser():
    p = PARSERS["apr"]
    text = ("Moving to Node #0\nCurrent State: 27:[22, 26, 31, 53]\n<Calling Sub Searches>\n"
            "<Start Sub Search 0 at level 1> Moving to Node #0,0\n<Start Sub Search 1 at level 1> Moving to Node #0,1\n")
    block = p.parse(text, "stop")
    assert [c.instruction for c in block.children] == ["Moving to Node #0,0", "Moving to Node #0,1"]
    assert p.parse(text, "length") is None and p.parse("no call here", "stop") is None
    assert p.parse("<Calling Sub Searches>\ngarbage", "stop").error
    assert "<Sub Search 1 Result>" in p.join(["no", "yes"])


def test_countdown_generator_is_seeded_and_solvable():
    a, b = countdown.generate(20, 4, seed=1), countdown.generate(20, 4, seed=1)
    assert a == b and a != countdown.generate(20, 4, seed=2)
    for p in a:
        assert len(p.meta["numbers"]) == 4
        assert countdown.verify(p.meta["solution"], p.meta["numbers"], p.meta["target"])
    assert all(len(p.meta["numbers"]) == 6 for p in countdown.generate(5, 6, seed=0))


@pytest.mark.parametrize("expr,ok", [
    ("(3 + 4) * 5", True), ("5 * (4 + 3)", True), ("3 * 4 * 5", False),  # 60
    ("(3 + 3) * 5", False),  # 3 used twice
    ("35", False), ("7 * 5", False),  # numbers not given
    ("(4 - 3) / 0", False), ("__import__('os').system('true')", False), ("2 ** 5", False), ("-3 + 38", False),
    ("(3+4)*5" + " " * 300, False), ("", False), (None, False),
])
def test_countdown_verifier(expr, ok):
    assert countdown.verify(expr, [3, 4, 5], 35) is ok


def test_countdown_extract():
    assert countdown.extract("so\nAnswer: $(3 + 4) \\times 5 = 35$.") == "(3 + 4) * 5"
    assert countdown.extract("no answer line") is None


async def test_the_answer_is_read_from_the_parent_not_from_a_child_result():
    def script(request):
        last = request.messages[-1]
        if last.role == "user" and last.content.startswith("You are helper"):
            return ("Answer: 3 * 4 * 5", "stop")  # a child's wrong claim inside the join block
        if not request.continue_final:
            return ("<spawn><task>try</task>", "stop")
        return ("I could not find it.", "stop")

    answer = await run(Context(Scripted(script), task=tasks.get("countdown")), PROBLEM, APRConfig())
    assert answer.answer is None
