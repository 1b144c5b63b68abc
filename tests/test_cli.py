"""The CLI end to end on the simulator: results folder, resume after a kill, and clear errors for bad input."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fake_openai_server import FakeOpenAI

TTS = [sys.executable, "-m", "tts.app.cli"]


def tts(*args, cwd, timeout=120):
    return subprocess.run([*TTS, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "problems.jsonl"
    with path.open("w") as f:
        for i in range(1, 31):
            f.write(json.dumps({"question": f"Ann has {i} apples and buys {i} more. How many?",
                                "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"}) + "\n")
    return path


def test_eval_writes_results_trace_and_summary(tmp_path):
    r = tts("eval", "--engine", "sim", "-n", "4", "--limit", "6", "--run-id", "r", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "results" / "r"
    assert "accuracy:" in r.stdout and str(Path("results") / "r") in r.stdout
    lines = rows(run)
    assert len(lines) == 6 and len({x["id"] for x in lines}) == 6
    summary = json.loads((run / "summary.json").read_text())
    assert summary["problems"] == 6 and summary["correct"] == sum(x["correct"] for x in lines)
    assert summary["completion_tokens"] == sum(x["usage"]["completion_tokens"] for x in lines) > 0
    assert summary["config"]["strategy_config"]["n"] == 4
    kinds = {json.loads(line)["kind"] for line in (run / "trace.jsonl").read_text().splitlines()}
    assert {"branch_start", "call_start", "call_end", "branch_end", "dag"} <= kinds


def test_resume_after_kill_loses_and_duplicates_nothing(tmp_path, data):
    args = ["eval", "--engine", "sim", "--data", str(data), "-n", "4", "--no-early-stop", "--concurrency", "2",
            "--sim-latency", "0.004", "--no-progress"]
    ref = tts(*args, "--run-id", "ref", cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr
    for attempt in range(2):  # killed twice, as a batch job on a shared machine may be
        proc = subprocess.Popen([*TTS, *args, "--run-id", "killed", *(["--resume"] if attempt else [])],
                                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        results = tmp_path / "results" / "killed" / "results.jsonl"
        deadline = time.monotonic() + 60
        want = 5 + 10 * attempt
        while time.monotonic() < deadline and (not results.exists() or
                                               results.read_text().count("\n") < want):
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert results.read_text().count("\n") < 30, "the run finished before it could be killed"
    # Simulate a kill in the middle of a write: a partial last line must be dropped, not crash the resume.
    with results.open("a") as f:
        f.write('{"id": "data-')
    done = tts(*args, "--run-id", "killed", "--resume", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    killed, full = rows(tmp_path / "results" / "killed"), rows(tmp_path / "results" / "ref")
    assert sorted(x["id"] for x in killed) == sorted(x["id"] for x in full)
    assert len(killed) == 30
    strip = lambda rs: sorted((x["id"], x["answer"], x["correct"], x["votes"]) for x in rs)
    assert strip(killed) == strip(full)
    s1 = json.loads((tmp_path / "results" / "killed" / "summary.json").read_text())
    s2 = json.loads((tmp_path / "results" / "ref" / "summary.json").read_text())
    for key in ("problems", "correct", "accuracy", "completion_tokens", "calls"):
        assert s1[key] == s2[key], key


def test_resume_refuses_a_different_run(tmp_path):
    assert tts("eval", "--engine", "sim", "--limit", "2", "--run-id", "r", "--no-progress", cwd=tmp_path).returncode == 0
    r = tts("eval", "--engine", "sim", "--limit", "2", "--run-id", "r", "-n", "3", "--resume", "--no-progress",
            cwd=tmp_path)
    assert r.returncode == 1 and "started with different strategy_config" in r.stderr
    r = tts("eval", "--engine", "sim", "--limit", "2", "--run-id", "r", "--no-progress", cwd=tmp_path)
    assert r.returncode == 1 and "pass --resume" in r.stderr


def one_error_line(r):
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 1, r.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def test_missing_data_file(tmp_path):
    line = one_error_line(tts("eval", "--engine", "sim", "--data", "nope.jsonl", cwd=tmp_path))
    assert "data file not found: nope.jsonl" in line


def test_malformed_data_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "#### 1"}\n{"question": "no answer"}\n')
    assert "bad.jsonl:2: missing an answer field" in one_error_line(
        tts("eval", "--engine", "sim", "--data", str(bad), cwd=tmp_path))
    bad.write_text('{"question": "q", "answer": "#### 1"}\nnot json\n')
    assert "bad.jsonl:2: not valid JSON" in one_error_line(tts("eval", "--engine", "sim", "--data", str(bad),
                                                                cwd=tmp_path))


def test_unknown_strategy_engine_and_task(tmp_path):
    assert "unknown strategy 'magic'" in one_error_line(tts("eval", "--engine", "sim", "--strategy", "magic",
                                                            cwd=tmp_path))
    assert "unknown engine 'gpt9'" in one_error_line(tts("eval", "--engine", "gpt9", cwd=tmp_path))
    assert "unknown task 'chess'" in one_error_line(tts("eval", "--engine", "sim", "--task", "chess", cwd=tmp_path))


def test_engine_down(tmp_path):
    line = one_error_line(tts("eval", "--engine", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
                              cwd=tmp_path))
    assert "engine at http://127.0.0.1:9/v1 is not reachable" in line


def test_engine_dying_mid_run_keeps_finished_results(tmp_path):
    """The server answers 4 problems' requests, then goes away: the 4 stay, the run ends with one clear line."""
    with FakeOpenAI(failures=[]) as server:
        args = ["eval", "--engine", "openai", "--base-url", server.url, "--model", "fake-model", "-n", "2",
                "--concurrency", "1", "--run-id", "r", "--no-progress", "--no-early-stop"]
        proc = subprocess.Popen([*TTS, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        results = tmp_path / "results" / "r" / "results.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not results.exists() or results.read_text().count("\n") < 4):
            time.sleep(0.005)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert [line for line in err.splitlines() if line.strip()][-1].startswith("error: engine at")
    kept = rows(tmp_path / "results" / "r")
    assert 4 <= len(kept) < 20 and all("error" not in x for x in kept)


def test_solve_prints_answer_votes_and_tokens(tmp_path):
    r = tts("solve", "What is 2 plus 2?", "--engine", "sim", "-n", "5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("answer: ") and "votes: {" in r.stdout and "generated" in r.stdout


def test_sigterm_stops_cleanly_and_keeps_results(tmp_path, data):
    args = ["eval", "--engine", "sim", "--data", str(data), "-n", "4", "--concurrency", "1", "--sim-latency", "0.01",
            "--run-id", "t", "--no-progress"]
    proc = subprocess.Popen([*TTS, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = tmp_path / "results" / "t" / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not results.exists() or results.read_text().count("\n") < 3):
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "continue with --resume" in err
    kept = rows(tmp_path / "results" / "t")
    assert 3 <= len(kept) < 30 and len({r["id"] for r in kept}) == len(kept)


def test_report_compare_and_trace(tmp_path):
    for args in (["-n", "8", "--no-early-stop", "--run-id", "sc"], ["--strategy", "greedy", "--run-id", "g"]):
        assert tts("eval", "--engine", "sim", "--limit", "6", "--no-progress", *args, cwd=tmp_path).returncode == 0
    r = tts("report", "results/sc", "results/g", "--plots", "plots", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "task gsm8k" and any("self-consistency" in x for x in lines) and any("greedy" in x for x in lines)
    assert (tmp_path / "plots" / "gsm8k.png").stat().st_size > 10_000
    r = tts("compare", "results/sc", "results/g", "--budget", "100", cwd=tmp_path)
    assert r.returncode == 0 and "self-consistency   n=" in r.stdout
    r = tts("trace", "results/sc", "--png", "timeline.png", "--svg", "timeline.svg", cwd=tmp_path)
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0].startswith("  0 [batch] finished ") and "tokens=" in lines[0]
    assert (tmp_path / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "timeline.svg").read_bytes()[:2000]
    assert "not a run folder" in one_error_line(tts("report", "nowhere", cwd=tmp_path))


def test_job_file_runs_several_strategies_with_overrides_and_manifest(tmp_path):
    (tmp_path / "job.toml").write_text(
        'engine = "sim"\nlimit = 4\n\n[[runs]]\nstrategy = "sc"\nn = 4\nrun_id = "a"\n\n'
        '[[runs]]\nstrategy = "pdr"\nrun_id = "b"\noptions = {drafts = 2, rounds = 3}\n')
    r = tts("eval", "--config", "job.toml", "--limit", "3", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("accuracy:") == 2
    a = json.loads((tmp_path / "results" / "a" / "config.json").read_text())
    b = json.loads((tmp_path / "results" / "b" / "config.json").read_text())
    assert a["limit"] == 3 and a["strategy_config"]["n"] == 4  # the command line beats the file
    assert b["strategy_config"]["drafts"] == 2 and b["strategy_config"]["rounds"] == 3
    assert len(a["manifest"]["git_revision"] or "x" * 40) == 40 and a["manifest"]["seed"] == 0
    assert len(rows(tmp_path / "results" / "b")) == 3
    r = tts("eval", "--engine", "sim", "--strategy", "pdr", "-o", "rounds=2", "-o", "nonsense=1", cwd=tmp_path)
    assert "has no option nonsense" in one_error_line(r)
    (tmp_path / "bad.toml").write_text("[[runs]]\nstrategy = 'sc'\ncolour = 'red'\n")
    assert "run 1: colour" in one_error_line(tts("eval", "--config", "bad.toml", cwd=tmp_path))


def test_job_file_in_tables_builds_the_same_typed_spec(tmp_path):
    """A job file may name the spec's parts as tables; a run's table overrides the file's, the command line both;
    a key a part does not have, or a flag the chosen strategy does not take, is one error line."""
    from tts.app.jobs import load_job
    from tts.app.spec import make_spec

    (tmp_path / "job.toml").write_text(
        '[engine]\nkind = "sim"\naccuracy = 0.9\n\n[problems]\nlimit = 4\n\n[budget]\ntokens = 900\n\n'
        '[[runs]]\n[runs.strategy]\nname = "pdr"\nrounds = 3\n[runs.output]\nrun_id = "b"\n\n'
        '[[runs]]\n[runs.engine]\naccuracy = 0.5\n[runs.strategy]\nname = "sc"\nn = 4\n')
    first, second = load_job(tmp_path / "job.toml", {"limit": 3})
    assert first.engine.kind == second.engine.kind == "sim"
    assert (first.engine.accuracy, second.engine.accuracy) == (0.9, 0.5)
    assert first.problems.limit == second.problems.limit == 3  # the command line beats the file
    assert first.strategy.resolve()[1].rounds == 3 and second.strategy.resolve()[1].n == 4
    assert first.budget.per_problem.max_tokens == 900 and first.output.run_id == "b"
    flat = make_spec({"engine": "sim", "sim_accuracy": 0.9, "limit": 3, "budget_tokens": 900, "strategy": "pdr",
                      "options": {"rounds": 3}, "run_id": "b"})
    assert flat == first  # the flags and the tables are one vocabulary
    from tts.app.spec import RunSpec

    assert RunSpec.model_validate_json(first.model_dump_json()) == first  # what a Ray worker receives
    r = tts("eval", "--config", "job.toml", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.count("accuracy:") == 2, r.stderr
    (tmp_path / "bad.toml").write_text("[engine]\nkind = 'sim'\ncolour = 'red'\n")
    assert "engine.colour: unknown setting" in one_error_line(tts("eval", "--config", "bad.toml", cwd=tmp_path))
    r = tts("eval", "--engine", "sim", "--strategy", "pdr", "-n", "8", cwd=tmp_path)
    assert "-n does not apply to strategy 'pdr'" in one_error_line(r)
    r = tts("eval", "--engine", "sim", "--strategy", "sc4 | pdr", "--temperature", "0.5", cwd=tmp_path)
    assert "--temperature applies to a single strategy" in one_error_line(r)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (tmp_path / "readme.toml").write_text(readme.split("```toml\n", 1)[1].split("```", 1)[0])
    sc, pdr = load_job(tmp_path / "readme.toml", {})  # README's example is a job file that loads
    assert sc.engine.kind == pdr.engine.kind == "openai" and pdr.budget.per_problem.max_tokens == 20000
