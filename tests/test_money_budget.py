"""The money budget: reserved at the engine's prices before a call, charged at the real usage after it."""
import pytest

from tests.conftest import make_sim
from tts.kernel.budget import Budget, BudgetConfig, Price
from tts.kernel.context import Context
from tts.kernel.errors import ConfigError
from tts.app.jobs import make_spec, parse_price
from tts.kernel.types import GenerateRequest

REQ = GenerateRequest(prompt="q0", max_tokens=40, temperature=0.7)


async def test_money_budget_waits_for_refunds_then_shortens_then_refuses(problems):
    engine = make_sim(problems, min_tokens=30, max_tokens=30)
    engine.price = Price(prompt_per_mtok=0.0, completion_per_mtok=1000.0)  # 0.001 USD per generated token
    budget = Budget(BudgetConfig(max_usd=0.1))
    ctx = Context(engine, budget=budget)
    out = await ctx.branches([lambda i=i: ctx.generate(REQ.model_copy(update={"seed": i})) for i in range(5)])
    # 40 + 40 tokens' worth reserved; the third waits for the refunds of the first two (they used 30 each) and
    # runs whole; the fourth finds 10 left with nothing in flight and is shortened to them; the fifth is refused
    assert [o.status for o in out] == ["ok", "ok", "ok", "ok", "budget"]
    assert [len(o.value[0].text.split()) if o.value else 0 for o in out][:4] == [30, 30, 30, 10]
    assert budget.exhausted_reason == "usd"
    assert budget.usd_used == pytest.approx(0.001 * (30 + 30 + 30 + 10))
    assert ctx.usage.usd == pytest.approx(budget.usd_used) and budget.usd_reserved == pytest.approx(0.0)


async def test_prompt_tokens_are_charged_and_cached_ones_at_their_price(problems):
    engine = make_sim(problems, min_tokens=10, max_tokens=10)
    engine.price = Price(prompt_per_mtok=1e6, completion_per_mtok=0.0, cached_prompt_per_mtok=0.0)
    ctx = Context(engine)
    [c] = await ctx.generate(REQ)
    assert c.prompt_tokens > 0
    assert ctx.usage.usd == pytest.approx(c.prompt_tokens - c.cached_prompt_tokens)
    p = Price(prompt_per_mtok=2.0, completion_per_mtok=8.0, cached_prompt_per_mtok=0.5)
    assert p.cost(1_000_000, 1_000_000, 500_000) == pytest.approx(0.5 * 2.0 + 0.5 * 0.5 + 8.0)


async def test_engine_without_price_is_free_under_a_money_budget(problems):
    ctx = Context(make_sim(problems), budget=Budget(BudgetConfig(max_usd=1e-9)))
    await ctx.generate(REQ)
    assert ctx.usage.usd == 0.0 and ctx.budget.exhausted_reason is None


def test_price_text_is_validated():
    assert parse_price("0.15,0.6") == Price(prompt_per_mtok=0.15, completion_per_mtok=0.6)
    with pytest.raises(ConfigError, match="PROMPT,COMPLETION"):
        parse_price("cheap")
    with pytest.raises(ConfigError, match="needs --price"):
        make_spec({"engine": "sim", "budget_usd": 1.0})


def test_cli_money_budget_caps_each_problem(tmp_path):
    from tests.test_cli import tts

    # 1000 USD per million generated tokens and 0.05 USD per problem: at most 50 generated tokens per problem
    r = tts("eval", "--engine", "sim", "-n", "8", "--limit", "4", "--price", "0,1000", "--budget-usd", "0.05",
            "--run-id", "m", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    import json

    summary = json.loads((tmp_path / "results" / "m" / "summary.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "results" / "m" / "results.jsonl").read_text().splitlines()]
    assert all(0 < row["usage"]["completion_tokens"] <= 50 for row in rows)
    assert summary["usd"] == pytest.approx(sum(row["usage"]["usd"] for row in rows)) and summary["usd"] <= 0.2
    assert summary["config"]["price"] == "0,1000" and summary["config"]["budget"]["max_usd"] == 0.05


def test_a_child_budget_is_held_by_its_own_limits_and_its_parents():
    from tts.kernel.budget import Budget, BudgetConfig
    from tts.kernel.errors import BudgetExhausted

    parent = Budget(BudgetConfig(max_tokens=100))
    child = parent.child(BudgetConfig(max_calls=2))
    r = child.reserve(80, 1)
    assert r.per == 80 and parent.tokens_reserved == 80
    child.settle(r, 30)
    assert (child.tokens_used, parent.tokens_used, parent.tokens_reserved) == (30, 30, 0)
    r = child.reserve(200, 1)  # the parent has 70 tokens left: the child is granted no more
    assert r.per == 70
    child.settle(r, 70)
    with pytest.raises(BudgetExhausted, match="calls"):  # the child's own limit
        child.reserve(10, 1)
    with pytest.raises(BudgetExhausted, match="tokens"):  # the parent's
        parent.child().reserve(10, 1)
