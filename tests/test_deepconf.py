"""DeepConf online: window confidence, the threshold from warm-up traces, the stop inside the engine or by the
context (the trace says which), and the strategy's tokens and votes."""
import asyncio

import pytest

from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.kernel.confidence import WindowConfidence, calibrate, first_stop, lowest_group, token_confidence
from tts.kernel.context import Context
from tts.kernel.trace import Tracer
from tts.kernel.types import ConfidenceStop, GenerateRequest, Message, Problem
from tts.strategies import get, make_config
from tts.tasks import get as get_task

PROBLEMS = [Problem(id=str(i), question=f"Tom has {i} apples and buys {i} more. How many?", gold=str(2 * i))
            for i in range(1, 13)]


def test_window_confidence_by_hand():
    assert token_confidence([("a", -0.5), ("b", -1.5), ("c", -4.0)], 2) == 1.0
    w = WindowConfidence(3)
    assert [w.push(v) for v in (3.0, 3.0, 3.0, 0.0, 3.0)] == [None, None, 3.0, 2.0, 2.0]
    assert w.lowest == 2.0
    assert lowest_group([3.0, 3.0, 3.0, 0.0, 0.0, 0.0, 3.0], 3) == 0.0
    assert lowest_group([1.0, 2.0], 5) == 1.5  # shorter than a window: its mean
    stop = ConfidenceStop(threshold=2.5, window=3)
    assert first_stop([3.0, 3.0, 3.0, 0.0, 3.0], stop) == 4  # the first full window under 2.5 ends at token 4
    assert first_stop([3.0] * 10, stop) is None


def test_calibrate_keeps_the_share_asked_for():
    lowest = [float(v) for v in range(1, 11)]
    assert calibrate(lowest, 1.0) == 1.0
    assert calibrate(lowest, 0.0) == 10.0
    threshold = calibrate(lowest, 0.9)
    assert sum(v >= threshold for v in lowest) == 9  # DeepConf-high: 90% of warm-up-like traces finish
    with pytest.raises(ValueError):
        calibrate([], 0.9)


def _request(problem: Problem, **kw) -> GenerateRequest:
    return GenerateRequest(messages=(Message(role="user", content=problem.question),), max_tokens=200,
                           temperature=0.7, seed=1, **kw)


def _engine(**kw) -> SimulatedEngine:
    config = dict(accuracy=0.6, confidence_gap=0.6, latency_per_token_s=0.0005, min_tokens=60, max_tokens=90)
    return SimulatedEngine.for_problems(PROBLEMS, SimConfig(**{**config, **kw}))


async def test_context_stops_a_stream_when_the_engine_cannot():
    engine = _engine()
    tracer = Tracer()
    ctx = Context(engine, tracer=tracer)
    request = _request(PROBLEMS[0])
    full_text = engine.plan(request, 0)[0]
    confs = engine.confidences(request, full_text)
    stop = ConfidenceStop(threshold=max(confs) + 1, window=8)  # every full window is under it
    [c] = await ctx.generate(request.model_copy(update={"confidence_stop": stop}))
    assert c.finish_reason == "confidence"
    # streamed in chunks of 4 words: the stop lands in the chunk that holds the 8th token
    assert 8 <= c.completion_tokens < 12 and c.completion_tokens < len(full_text.split())
    assert engine.aborted == 1 and engine.in_flight == 0  # the request was aborted, not left running
    assert ctx.usage.completion_tokens == c.completion_tokens  # charged what it generated
    assert [e["by"] for e in tracer.events if e["kind"] == "confidence_stop"] == ["client"]
    assert c.confidence is not None and len(c.confidence) == c.completion_tokens

    never = ConfidenceStop(threshold=min(confs) - 1, window=8)
    [whole] = await ctx.generate(request.model_copy(update={"confidence_stop": never}))
    assert whole.finish_reason == "stop" and whole.text == full_text


