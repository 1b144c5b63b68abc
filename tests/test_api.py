"""The library API, in and out of a running event loop; the README's example runs as written."""
import asyncio
import re
import subprocess
import sys
from pathlib import Path

import tts
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.kernel.budget import BudgetConfig
from tts.kernel.types import Problem


async def test_solve_with_an_engine_object():
    engine = SimulatedEngine.for_problems([Problem(id="x", question="What is 20 plus 22?", gold="42")],
                                          SimConfig(accuracy=1.0))
    result = await tts.solve("What is 20 plus 22?", engine=engine, n=5, budget=BudgetConfig(max_tokens=5000),
                             task="gsm8k")
    assert result.answer == "42" and result.strategy == "self-consistency"
    assert result.simulated and result.engine == "SimulatedEngine"
    assert result.usage.calls >= 3 and sum(result.votes.values()) >= 3
    assert any(e["kind"] == "branch_start" for e in result.trace) and result.dag["nodes"]


def test_solve_sync_outside_a_loop():
    result = tts.solve_sync("What is 1 plus 1?", engine="sim", strategy="greedy")
    assert result.usage.calls == 1 and result.details.samples
    assert result.simulated and result.engine == "sim"


def test_solve_defaults_to_the_real_engine_not_the_simulator():
    """A library user who forgets engine= must not get invented answers: the default is vLLM (the local model),
    and the simulator runs only when named."""
    import pytest

    from tts.kernel.errors import ConfigError

    # no engine named: the vLLM adapter resolves the model (and refuses one it cannot find) where the simulator
    # would have answered anything
    with pytest.raises(ConfigError, match="is not a hub id"):
        tts.solve_sync("What is 1 plus 1?", model="/nonexistent/model-dir")


async def test_solve_sync_inside_a_running_loop():
    result = tts.solve_sync("What is 1 plus 1?", engine="sim", n=3)
    assert result.usage.calls >= 2
    await asyncio.sleep(0)  # the loop is still usable


def test_readme_example_runs():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(import asyncio.*?)```", readme, re.DOTALL).group(1)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).parents[1])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "42"


async def test_solve_takes_an_agents_request():
    """Messages with a tool result, tools and a JSON format, as an agent sends them; the default task is chat."""
    from tests.test_structured_votes import EMAIL, PERSON, WEATHER

    engine = SimulatedEngine(SimConfig(accuracy=0.7, latency_per_token_s=0.0))
    ask = [{"role": "system", "content": "You are a weather agent."},
           {"role": "user", "content": "What is the weather in Lima for 2 days?"}]
    called = await tts.solve(ask, engine=engine, tools=[WEATHER, EMAIL], n=8)
    assert called.tool_calls and called.tool_calls[0]["function"]["name"] == "get_weather"
    assert called.answer.startswith("tool_calls:") and called.details.chosen is not None
    turn = {"role": "assistant", "content": None, "tool_calls": called.tool_calls}
    answered = await tts.solve([*ask, turn, {"role": "tool", "tool_call_id": called.tool_calls[0]["id"],
                                             "content": "cloudy"}], engine=engine, tools=[WEATHER], n=4)
    assert answered.tool_calls is None and "cloudy" in answered.text
    shaped = await tts.solve("Extract the person: Alice is 31.", engine=engine, response_format=PERSON, n=8)
    assert shaped.answer == 'json:{"age":31,"name":"Alice"}' and '"Alice"' in shaped.text
    open_q = await tts.solve("Why is the sky blue?", engine=engine, strategy="usc", n=4)
    assert open_q.text and open_q.usage.verify_calls == 1
