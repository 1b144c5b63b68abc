"""Beam search and DVTS over reasoning steps: the scorer, not luck, picks the beams that survive (on the simulator,
whose steps slip with a set probability and whose verifier scores partial solutions down for a slip)."""
import asyncio

import pytest

from tts import tasks
from tts.app.session import Session, resolve_strategy
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.kernel.errors import ConfigError
from tts.kernel.types import Problem

PROBLEMS = [Problem(id=f"p{i}", question=f"Question number {i}: what is {i} plus {i}?", gold=str(2 * i))
            for i in range(30)]


def run_all(strategy: str, judge_accuracy: float):
    engine = SimulatedEngine.for_problems(PROBLEMS, SimConfig(accuracy=0.6, latency_per_token_s=0.0,
                                                              judge_accuracy=judge_accuracy))
    spec, config = resolve_strategy(strategy, {})

    async def go():
        return [await Session(engine, tasks.get("gsm8k"), spec, config).solve(p) for p in PROBLEMS]

    return asyncio.run(go())


@pytest.mark.parametrize("strategy", ["beam(n=8, width=4, pick='best')", "beam(n=8, width=2, dvts=True)"])
def test_a_good_scorer_steers_the_search(strategy):
    guided = run_all(strategy, judge_accuracy=0.9)
    blind = run_all(strategy, judge_accuracy=0.5)  # the verifier's verdicts are coin flips
    right = lambda runs: sum(bool(s.row.get("correct")) for s in runs)  # noqa: E731
    print(strategy, "guided", right(guided), "blind", right(blind))
    assert right(guided) >= 26 and right(guided) - right(blind) >= 8
    for s in guided:
        assert s.usage.verify_calls >= s.answer.meta["rounds"]  # every round's beams were scored, reported apart
        assert s.answer.meta["finished"] == len(s.answer.samples) >= 1


def test_dvts_keeps_one_beam_per_subtree():
    from tts.strategies.beam import Beam, BeamConfig, _keep

    beams = [Beam(text=str(i), tree=i % 2, score=s) for i, s in enumerate([0.1, 0.2, 0.9, 0.8, 0.5, 0.3])]
    assert [b.text for b in _keep(beams, BeamConfig(n=4, width=2, dvts=True))] == ["2", "3"]
    assert [b.text for b in _keep(beams, BeamConfig(n=4, width=2))] == ["2", "3"]
    assert [b.text for b in _keep(beams, BeamConfig(n=6, width=2))] == ["2", "3", "4"]


@pytest.mark.parametrize("expr,named", [("beam(n=6, width=4)", "multiple of width"),
                                        ("beam(scorer='pairwise')", "needs a score per beam"),
                                        ("beam(scorer='nope')", "unknown scorer")])
def test_bad_beam_configs_are_config_errors(expr, named):
    with pytest.raises(ConfigError, match=named):
        resolve_strategy(expr, {})


def test_no_round_grows_more_beams_than_n_and_every_grown_beam_is_scored():
    """Search invariants, read from the run's DAG: each round's step branches are at most n, and the scorer's branches
    that follow a round are exactly as many as the beams it grew."""
    from tts.app.session import Session

    engine = SimulatedEngine.for_problems(PROBLEMS, SimConfig(accuracy=0.6, latency_per_token_s=0.0))
    spec, config = resolve_strategy("beam(n=8, width=4)", {})
    for p in PROBLEMS[:10]:
        solved = asyncio.run(Session(engine, tasks.get("gsm8k"), spec, config).solve(p))
        labels = [n["label"] for n in solved.tracer.dag_json()["nodes"] if n["kind"] == "branch"]
        rounds = [label for label in labels if label.startswith("step")]
        assert rounds and len(rounds) == labels.count("verify")  # one verdict per grown beam
        per_round = {label: rounds.count(label) for label in set(rounds)}
        assert max(per_round.values()) <= 8 and per_round["step0"] == 8
        assert len(per_round) == solved.answer.meta["rounds"]
