"""Real-engine tier: vLLM's CPU build with SmolLM2-135M, in-process and behind vLLM's own OpenAI server.

Skipped when vLLM or the model is missing, unless TTS_REQUIRE_REAL_ENGINE=1 (CI sets it), where that is a failure.
"""
import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tts.kernel.context import Context
from tts.kernel.types import GenerateRequest, Message

pytestmark = pytest.mark.real_engine
MODEL = "smollm2-135m"
PREFIX = ("You are a patient math tutor. Explain each step of your reasoning in plain words, check the arithmetic "
          "twice, and finish with the final answer as a number. ") * 12


def model_dir() -> str:
    try:
        import vllm  # noqa: F401
        from tts.engine_adapters.local_models import is_ready, model_dir as path
    except ImportError as e:
        reason = f"vLLM not installed: {e}"
    else:
        if is_ready(MODEL):
            return str(path(MODEL))
        reason = f"{MODEL} not set up (tts setup-model {MODEL})"
    if os.environ.get("TTS_REQUIRE_REAL_ENGINE") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def chat(text: str, **kw) -> GenerateRequest:
    return GenerateRequest(messages=(Message(role="user", content=text),), **kw)


async def test_vllm_adapter_in_process(gsm8k):
    from tts.engine_adapters.vllm_engine import VLLMEngine
    from tts.strategies.self_consistency import SCConfig, run
    from tts.kernel.types import Problem

    from tts.engine_adapters.vllm_engine import cpu_dtype

    engine = VLLMEngine.start(model_dir(), max_model_len=2048)
    try:
        assert engine.describe()["dtype"] == cpu_dtype()  # the manifest says what the samples were computed in
        [c] = await engine.generate(chat("What is 2 + 3?", max_tokens=24))
        assert c.text.strip() and 0 < c.completion_tokens <= 24 and c.prompt_tokens > 5
        assert c.finish_reason in ("stop", "length")

        # Requests sharing a long prefix: after one warms the cache, the others read whole blocks from it.
        await engine.generate(chat(PREFIX + "Question 0: what is 1 + 1?", max_tokens=4))
        shared = await asyncio.gather(*(engine.generate(chat(PREFIX + f"Question {i}: what is {i} + {i}?",
                                                             max_tokens=4, temperature=0.7)) for i in range(1, 5)))
        cached = [r[0].cached_prompt_tokens for r in shared]
        prompts = [r[0].prompt_tokens for r in shared]
        assert all(p > 256 for p in prompts)
        assert all(c_ >= 128 for c_ in cached), f"no prefix-cache hits: cached={cached} of prompts={prompts}"

        # Logprobs come back per token, with alternatives.
        [lp] = await engine.generate(chat("Say hi.", max_tokens=5, logprobs=2))
        assert lp.logprobs and len(lp.logprobs) == lp.completion_tokens and lp.logprobs[0].top

        # DeepConf online inside the engine: a threshold above any confidence ends the trace once its first window
        # is full (the logits processor forces the end token); a threshold below every confidence never does.
        from tts.kernel.types import ConfidenceStop

        always = ConfidenceStop(threshold=1e6, window=8, top_k=5)
        [cut] = await engine.generate(chat("Count from 1 to 100.", max_tokens=64, confidence_stop=always))
        assert cut.finish_reason == "confidence" and cut.completion_tokens == 8, (cut.finish_reason, cut.text)
        never = ConfidenceStop(threshold=-1e6, window=8, top_k=5)
        [whole] = await engine.generate(chat("Count from 1 to 100.", max_tokens=64, confidence_stop=never))
        assert whole.finish_reason == "length" and whole.completion_tokens == 64
        # streamed chunks carry each new token's confidence when logprobs are asked for
        chunks = [ch async for ch in engine.stream(chat("Say hi.", max_tokens=12, logprobs=5))]
        assert sum(len(ch.confidence) for ch in chunks) == chunks[-1].completion.completion_tokens
        assert all(c_ > 0 for ch in chunks for c_ in ch.confidence)

        # Cancelling the awaiting task aborts the request inside the engine; the engine keeps serving.
        task = asyncio.create_task(engine.generate(chat("Count from 1 to 500.", max_tokens=1000)))
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert engine.aborted == 1
        assert engine.llm.get_num_unfinished_requests() == 0

        # Through the context a single-sample call is streamed (vLLM's stream is metered): cancelled, it is charged
        # the tokens it generated; finished, it comes back as generate() gives it (logprobs, the confidence stop).
        from tts.kernel.engine import EngineWrapper

        class Watching(EngineWrapper):  # sees the stream's chunks, so the cancel comes after tokens, on a busy host too
            chunks = 0

            async def stream(self, request):
                async for chunk in self.inner.stream(request):
                    Watching.chunks += 1
                    yield chunk

        ctx = Context(Watching(engine))
        task = asyncio.create_task(ctx.generate(chat("Count from 1 to 500.", max_tokens=1000)))
        for _ in range(600):
            if Watching.chunks >= 3:
                break
            await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert ctx.usage.calls == 1 and 0 < ctx.usage.completion_tokens < 1000 and ctx.budget.tokens_used > 0
        assert engine.llm.get_num_unfinished_requests() == 0
        [cut] = await Context(engine).generate(chat("Count from 1 to 100.", max_tokens=64, confidence_stop=always))
        assert cut.finish_reason == "confidence" and cut.completion_tokens == 8 and len(cut.logprobs) == 8

        # An agent's JSON request: decoding constrained to the schema (xgrammar), so even this small model meets it
        import json

        import jsonschema

        schema = {"type": "object", "properties": {"name": {"type": "string", "enum": ["Alice", "Bob"]},
                                                   "age": {"type": "integer"}},
                  "required": ["name", "age"], "additionalProperties": False}
        fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
        [js] = await engine.generate(chat("Alice is 31 years old. Her name and age as JSON:", max_tokens=40,
                                          response_format=fmt))
        jsonschema.validate(json.loads(js.text), schema)

        # Self-consistency end to end through the context.
        ctx = Context(engine, task=gsm8k)
        answer = await run(ctx, Problem(id="t", question="What is 3 plus 4?", gold="7"),
                           SCConfig(n=4, max_tokens=48))
        assert len(answer.samples) == 4 and ctx.usage.calls >= 1
        # a sample the early stop cancelled is charged what it generated (vLLM's stream is metered), and its
        # Sample says so: usage is the sum of every sample's tokens, cancelled ones included
        assert ctx.usage.completion_tokens == sum(s.completion_tokens for s in answer.samples)

        # Beam search over steps, the model scoring its own partial solutions (P(yes), charged as verification):
        # a round extends at most n beams, and a continued beam reads its question from the prefix cache (vLLM's
        # CPU build caches whole blocks of 128 tokens: the long tutor prompt makes the shared prefix span some)
        from tts.kernel.trace import Tracer
        from tts.strategies.beam import BeamConfig, run_beam

        question = PREFIX + "Tom has 3 boxes with 4 apples each and eats 2. How many apples are left?"
        tracer = Tracer(run="beam")
        ctx = Context(engine, task=gsm8k.bind(Problem(id="b", question=question)), tracer=tracer)
        answer = await run_beam(ctx, Problem(id="b", question=question, gold="10"),
                                BeamConfig(n=4, width=2, max_steps=3, step_tokens=48, max_tokens=144))
        starts = {e["node"]: e for e in tracer.events if e["kind"] == "call_start"}
        ends = [(starts[e["node"]], e) for e in tracer.events if e["kind"] == "call_end"]
        policy = [(s, e) for s, e in ends if s.get("purpose") != "verify"]
        continued = [e for s, e in policy if s.get("continue_final")]
        assert len(policy) <= 4 * answer.meta["rounds"] and answer.meta["finished"] <= 4
        assert sum(not s.get("continue_final") for s, _ in policy) == 4  # the first round: n beams from the question
        assert continued and all(e["cached_prompt_tokens"] >= 128 for e in continued), continued
        verified = [e for s, e in ends if s.get("purpose") == "verify"]
        assert ctx.usage.verify_calls == len(verified) > 0
        assert ctx.usage.verify_completion_tokens == sum(e["completion_tokens"] for e in verified)
        assert ctx.usage.completion_tokens == sum(e["completion_tokens"] for _, e in ends)
    finally:
        await engine.aclose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_openai_adapter_against_vllm_server(tmp_path):
    from tts.engine_adapters.openai_http import OpenAIEngine

    path, port = model_dir(), _free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", path, "--served-model-name", MODEL,
         "--host", "127.0.0.1", "--port", str(port), "--enable-prefix-caching", "--enforce-eager",
         "--max-model-len", "2048", "--enable-prompt-tokens-details"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"})
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 400
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "vLLM server did not start"
                await asyncio.sleep(2)
        engine = OpenAIEngine(url, MODEL)
        await engine.check()
        out = await engine.generate(chat("What is 2 + 3?", max_tokens=16, n=2, temperature=0.8))
        assert len(out) == 2 and engine.n_supported is True and all(c.text for c in out)
        await engine.generate(chat(PREFIX + "Question 0: what is 1 + 1?", max_tokens=4))
        [c] = await engine.generate(chat(PREFIX + "Question 1: what is 2 + 2?", max_tokens=4))
        assert c.prompt_tokens > 256 and c.cached_prompt_tokens >= 128
        await engine.aclose()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_engine_processes_die_with_a_killed_parent(tmp_path):
    """kill -9 the process that started vLLM: 10 s later none of the engine's processes survives."""
    model = model_dir()
    script = tmp_path / "start.py"
    script.write_text(
        "import sys, time\n"
        "from tts.engine_adapters.vllm_engine import VLLMEngine\n"
        "from tts.engine_adapters.watchdog import child_pids\n"
        "if __name__ == '__main__':\n"
        f"    engine = VLLMEngine.start({model!r}, max_model_len=512)\n"
        "    kids = [p for p in child_pids() if p != engine._watchdog.pid]\n"
        "    print('PIDS', ' '.join(map(str, kids)), flush=True)\n"
        "    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        line = ""
        while not line.startswith("PIDS"):  # vLLM logs to stdout too
            line = proc.stdout.readline()
            assert line, "the engine script ended before starting vLLM"
        kids = [int(p) for p in line.split()[1:]]
        assert kids, "the engine started no child process"
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 10
        alive = kids
        while alive and time.monotonic() < deadline:
            time.sleep(0.5)
            alive = [p for p in kids if os.path.exists(f"/proc/{p}") and
                     open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"]
        assert alive == [], f"engine processes survived their parent: {alive}"
    finally:
        proc.kill()


async def test_vllm_passes_the_engine_contract():
    from tests.engine_contract import CHECKS
    from tts.engine_adapters.vllm_engine import VLLMEngine

    engine = VLLMEngine.start(model_dir(), max_model_len=1024)
    try:
        for check in CHECKS:
            await check(engine)
    finally:
        await engine.aclose()
