"""Every engine passes the same contract (tests/engine_contract.py): the simulator, the openai adapter against a
local server; vLLM's CPU build runs the same checks in the real-engine tier. Errors are checked per engine here."""
import pytest

from tests.engine_contract import CHECKS, REQ
from tests.fake_openai_server import FakeOpenAI
from tts.engine_adapters.openai_http import OpenAIEngine
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.kernel.context import Context
from tts.kernel.engine import EngineBase


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
async def test_simulator(check):
    engine = SimulatedEngine(SimConfig(latency_per_token_s=0.002, min_tokens=30, max_tokens=40))
    await check(engine)
    await engine.aclose()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
async def test_openai_adapter(check):
    with FakeOpenAI(stream_delay_s=0.01) as server:
        engine = OpenAIEngine(server.url, "fake-model")
        await check(engine)
        await engine.aclose()


async def test_openai_stream_cancel_closes_the_connection():
    import asyncio

    with FakeOpenAI(stream_delay_s=0.2) as server:
        engine = OpenAIEngine(server.url, "fake-model")
        ctx = Context(engine)
        task = asyncio.create_task(ctx.stream(REQ))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await engine.aclose()
        for _ in range(40):  # the server notices on its next write
            if server.aborted:
                break
            await asyncio.sleep(0.1)
    assert server.aborted == 1


async def test_a_stream_that_fails_is_an_error_not_a_cancel():
    class Broken(EngineBase):
        name = "broken"
        capabilities = EngineBase.capabilities.model_copy(update={"stream": True})

        async def stream(self, request):
            raise ConnectionError("the engine died")
            yield  # pragma: no cover

    ctx = Context(Broken())
    with pytest.raises(ConnectionError):
        await ctx.stream(REQ)
    [call] = [d for _, d in ctx.tracer.dag.nodes(data=True) if d["kind"] == "call"]
    assert call["status"] == "error" and "the engine died" in call["error"]
    ends = [e for e in ctx.tracer.events if e["kind"] == "call_end"]
    assert [e["status"] for e in ends] == ["error"] and ctx.budget.tokens_reserved == 0