async def test_engine_stops_the_trace_itself_when_it_can():
    engine = _engine(confidence_stop=True)
    tracer = Tracer()
    ctx = Context(engine, tracer=tracer)
    request = _request(PROBLEMS[1])
    full_text = engine.plan(request, 0)[0]
    confs = engine.confidences(request, full_text)
    stop = ConfidenceStop(threshold=sorted(confs)[len(confs) // 2] + 0.3, window=4)
    expected = first_stop(confs, stop)
    assert expected is not None
    [c] = await ctx.generate(request.model_copy(update={"confidence_stop": stop}))
    assert c.finish_reason == "confidence" and c.completion_tokens == expected  # exact: no chunk overshoot
    assert engine.aborted == 0  # nothing to abort: the engine ended it
    assert [e["by"] for e in tracer.events if e["kind"] == "confidence_stop"] == ["engine"]


@pytest.mark.parametrize("in_engine", [False, True])
async def test_deepconf_spends_fewer_tokens_than_sc_at_no_loss(in_engine):
    """On the simulator, wrong traces are less confident (DeepConf's premise): DeepConf online ends some of them,
    so it spends fewer tokens than SC with the same n and no early stop, and loses no problem."""
    task = get_task("gsm8k")
    engine = _engine(confidence_stop=in_engine)
    dc, sc = get("deepconf"), get("sc")
    dc_config = make_config(dc, n=12, warmup=4, window=8, early_stop=False)
    sc_config = make_config(sc, n=12, early_stop=False, batch=False)
    dc_ok = sc_ok = dc_tokens = sc_tokens = lowconf = 0
    for p in PROBLEMS:
        ctx = Context(engine, task=task)
        a = await dc.run(ctx, p, dc_config)
        dc_ok += a.answer == p.gold
        dc_tokens += ctx.usage.completion_tokens
        lowconf += a.meta["lowconf"]
        assert a.meta["stopped_by"] == ("engine" if in_engine else "client")
        assert all(s.answer is None for s in a.samples if s.status == "lowconf")
        ctx = Context(engine, task=task)
        b = await sc.run(ctx, p, sc_config)
        sc_ok += b.answer == p.gold
        sc_tokens += ctx.usage.completion_tokens
    assert lowconf > 0
    assert dc_tokens < sc_tokens
    assert dc_ok >= sc_ok


async def test_deepconf_stops_the_group_once_the_vote_is_settled():
    engine = _engine(accuracy=1.0)  # every trace agrees: the warm-up alone settles the vote
    ctx = Context(engine, task=get_task("gsm8k"))
    a = await get("deepconf").run(ctx, PROBLEMS[2], make_config(get("deepconf"), n=16, warmup=4, stop_rule="lead",
                                                                stop_params={"k": 3}))
    assert a.answer == PROBLEMS[2].gold and a.stopped_early
    assert ctx.usage.calls == 4  # no trace beyond the warm-up was started


def test_deepconf_rejects_a_warmup_as_large_as_n_before_anything_runs(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "tts.app.cli", "eval", "--engine", "sim", "--task", "demo",
                        "--strategy", "deepconf", "-n", "3", "-o", "warmup=3", "--output", str(tmp_path),
                        "--run-id", "x", "--no-progress"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "warmup (3) must be below n (3)" in r.stderr
    assert not (tmp_path / "x").exists()


def test_vllm_confidence_processor_forces_the_end_token():
    """The processor on a fake batch: a flat distribution (low confidence) is forced to the end token once its
    window is full; a peaked one, and a request that did not opt in, are left alone."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("vllm")
    from vllm import SamplingParams
    from vllm.v1.sample.logits_processor import BatchUpdate

    from tts.engine_adapters.vllm_confidence import KEY, ConfidenceStopProcessor

    proc = ConfidenceStopProcessor(None, torch.device("cpu"), False)
    opt_in = SamplingParams(extra_args={KEY: {"threshold": 5.0, "window": 2, "top_k": 4, "eos": 7}})
    plain = SamplingParams()
    proc.update_state(BatchUpdate(batch_size=3, removed=[], moved=[],
                                  added=[(0, opt_in, [1], []), (1, opt_in, [1], []), (2, plain, [1], [])]))
    flat = torch.zeros(3, 32)
    flat[1, 3] = 40.0  # row 1 is sure of token 3: its top-4 logprobs average far above -5
    first = proc.apply(flat.clone())
    assert torch.equal(first, flat)  # the window (2 tokens) is not full yet
    second = proc.apply(flat.clone())
    assert second[0].argmax() == 7 and second[0, 0] == float("-inf")  # row 0 forced to end
    assert torch.equal(second[1], flat[1]) and torch.equal(second[2], flat[2])
    proc.update_state(BatchUpdate(batch_size=2, removed=[0], moved=[], added=[]))
    assert set(proc.traces) == {1}


async def test_fewer_traces_in_flight_pay_for_fewer_cut_by_the_vote():
    # After the warm-up, all traces at once: when the vote settles, every running trace has been paid for up to
    # that point (streamed traces are charged what they generated). Two at a time: most never start.
    task, dc = get_task("gsm8k"), get("deepconf")
    tokens, correct, started = {}, {}, {}
    for in_flight in (None, 2):
        engine = _engine(accuracy=0.6)  # the warm-up rarely settles the vote: later traces run
        config = make_config(dc, n=16, warmup=4, window=8, stop_rule="lead", stop_params={"k": 2},
                             in_flight=in_flight)
        tokens[in_flight] = correct[in_flight] = 0
        for p in PROBLEMS:
            ctx = Context(engine, task=task)
            a = await dc.run(ctx, p, config)
            tokens[in_flight] += ctx.usage.completion_tokens
            correct[in_flight] += a.answer == p.gold
        started[in_flight] = engine.started
    assert tokens[2] < 0.8 * tokens[None] and started[2] < started[None]
    assert correct[2] >= correct[None] - 1  # the same stop rule on fewer, earlier traces
