"""The edges of the install: the light install (base dependencies only) against a remote server, and a missing
optional extra as one error line naming it, never a traceback."""
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.fake_openai_server import FakeOpenAI

ROOT = Path(__file__).parents[1]


def _without(module: str, *args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI with `module` made unimportable, as on a machine without its extra."""
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            "from tts.app.cli import main; sys.argv = ['tts', *sys.argv[1:]]; main()")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def _one_error_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("extras")
    r = subprocess.run([sys.executable, "-m", "tts.app.cli", "eval", "--engine", "sim", "--task", "demo", "-n", "2",
                        "--limit", "3", "--run-id", "r", "--no-progress"], cwd=tmp, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return tmp / "results" / "r"


def test_plots_without_matplotlib(run_dir, tmp_path):
    line = _one_error_line(_without("matplotlib", "report", str(run_dir), "--plots", str(tmp_path / "p"),
                                    cwd=tmp_path))
    assert "pip install 'tts-orchestrator[report]'" in line and not (tmp_path / "p").exists()


def test_serve_without_uvicorn(tmp_path):
    line = _one_error_line(_without("uvicorn", "serve", "--engine", "sim", "--port", "0", cwd=tmp_path))
    assert "pip install 'tts-orchestrator[serve]'" in line


def test_otel_without_its_extra_stops_before_the_run(tmp_path):
    line = _one_error_line(_without("opentelemetry", "eval", "--engine", "sim", "--task", "demo", "--limit", "2",
                                    "--run-id", "o", "--no-progress", cwd=tmp_path, env={"TTS_OTEL": "console"}))
    assert "pip install 'tts-orchestrator[otel]'" in line
    assert not (tmp_path / "results" / "o").exists()


@pytest.mark.skipif(os.environ.get("TTS_REQUIRE_REAL_ENGINE") != "1", reason="builds a venv (CI runs it)")
def test_light_install_evaluates_against_a_remote_server(tmp_path):
    """`pip install tts-orchestrator` with no extras, then `tts eval --engine openai`: once a traceback (the adapter
    imported httpx, which was not declared)."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", str(ROOT)], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    missing = subprocess.run([str(py), "-c", "import httpx"], capture_output=True).returncode != 0
    with FakeOpenAI() as server:
        r = subprocess.run([str(env_dir / "bin" / "tts"), "eval", "--engine", "openai", "--base-url", server.url,
                            "--model", "fake-model", "--task", "demo", "-n", "2", "--limit", "2", "--run-id", "light",
                            "--no-progress"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    summary = json.loads((tmp_path / "results" / "light" / "summary.json").read_text())
    assert summary["problems"] == 2 and summary["calls"] >= 2
    print("httpx absent from the light install:", missing)
