"""The openai adapter against a local HTTP server that speaks the API."""
import socket

import pytest

from tts.engine_adapters.openai_http import OpenAIEngine
from tests.fake_openai_server import FakeOpenAI
from tts.kernel.errors import EngineUnavailable
from tts.kernel.types import GenerateRequest, Message

CHAT = GenerateRequest(messages=(Message(role="user", content="hi"),), n=1, seed=7, max_tokens=20, temperature=0.7)


async def test_chat_completion_with_usage_and_logprobs():
    with FakeOpenAI() as server:
        engine = OpenAIEngine(server.url, "fake-model")
        await engine.check()
        [c] = await engine.generate(CHAT.model_copy(update={"logprobs": 1}))
        await engine.aclose()
    assert c.text.endswith("The answer is 7.") and c.finish_reason == "stop"
    assert c.prompt_tokens == 10 and c.cached_prompt_tokens == 4
    assert c.logprobs and c.logprobs[0].logprob == -0.5 and c.completion_tokens == len(c.logprobs)
    assert server.requests[0]["messages"] == [{"role": "user", "content": "hi"}]
    assert server.requests[0]["top_logprobs"] == 1


async def test_n_is_sent_once_where_the_server_honours_it():
    with FakeOpenAI() as server:
        engine = OpenAIEngine(server.url, "fake-model")
        out = await engine.generate(CHAT.model_copy(update={"n": 4}))
        await engine.aclose()
    assert len(out) == 4 and len(server.requests) == 1 and engine.n_supported is True
    assert sum(c.prompt_tokens for c in out) == 10  # the prompt is counted once per response


async def test_fans_out_where_the_server_ignores_n():
    with FakeOpenAI(ignore_n=True) as server:
        engine = OpenAIEngine(server.url, "fake-model")
        out = await engine.generate(CHAT.model_copy(update={"n": 4}))
        assert len(out) == 4 and engine.n_supported is False
        assert len({c.text for c in out}) == 4, "fan-out must vary the seed, not repeat one sample"
        await engine.generate(CHAT.model_copy(update={"n": 3}))
        await engine.aclose()
    # first request (n=4, one choice back) + 3 fan-out; then 3 fan-out straight away
    assert len(server.requests) == 1 + 3 + 3
    assert all(r["n"] == 1 for r in server.requests[1:])


@pytest.mark.parametrize("codes", [[429], [500, 503], [429, 500, 429]])
async def test_retries_rate_limits_and_server_errors(codes):
    with FakeOpenAI(failures=codes) as server:
        engine = OpenAIEngine(server.url, "fake-model", backoff_s=0.01)
        [c] = await engine.generate(CHAT)
        await engine.aclose()
    assert "The answer is 7" in c.text and len(server.requests) == len(codes) + 1


async def test_gives_up_after_max_retries_with_the_server_error():
    import openai
    with FakeOpenAI(failures=[500] * 10) as server:
        engine = OpenAIEngine(server.url, "fake-model", backoff_s=0.01, max_retries=2)
        with pytest.raises(openai.InternalServerError):
            await engine.generate(CHAT)
        await engine.aclose()
    assert len(server.requests) == 3


async def test_client_errors_are_not_retried():
    import openai
    with FakeOpenAI(failures=[400]) as server:
        engine = OpenAIEngine(server.url, "fake-model", backoff_s=0.01)
        with pytest.raises(openai.BadRequestError):
            await engine.generate(CHAT)
        await engine.aclose()
    assert len(server.requests) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_engine_down_is_a_clear_error():
    engine = OpenAIEngine(f"http://127.0.0.1:{_closed_port()}/v1", "m", backoff_s=0.01, max_retries=1)
    with pytest.raises(EngineUnavailable, match="is not reachable"):
        await engine.check()
    with pytest.raises(EngineUnavailable, match="not reachable after 2 attempts"):
        await engine.generate(CHAT)
    await engine.aclose()


async def test_unknown_model_is_a_clear_error():
    with FakeOpenAI() as server:
        engine = OpenAIEngine(server.url, "other-model")
        with pytest.raises(EngineUnavailable, match="does not serve model 'other-model'"):
            await engine.check()
        await engine.aclose()


async def test_throttle_spaces_requests():
    import time
    with FakeOpenAI() as server:
        engine = OpenAIEngine(server.url, "fake-model", rate_limit=5)
        t0 = time.monotonic()
        for i in range(7):
            await engine.generate(CHAT.model_copy(update={"seed": i}))
        elapsed = time.monotonic() - t0
        await engine.aclose()
    assert elapsed >= 0.9, "7 requests at 5 per second cannot all go in the first second"


async def test_a_server_that_never_answers_is_a_clear_error_not_a_hang():
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does), never reads or answers
    port = silent.getsockname()[1]
    try:
        engine = OpenAIEngine(f"http://127.0.0.1:{port}/v1", "m", timeout_s=1.0)
        t0 = time.monotonic()
        with pytest.raises(EngineUnavailable, match="not reachable"):
            await engine.check()
        assert time.monotonic() - t0 < 10
        await engine.aclose()
    finally:
        silent.close()
