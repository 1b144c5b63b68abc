"""A judge model apart from the policy (`--judge-model`): judges and verifiers ask it, the policy samples, both on
the run's one budget. Checked against a fake OpenAI-compatible server that records which model each request named."""
from __future__ import annotations

import itertools
import json

import pytest

from tests.fake_openai_server import FakeOpenAI
from tests.test_bad_input import cli, one_error
from tts.kit.judging import PAIR_CUE


def _respond(body: dict, drawn=itertools.count()) -> str:
    text = json.dumps(body.get("messages") or body.get("prompt"))
    return "A" if PAIR_CUE in text else f"Some work. The answer is {next(drawn) % 3}."  # votes split; the judge: A


def _problems(tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} + {i}?", "answer": f"#### {2 * i}"}) + "\n"
                            for i in range(1, 4)))
    return data


def _judged_run(tmp_path, kind: str = "pairwise"):
    """A run of sc(n=4) | judge(kind) with a policy and a judge model on a fake server: (CLI result, requests)."""
    with FakeOpenAI(responder=_respond, model=["policy-m", "judge-m"]) as server:
        result = cli("eval", "--engine", "openai", "--base-url", server.url, "--model", "policy-m",
                     "--judge-model", "judge-m", "--task", "gsm8k", "--data", str(_problems(tmp_path)),
                     "--no-progress", "-s", f"sc(n=4) | judge(kind='{kind}', margin=1.0)", "--run-id", "r",
                     cwd=tmp_path)
        return result, list(server.requests)


def test_judge_model_answers_the_judge_and_the_policy_samples(tmp_path):
    result, requests = _judged_run(tmp_path)
    assert result.exit_code == 0, result.output
    judged = [r for r in requests if PAIR_CUE in json.dumps(r.get("messages"))]
    sampled = [r for r in requests if r not in judged]
    assert judged and sampled
    assert {r["model"] for r in judged} == {"judge-m"} and {r["model"] for r in sampled} == {"policy-m"}
    run = tmp_path / "results" / "r"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["verify_calls"] == len(judged) > 0  # every judge call charged, as verification
    assert json.loads((run / "config.json").read_text())["judge_model"] == "judge-m"


def test_judge_model_on_an_engine_without_models_is_one_line(tmp_path):
    line = one_error(cli("eval", "--engine", "sim", "--judge-model", "x", "--no-progress", cwd=tmp_path))
    assert "--judge-model applies to the vllm and openai engines" in line
    assert not (tmp_path / "results").exists()


