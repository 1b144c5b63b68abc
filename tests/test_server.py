"""`tts serve` as a real process, driven by the openai client: strategies by model name, usage over all branches,
streamed consensus, concurrent clients, and cancellation when a client goes away."""
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import httpx
import openai
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(*args: str):
    """`tts serve --engine sim` as a real process on a free port: yields its URL, then stops it."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tts.app.cli", "serve", "--engine", "sim", "--port", str(port),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/v1/models", timeout=1)
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def server():
    yield from serve("--sim-latency", "0.004", "--task", "gsm8k")


def stats(url):
    return json.loads(urllib.request.urlopen(f"{url}/tts/stats", timeout=5).read())


QUESTION = [{"role": "user", "content": "Tom has 3 bags of 4 apples. How many apples?"}]


async def test_models_and_a_self_consistency_completion(server):
    client = openai.AsyncOpenAI(base_url=f"{server}/v1", api_key="x")
    ids = [m.id for m in (await client.models.list()).data]
    # every registered strategy that answers on its own, by name and alias, from the registry
    assert {"sc:sim", "self-consistency:sim", "greedy:sim", "deepconf:sim", "best-of-n:sim", "code-sc:sim"} <= set(ids)
    assert "judge:sim" not in ids and "compose:sim" not in ids
    r = await client.chat.completions.create(model="sc8:sim", messages=QUESTION)
    extra = r.model_extra["tts"]
    assert r.choices[0].message.content and sum(extra["votes"].values()) >= 3
    g = await client.chat.completions.create(model="greedy:sim", messages=QUESTION)
    assert r.usage.completion_tokens > g.usage.completion_tokens  # every branch's tokens are counted
    assert r.usage.prompt_tokens >= 3 * g.usage.prompt_tokens
    await client.close()


async def test_stream_sends_consensus_then_the_answer(server):
    client = openai.AsyncOpenAI(base_url=f"{server}/v1", api_key="x")
    stream = await client.chat.completions.create(model="sc8:sim", messages=QUESTION, stream=True)
    consensus, content, last = [], "", None
    async for chunk in stream:
        extra = chunk.model_extra or {}
        if "tts" in extra and "consensus" in extra["tts"]:
            consensus.append(extra["tts"]["consensus"])
            assert not content, "consensus updates come before the final content"
        if chunk.choices and chunk.choices[0].delta.content:
            content += chunk.choices[0].delta.content
        last = chunk
    assert consensus and content and last.usage.completion_tokens > 0
    assert last.model_extra["tts"]["answer"] == consensus[-1] or last.model_extra["tts"]["answer"] in consensus
    await client.close()


async def test_sixteen_concurrent_clients(server):
    clients = [openai.AsyncOpenAI(base_url=f"{server}/v1", api_key="x") for _ in range(16)]
    results = await asyncio.gather(*(c.chat.completions.create(model="sc4:sim", messages=QUESTION) for c in clients))
    assert all(r.choices[0].message.content for r in results)
    for c in clients:
        await c.close()


async def test_client_disconnect_cancels_the_branches(server):
    before = stats(server)
    body = {"model": "sc8:sim", "messages": QUESTION, "max_tokens": 400}
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ReadTimeout):
            # sim: ~20-60 tokens at 4 ms each per sample; a 2000-token question is long; give up after 0.1 s
            await http.post(f"{server}/v1/chat/completions", json={**body, "messages": [
                {"role": "user", "content": "long " * 10}]}, timeout=httpx.Timeout(0.1, connect=2))
    deadline = time.monotonic() + 10
    while stats(server)["cancelled"] == before["cancelled"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    after = stats(server)
    assert after["cancelled"] == before["cancelled"] + 1
    assert after["engine_aborted"] > before["engine_aborted"]
    assert after["in_flight"] == 0


async def test_unknown_model_is_a_clear_400(server):
    client = openai.AsyncOpenAI(base_url=f"{server}/v1", api_key="x")
    with pytest.raises(openai.BadRequestError, match="unknown model 'gpt-9'"):
        await client.chat.completions.create(model="gpt-9", messages=QUESTION)
    await client.close()
