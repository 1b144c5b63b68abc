"""PDR and SR orchestration on the simulator: bounded workspace and context, shared round prompts, early stop."""
import json

import pytest

from tts.kernel.engine import EngineBase
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.strategies.pdr import PDRConfig, SRConfig, fit_tail, run
from tts.kernel.budget import Budget, BudgetConfig
from tts.kernel.context import Context
from tts.kernel.types import Problem


class Recording(EngineBase):
    """Wraps an engine and keeps every request it was sent."""

    def __init__(self, inner):
        self.inner, self.name, self.requests = inner, inner.name, []

    async def generate(self, request):
        self.requests.append(request)
        return await self.inner.generate(request)

    async def aclose(self):
        pass


def engine_for(problems, **kw):
    return Recording(SimulatedEngine.for_problems(problems, SimConfig(**kw)))


P = Problem(id="p", question="Ann has 3 bags of 4 apples. How many apples?", gold="12")


async def test_pdr_rounds_share_prompts_and_bound_the_workspace(gsm8k):
    engine = engine_for([P], accuracy=0.5, min_tokens=150, max_tokens=200, seed=2)
    ctx = Context(engine, task=gsm8k)
    W = 60
    answer = await run(ctx, P, PDRConfig(drafts=4, rounds=3, workspace_tokens=W, stop_entropy=None))
    rounds = answer.meta["rounds"]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    assert all(r["workspace_tokens"] <= W for r in rounds)
    by_round = {}
    for req in engine.requests:
        by_round.setdefault(req.messages[-1].content, []).append(req)
    assert sorted(len(v) for v in by_round.values()) == [4, 4, 4]  # each round: one prompt, 4 drafts
    longest_prompt = max(ctx.count_tokens(r.messages[-1].content) for r in engine.requests)
    base = ctx.count_tokens(gsm8k.messages(P)[0].content)
    assert longest_prompt <= base + W + 60  # problem + workspace + the refine instructions
    assert len(answer.samples) == 4 and answer.answer is not None


async def test_context_stays_bounded_however_many_rounds(gsm8k):
    engine = engine_for([P], accuracy=0.5, min_tokens=150, max_tokens=200)
    ctx = Context(engine, task=gsm8k)
    await run(ctx, P, PDRConfig(drafts=2, rounds=6, workspace_tokens=40, stop_entropy=None))
    sizes = [len(r.messages[-1].content) for r in engine.requests]
    assert max(sizes[2:]) <= max(sizes[2:4]) + 200  # later rounds do not grow with what was spent before
    assert ctx.usage.completion_tokens > 6 * 2 * 100


async def test_summary_distillation_is_bounded_by_its_max_tokens(gsm8k):
    engine = engine_for([P], accuracy=0.5, min_tokens=100, max_tokens=100)
    ctx = Context(engine, task=gsm8k)
    await run(ctx, P, PDRConfig(drafts=3, rounds=2, distill="summary", workspace_tokens=32, stop_entropy=None))
    summaries = [r for r in engine.requests if r.messages[-1].content.startswith("Below are 3 independent")]
    assert len(summaries) == 1 and summaries[0].max_tokens == 32 and summaries[0].temperature == 0.0


async def test_pdr_stops_when_a_round_agrees(gsm8k):
    engine = engine_for([P], accuracy=1.0)
    ctx = Context(engine, task=gsm8k)
    answer = await run(ctx, P, PDRConfig(drafts=4, rounds=3))
    assert len(answer.meta["rounds"]) == 1 and answer.stopped_early and answer.answer == "12"
    assert answer.semantic_entropy == 0.0 and len(engine.requests) == 4


async def test_sr_is_one_draft_and_stops_when_refinement_keeps_the_answer(gsm8k):
    engine = engine_for([P], accuracy=1.0)
    ctx = Context(engine, task=gsm8k)
    answer = await run(ctx, P, SRConfig(rounds=4))
    assert all(r.n == 1 for r in engine.requests)
    assert [len(r["answers"]) for r in answer.meta["rounds"]] == [1, 1]  # round 2 kept round 1's answer
    assert answer.stopped_early and answer.answer == "12"


async def test_pdr_obeys_the_budget(gsm8k):
    engine = engine_for([P], accuracy=0.5, min_tokens=50, max_tokens=50)
    ctx = Context(engine, task=gsm8k, budget=Budget(BudgetConfig(max_calls=5)))
    answer = await run(ctx, P, PDRConfig(drafts=4, rounds=3, stop_entropy=None))
    assert ctx.usage.calls <= 5 and answer.budget_exhausted


def test_fit_tail_keeps_the_end():
    class Ctx:
        @staticmethod
        def count_tokens(text):
            return len(text.split())

    text = " ".join(f"w{i}" for i in range(100)) + " The answer is 7."
    cut = fit_tail(Ctx.count_tokens, text, 10)
    assert Ctx.count_tokens(cut) <= 10 and cut.endswith("The answer is 7.")


def test_math_loaders_read_every_shape(tmp_path):
    from tts import tasks
    rows = [{"problem": "p1", "answer": "\\frac12"}, {"problem": "p2", "solution": "so \\boxed{\\sqrt{2}}."},
            {"question": "q3", "answer": "$x<1$"}, {"Body": "b4.", "Question": "q4?", "Answer": 6.0},
            {"question": "q5", "answer": "work\n#### 1,000"}]
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    problems = tasks.get("math").load(path)
    assert [p.gold for p in problems] == ["\\frac12", "\\sqrt{2}", "x<1", "6", "1,000"]
    assert problems[3].question == "b4. q4?"
    math = tasks.get("math")
    assert math.grade(problems[0], "0.5") and math.grade(problems[4], "1000") and not math.grade(problems[1], "2")
    path.write_text(json.dumps({"problem": "p", "solution": "no box"}) + "\n")
    from tts.kernel.errors import DataError
    with pytest.raises(DataError, match="m.jsonl:1: missing a \\\\boxed"):
        math.load(path)
