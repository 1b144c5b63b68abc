"""Scorers and the strategies that choose by them: a contract every scorer kind meets (a score or None per candidate,
a choice among them, its calls charged to the run's budget as verification), the HTTP reward scorer against a fake
server in vLLM's /pooling and /classify shapes, best-of-N and weighted majority, and the close-vote judge stage."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.test_cli import tts
from tts import tasks
from tts.app.session import resolve_strategy
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.kernel.budget import Budget, BudgetConfig
from tts.kernel.context import Context
from tts.kernel.errors import ConfigError
from tts.kernel.types import Problem, Sample
from tts.kit import judging
from tts.strategies import scorers
from tts.strategies.reward_http import RewardConfig, prm_input, read_pooling

PROBLEMS = [Problem(id=f"p{i}", question=f"What is {i} plus {i}?", gold=str(2 * i)) for i in range(1, 31)]


class FakePooling:
    """vLLM's pooling endpoints in their response shapes: /pooling gives a [negative, positive] pair per step tag
    (a step containing 'wrong' scores low), /classify one probability pair. `endpoints` limits what it serves."""

    def __init__(self, endpoints=("/pooling", "/classify", "/tokenize")):
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, **body})
                path = self.path.removeprefix("/v1")
                if path == "/tokenize" and "/tokenize" in endpoints:  # its tokenizer knows <extra_0>, splits the rest
                    pieces = 1 if body["prompt"] == "<extra_0>" else len(body["prompt"])
                    return self._send(200, {"tokens": list(range(pieces)), "count": pieces, "max_model_len": 4096})
                if path not in endpoints:
                    return self._send(404, {"error": {"message": "Not Found"}})
                text = body["input"]
                if path == "/pooling":
                    steps = [s for s in text.split("<extra_0>")[:-1]]
                    pairs = [[0.9, 0.1] if "wrong" in s else [0.2, 0.8] for s in steps]
                    return self._send(200, {"data": [{"index": 0, "data": pairs}],
                                            "usage": {"prompt_tokens": len(text.split())}})
                p = 0.1 if "wrong" in text else 0.9
                return self._send(200, {"data": [{"index": 0, "probs": [1 - p, p], "label": "x"}],
                                        "usage": {"prompt_tokens": len(text.split())}})

            def _send(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pooling():
    server = FakePooling()
    yield server
    server.close()


def _candidates(problem: Problem) -> list[Sample]:
    right, wrong = problem.gold, str(int(problem.gold) + 3)
    return [Sample(index=0, text=f"Step one is wrong.\n\nThe answer is {wrong}.", answer=wrong, completion_tokens=9),
            Sample(index=1, text=f"Add them.\n\nThe answer is {right}.", answer=right, completion_tokens=6),
            Sample(index=2, text=f"A wrong guess.\n\nThe answer is {wrong}.", answer=wrong, completion_tokens=6)]


def _kinds(pooling_url: str):
    return [("verifier", {}), ("pairwise", {}), ("select", {}),
            ("reward", {"base_url": pooling_url, "process": True}),
            ("reward", {"base_url": pooling_url, "process": False})]


async def test_every_scorer_meets_the_contract(pooling):
    """Right candidate chosen (the simulated judge is always right here; the fake reward model scores 'wrong'
    steps low), one score or None per candidate, verification calls charged apart and within the budget."""
    problem = PROBLEMS[3]
    for kind, options in _kinds(pooling.url):
        engine = SimulatedEngine.for_problems(PROBLEMS, SimConfig(judge_accuracy=1.0))
        budget = Budget(BudgetConfig(max_tokens=10_000, max_calls=50))
        ctx = Context(engine, task=tasks.get("gsm8k"), budget=budget)
        spec, config = scorers.make(kind, options)
        verdict = await spec.judge(ctx, problem, _candidates(problem), config)
        assert len(verdict.scores) == 3, kind
        assert verdict.chosen == 1, (kind, verdict)
        assert ctx.usage.verify_calls == ctx.usage.calls > 0, kind
        assert budget.calls_used == ctx.usage.calls and budget.tokens_reserved == 0, kind


def test_pooling_shapes_are_read_as_vllm_writes_them():
    prm = RewardConfig(process=True, aggregate="min")
    assert read_pooling({"data": [{"data": [[0.2, 0.8], [0.6, 0.4]]}]}, prm) == pytest.approx(0.4)
    assert read_pooling({"data": [{"data": [[0.2, 0.8], [0.6, 0.4]]}]},
                        prm.model_copy(update={"aggregate": "last"})) == pytest.approx(0.4)
    assert read_pooling({"data": [{"data": [[0.5, 0.5], [0.5, 0.5]]}]},
                        prm.model_copy(update={"aggregate": "product"})) == pytest.approx(0.25)
    assert read_pooling({"data": [{"probs": [0.3, 0.7]}]}, RewardConfig(process=False)) == pytest.approx(0.7)
    assert read_pooling({"object": "error"}, prm) is None
    assert prm_input("Q?", "a\n\nb\n\n", prm) == "Q?\na<extra_0>b<extra_0>"


def test_verdicts_read_from_logprobs():
    from tts.kernel.types import TokenLogprob

    tok = TokenLogprob(token="Yes", logprob=-0.1, top=(("Yes", -0.1), (" no", -2.4), ("maybe", -3.0)))
    assert judging.p_yes((tok,), "Yes") == pytest.approx(0.9048 / (0.9048 + 0.0907), abs=1e-3)
    assert judging.p_yes(None, "No.") == 0.0 and judging.p_yes(None, "I think") is None
    assert judging.picked("Solution 3", 4) == 2 and judging.picked("9", 4) is None
    assert judging.close_vote({"1": 5, "2": 4, "3": 1}, 0.25) and not judging.close_vote({"1": 8, "2": 2}, 0.25)


async def _accuracy(expr: str, judge_accuracy: float = 0.9):
    engine = SimulatedEngine.for_problems(PROBLEMS, SimConfig(accuracy=0.35, judge_accuracy=judge_accuracy))
    spec, config = resolve_strategy(expr)
    right, usage = 0, None
    for p in PROBLEMS:
        ctx = Context(engine, task=tasks.get("gsm8k"))
        answer = await spec.run(ctx, p, config)
        right += answer.answer == p.gold
        usage = ctx.usage if usage is None else usage + ctx.usage
    return right, usage


async def test_best_of_n_and_the_judge_stage_choose_better_than_the_vote_with_a_good_judge():
    sc, sc_usage = await _accuracy("sc(n=8, early_stop=False, batch=False)")
    bon, bon_usage = await _accuracy("best-of-n(n=8)")
    weighted, _ = await _accuracy("best-of-n(n=8, weighted=True)")
    judged, judged_usage = await _accuracy("sc(n=8, early_stop=False, batch=False) | judge(kind='pairwise')")
    assert bon > sc and weighted > sc and judged >= sc
    assert sc_usage.verify_calls == 0 and bon_usage.verify_calls > 0
    # the judge stage is spent only on close votes: fewer calls than judging every problem's top two
    assert 0 < judged_usage.verify_calls < 2 * len(PROBLEMS)
    assert judged_usage.completion_tokens - judged_usage.verify_completion_tokens == sc_usage.completion_tokens


async def test_a_judge_at_chance_is_measured_not_hidden():
    bon, _ = await _accuracy("best-of-n(n=8)", judge_accuracy=0.5)
    good, _ = await _accuracy("best-of-n(n=8)", judge_accuracy=1.0)
    assert good > bon


@pytest.mark.parametrize("expr,message", [
    ("greedy | judge(kind='pairwise')", "a judge chooses among samples"),
    ("sc(n=1) | judge(kind='pairwise')", "a judge chooses among samples"),
    ("best-of-n(scorer='pairwise')", "compares candidates"),
    ("best-of-n(scorer='oracle')", "unknown scorer 'oracle'"),
    ("sc8 | judge(kind='verifier', options={'top_logprobs': 99})", "invalid option for scorer 'verifier'"),
])
def test_bad_judging_setups_are_one_error_before_any_engine(tmp_path, expr, message):
    with pytest.raises(ConfigError, match=message):
        resolve_strategy(expr)
    r = tts("eval", "--engine", "sim", "--task", "demo", "-s", expr, "--no-progress", cwd=tmp_path)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 1 and len(lines) == 1 and message in lines[0], r.stderr
    assert not (tmp_path / "results").exists()


def test_a_server_without_the_pooling_endpoint_is_refused_before_the_run(tmp_path):
    server = FakePooling(endpoints=("/classify",))
    try:
        expr = f"best-of-n(n=4, scorer='reward', scorer_options={{'base_url': '{server.url}'}})"
        r = tts("eval", "--engine", "sim", "--task", "demo", "-s", expr, "--no-progress", "--run-id", "x",
                cwd=tmp_path)
    finally:
        server.close()
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 1 and len(lines) == 1 and "has no /pooling endpoint" in lines[0], r.stderr
    assert not (tmp_path / "results" / "x").exists()


@pytest.mark.parametrize("endpoints,tag,refused", [
    (("/pooling", "/tokenize"), "<extra_0>", False),
    (("/pooling", "/tokenize"), "<step>", True),  # the tokenizer splits it into 6 pieces
    (("/pooling",), "<extra_0>", False),  # no /tokenize: the check is skipped, the server's scores decide
])
def test_a_step_tag_the_tokenizer_splits_is_refused_before_the_run(tmp_path, endpoints, tag, refused):
    server = FakePooling(endpoints=endpoints)
    try:
        expr = (f"best-of-n(n=4, scorer='reward', scorer_options={{'base_url': '{server.url}', "
                f"'step_tag': '{tag}'}})")
        r = tts("eval", "--engine", "sim", "--task", "demo", "--limit", "2", "-s", expr, "--no-progress",
                "--run-id", "x", cwd=tmp_path)
    finally:
        server.close()
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    if refused:
        assert r.returncode == 1 and len(lines) == 1 and "is 6 tokens of model" in lines[0], r.stderr
        assert not (tmp_path / "results" / "x").exists()
    else:
        assert r.returncode == 0, r.stderr


def test_eval_reports_verification_apart(tmp_path):
    r = tts("eval", "--engine", "sim", "--task", "demo", "-s", "sc(n=8, early_stop=False) | judge(margin=1.0)",
            "--run-id", "j", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "results" / "j" / "summary.json").read_text())
    # the top two classes, in both orders, on every problem whose vote has two classes
    assert 0 < summary["verify_calls"] <= 2 * summary["problems"] and summary["verify_calls"] % 2 == 0
    assert 0 < summary["verify_prompt_tokens"] < summary["prompt_tokens"]
    assert "verification:" in r.stdout
    report = tts("report", str(tmp_path / "results" / "j"), cwd=tmp_path)
    assert f"verification: {summary['verify_calls']} calls" in report.stdout
    view = tts("view", str(tmp_path / "results" / "j"), cwd=tmp_path)
    assert view.returncode == 0 and "verify_calls" in (tmp_path / "results" / "j" / "view.html").read_text()
