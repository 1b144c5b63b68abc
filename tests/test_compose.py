"""Composition: the text form, one budget and one DAG over stages, and strategies nested in APR and LLMCompiler."""
import pytest

from tts import tasks
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.strategies.compose import ComposeConfig, parse, run
from tts.tasks import tool_qa
from tts.kernel.budget import Budget, BudgetConfig
from tts.kernel.context import Context
from tts.kernel.errors import ConfigError
from tts.kernel.types import Problem

P = Problem(id="p", question="What is 3 plus 4?", gold="7")


def test_parse_accepts_values_and_rejects_code():
    stages = parse("sc8 | pdr(rounds=1, drafts=2)")
    assert [s.spec.name for s in stages] == ["self-consistency", "pdr"]
    assert stages[0].config.n == 8 and stages[1].config.drafts == 2
    assert parse("sc(n=4, prune='step')")[0].config.prune.signal == "step"
    assert parse("llm-compiler(reasoner='sc4')")[0].spec.name == "llm-compiler"
    for bad, why in [("sc(n=__import__('os'))", "must be literals"), ("sc(4)", "keywords"),
                     ("magic(n=2)", "unknown strategy 'magic'"), ("sc(colour=1)", "no option colour"),
                     ("apr(child='sc(n=')", "strategy expression"), ("sc(n=0)", "invalid option")]:
        with pytest.raises(ConfigError, match=why):
            parse(bad)


async def test_pipeline_shares_one_budget_and_one_dag(gsm8k):
    engine = SimulatedEngine.for_problems([P], SimConfig(accuracy=0.6, min_tokens=40, max_tokens=40))
    ctx = Context(engine, task=gsm8k, budget=Budget(BudgetConfig(max_calls=10)))
    answer = await run(ctx, P, ComposeConfig(expr="sc(n=8, early_stop=False, batch=False) | pdr(rounds=2)"))
    assert ctx.usage.calls <= 10 and answer.budget_exhausted  # 8 samples + 1 distil leaves 1 call for PDR's drafts
    stages = [e for e in ctx.tracer.events if e["kind"] == "stage"]
    assert [s["strategy"] for s in stages] == ["self-consistency", "pdr"]
    labels = {d.get("label") for _, d in ctx.tracer.dag.nodes(data=True) if d["kind"] == "branch"}
    assert {"sample", "round1"} <= labels


async def test_apr_children_run_self_consistency():
    from tts.strategies.apr import APRConfig, run as run_apr

    def responder(request):
        text = request.prompt_text()
        if "You are helper" in text:
            return None  # children sample with the simulator's reasoning text
        if request.continue_final:
            return "Answer: (3 + 4) * 5"
        return "<spawn><task>try addition</task><task>try product</task>"

    problem = Problem(id="c", question="Using the numbers [3, 4, 5], make 35.", gold="35",
                      meta={"numbers": [3, 4, 5], "target": 35})
    engine = SimulatedEngine(SimConfig(), responder=lambda r: responder(r))
    ctx = Context(engine, task=tasks.get("countdown"))
    answer = await run_apr(ctx, problem, APRConfig(child="sc(n=3, early_stop=False, batch=False)"))
    samples = [d for _, d in ctx.tracer.dag.nodes(data=True) if d["kind"] == "branch" and d.get("label") == "sample"]
    assert len(samples) == 2 * 3 and answer.answer == "(3 + 4) * 5"


async def test_llm_compiler_with_a_reasoning_tool():
    from tts.strategies.llm_compiler import LLMCompilerConfig, run as run_lc

    task = tasks.get("tools")
    problem = Problem(id="r", question="What is 20 plus 22?", gold="42")

    def responder(request):
        text = request.prompt_text()
        if "PLANNER" in text:
            assert "reason(question: str)" in text
            return '1. reason("What is 20 plus 22?")\n2. join()'
        if "JOINER" in text:
            return "Answer: 42" if "-> '42'" in text else "Replan: no"
        return None

    sim = SimulatedEngine.for_problems([problem], SimConfig(accuracy=1.0), )
    sim._responder = responder
    ctx = Context(sim, task=task)
    answer = await run_lc(ctx, problem, LLMCompilerConfig(reasoner="sc(n=3)"))
    assert answer.answer == "42" and any("reason(" in o for o in answer.meta["observations"])
