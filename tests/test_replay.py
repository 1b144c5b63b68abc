"""The replay engine: a run recorded once and replayed through the real strategies takes the same decisions; a
smaller policy is paired with the larger one's samples; what was not recorded is an error, never invented."""
import json

import pytest

from tests.test_cli import tts
from tts.engine_adapters.replay import ReplayEngine, ReplayMiss, prompt_key
from tts.kernel.types import Completion, ConfidenceStop, GenerateRequest, Message, TokenLogprob


# slow enough that a busy machine's jitter does not reorder traces whose lengths differ by a token
LATENCY = "0.01"


def rows(run) -> dict:
    return {r["id"]: r for r in (json.loads(x) for x in (run / "results.jsonl").read_text().splitlines())}


def decisions(row: dict):
    return (row["answer"], row["votes"], row["stopped_early"],
            sorted((s["index"], s["status"], s["answer"]) for s in row["samples"]))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    r = tts("eval", "--engine", "sim", "--task", "demo", "-n", "8", "--no-early-stop", "-o", "batch=false",
            "-o", "logprobs=5", "--sim-accuracy", "0.5", "--sim-latency", LATENCY, "--record", "--run-id", "rec",
            "--no-progress", cwd=tmp)
    assert r.returncode == 0, r.stderr
    return tmp, tmp / "results" / "rec" / "recorded_traces.jsonl"


def test_a_live_run_replayed_takes_the_same_decisions(recorded):
    """SC with early stop live on the simulator, and the same SC replayed on the simulator's recorded traces (every
    trace decoding at the simulator's speed): every problem's answer, votes, stop and sample outcomes agree."""
    tmp, traces = recorded
    live = tts("eval", "--engine", "sim", "--task", "demo", "-n", "8", "-o", "logprobs=5", "--sim-accuracy", "0.5",
               "--sim-latency", LATENCY, "--run-id", "live", "--no-progress", cwd=tmp)
    replay = tts("eval", "--engine", "replay", "--traces", str(traces), "--task", "demo", "-n", "8",
                 "-o", "logprobs=5", "--sim-latency", LATENCY, "--run-id", "rep", "--no-progress", cwd=tmp)
    assert live.returncode == 0 and replay.returncode == 0, replay.stderr
    a, b = rows(tmp / "results" / "live"), rows(tmp / "results" / "rep")
    assert len(a) == 20 and any(r["stopped_early"] for r in a.values())
    assert {k: decisions(v) for k, v in a.items()} == {k: decisions(v) for k, v in b.items()}


