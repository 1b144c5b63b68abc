"""Answer equivalence, voting rules, semantic entropy and stopping criteria."""
import math

import pytest

from tts.kit import stopping
from tts.kit.equivalence import canonicalize, equivalent, extract_math_answer
from tts.kernel.types import Sample, TokenLogprob, TraceStats
from tts.kit.voting import semantic_entropy, trace_stats, vote


@pytest.mark.parametrize("a,b", [("0.5", "1/2"), ("\\frac{1}{2}", "0.5"), ("\\dfrac12", "1/2"),
                                 ("\\frac{\\sqrt{3}}{2}", "\\sqrt{3}/2"), ("(1,2]", "(1, 2]"), ("3", "3.0"),
                                 ("x = 2", "2")])
def test_equivalent_answers(a, b):
    assert equivalent(a, b)


@pytest.mark.parametrize("a,b", [("0.5", "1/3"), ("(1,2]", "[1,2]"), ("\\sqrt{2}", "2"), ("7", "-7")])
def test_different_answers(a, b):
    assert not equivalent(a, b)


def test_canonicalize_groups_into_first_seen_representative():
    assert canonicalize(["1/2", None, "0.5", "\\dfrac12", "3", "\\frac{6}{2}"]) == ["1/2", None, "1/2", "1/2", "3", "3"]


@pytest.mark.parametrize("text,expected", [
    ("so \\boxed{\\frac{1}{\\sqrt{2}}} is it", "\\frac{1}{\\sqrt{2}}"),
    ("The answer is $\\pi/4$.", "\\pi/4"),
    ("we get 12 and then 15", "15"),
    ("nothing", None),
])
def test_extract_math_answer(text, expected):
    assert extract_math_answer(text) == expected


def smp(i, answer, tokens=10, **stats):
    st = TraceStats(tokens=tokens, mean_logprob=stats.get("lp", -1.0), mean_entropy=stats.get("ent"),
                    lowest_window_conf=stats.get("conf"))
    return Sample(index=i, text="", answer=answer, completion_tokens=tokens, stats=st)


def test_rules_disagree_where_they_should():
    samples = [smp(0, "A", tokens=100, lp=-2.0, ent=2.0, conf=0.5), smp(1, "A", tokens=120, lp=-2.0, ent=2.0, conf=0.4),
               smp(2, "B", tokens=20, lp=-0.1, ent=0.1, conf=3.0)]
    assert vote(samples, "majority")[0] == "A"
    assert vote(samples, "logprob")[0] == "B"  # 0.905 vs 2 * 0.135
    assert vote(samples, "entropy")[0] == "B"  # 10 vs 2 * 0.5
    assert vote(samples, "shortest")[0] == "B"  # 1/20 vs 2/110
    assert vote(samples, "deepconf")[0] == "B"
    with pytest.raises(ValueError, match="unknown voting rule"):
        vote(samples, "astrology")


def test_deepconf_filters_least_confident():
    samples = [smp(0, "A", conf=1.0), smp(1, "A", conf=1.1), smp(2, "B", conf=5.0), smp(3, "B", conf=0.1)]
    # keep the top half: B (5.0) and A (1.1) vote; B wins on weight, though without filtering A would too (2.1 vs 5.1)
    _, scores = vote(samples, "deepconf")
    assert set(scores) == {"A", "B"}


def test_rules_need_logprobs():
    with pytest.raises(ValueError, match="needs per-token logprobs"):
        vote([Sample(index=0, text="", answer="1", completion_tokens=3)], "entropy")


def test_trace_stats_entropy_and_lowest_window():
    confident = [TokenLogprob(token="a", logprob=-0.01, top=(("a", -0.01), ("b", -5.0)))] * 8
    unsure = [TokenLogprob(token="a", logprob=-0.69, top=(("a", -0.69), ("b", -0.70)))] * 8
    s1, s2 = trace_stats(confident, window=4), trace_stats(unsure, window=4)
    assert s1.mean_entropy < s2.mean_entropy and abs(s2.mean_entropy - math.log(2)) < 0.01
    assert s1.lowest_window_conf > s2.lowest_window_conf
    mixed = trace_stats(confident[:4] + unsure[:4], window=4)
    assert abs(mixed.lowest_window_conf - s2.lowest_window_conf) < 1e-9  # the weakest stretch sets it


def test_semantic_entropy():
    assert semantic_entropy(["1", "1", "1"]) == 0.0
    assert abs(semantic_entropy(["1", "2"]) - math.log(2)) < 1e-9
    assert semantic_entropy(["1", "2", "3", "4"]) > semantic_entropy(["1", "1", "1", "2"])


# Stopping rules: each must stop when the vote is clear, and must not stop too early.
def test_decided_rule():
    rule = stopping.make("decided")
    assert rule({"a": 5}, 3) and not rule({"a": 4}, 4)


def test_lead_rule():
    rule = stopping.make("lead", k=3)
    assert rule({"a": 3}, 10) and rule({"a": 4, "b": 1}, 10)
    assert not rule({"a": 2}, 10) and not rule({"a": 4, "b": 2}, 10)


def test_beta_rule():
    rule = stopping.make("beta", confidence=0.95)
    assert rule({"a": 5}, 59)  # P(p > 1/2 | 5-0) = 1 - 1/64 > 0.95
    assert rule({"a": 4}, 60)  # 1 - 1/32 = 0.969
    assert not rule({"a": 2}, 60)  # 1 - 1/8 = 0.875
    assert not rule({"a": 3, "b": 2}, 60) and not rule({"a": 6, "b": 3}, 60)
    assert rule({"a": 10, "b": 2}, 60)
    assert stopping.beta_prob_leader(4, 0) == pytest.approx(1 - 1 / 32)
    assert stopping.beta_prob_leader(3, 2) == pytest.approx(0.65625)


def test_dirichlet_rule():
    rule = stopping.make("dirichlet", confidence=0.95)
    assert rule({"a": 9}, 50)
    assert not rule({"a": 2, "b": 1}, 50) and not rule({"a": 5, "b": 4}, 50)
    assert not rule({"a": 1}, 50)  # too few votes
