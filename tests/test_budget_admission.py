"""A budget buys what it can: a call that does not fit waits for the refunds of calls in flight instead of being
refused, and concurrent calls still never reserve past the budget together."""
import asyncio
import json

import pytest

from tests.conftest import make_sim
from tests.test_cli import tts
from tts import tasks
from tts.engine_adapters.sim import SimulatedEngine
from tts.kernel.budget import Budget, BudgetConfig
from tts.kernel.context import Context
from tts.kernel.errors import BudgetExhausted
from tts.kernel.types import GenerateRequest, Problem
from tts.strategies.self_consistency import SCConfig, run


async def test_readme_example_gets_its_samples_not_four_votes():
    """README's library example (SC n=8, max_tokens=2000 for the run, 512 per sample): it once answered from 4
    votes having spent 160 tokens and reported 'budget exhausted'."""
    problem = Problem(id="demo", question="What is 20 plus 22?", gold="42")
    ctx = Context(SimulatedEngine.for_problems([problem]), task=tasks.get("gsm8k"),
                  budget=Budget(BudgetConfig(max_tokens=2000)))
    answer = await run(ctx, problem, SCConfig(n=8, early_stop=False, batch=False))
    assert not answer.budget_exhausted and sum(answer.votes.values()) == 8
    assert ctx.usage.completion_tokens <= 2000 and ctx.budget.tokens_reserved == 0


async def test_a_call_that_does_not_fit_waits_for_a_refund_then_runs_whole():
    budget = Budget(BudgetConfig(max_tokens=100))
    first = await budget.admit(80, 1)
    waiting = asyncio.create_task(budget.admit(80, 1))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # 20 left: it waits rather than being cut to 20
    budget.settle(first, 15)
    second = await asyncio.wait_for(waiting, 1)
    assert second.per == 80 and budget.tokens_used + budget.tokens_reserved == 95


async def test_with_nothing_in_flight_a_call_is_shortened_then_refused():
    budget = Budget(BudgetConfig(max_tokens=100))
    budget.settle(await budget.admit(90, 1), 90)
    assert (await budget.admit(80, 1)).per == 10
    budget2 = Budget(BudgetConfig(max_tokens=10))
    budget2.settle(await budget2.admit(10, 1), 10)
    with pytest.raises(BudgetExhausted):
        await budget2.admit(5, 1)


async def test_a_waiting_call_gives_up_at_the_time_budget():
    budget = Budget(BudgetConfig(max_tokens=100, max_seconds=0.2))
    await budget.admit(90, 1)  # held, never settled
    with pytest.raises(BudgetExhausted, match="seconds|tokens"):
        await asyncio.wait_for(budget.admit(50, 1), 5)


@pytest.mark.parametrize("seed", range(3))
async def test_many_concurrent_calls_never_overspend(problems, seed):
    engine = make_sim(problems, min_tokens=5, max_tokens=60)
    budget = Budget(BudgetConfig(max_tokens=700))
    ctx = Context(engine, budget=budget)
    peak = [0]
    real_admit = budget.admit

    async def watched(*a, **k):
        r = await real_admit(*a, **k)
        peak[0] = max(peak[0], budget.tokens_used + budget.tokens_reserved)
        return r
    budget.admit = watched
    req = GenerateRequest(prompt="q0", max_tokens=60, temperature=0.7)
    out = await ctx.branches([lambda i=i: ctx.generate(req.model_copy(update={"seed": seed * 100 + i}))
                              for i in range(40)])
    assert peak[0] <= 700 and budget.tokens_used <= 700
    ok = [o for o in out if o.status == "ok"]
    # the old admission refused everything past 700 // 60 = 11 concurrent reservations
    assert len(ok) > 11 and budget.tokens_reserved == 0


def test_cli_says_when_a_budget_cut_samples(tmp_path):
    r = tts("eval", "--engine", "sim", "--task", "demo", "-n", "8", "--limit", "3", "--budget-tokens", "60",
            "--no-early-stop", "-o", "batch=false", "--run-id", "b", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "results" / "b" / "summary.json").read_text())
    assert summary["budget_exhausted"] == 3 and summary["budget_cut_samples"] > 0
    assert f"budget: 3 of 3 problems ran out of budget; {summary['budget_cut_samples']} samples" in r.stdout
    report = tts("report", str(tmp_path / "results" / "b"), cwd=tmp_path)
    assert "ran out of budget" in report.stdout