def test_a_job_budget_run_replayed_takes_the_same_decisions(tmp_path):
    """The job-level budget (draws decided as slots free) live on the simulator with --record, then replayed: the
    same decisions in the same order, the same samples per problem and answers, the same tokens."""
    common = ["--task", "demo", "-n", "8", "--budget-tokens-total", "3000", "--concurrency", "3", "--no-progress"]
    live = tts("eval", "--engine", "sim", "--sim-accuracy", "0.5", "--sim-latency", "0.002", "--record",
               "--run-id", "live", *common, cwd=tmp_path)
    assert live.returncode == 0, live.stderr
    replay = tts("eval", "--engine", "replay", "--traces", str(tmp_path / "results" / "live" / "recorded_traces.jsonl"),
                 "--sim-latency", "0.002", "--run-id", "rep", *common, cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr
    a, b = (tmp_path / "results" / name for name in ("live", "rep"))
    assert (a / "allocation.jsonl").read_text() == (b / "allocation.jsonl").read_text()
    assert len((a / "allocation.jsonl").read_text().splitlines()) > 20  # more draws than the first one per problem
    ra, rb = rows(a), rows(b)
    assert {k: (v["answer"], len(v["samples"])) for k, v in ra.items()} == \
        {k: (v["answer"], len(v["samples"])) for k, v in rb.items()}
    sa, sb = (json.loads((run / "summary.json").read_text()) for run in (a, b))
    assert sa["completion_tokens"] == sb["completion_tokens"] <= 3000


def test_a_cancelled_sample_carries_the_tokens_it_was_charged(recorded):
    """The replay streams like vLLM (a cancelled call is charged what it generated): a row's usage is the sum of
    its samples' tokens, the early stop's cancelled samples included, and some of those are not zero."""
    tmp, traces = recorded
    r = tts("eval", "--engine", "replay", "--traces", str(traces), "--task", "demo", "-n", "8", "-o", "batch=false",
            "--sim-latency", LATENCY, "--run-id", "cut", "--no-progress", cwd=tmp)
    assert r.returncode == 0, r.stderr
    cancelled = []
    for row in rows(tmp / "results" / "cut").values():
        assert row["usage"]["completion_tokens"] == sum(s["tokens"] for s in row["samples"])
        cancelled += [s["tokens"] for s in row["samples"] if s["status"] == "cancelled"]
    assert cancelled and max(cancelled) > 0


def test_a_smaller_policy_is_paired_with_the_recorded_samples(recorded):
    tmp, traces = recorded
    r = tts("eval", "--engine", "replay", "--traces", str(traces), "--task", "demo", "-n", "4", "--no-early-stop",
            "-o", "batch=false", "-o", "logprobs=5", "--run-id", "sc4", "--no-progress", cwd=tmp)
    assert r.returncode == 0, r.stderr
    full, four = rows(tmp / "results" / "rec"), rows(tmp / "results" / "sc4")
    for pid, row in four.items():
        first4 = sorted(full[pid]["samples"], key=lambda s: s["index"])[:4]
        assert [s["text"] for s in sorted(row["samples"], key=lambda s: s["index"])] == [s["text"] for s in first4]


def test_what_was_not_recorded_is_an_error_row_not_an_invention(recorded):
    tmp, traces = recorded
    r = tts("eval", "--engine", "replay", "--traces", str(traces), "--task", "demo", "-n", "12", "--no-early-stop",
            "-o", "batch=false", "--run-id", "sc12", "--no-progress", cwd=tmp)
    assert r.returncode == 0, r.stderr
    for row in rows(tmp / "results" / "sc12").values():
        errors = [s for s in row["samples"] if s["status"] == "error"]
        assert len(errors) == 4 and len(row["samples"]) == 12  # samples 8-11 were never recorded


@pytest.mark.parametrize("args,message", [
    (["--engine", "replay"], "--engine replay needs --traces FILE"),
    (["--engine", "sim", "--traces", "x.jsonl"], "--traces applies to --engine replay, not 'sim'"),
    (["--engine", "replay", "--traces", "missing.jsonl"], "not a file"),
    (["--engine", "replay", "--traces", "bad.jsonl"], "bad.jsonl:1: not a recorded trace"),
])
def test_bad_replay_input_is_one_line(tmp_path, args, message):
    (tmp_path / "bad.jsonl").write_text('{"prompt": 1}\n')
    r = tts("eval", "--task", "demo", "--no-progress", *args, cwd=tmp_path)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 1 and len(lines) == 1 and message in lines[0], r.stderr
    assert not (tmp_path / "results").exists()


def _engine(tmp_path, completion: Completion, request: GenerateRequest, sample: int = 0) -> ReplayEngine:
    path = tmp_path / "t.jsonl"
    lp = [[t.token, t.logprob, [list(x) for x in t.top]] for t in completion.logprobs]
    path.write_text(json.dumps({"prompt": prompt_key(request), "sample": sample, "max_tokens": 100,
                                "text": completion.text, "completion_tokens": completion.completion_tokens,
                                "finish_reason": "stop", "logprobs": lp}) + "\n")
    return ReplayEngine(path, latency_per_token_s=0.0)


async def test_confidence_stop_and_max_tokens_cut_the_recorded_trace(tmp_path):
    # token confidence is -mean(top logprobs): 0.15 for the first ten tokens, 0.075 after; a window of 4 first
    # averages under 0.1 at token 13 (0.15 + 3 x 0.075) / 4
    toks = [TokenLogprob(token=f"w{i} ", logprob=-0.1, top=((f"w{i} ", -0.1), ("x", -0.2 if i < 10 else -0.05)))
            for i in range(20)]
    c = Completion(text="".join(t.token for t in toks), completion_tokens=20, logprobs=tuple(toks))
    req = GenerateRequest(messages=(Message(role="user", content="q"),), seed=0, max_tokens=100, logprobs=2)
    engine = _engine(tmp_path, c, req)
    cut = await engine.generate(req.model_copy(update={"confidence_stop": ConfidenceStop(threshold=0.1, window=4)}))
    assert cut[0].finish_reason == "confidence" and cut[0].completion_tokens == 13
    assert cut[0].text == "".join(t.token for t in toks[:13])
    short = await engine.generate(req.model_copy(update={"max_tokens": 5}))
    assert short[0].finish_reason == "length" and short[0].text == "w0 w1 w2 w3 w4 "
    whole = await engine.generate(req)
    assert whole[0].text == c.text and whole[0].finish_reason == "stop"
    with pytest.raises(ReplayMiss):
        await engine.generate(req.model_copy(update={"seed": 7}))
