"""Reasoning models: thinking split from answers, thinking tokens counted apart, and budget forcing."""
import pytest

from tts import tasks
from tts.app.session import Session, resolve_strategy
from tts.engine_adapters.sim import SimulatedEngine
from tts.kernel.reasoning import ReasoningConfig
from tts.kernel.types import Problem

P = Problem(id="r", question="What is 3 plus 4?", gold="7")
THINK = "<think> Let me see. Maybe it is 99? No: 3 plus 4 is 7, I am sure now. " + "Checking again. " * 30


@pytest.mark.parametrize("text,config,expected", [
    ("<think>a 1</think> The answer is 2.", ReasoningConfig(), ("a 1", "The answer is 2.")),
    ("a 1</think>\n\nThe answer is 2.", ReasoningConfig(opened_in_prompt=True), ("a 1", "The answer is 2.")),
    ("<think>a 1 and still thinking", ReasoningConfig(), ("a 1 and still thinking", "")),
    ("a 1 and still thinking", ReasoningConfig(opened_in_prompt=True), ("a 1 and still thinking", "")),
    ("The answer is 2.", ReasoningConfig(), ("", "The answer is 2.")),
    ("[R]x[/R] 5", ReasoningConfig(start="[R]", end="[/R]"), ("x", "5")),
])
def test_split(text, config, expected):
    assert config.split(text) == expected


def responder(calls):
    def respond(request):
        calls.append(request)
        if request.continue_final:  # the answer after a closed thinking part
            return "The answer is 7."
        return THINK + "</think> The answer is 7."
    return respond


async def run(reasoning, calls, n=4):
    engine = SimulatedEngine.for_problems([P], responder=responder(calls))
    spec, config = resolve_strategy("sc", {"n": n, "max_tokens": 400, "early_stop": False})
    return await Session(engine, tasks.get("gsm8k"), spec, config, reasoning=reasoning).solve(P)


async def test_votes_see_the_answer_part_and_thinking_is_counted_apart():
    solved = await run(ReasoningConfig(), [])
    assert solved.row["votes"] == {"7": 4} and solved.row["correct"]
    usage = solved.row["usage"]
    assert 0 < usage["thinking_tokens"] < usage["completion_tokens"]
    assert all(s["thinking_tokens"] > 30 for s in solved.row["samples"])
    assert all("99" not in s.text and "<think>" not in s.text for s in solved.answer.samples)


async def test_without_a_reasoning_config_the_thinking_is_voted_on():
    """The failure this fixes: the last number of the raw text is still 7 here, so check what was voted."""
    solved = await run(None, [])
    assert all("<think>" in s.text for s in solved.answer.samples) and solved.row["usage"]["thinking_tokens"] == 0


async def test_budget_forcing_cuts_thinking_at_the_budget_and_the_model_still_answers():
    calls = []
    solved = await run(ReasoningConfig(thinking_budget=12), calls, n=2)
    first, follow = calls[0], [r for r in calls if r.continue_final]
    assert first.max_tokens == 12 and "</think>" in first.stop and not first.continue_final
    assert follow and all(r.n == 1 for r in follow)  # identical follow-ups reach the simulator's memo once
    prefill = follow[0].messages[-1]
    assert prefill.role == "assistant" and prefill.content.rstrip().endswith("</think>")
    assert prefill.content.startswith("<think>") and len(prefill.content.split()) <= 12 + 2
    assert solved.row["votes"] == {"7": 2} and solved.row["correct"]
    assert all(s["thinking_tokens"] == 12 for s in solved.row["samples"])
    assert solved.row["usage"]["thinking_tokens"] == 24 and solved.row["usage"]["calls"] == 3


async def test_a_budget_larger_than_the_thinking_changes_nothing_but_the_call_shape():
    calls = []
    solved = await run(ReasoningConfig(thinking_budget=200), calls, n=1)
    assert calls[0].max_tokens == 200 and solved.row["correct"]
    # the tokens generated while thinking (the simulator's tokens are words), its opening tag included
    assert solved.row["samples"][0]["thinking_tokens"] == len(THINK.split())


async def test_instruct_asks_a_plain_model_to_think_in_tags():
    calls = []
    await run(ReasoningConfig(instruct=True), calls, n=1)
    assert calls[0].messages[0].role == "system" and "<think>" in calls[0].messages[0].content
