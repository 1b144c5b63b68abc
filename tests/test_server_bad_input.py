"""`tts serve` against malformed requests: an OpenAI-shaped error with a 4xx status for each, never a 500."""
import pytest
from starlette.testclient import TestClient

from tts.app.server import MAX_BODY_BYTES, build_app
from tts.engine_adapters.sim import SimConfig, SimulatedEngine

OK = {"model": "sc4:sim", "messages": [{"role": "user", "content": "What is 2 plus 2?"}]}


@pytest.fixture
def client():
    engine = SimulatedEngine(SimConfig(latency_per_token_s=0.0))
    with TestClient(build_app(engine, upstream="sim")) as c:
        yield c


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"null", b"\xff\xfe\x00", b"{", b"[" * 100_000,
                                  b'{"model": "sc4:sim", "messages": ["hi"]}',
                                  b'{"model": "sc4:sim", "messages": [{"role": "user"}]}',
                                  b'{"model": "sc4:sim", "messages": [{"role": "wizard", "content": "x"}]}',
                                  b'{"model": "sc4:sim", "messages": []}',
                                  b'{"model": "nope:sim", "messages": [{"role": "user", "content": "x"}]}',
                                  b'{"model": "sc4:sim", "n": 3, "messages": [{"role": "user", "content": "x"}]}',
                                  b'{"model": "sc4:sim", "max_tokens": "lots", "messages": [{"role": "user", "content": "x"}]}',
                                  b'{"model": "sc4:sim", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
                                  b'{"model": "sc4:sim", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}',
                                  b'{"model": "sc4:sim", "max_tokens": 2.5, "messages": [{"role": "user", "content": "x"}]}',
                                  b'{"model": "sc4:sim", "temperature": 99, "messages": [{"role": "user", "content": "x"}]}',
                                  b'{"model": "sc4:sim", "temperature": -1, "messages": [{"role": "user", "content": "x"}]}',
                                  b'{"model": "sc4:sim", "logprobs": true, "messages": [{"role": "user", "content": "x"}]}'])
def test_malformed_requests_get_a_4xx_openai_error(client, body):
    r = client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["message"] and "'content'" != err["message"]


def test_oversized_body_is_refused(client):
    r = client.post("/v1/chat/completions", content=b" " * (MAX_BODY_BYTES + 1))
    assert r.status_code == 413


def test_list_content_parts_are_read_as_text(client):
    body = {"model": "sc4:sim", "messages": [{"role": "user", "content": [{"type": "text", "text": "What is "},
                                                                         {"type": "text", "text": "2 plus 2?"}]}]}
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]


def test_reasoning_effort_becomes_a_thinking_budget():
    seen = []

    def respond(request):
        seen.append(request)
        return "The answer is 4." if request.continue_final else "<think> " + "hmm " * 900 + "</think> 4"

    engine = SimulatedEngine(SimConfig(latency_per_token_s=0.0), responder=respond)
    with TestClient(build_app(engine, upstream="sim")) as c:
        r = c.post("/v1/chat/completions", json={**OK, "model": "greedy:sim", "reasoning_effort": "low",
                                                 "max_tokens": 2000})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "The answer is 4."
        assert seen[0].max_tokens == 512 and any(x.continue_final for x in seen)  # low = 512 thinking tokens
        bad = c.post("/v1/chat/completions", json={**OK, "reasoning_effort": "extreme"})
        assert bad.status_code == 400 and "reasoning_effort" in bad.json()["error"]["message"]


@pytest.mark.parametrize("method,path,status", [("GET", "/v1/nothing", 404), ("GET", "/v1/chat/completions", 405),
                                                ("DELETE", "/v1/models", 405)])
def test_unknown_routes_and_methods_answer_in_the_apis_shape(client, method, path, status):
    r = client.request(method, path)
    assert r.status_code == status and r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["message"]


@pytest.mark.parametrize("args,named", [
    (["--engine", "sim", "--engine-arg", "tensor_parallel_size=2"], "--engine-arg applies to the vllm engine"),
    (["--engine", "sim", "--sim-accuracy", "2"], "--sim-accuracy"),
    (["--engine", "sim", "--request-timeout", "5"], "--request-timeout does not apply to the sim engine"),
    (["--engine", "openai"], "needs --model"),
    (["--engine", "openai", "--model", "m", "--base-url", "ftp://x"], "ftp://x"),
    (["--engine", "sim", "--task", "nope"], "unknown task 'nope'")])
def test_serve_flags_are_checked_before_anything_listens(args, named, tmp_path):
    """`tts serve` reads its engine flags as `tts eval` does: a misplaced or bad one is one line, and no port opens."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = subprocess.run([sys.executable, "-m", "tts.app.cli", "serve", *args, "--port", str(port)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 1 and len(lines) == 1 and named in lines[0], r.stderr
    with socket.socket() as s:  # nothing was left listening on the port it was given
        assert s.connect_ex(("127.0.0.1", port)) != 0
