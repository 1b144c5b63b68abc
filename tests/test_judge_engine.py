"""A judge model apart from the policy (`--judge-model`): judges and verifiers ask it, the policy samples, both on
the run's one budget. Checked against a fake OpenAI-compatible server that records which model each request named."""
from __future__ import annotations

import itertools
import json

from tests.fake_openai_server import FakeOpenAI
from tests.test_bad_input import cli, one_error
from tts.kit.judging import PAIR_CUE


def _respond(body: dict, drawn=itertools.count()) -> str:
    text = json.dumps(body.get("messages") or body.get("prompt"))
    return "A" if PAIR_CUE in text else f"Some work. The answer is {next(drawn) % 3}."  # votes split; the judge: A


def test_judge_model_answers_the_judge_and_the_policy_samples(tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} + {i}?", "answer": f"#### {2 * i}"}) + "\n"
                            for i in range(1, 4)))
    with FakeOpenAI(responder=_respond, model=["policy-m", "judge-m"]) as server:
        result = cli("eval", "--engine", "openai", "--base-url", server.url, "--model", "policy-m",
                     "--judge-model", "judge-m", "--task", "gsm8k", "--data", str(data), "--no-progress",
                     "-s", "sc(n=4) | judge(kind='pairwise', margin=1.0)", "--run-id", "r", cwd=tmp_path)
        requests = list(server.requests)
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
