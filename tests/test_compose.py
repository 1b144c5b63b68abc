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

    sim = SimulatedEngine.for_problems([problem], SimConfig(accuracy=1.0), responder=responder)
    ctx = Context(sim, task=task)
    answer = await run_lc(ctx, problem, LLMCompilerConfig(reasoner="sc(n=3)"))
    assert answer.answer == "42" and any("reason(" in o for o in answer.meta["observations"])


def workspace_prompts(engine_requests):
    return [r for r in engine_requests if "<workspace>" in r.prompt_text()]


class Recorder(SimulatedEngine):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.requests = []

    async def generate(self, request):
        self.requests.append(request)
        return await super().generate(request)


async def test_stages_hand_their_answer_over_explicitly(gsm8k):
    # a composed PDR starts from the SC stage's samples (its first prompt carries their workspace) ...
    engine = Recorder.for_problems([P], SimConfig(accuracy=0.8))
    ctx = Context(engine, task=gsm8k)
    await run(ctx, P, ComposeConfig(expr="sc(n=2, early_stop=False, batch=False) | pdr(rounds=1, drafts=1)"))
    assert len(workspace_prompts(engine.requests)) == 1
    # ... and a stage that cannot take samples is refused before anything runs
    with pytest.raises(ConfigError, match=r"stage 2 \(apr\) cannot start from the previous stage's samples"):
        parse("sc(n=2) | apr(child='pdr(rounds=1, drafts=1)')")


async def test_nested_strategies_see_no_other_stages_state():
    # APR's children run PDR on the same context after an SC run on it: no child may see the SC samples
    # (shared per-run state once leaked them into every child's workspace)
    def responder(request):
        text = request.prompt_text()
        if "You are helper" in text:
            return None
        if request.continue_final:
            return "Answer: (3 + 4) * 5"
        return "<spawn><task>try addition</task><task>try product</task>"

    problem = Problem(id="c", question="Using the numbers [3, 4, 5], make 35.", gold="35",
                      meta={"numbers": [3, 4, 5], "target": 35})
    engine = Recorder(SimConfig(), responder=responder)
    ctx = Context(engine, task=tasks.get("countdown"))
    await run(ctx, problem, ComposeConfig(expr="sc(n=2, early_stop=False, batch=False)"))
    await run(ctx, problem, ComposeConfig(expr="apr(child='pdr(rounds=1, drafts=1)')"))
    helpers = [r for r in engine.requests if "You are helper" in r.prompt_text()]
    assert len(helpers) == 2 and not workspace_prompts(engine.requests)


async def test_prune_shadow_adds_to_the_dag_without_overwriting_it(gsm8k):
    from tts.kit.prune import PruneConfig
    from tts.strategies.self_consistency import SCConfig, run as run_sc

    def same(request):  # identical traces: the pruner keeps 2, prunes 4, and the shadow pass finishes those 4
        return "Step one adds the numbers carefully. " * 12 + "The answer is 7."

    engine = SimulatedEngine(SimConfig(latency_per_token_s=0.002), responder=same)
    ctx = Context(engine, task=gsm8k)
    answer = await run_sc(ctx, P, SCConfig(n=6, early_stop=False, prune=PruneConfig(quota=1, shadow=True,
                                                                                     signal="numbers",
                                                                                     threshold=0.0)))
    branches = {n: d for n, d in ctx.tracer.dag.nodes(data=True) if d["kind"] == "branch"}
    labels = sorted(d["label"] for d in branches.values())
    prunes = answer.meta["prunes"]
    assert len(prunes) == 4 and labels == ["sample"] * 6 + ["shadow"] * 4
    assert sorted(d["status"] for n, d in branches.items() if d["label"] == "sample") == ["ok"] * 2 + ["pruned"] * 4
    shadow_calls = [n for n, d in ctx.tracer.dag.nodes(data=True) if d["kind"] == "call"
                    and branches[n.split("#")[0]]["label"] == "shadow"]
    tokens = {n: ctx.tracer.dag.nodes[n]["tokens"] for n in shadow_calls}
    # each record carries its own trace's tokens, not a running total
    assert sorted(p["shadow_tokens"] for p in prunes) == sorted(tokens.values())
    assert all(p["shadow_answer"] == "7" for p in prunes)


async def test_apr_children_can_stop_on_probe_consensus():
    # Probe consensus reaches APR's children through `child`: each child samples, probes its in-flight samples and
    # stops them once their probed answers agree, under the parent's budget and trace.
    from tts.kit.watched import PROBE_LEAD
    from tts.strategies.apr import APRConfig, run as run_apr

    def responder(request):
        text = request.prompt_text()
        if "You are helper" in text:
            if PROBE_LEAD in request.messages[-1].content:
                return None  # a probe: the simulator answers what the probed sample is heading for
            return " ".join(["Let me try this step."] * (20 + request.seed)) + " The answer is 7."
        if request.continue_final:
            return "So the total is 35. The answer is 35."
        return "<spawn><task>count the first part</task><task>count the second part</task>"

    problem = Problem(id="c", question="Mia has 5 boxes of 7 pens. How many pens?", gold="35")
    engine = SimulatedEngine(SimConfig(latency_per_token_s=0.001), responder=responder)
    ctx = Context(engine, task=tasks.get("gsm8k"))
    child = "sc(n=6, early_stop=False, probe={'checkpoint_tokens': 16, 'min_final': 1, 'prune_outliers': False})"
    answer = await run_apr(ctx, problem, APRConfig(child=child))
    consensus = [e for e in ctx.tracer.events if e["kind"] == "probe_consensus"]
    probes = [d for _, d in ctx.tracer.dag.nodes(data=True) if d["kind"] == "branch" and d.get("label") == "probe"]
    assert len(consensus) == 2 and {e["answer"] for e in consensus} == {"7"} and probes  # one per child
    assert answer.answer == "35" and engine.in_flight == 0