def test_the_gateway_asks_its_judge_model(tmp_path):
    """`tts serve --judge-model`: a request's judge stage reaches the judge model, its samples the served one."""
    import urllib.request

    from tests.test_server import serve

    with FakeOpenAI(responder=_respond, model=["policy-m", "judge-m"]) as upstream:
        gateway = serve("--engine", "openai", "--base-url", upstream.url, "--model", "policy-m",
                        "--judge-model", "judge-m", "--task", "gsm8k")
        url = next(gateway)
        try:
            body = {"model": "sc4:policy-m", "messages": [{"role": "user", "content": "What is 2 + 2?"}],
                    "strategy": "sc(n=4) | judge(kind='pairwise', margin=1.0)"}
            request = urllib.request.Request(f"{url}/v1/chat/completions", data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            reply = json.loads(urllib.request.urlopen(request, timeout=60).read())
        finally:
            next(gateway, None)
        requests = list(upstream.requests)
    judged = [r for r in requests if PAIR_CUE in json.dumps(r.get("messages"))]
    assert judged and {r["model"] for r in judged} == {"judge-m"}
    assert {r["model"] for r in requests if r not in judged} == {"policy-m"}
    assert reply["usage"]["tts_verification"]["calls"] == len(judged)


@pytest.mark.parametrize("kind", ["pairwise", "select"])
def test_the_timeline_and_viewer_show_the_judge_apart(tmp_path, kind):
    """What the judge spent is drawn on its own rows (pairwise: a branch per comparison; select: one call outside any
    branch) and counted apart from generation, per problem and in sum."""
    from tts.app.timeline import problem_events, text, timeline
    from tts.app.viewer import page_data

    result, _ = _judged_run(tmp_path, kind)
    assert result.exit_code == 0, result.output
    run = tmp_path / "results" / "r"
    summary = json.loads((run / "summary.json").read_text())
    verify_total = generated = 0
    for pid in problem_events(run):
        _, bars, marks = timeline(run, pid)
        judge_rows = [b for b in bars if b.verify_tokens]
        assert judge_rows and all(b.tokens == 0 and b.label == {"pairwise": "compare", "select": "verify"}[kind]
                                  for b in judge_rows)
        assert any(m.startswith(f"judge ({kind}) chose") for _, m in marks)
        assert "verify_tokens=" in text(bars, marks)
        verify_total += sum(b.verify_tokens for b in bars)
        generated += sum(b.tokens for b in bars)
    assert verify_total == summary["verify_prompt_tokens"] + summary["verify_completion_tokens"]
    assert generated == summary["completion_tokens"] - summary["verify_completion_tokens"]
    problems = page_data(run)["problems"]
    assert sum(p["verify"][0] for p in problems) == summary["verify_calls"]


def test_the_viewer_shows_each_samples_score(tmp_path):
    from tts.app.viewer import page_data

    result = cli("eval", "--engine", "sim", "--sim-accuracy", "0.5", "--task", "gsm8k",
                 "--data", str(_problems(tmp_path)), "--no-progress", "-s", "best-of-n(n=4)", "--run-id", "b", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    for p in page_data(tmp_path / "results" / "b")["problems"]:
        scored = {s[0]: s[5] for s in p["samples"] if s[3] == "ok"}
        assert scored and all(isinstance(x, float) for x in scored.values())
        assert scored == {int(k): v for k, v in p["meta"]["scores"].items()}
        best = max(scored, key=lambda i: scored[i])
        assert p["answer"] == next(s[1] for s in p["samples"] if s[0] == best)
        assert p["verify"][0] >= 1 and sum(b[9] for b in p["bars"]) == p["verify"][1] + p["verify"][2]


def test_a_replayed_policy_with_a_live_judge(tmp_path):
    """--engine replay --judge-engine openai: the samples come from the recording (the same texts, no policy request
    reaches a server), only the judge is asked, and the run says which engine judged."""
    problems = str(_problems(tmp_path))
    common = ["--task", "gsm8k", "--data", problems, "--no-progress"]
    recorded = cli("eval", "--engine", "sim", "--sim-accuracy", "0.4", *common, "-s", "sc(n=4, early_stop=False)",
                   "--record", "--run-id", "rec", cwd=tmp_path)
    assert recorded.exit_code == 0, recorded.output
    traces = tmp_path / "results" / "rec" / "recorded_traces.jsonl"
    with FakeOpenAI(responder=_respond, model=["judge-m"]) as server:
        result = cli("eval", "--engine", "replay", "--traces", str(traces), "--judge-engine", "openai",
                     "--base-url", server.url, "--judge-model", "judge-m", *common,
                     "-s", "sc(n=4, early_stop=False) | judge(kind='pairwise', margin=1.0)", "--run-id", "rj",
                     cwd=tmp_path)
        requests = list(server.requests)
    assert result.exit_code == 0, result.output
    assert requests and all(PAIR_CUE in json.dumps(r.get("messages")) and r["model"] == "judge-m" for r in requests)
    rows = {}
    for run in ("rec", "rj"):
        rows[run] = [json.loads(x) for x in (tmp_path / "results" / run / "results.jsonl").read_text().splitlines()]
    texts = [[(s["index"], s["text"]) for s in r["samples"]] for r in rows["rec"]]
    assert texts == [[(s["index"], s["text"]) for s in r["samples"]] for r in rows["rj"]]
    run = tmp_path / "results" / "rj"
    assert json.loads((run / "summary.json").read_text())["verify_calls"] == len(requests)
    config = json.loads((run / "config.json").read_text())
    assert config["judge_model"] == "judge-m" and config["judge_engine"] == "openai" and config["engine"] == "replay"


@pytest.mark.parametrize("flags, words", [
    (["--engine", "sim", "--judge-engine", "vllm"], "--judge-engine names the judge model's engine"),
    (["--engine", "sim", "--judge-engine", "sim", "--judge-model", "x"], "not 'sim'"),
    (["--engine", "sim", "--judge-model", "x"], "takes --judge-engine vllm or openai"),
])
def test_a_judge_engine_that_cannot_judge_is_one_line(tmp_path, flags, words):
    line = one_error(cli("eval", *flags, "--no-progress", cwd=tmp_path))
    assert words in line
    assert not (tmp_path / "results").exists()
