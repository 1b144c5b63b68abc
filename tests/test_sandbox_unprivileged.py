"""The sandbox run by an unprivileged user (a user namespace per call, no uid of its own): a program's processes and
threads are capped per call, while the caller's other processes, and a sibling sandbox holding its whole quota,
take nothing from it. The orchestrator runs here as `nobody` on the system's Python 3.11 with this checkout's
dependencies on its path (the test venv's interpreter may live where `nobody` cannot read)."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tts.tools.sandbox import isolation

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3.11"
site = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]


def _open_to_others(path: Path) -> bool:
    """Whether `nobody` can reach `path`: every folder on the way can be entered by others."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents] if p.is_dir())


pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv") or not os.access(SYSTEM_PYTHON, os.X_OK) or not site
    or isolation()["mode"] != "bwrap" or sys.version_info[:2] != (3, 11)
    or not all(_open_to_others(Path(p)) for p in [ROOT / "tts", *site]),
    reason="needs root (to become nobody), setpriv, bubblewrap, the system's Python 3.11 and a checkout others "
           "can read")

UNHOOK = """
import gc
for o in gc.get_objects():
    if callable(o) and getattr(o, '__name__', '') == '_hook':
        o.__code__ = (lambda event, args: None).__code__
"""
FORKS = UNHOOK + """
import os, time
n = 0
for i in range({count}):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(60)  # outlives the test unless the sandbox's end takes it down
        os._exit(0)
    n += 1
print(n)
time.sleep({hold})
"""
SCRIPT = """
import asyncio, json, subprocess, sys
from tts.tools.sandbox import SandboxLimits, isolation, run_python
limits = SandboxLimits(timeout_s=20, max_processes=16)
FORKS = {forks!r}

async def main():
    out = {{"active": isolation()["active"]}}
    out["bomb"] = int((await run_python(FORKS.format(count=200, hold=1), limits)).stdout.split()[0])
    # forty processes of the caller's own uid outside any sandbox: they take nothing from a sandbox's quota
    others = [subprocess.Popen(["sleep", "30"]) for _ in range(40)]
    try:
        honest = run_python(FORKS.format(count=8, hold=0.5), limits)
        hog = run_python(FORKS.format(count=200, hold=3), limits)  # a sibling holding its whole quota at once
        h, g = await asyncio.gather(honest, hog)
        out["honest"], out["hog"] = int(h.stdout.split()[0]), int(g.stdout.split()[0])
    finally:
        for p in others:
            p.kill()
            p.wait()
    print(json.dumps(out))

asyncio.run(main())
"""


def test_an_unprivileged_sandbox_caps_its_own_processes_and_no_one_elses():
    tmp_path = Path(tempfile.mkdtemp(prefix="tts-unpriv-"))  # pytest's own folders are closed to others
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(forks=FORKS))
    tmp_path.chmod(0o755)
    script.chmod(0o644)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": os.pathsep.join([str(ROOT), *site])}
    try:
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SYSTEM_PYTHON,
                            str(script)], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert "user-namespace-nobody" in out["active"] and "process-limit" in out["active"]
    assert 8 <= out["bomb"] < 16  # the program and its forks stay within 16 tasks; it had 120 of 120 before
    assert out["hog"] < 16 and out["honest"] == 8  # the sibling's full quota and 40 other processes cost it nothing
    for _ in range(50):  # the sandboxes' ends take their children down (a sleeper would live 60 s)
        alive = subprocess.run(["pgrep", "-u", "65534"], capture_output=True, text=True).stdout.split()
        if not alive:
            break
        time.sleep(0.1)
    assert alive == []
