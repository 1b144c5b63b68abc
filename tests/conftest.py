import pytest

from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.tasks import get as get_task
from tts.kernel.types import Problem


@pytest.fixture
def problems():
    return [Problem(id=f"p{i}", question=f"What is {i} plus {i}?", gold=str(2 * i)) for i in range(1, 6)]


@pytest.fixture
def gsm8k():
    return get_task("gsm8k")


def make_sim(problems, **kw) -> SimulatedEngine:
    return SimulatedEngine.for_problems(problems, SimConfig(**kw))
