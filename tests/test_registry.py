"""Adding a strategy is one module and one registration: a toy strategy registered here (no other edit) is listed
by `tts strategies`, served by `tts serve` under its name, and runs a request there."""
from starlette.testclient import TestClient
from typer.testing import CliRunner

from tts.app.cli import app
from tts.app.server import build_app
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.kernel.types import Answer, Frozen, GenerateRequest
from tts.strategies import StrategySpec, register


class EchoConfig(Frozen):
    n: int = 2
    max_tokens: int = 32


async def run_echo(ctx, problem, config: EchoConfig) -> Answer:
    completions = await ctx.generate(GenerateRequest(messages=ctx.task.messages(problem), n=config.n,
                                                     max_tokens=config.max_tokens))
    return Answer(answer=f"echo of {len(completions)}", meta={"toy": True})


register(StrategySpec("toy-echo", run_echo, EchoConfig, aliases=("echo",), description="a toy strategy for a test"))


def test_a_registered_strategy_is_listed_and_served_with_no_other_edit():
    listed = CliRunner().invoke(app, ["strategies"])
    assert listed.exit_code == 0 and "toy-echo (also: echo): a toy strategy for a test" in listed.output
    assert "-o n=2 max_tokens=32" in listed.output
    with TestClient(build_app(SimulatedEngine(SimConfig(latency_per_token_s=0.0)), upstream="sim")) as client:
        ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
        assert "toy-echo:sim" in ids and "echo:sim" in ids
        r = client.post("/v1/chat/completions", json={"model": "echo3:sim",
                                                       "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200, r.text
        assert r.json()["tts"]["answer"] == "echo of 3" and r.json()["usage"]["completion_tokens"] > 0


def test_a_composition_comes_in_the_strategy_field():
    with TestClient(build_app(SimulatedEngine(SimConfig(latency_per_token_s=0.0)), upstream="sim")) as client:
        r = client.post("/v1/chat/completions", json={
            "model": "sc:sim", "strategy": "sc(n=4, early_stop=False) | judge(margin=1.0)",
            "messages": [{"role": "user", "content": "What is 2 plus 2?"}]})
        assert r.status_code == 200, r.text
        verification = r.json()["usage"].get("tts_verification")
        assert verification is None or verification["calls"] % 2 == 0  # pairwise: both orders
        bad = client.post("/v1/chat/completions", json={"model": "sc:sim", "strategy": "sc(n=1) | judge()",
                                                         "messages": [{"role": "user", "content": "x"}]})
        assert bad.status_code == 400 and "a judge chooses among samples" in bad.json()["error"]["message"]
