"""Bad input, as a hostile or careless user gives it: each case is one `error:` line naming the problem and exit
code 1, checked before any engine starts (the engine here is the simulator, but the checks run before it opens),
and nothing already written is lost. The CLI runs in-process (click's runner) to keep the suite fast."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tts.app.cli import app
from tests.test_cli import TTS, tts

SIM = ["--engine", "sim", "--no-progress", "--limit", "3"]


def cli(*args: str, cwd: Path):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args), catch_exceptions=True)
    finally:
        os.chdir(old)


def one_error(result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def good_data(tmp_path: Path, n: int = 5) -> Path:
    path = tmp_path / "ok.jsonl"
    path.write_text("".join(json.dumps({"question": f"What is {i} plus {i}?", "answer": f"#### {2 * i}"}) + "\n"
                            for i in range(1, n + 1)))
    return path


CASES = [
    (["-o", "n=8", "--budget-calls", "0"], "--budget-calls"),
    (["--budget-tokens", "0"], "--budget-tokens"),
    (["--sim-accuracy", "2"], "--sim-accuracy"),
    (["--sim-latency", "-1"], "--sim-latency"),
    (["--limit", "-1"], "--limit"),
    (["--concurrency", "0"], "--concurrency"),
    (["-n", "0"], "-n"),
    (["--run-id", "../../x"], "--run-id"),
    (["--run-id", "/etc"], "--run-id"),
    (["--strategy", "sc(**{'n': 8})"], "keywords"),
    (["--strategy", "sc(n={[1]: 2})"], "literals"),
    (["--strategy", "sc|" * 5000 + "sc"], "too long"),
    (["--strategy", "sc(n=" + "-" * 100_000 + "1)"], "too long"),
    (["--strategy", "sc99999999999"], "n"),
    (["--strategy", "sc(n=3) | sc(n=2)"], "cannot start from the previous stage"),
    (["--strategy", "apr(child=\"apr(child='apr(child=\\\"apr(child=\\\\'apr(child=1)\\\\')\\\")')\")"], "strategy"),
    (["--strategy", "nope"], "unknown strategy"),
    (["--task", "nope"], "unknown task"),
    (["--engine", "nope"], "unknown engine"),
    (["-o", "colour=red"], "no option colour"),
    (["-o", "novalue"], "KEY=VALUE"),
    (["-o", "temperature=-1"], "temperature"),
    (["--prune", "--strategy", "greedy"], "does not apply"),
    (["--prune-opt", "threshold=5"], "--prune-opt threshold"),
    (["--prune-opt", "colour=red"], "--prune-opt colour"),
    (["--budget-usd", "1"], "--price"),
    (["--price", "cheap", "--budget-usd", "1"], "--price"),
    (["--executor", "quantum"], "--executor: Input should be 'local' or 'ray'"),
    (["--task", "humaneval", "-o", "probe={}"], "no answer to probe"),
    (["--task", "humaneval", "--prune", "--prune-opt", "signal=probe"], "no answer to probe"),
    (["--resume", "--run-id", "never-ran"], "nothing to resume"),
    # an engine option for another engine is named, not dropped
    (["--route", "least-loaded"], "--route does not apply to the sim engine"),
    (["--request-timeout", "5", "--replica-deadline", "3"],
     "--replica-deadline, --request-timeout does not apply to the sim engine"),
]


@pytest.mark.parametrize("args,named", CASES, ids=[str(i) for i in range(len(CASES))])
def test_bad_option_is_one_error_line(args, named, tmp_path):
    line = one_error(cli("eval", *SIM, "--data", str(good_data(tmp_path)), *args, cwd=tmp_path))
    assert named in line
    assert not any((tmp_path / "results").glob("*/results.jsonl")) or "--resume" in args


def test_options_n_overrides_the_flag(tmp_path):
    r = cli("eval", *SIM, "--data", str(good_data(tmp_path)), "-n", "2", "-o", "n=3", "--run-id", "a", cwd=tmp_path)
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "results" / "a" / "config.json").read_text())
    assert config["strategy_config"]["n"] == 3


DATA = {
    "binary": b"\x89PNG\r\n\x1a\n\x00\xff\xfe garbage",
    "huge_number": b'{"question": "q", "answer": "#### 1", "x": ' + b"9" * 5000 + b"}\n",
    "deep": b'{"question": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
    "array": b"[1, 2, 3]\n",
    "empty": b"",
    "duplicate_ids": b'{"id": "a", "question": "q1", "answer": "#### 1"}\n{"id": "a", "question": "q2", "answer": "#### 2"}\n',
}


@pytest.mark.parametrize("kind", list(DATA))
def test_bad_data_file_is_one_error_line(kind, tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(DATA[kind])
    line = one_error(cli("eval", *SIM, "--data", str(path), cwd=tmp_path))
    assert "data.jsonl" in line


def test_missing_and_directory_data(tmp_path):
    assert "not found" in one_error(cli("eval", *SIM, "--data", str(tmp_path / "none.jsonl"), cwd=tmp_path))
    assert "directory" in one_error(cli("eval", *SIM, "--data", str(tmp_path), cwd=tmp_path))


def finished_run(tmp_path: Path) -> Path:
    r = cli("eval", *SIM, "--data", str(good_data(tmp_path)), "--run-id", "r", cwd=tmp_path)
    assert r.exit_code == 0, r.output
    return tmp_path / "results" / "r"


@pytest.mark.parametrize("damage", ["garbage_line", "binary_line", "array_line", "no_id", "results_dir",
                                    "config_corrupt"])
def test_damaged_run_folder_is_one_error_line_and_nothing_is_lost(damage, tmp_path):
    run = finished_run(tmp_path)
    results = run / "results.jsonl"
    before = results.read_bytes() if results.is_file() else b""
    if damage == "garbage_line":
        results.write_bytes(before + b"this is not json\n")
    elif damage == "binary_line":
        results.write_bytes(before + b"\xff\xfe\x00\n")
    elif damage == "array_line":
        results.write_bytes(before + b"[1, 2]\n")
    elif damage == "no_id":
        results.write_bytes(before + b'{"answer": "4"}\n')
    elif damage == "results_dir":
        results.unlink()
        results.mkdir()
    elif damage == "config_corrupt":
        (run / "config.json").write_text("{not json")
    damaged = results.read_bytes() if results.is_file() else None
    assert one_error(cli("eval", *SIM, "--data", str(tmp_path / "ok.jsonl"), "--run-id", "r", "--resume",
                         cwd=tmp_path))
    if damage != "config_corrupt":
        assert one_error(cli("report", str(run), cwd=tmp_path))
    if damaged is not None:
        assert results.read_bytes() == damaged  # the error wrote nothing


def test_a_corrupt_summary_does_not_block_resume(tmp_path):
    run = finished_run(tmp_path)
    (run / "summary.json").write_text("{oops")
    r = cli("eval", *SIM, "--data", str(tmp_path / "ok.jsonl"), "--run-id", "r", "--resume", cwd=tmp_path)
    assert r.exit_code == 0, r.output
    assert json.loads((run / "summary.json").read_text())["problems"] == 3


def test_resume_refuses_other_settings(tmp_path):
    finished_run(tmp_path)
    for extra in (["--budget-tokens", "500"], ["--sim-accuracy", "0.2"]):
        line = one_error(cli("eval", *SIM, "--data", str(tmp_path / "ok.jsonl"), "--run-id", "r", "--resume",
                             *extra, cwd=tmp_path))
        assert "different" in line


def test_output_that_cannot_be_written(tmp_path):
    (tmp_path / "afile").write_text("x")
    line = one_error(cli("eval", *SIM, "--data", str(good_data(tmp_path)), "--output", str(tmp_path / "afile"),
                         cwd=tmp_path))
    assert "afile" in line
    line = one_error(cli("eval", *SIM, "--data", str(good_data(tmp_path)), "--output",
                         str(tmp_path / "afile" / "below"), cwd=tmp_path))
    assert "afile" in line


def test_reading_a_run_never_writes(tmp_path):
    run = finished_run(tmp_path)
    results = run / "results.jsonl"
    partial = results.read_bytes() + b'{"id": "half-writ'
    results.write_bytes(partial)
    r = cli("report", str(run), cwd=tmp_path)
    assert r.exit_code == 0, r.output
    assert results.read_bytes() == partial  # a reporter reading a running job must not cut its last line


def test_trace_and_compare_on_damaged_runs(tmp_path):
    run = finished_run(tmp_path)
    with (run / "trace.jsonl").open("ab") as f:
        f.write(b"garbage\n\xff\n")
    assert cli("trace", str(run), cwd=tmp_path).exit_code == 0  # the other problems' DAGs still read
    assert "does not exist" in one_error(cli("trace", str(run), "--png", "nowhere/x.png", cwd=tmp_path))
    with (run / "results.jsonl").open("ab") as f:
        f.write(b"garbage\n")
    assert "results.jsonl" in one_error(cli("compare", str(run), str(run), "--budget", "100", cwd=tmp_path))
    (run / "config.json").write_text("{bad")
    assert "config.json" in one_error(cli("report", str(run), cwd=tmp_path))


# Each class of bad input once probed by hand: every one must be one `error:` line, exit 1, and leave no run folder.
CLASSES = {
    "template with a conversion": ["eval", "--engine", "sim", "--task", "numeric", "--data", "{d}",
                                   "--field", "question={{question!z}}"],
    "template with a format spec": ["eval", "--engine", "sim", "--task", "numeric", "--data", "{d}",
                                    "--field", "question={{question:d}}"],
    "template with attribute lookup": ["eval", "--engine", "sim", "--task", "numeric", "--data", "{d}",
                                       "--field", "question={{question.__class__}}"],
    "a device as data": ["eval", "--engine", "sim", "--task", "numeric", "--data", "/dev/zero"],
    "a FIFO as data": ["eval", "--engine", "sim", "--task", "numeric", "--data", "{fifo}"],
    "a folder as data": ["eval", "--engine", "sim", "--task", "numeric", "--data", "{dir}"],
    "a malformed IPv6 URL": ["eval", "--engine", "openai", "--model", "m", "--base-url", "http://[::1"],
    "a URL with no host": ["eval", "--engine", "openai", "--model", "m", "--base-url", "http://"],
    "a URL with a bad port": ["eval", "--engine", "openai", "--model", "m", "--base-url", "http://h:99999/v1"],
    "a folder as config": ["eval", "--engine", "sim", "--config", "{dir}"],
    "infinite latency": ["eval", "--engine", "sim", "--task", "demo", "--sim-latency", "inf"],
    "NaN budget": ["eval", "--engine", "sim", "--task", "demo", "--budget-seconds", "nan"],
    "stop_params the rule lacks": ["eval", "--engine", "sim", "--task", "demo", "-o", 'stop_params={{"x": 1}}'],
    "deepconf stop_params the rule lacks": ["eval", "--engine", "sim", "--task", "demo", "-s", "deepconf",
                                            "-o", 'stop_params={{"x": 1}}'],
    "an empty thinking tag": ["eval", "--engine", "sim", "--task", "demo", "--reasoning-opt", "start="],
    "compare at a NaN budget": ["compare", "{run}", "--budget", "nan"],
    "compare at an infinite budget": ["compare", "{run}", "--budget", "inf"],
    "view into a folder": ["view", "{run}", "--out", "{dir}"],
    "view onto a full device": ["view", "{run}", "--out", "/dev/full"],
    "plots at a file": ["report", "{run}", "--plots", "{d}"],
    "trace picture at a folder": ["trace", "{run}", "--problem", "demo-1", "--png", "{dir}"],
    "a replay file that is not JSON": ["report", "--replay", "{d}"],
}


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    d = tmp / "d.jsonl"
    d.write_text('{"question": "q1", "answer": "1"}\n')
    os.mkfifo(tmp / "fifo")
    (tmp / "adir").mkdir()
    r = tts("eval", "--engine", "sim", "--task", "demo", "--limit", "2", "-n", "2", "--run-id", "ok",
            "--no-progress", cwd=tmp)
    assert r.returncode == 0, r.stderr
    return tmp, {"d": str(d), "fifo": str(tmp / "fifo"), "dir": str(tmp / "adir"), "run": str(tmp / "results" / "ok")}


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_each_class_of_bad_input_is_one_error_line(places, name):
    tmp, where = places
    args = [a.format(**where) for a in CLASSES[name]]
    r = tts(*args, "--run-id", "bad", cwd=tmp, timeout=60) if args[0] == "eval" else tts(*args, cwd=tmp, timeout=60)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), (name, r.stderr[-800:])
    assert "Traceback" not in r.stderr and not (tmp / "results" / "bad").exists()


def test_the_server_stops_cleanly_on_sigterm_and_ctrl_c(tmp_path):
    import socket

    for sig in (signal.SIGTERM, signal.SIGINT):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([*TTS, "serve", "--engine", "sim", "--port", str(port)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "Traceback" not in err, (sig, err[-600:])
