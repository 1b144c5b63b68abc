import pytest

from tts import strategies
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.strategies.self_consistency import SCConfig, run
from tts.kit.aggregate import majority, vote_counts, vote_decided
from tts.kernel.budget import Budget, BudgetConfig
from tts.kernel.context import Context
from tts.kernel.errors import ConfigError
from tts.kernel.types import Sample


def s(i, a, status="ok"):
    return Sample(index=i, text="", answer=a, completion_tokens=1, status=status)


def test_majority_tie_breaks_by_first_sample_index():
    samples = [s(3, "7"), s(0, "5"), s(1, "7"), s(2, "5")]
    assert majority(vote_counts(samples)) == "5"  # 2-2 tie; "5" was sample 0
    assert majority(vote_counts(list(reversed(samples)))) == "5"  # completion order does not matter
    assert majority({}) is None


def test_vote_decided_only_when_leader_cannot_be_caught():
    assert vote_decided({"5": 5}, pending=3)
    assert not vote_decided({"5": 4}, pending=4)  # all 4 pending could go to one rival: a tie
    assert not vote_decided({"5": 3, "6": 1}, pending=2)
    assert vote_decided({"5": 4, "6": 1}, pending=2)
    assert not vote_decided({}, pending=0)


async def test_early_stop_cancels_remaining_samples(problems, gsm8k):
    engine = SimulatedEngine.for_problems(problems, SimConfig(accuracy=1.0, latency_per_token_s=0.002))
    ctx = Context(engine, task=gsm8k)
    answer = await run(ctx, problems[0], SCConfig(n=8))
    assert answer.answer == problems[0].gold
    assert answer.stopped_early
    ok = [x for x in answer.samples if x.status == "ok"]
    assert len(ok) == 5 and answer.votes == {problems[0].gold: 5}  # 5 > 0 + 3 pending
    assert engine.aborted + (8 - engine.started) == 3


async def test_samples_cancelled_by_early_stop_are_charged_on_a_metered_engine(problems, gsm8k):
    # On an engine whose stream is metered (vLLM's), a single-sample call is streamed, so a sample cancelled by the
    # group's stop is charged the tokens it generated; a plain call reports none (the figure is a lower bound).
    charged = {}
    for metered in (False, True):
        engine = SimulatedEngine.for_problems(problems, SimConfig(accuracy=1.0, latency_per_token_s=0.002))
        engine.capabilities = engine.capabilities.model_copy(update={"metered_stream": metered})
        ctx = Context(engine, task=gsm8k)
        answer = await run(ctx, problems[0], SCConfig(n=8))
        assert answer.stopped_early and engine.aborted >= 1
        ends = [e for e in ctx.tracer.events if e["kind"] == "call_end"]
        cancelled = [e["completion_tokens"] for e in ends if e["status"] == "cancelled"]
        finished = sum(x.completion_tokens for x in answer.samples if x.status == "ok")
        assert len(cancelled) == engine.aborted
        assert ctx.usage.completion_tokens == finished + sum(cancelled) == ctx.budget.tokens_used
        charged[metered] = sum(cancelled)
    assert charged[False] == 0 and charged[True] > 0


async def test_no_early_stop_when_the_vote_is_open(problems, gsm8k):
    # Samples alternate between two answers (by their seed), so at no point is the leader ahead by more than the
    # samples still running: the decided rule must let all 8 finish, and none may be aborted.
    def alternate(request):
        return f"Let me think. The answer is {1 + request.seed % 2}."

    engine = SimulatedEngine(SimConfig(seed=3), responder=alternate)
    ctx = Context(engine, task=gsm8k)
    answer = await run(ctx, problems[1], SCConfig(n=8))
    assert not answer.stopped_early and answer.votes == {"1": 4, "2": 4}
    assert engine.finished == 8 and engine.aborted == 0
    # the same samples under a rule that does stop: lead by 1 once two agree more than the other
    engine = SimulatedEngine(SimConfig(seed=3, slots=1), responder=lambda r: "The answer is 5." if r.seed % 8 < 3
                             else alternate(r))
    answer = await run(Context(engine, task=gsm8k), problems[1], SCConfig(n=8, stop_rule="lead",
                                                                          stop_params={"k": 3}))
    assert answer.stopped_early and answer.votes == {"5": 3} and engine.aborted + (8 - engine.started) == 5


async def test_batch_mode_sends_one_request_with_n(problems, gsm8k):
    engine = SimulatedEngine.for_problems(problems, SimConfig(accuracy=0.6))
    ctx = Context(engine, task=gsm8k)
    answer = await run(ctx, problems[2], SCConfig(n=6, early_stop=False))
    assert ctx.usage.calls == 1 and len(answer.samples) == 6 and engine.finished == 6
    assert sum(answer.votes.values()) == 6


async def test_budget_exhaustion_answers_with_what_it_has(problems, gsm8k):
    engine = SimulatedEngine.for_problems(problems, SimConfig(accuracy=1.0, min_tokens=30, max_tokens=30))
    ctx = Context(engine, task=gsm8k, budget=Budget(BudgetConfig(max_calls=3)))
    answer = await run(ctx, problems[0], SCConfig(n=8, early_stop=False, batch=False))
    assert answer.budget_exhausted and answer.answer == problems[0].gold
    assert sum(answer.votes.values()) == 3 and "budget exhausted (calls)" in answer.note
    assert answer.semantic_entropy == 0.0


def test_registry_and_config_errors():
    assert strategies.get("sc") is strategies.get("self-consistency")
    with pytest.raises(ConfigError, match="unknown strategy 'nope'; known: .*self-consistency"):
        strategies.get("nope")
    with pytest.raises(ConfigError, match="n"):
        strategies.make_config(strategies.get("sc"), n=0)
