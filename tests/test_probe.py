"""Probe consensus: in-flight traces are asked for their current answer at checkpoints; the group stops when the
answers agree (stopped traces vote with their probed answer) and persistent outliers are pruned."""
import pytest

from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.kernel.context import Context
from tts.kernel.trace import Tracer
from tts.kernel.types import Problem
from tts.strategies import get, make_config
from tts.tasks import get as get_task

PROBLEMS = [Problem(id=str(i), question=f"Mia has {i} pens and finds {i} more. How many?", gold=str(2 * i))
            for i in range(1, 11)]


def _engine(accuracy: float) -> SimulatedEngine:
    return SimulatedEngine.for_problems(PROBLEMS, SimConfig(accuracy=accuracy, latency_per_token_s=0.0015,
                                                            min_tokens=100, max_tokens=160))


async def _solve(engine, problem, **options):
    tracer = Tracer()
    ctx = Context(engine, task=get_task("gsm8k"), tracer=tracer)
    answer = await get("sc").run(ctx, problem, make_config(get("sc"), **options))
    return answer, ctx, tracer


async def test_agreeing_traces_stop_at_consensus_and_vote_their_probed_answer():
    engine = _engine(accuracy=1.0)
    full_tokens = probe_tokens = 0
    for p in PROBLEMS:
        plain, plain_ctx, _ = await _solve(engine, p, n=8, early_stop=False, batch=False)
        answer, ctx, tracer = await _solve(engine, p, n=8, early_stop=False,
                                           probe={"checkpoint_tokens": 32, "min_final": 0})
        assert answer.answer == p.gold == plain.answer
        probed = [s for s in answer.samples if s.status == "probed"]
        assert probed and all(s.answer == p.gold for s in probed)  # they vote, with the answer they were heading for
        assert sum(answer.votes.values()) == 8
        events = [e for e in tracer.events if e["kind"] == "probe_consensus"]
        assert len(events) == 1 and events[0]["answer"] == p.gold
        assert ctx.usage.calls > 8  # the probes are engine calls, charged like any other
        full_tokens += plain_ctx.usage.completion_tokens
        probe_tokens += ctx.usage.completion_tokens  # probes included
    assert probe_tokens < 0.8 * full_tokens
    assert engine.in_flight == 0  # every stopped trace's request was aborted


async def test_outliers_are_pruned_and_cast_no_vote():
    engine = _engine(accuracy=0.7)
    pruned_answers, leaders = [], []
    for p in PROBLEMS:
        answer, ctx, tracer = await _solve(engine, p, n=8, early_stop=False,
                                           probe={"checkpoint_tokens": 24, "agree": 1.0, "patience": 1})
        for e in tracer.events:
            if e["kind"] == "probe_prune":
                pruned_answers.append(e["answer"])
                leaders.append(e["leader"])
        pruned = [s for s in answer.samples if s.status == "pruned"]
        assert all(s.answer is None for s in pruned)
        assert sum(answer.votes.values()) == sum(s.status in ("ok", "probed") for s in answer.samples)
    assert pruned_answers and all(a != lead for a, lead in zip(pruned_answers, leaders))


def test_probe_and_prune_are_one_or_the_other():
    from tts.kernel.errors import ConfigError

    with pytest.raises(ConfigError, match="choose one"):
        make_config(get("sc"), n=4, prune={}, probe={})


async def test_early_probes_agreeing_on_an_intermediate_quantity_wait_for_a_finished_trace():
    # Every trace of a problem passes through the same intermediate quantity (the simulator's probe answers it on
    # the first 60% of a trace), as GSM8K traces did live: with no finished trace required, the group stops on it
    # and answers it; requiring one finished trace (the default) keeps the final answer.
    engine = SimulatedEngine.for_problems(PROBLEMS, SimConfig(accuracy=1.0, latency_per_token_s=0.0015,
                                                              min_tokens=100, max_tokens=160,
                                                              probe_intermediate_until=0.6))
    premature = guarded = 0
    for p in PROBLEMS:
        early, _, _ = await _solve(engine, p, n=8, early_stop=False, probe={"checkpoint_tokens": 24, "min_final": 0})
        premature += early.answer == "99991"
        answer, _, tracer = await _solve(engine, p, n=8, early_stop=False, probe={"checkpoint_tokens": 24})
        guarded += answer.answer == p.gold
        consensus = [e for e in tracer.events if e["kind"] == "probe_consensus"]
        assert all(e["answer"] == p.gold for e in consensus)
    assert premature >= len(PROBLEMS) // 2 and guarded == len(PROBLEMS)


async def test_a_probe_ends_with_the_tasks_own_answer_cue_and_code_is_not_probed():
    from tts.kernel.errors import ConfigError
    from tts.kernel.types import GenerateRequest, Message
    from tts.kit.watched import PROBE_LEAD
    from tts.strategies.watched import probe_answers
    from tts.tasks import get as task

    asked = []

    def responder(request):
        asked.append(request.messages[-1].content)
        return {"The answer is": " 12.", "The final answer is \\boxed{": "3/4} because", "Answer:": " (1 + 2) * 4"}[
            next(c for c in ("The final answer is \\boxed{", "The answer is", "Answer:")
                 if request.messages[-1].content.endswith(c))]

    engine = SimulatedEngine(SimConfig(), responder=responder)
    req = [GenerateRequest(messages=(Message(role="user", content="q"),))]
    got = {}
    for name in ("gsm8k", "math", "countdown"):
        ctx = Context(engine, task=task(name))
        got[name] = (await probe_answers(ctx, req, ["Some reasoning so far."], [0], 12))[0]
        assert asked[-1] == "Some reasoning so far." + PROBE_LEAD + task(name).answer_cue
    assert got == {"gsm8k": "12", "math": "3/4", "countdown": "(1 + 2) * 4"}
    with pytest.raises(ConfigError, match="humaneval"):
        await probe_answers(Context(engine, task=task("humaneval")), req, ["def f():"], [0], 12)
    assert len(asked) == 3  # the code task was refused before any probe reached the engine
