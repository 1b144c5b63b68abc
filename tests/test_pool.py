"""Engine replica pool: affinity keeps a problem's calls on one replica, round-robin scatters them; a replica that dies
mid-run is taken out and its calls finish on the others, charged once; it comes back when healthy; all replicas
down is one clear error. End to end: `tts eval --base-url A --base-url B` against two HTTP servers, one stopped
mid-run."""
import asyncio
import json
import os
import subprocess
import sys

import pytest

from tests.fake_openai_server import FakeOpenAI
from tts.engine_adapters.pool import EnginePool
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.kernel.context import Context
from tts.kernel.engine import EngineWrapper
from tts.kernel.errors import EngineUnavailable
from tts.kernel.types import GenerateRequest, Message, Problem
from tts.strategies import get, make_config
from tts.tasks import get as get_task

PROBLEMS = [Problem(id=str(i), question=f"Sam has {i} cards and gets {i} more. How many?", gold=str(2 * i))
            for i in range(1, 13)]


class Killable(EngineWrapper):
    """A replica that can be killed: calls in flight and later ones fail with EngineUnavailable, like a server
    that got kill -9; it can be revived."""

    def __init__(self, inner):
        super().__init__(inner)
        self.dead = asyncio.Event()
        self.calls = 0

    async def generate(self, request):
        if self.dead.is_set():
            raise EngineUnavailable("replica is dead")
        self.calls += 1
        work = asyncio.ensure_future(self.inner.generate(request))
        died = asyncio.ensure_future(self.dead.wait())
        try:
            done, _ = await asyncio.wait({work, died}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (work, died):
                if not t.done():
                    t.cancel()
            await asyncio.gather(work, died, return_exceptions=True)
        if work in done and not work.cancelled() and work.exception() is None:
            return work.result()
        raise EngineUnavailable("replica died mid-call")

    async def check(self):
        if self.dead.is_set():
            raise EngineUnavailable("replica is dead")


def _sims(k: int, **kw) -> list[Killable]:
    return [Killable(SimulatedEngine.for_problems(PROBLEMS, SimConfig(latency_per_token_s=0.001, **kw)))
            for _ in range(k)]


async def _run_all(pool, **options):
    task, spec = get_task("gsm8k"), get("sc")
    config = make_config(spec, n=4, early_stop=False, batch=False, **options)
    usage_tokens, answers = 0, []
    for p in PROBLEMS:
        ctx = Context(pool, task=task)
        a = await spec.run(ctx, p, config)
        usage_tokens += ctx.usage.completion_tokens
        answers.append(a)
    return usage_tokens, answers


async def test_affinity_keeps_each_problem_on_one_replica_round_robin_scatters():
    for policy, expect_one in (("affinity", True), ("round-robin", False)):
        replicas = [SimulatedEngine.for_problems(PROBLEMS, SimConfig(latency_per_token_s=0.0)) for _ in range(3)]
        pool = EnginePool(replicas, policy=policy)
        seen: dict[str, set[int]] = {}
        for p in PROBLEMS:
            req = GenerateRequest(messages=(Message(role="user", content=p.question),), temperature=0.7)
            for seed in range(4):
                before = [r.finished for r in replicas]
                await pool.generate(req.model_copy(update={"seed": seed}))
                used = next(i for i, r in enumerate(replicas) if r.finished != before[i])
                seen.setdefault(p.id, set()).add(used)
        assert all(len(s) == 1 for s in seen.values()) is expect_one
        used_replicas = {i for s in seen.values() for i in s}
        assert used_replicas == {0, 1, 2}  # both policies spread the problems over every replica
        assert sum(st.requests for st in pool.stats) == len(PROBLEMS) * 4


async def test_affinity_spills_to_the_least_loaded_when_the_preferred_replica_is_full():
    replicas = [SimulatedEngine.for_problems(PROBLEMS, SimConfig(latency_per_token_s=0.002)) for _ in range(2)]
    pool = EnginePool(replicas, policy="affinity", capacity=2)
    req = GenerateRequest(messages=(Message(role="user", content=PROBLEMS[0].question),), temperature=0.7)
    await asyncio.gather(*(pool.generate(req.model_copy(update={"seed": s})) for s in range(6)))
    assert sorted(st.requests for st in pool.stats) != [0, 6]  # the full replica spilled calls
    assert sum(st.spilled_here for st in pool.stats) >= 1


async def test_a_replica_killed_mid_run_loses_nothing_and_is_charged_once():
    replicas = _sims(2)
    pool = EnginePool(replicas, policy="affinity", cooldown_s=60)

    async def kill_soon():
        await asyncio.sleep(0.15)
        replicas[0].dead.set()

    killer = asyncio.create_task(kill_soon())
    tokens, answers = await _run_all(pool)
    await killer
    assert all(len(a.samples) == 4 and all(s.status == "ok" for s in a.samples) for a in answers)
    # the usage the contexts charged is exactly the tokens the replicas' finished calls returned
    assert tokens == sum(st.completion_tokens for st in pool.stats)
    assert pool.stats[0].failures >= 1 and not pool.stats[0].healthy
    assert pool.stats[1].requests > pool.stats[0].requests
    assert json.dumps(pool.describe())  # the manifest can record it


async def test_a_revived_replica_is_taken_back_after_its_cooldown():
    replicas = _sims(2)
    pool = EnginePool(replicas, policy="round-robin", cooldown_s=0.05)
    replicas[1].dead.set()
    req = GenerateRequest(messages=(Message(role="user", content=PROBLEMS[0].question),))
    for _ in range(4):
        await pool.generate(req)
    assert not pool.stats[1].healthy
    replicas[1].dead.clear()
    await asyncio.sleep(0.06)
    before = pool.stats[1].requests
    for _ in range(4):
        await pool.generate(req)
    assert pool.stats[1].healthy and pool.stats[1].requests > before


async def test_all_replicas_down_is_one_clear_error():
    replicas = _sims(2)
    for r in replicas:
        r.dead.set()
    pool = EnginePool(replicas, names=["a", "b"])
    req = GenerateRequest(messages=(Message(role="user", content="hi"),))
    with pytest.raises(EngineUnavailable, match="all 2 engine replicas are down"):
        await pool.generate(req)


def test_eval_over_two_servers_survives_one_stopping(tmp_path):
    """Two OpenAI-compatible servers; the first is stopped after a few requests. The run completes with every
    problem answered once, and the manifest's summary names both replicas with their figures."""
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"question": f"q{i}: what is {i}?", "answer": f"#### {i}"}) + "\n"
                            for i in range(30)))
    with FakeOpenAI(delay_s=0.05) as a, FakeOpenAI(delay_s=0.05) as b:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tts.app.cli", "eval", "--engine", "openai", "--model", "fake-model",
             "--base-url", a.url, "--base-url", b.url, "--route", "round-robin", "--task", "gsm8k", "--data",
             str(data), "-n", "2", "--no-early-stop", "--concurrency", "4", "--run-id", "r", "--output",
             str(tmp_path), "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        import time
        deadline = time.monotonic() + 60
        while len(a.requests) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        a.httpd.shutdown()
        a.httpd.server_close()  # connections refused from now on
        out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    rows = [json.loads(x) for x in (tmp_path / "r" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == sorted({r["id"] for r in rows}) and len(rows) == 30
    assert all("error" not in r and len(r["samples"]) == 2 for r in rows)
    pool = json.loads((tmp_path / "r" / "summary.json").read_text())["engine_applied"]["pool"]
    by_url = {r["name"]: r for r in pool["replicas"]}
    assert by_url[a.url]["failures"] >= 1 and not by_url[a.url]["healthy"]
    assert by_url[b.url]["requests"] > by_url[a.url]["requests"]
    report = subprocess.run([sys.executable, "-m", "tts.app.cli", "report", str(tmp_path / "r")],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0 and "replicas (round-robin)" in report.stdout
    assert a.url in report.stdout and b.url in report.stdout
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["calls"] == 30  # one n=2 request per problem: a failed-over call is counted once
    assert summary["completion_tokens"] == sum(r["completion_tokens"] for r in pool["replicas"])


async def test_a_problems_calls_stay_together_even_when_their_prompts_diverge():
    """PDR's refine prompts extend the draft prompt with a workspace: the context's route key (the problem) keeps
    every call of a problem on one replica."""
    replicas = [SimulatedEngine.for_problems(PROBLEMS, SimConfig(accuracy=0.4, latency_per_token_s=0.0))
                for _ in range(3)]
    pool = EnginePool(replicas, policy="affinity")
    task, spec = get_task("gsm8k"), get("pdr")
    two_rounds = 0
    for p in PROBLEMS:
        from tts.kernel.trace import Tracer

        before = [r.finished for r in replicas]
        ctx = Context(pool, task=task, tracer=Tracer(run=p.id), route_key=p.id)
        await spec.run(ctx, p, make_config(spec, drafts=3, rounds=2))
        used = [i for i, r in enumerate(replicas) if r.finished != before[i]]
        assert len(used) == 1
        two_rounds += ctx.usage.calls >= 6
    assert two_rounds >= 3  # refine rounds (prompts that differ from the drafts') did happen


async def test_the_start_check_leaves_an_unreachable_replica_out_and_refuses_when_none_answers():
    replicas = _sims(2)
    replicas[0].dead.set()
    pool = EnginePool(replicas, names=["a", "b"])
    await pool.check()
    assert [st.healthy for st in pool.stats] == [False, True]
    replicas[1].dead.set()
    with pytest.raises(EngineUnavailable, match="all 2 engine replicas are down"):
        await EnginePool(replicas, names=["a", "b"]).check()


class Hung(EngineWrapper):
    """A replica that accepts calls and never answers (its health check passes, as a hung server's /models may)."""

    def __init__(self, inner):
        super().__init__(inner)
        self.calls = self.cancelled = 0

    async def generate(self, request):
        self.calls += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def check(self):
        return None


async def test_a_hung_and_a_slow_replica_do_not_set_the_pace():
    """One replica never answers, one is 20x slower: calls stuck on the hung one are retried elsewhere after a
    deadline derived from the others' latency (and aborted there), the slow one is drained; every problem is
    answered, far sooner than the hung replica's own timeout."""
    fast = [SimulatedEngine.for_problems(PROBLEMS, SimConfig(latency_per_token_s=0.001)) for _ in range(2)]
    slow = SimulatedEngine.for_problems(PROBLEMS, SimConfig(latency_per_token_s=0.02))
    hung = Hung(SimulatedEngine.for_problems(PROBLEMS))
    pool = EnginePool([*fast, slow, hung], names=["a", "b", "slow", "hung"], policy="round-robin",
                      min_deadline_s=2.0, cooldown_s=60)
    healthy = EnginePool([SimulatedEngine.for_problems(PROBLEMS, SimConfig(latency_per_token_s=0.001))
                          for _ in range(2)], policy="round-robin")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    _, answers = await asyncio.wait_for(_run_all(pool), 120)
    troubled = loop.time() - t0
    t0 = loop.time()
    await _run_all(healthy)
    baseline = loop.time() - t0
    assert all(a.answer is not None for a in answers)
    stats = {st.name: st for st in pool.stats}
    assert stats["hung"].timeouts >= 1 and not stats["hung"].healthy and hung.cancelled == hung.calls
    assert stats["slow"].drained_slow >= 1 and not stats["slow"].healthy
    assert troubled < baseline + 20  # the hung replica's calls cost deadlines of seconds, not its 300 s timeout
    described = pool.describe()["pool"]["replicas"]
    assert {r["name"]: r["timeouts"] for r in described}["hung"] == stats["hung"].timeouts


async def test_a_fixed_deadline_applies_before_latency_is_known():
    hung = Hung(SimulatedEngine.for_problems(PROBLEMS))
    pool = EnginePool([hung, SimulatedEngine.for_problems(PROBLEMS)], names=["hung", "ok"], policy="round-robin",
                      deadline_s=0.3, cooldown_s=60)
    req = GenerateRequest(messages=(Message(role="user", content=PROBLEMS[0].question),), max_tokens=64)
    out = await asyncio.wait_for(pool.generate(req), 10)
    assert out and hung.calls == 1 and hung.cancelled == 1 and pool.stats[0].timeouts == 1
