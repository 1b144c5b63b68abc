"""Hostile model-written code against the sandbox. Each probe asserts that the effect did not happen (the canary
file is intact, no file appeared, no connection arrived, no process survives, the sibling lived), not merely that
an error was raised. The sandbox must hold with its audit hook switched off: many probes switch it off first."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tts.tools.sandbox import UID_BASE, SandboxLimits, isolation, run_python

# Skipped on a machine without bubblewrap, except in CI (TTS_REQUIRE_REAL_ENGINE=1), where the probes run and fail.
pytestmark = pytest.mark.skipif(isolation()["mode"] != "bwrap" and os.environ.get("TTS_REQUIRE_REAL_ENGINE") != "1",
                                reason="needs bubblewrap (scripts/setup.sh installs it)")

LIMITS = SandboxLimits(timeout_s=4, cpu_s=4, memory_mb=256, output_bytes=4000, disk_mb=8)
# Switch the audit hook off from inside (the escape that worked on the old sandbox), then do the thing.
UNHOOK = """
import gc, sys
for o in gc.get_objects():
    if callable(o) and getattr(o, '__name__', '') == '_hook':
        o.__code__ = (lambda event, args: None).__code__
"""


@pytest.fixture
def canary(tmp_path):
    f = tmp_path / "canary.txt"
    f.write_text("intact")
    f.chmod(0o666)
    tmp_path.chmod(0o777)
    return f


def sandbox_processes() -> list[int]:
    """Processes of any sandbox uid still alive on the host."""
    alive = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if d.stat().st_uid >= UID_BASE:
                    alive.append(int(d.name))
            except FileNotFoundError:
                pass
    return alive


async def run(code: str, limits: SandboxLimits = LIMITS):
    return await run_python(UNHOOK + code, limits)


@pytest.mark.parametrize("how", [
    "import _posixsubprocess, os\nr, w = os.pipe()\n_posixsubprocess.fork_exec([b'/bin/sh', b'-c', b'echo pwned > {p}; echo x >> {c}'], [b'/bin/sh'], True, (), None, None, -1, -1, -1, -1, -1, -1, r, w, True, False, 0, None, None, None, -1, None, False)\nimport time; time.sleep(0.5)",
    "import os\nos.system('echo pwned > {p}; echo x >> {c}')",
    "import subprocess\nsubprocess.run(['/bin/sh', '-c', 'echo pwned > {p}; echo x >> {c}'])",
    "import os\nos.posix_spawn('/bin/sh', ['sh', '-c', 'echo pwned > {p}; echo x >> {c}'], {{}})\nimport time; time.sleep(0.5)",
    "import os\nos.execv('/bin/sh', ['sh', '-c', 'echo pwned > {p}; echo x >> {c}'])",
    "import ctypes\nctypes.CDLL(None).system(b'echo pwned > {p}; echo x >> {c}')",
    "open('{p}', 'w').write('pwned'); open('{c}', 'a').write('x')",
    "import os\nfd = os.open('{c}', os.O_WRONLY | os.O_TRUNC); os.write(fd, b'x')\nos.open('{p}', os.O_WRONLY | os.O_CREAT)",
    "import os\nos.symlink('/etc/passwd', '{p}')",
    "import os\nos.mkdir('{p}')",
    "import os, builtins\nos.makedirs('{p}evil/x')\nbuiltins.isinstance = lambda *a: True\nopen('{p}', 'w')",
], ids=["fork_exec", "os.system", "subprocess", "posix_spawn", "execv", "ctypes", "open", "os.open", "symlink",
        "mkdir", "patched-builtins"])
async def test_no_write_reaches_the_host(how, canary, tmp_path):
    target = tmp_path / "pwned"
    result = await run(how.format(p=target, c=canary))
    assert canary.read_text() == "intact"
    assert not target.exists() and not Path(f"{target}evil").exists()
    assert not result.timed_out or result.seconds < LIMITS.timeout_s + 2


async def test_no_connection_arrives():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.setblocking(False)
    port = server.getsockname()[1]
    result = await run(f"import socket\ns = socket.socket(); s.settimeout(1)\ns.connect(('127.0.0.1', {port}))\n"
                       f"s.sendall(b'leak')")
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        conn = None
    server.close()
    assert conn is None and result.returncode != 0


async def test_secrets_are_not_visible(tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_SECRET_CANARY", "s3cr3t-orchestrator-env")
    results = tmp_path / "results.jsonl"  # another run's results: world-readable on the host
    results.write_text("other-run-secret-answer")
    results.chmod(0o644)
    tmp_path.chmod(0o755)
    code = f"""
import os
out = []
for p in ['/etc/shadow', '/etc/passwd', '{results}', '/proc/1/environ', '/proc/self/environ',
          '/proc/%d/environ' % os.getppid(), '{Path.home()}/.bash_history']:
    try:
        out.append(open(p, 'rb').read().decode(errors='replace'))
    except OSError:
        pass
out.append(repr(dict(os.environ)))
print('\\n'.join(out))
"""
    result = await run(code)
    assert "s3cr3t-orchestrator-env" not in result.stdout
    assert "other-run-secret-answer" not in result.stdout and "root:" not in result.stdout


async def test_a_setsid_grandchild_does_not_survive(canary):
    before = set(sandbox_processes())
    code = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(3)
        open('/sandbox/late', 'w').write('still here')
        os.execv('/usr/bin/sleep', ['sleep', '60'])
    os._exit(0)
time.sleep(30)
"""
    result = await run(code, LIMITS.model_copy(update={"timeout_s": 1.5}))
    assert result.timed_out
    await asyncio.sleep(1.0)
    assert set(sandbox_processes()) - before == set()


async def test_signals_reach_nothing_outside():
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        code = f"import os, signal\nfor pid in (-1, os.getppid(), {os.getpid()}, {victim.pid}, 1):\n" \
               f"    try: os.kill(pid, signal.SIGKILL)\n    except OSError: pass\n"
        sibling = run("import time; time.sleep(2); print('sibling alive')", LIMITS.model_copy(update={"timeout_s": 15}))
        attacker = run(code)
        sib, _ = await asyncio.gather(sibling, attacker)
        assert sib.stdout.strip() == "sibling alive" and sib.returncode == 0
        assert victim.poll() is None  # the host process it aimed at lives
    finally:
        victim.kill()
        victim.wait()


async def test_fork_bomb_is_contained():
    before = set(sandbox_processes())
    t0 = time.monotonic()
    result = await run("import os\nwhile True:\n    try: os.fork()\n    except OSError: pass\n",
                       LIMITS.model_copy(update={"timeout_s": 2}))
    assert result.timed_out and time.monotonic() - t0 < 20
    await asyncio.sleep(0.5)
    assert set(sandbox_processes()) - before == set()


async def test_memory_disk_output_and_time_are_capped(tmp_path):
    mem = await run("x = bytearray(1 << 30)\nprint('allocated')")
    assert "allocated" not in mem.stdout and mem.returncode != 0
    disk = await run("f = open('/sandbox/big', 'wb')\nfor _ in range(64):\n    f.write(b'x' * (1 << 20))\n"
                     "print('wrote 64 MB')")
    assert "wrote 64 MB" not in disk.stdout and disk.returncode != 0
    flood = await run("import sys\nfor _ in range(10000): sys.stdout.write('y' * 1000)")
    assert len(flood.stdout) <= LIMITS.output_bytes
    loop = await run("while True: pass", LIMITS.model_copy(update={"timeout_s": 1}))
    assert loop.timed_out and loop.seconds < 8


async def test_honest_code_still_runs():
    result = await run_python("import math, json, re, collections\nprint(json.dumps({'x': math.factorial(5)}))")
    assert result.ok and result.stdout.strip() == '{"x": 120}'


@pytest.mark.parametrize("program", [
    "import sys\nwhile True: sys.stdout.write('y' * 4096)",  # no newlines
    "while True: print('y')",
    "import os\nwhile True: os.write(2, b'e' * 65536)",  # stderr, below Python's buffering
    "import sys\nsys.stdout.write('y' * 100)\nsys.stdout.flush()\nwhile True: pass",  # a little, then spin
])
async def test_an_output_flood_returns_within_its_timeout_every_time(program):
    """A flood once left the stdout pipe paused after the timeout and run_python never returned (about half the
    time): each flood runs 6 times and every call must return, within its timeout plus the reaping."""
    limits = LIMITS.model_copy(update={"timeout_s": 1.5})
    for _ in range(6):
        t0 = time.monotonic()
        result = await asyncio.wait_for(run(program, limits), 30)  # a hang fails here, not the whole suite
        assert time.monotonic() - t0 < 15
        assert not result.ok and len(result.stdout) <= LIMITS.output_bytes


async def test_a_flood_graded_end_to_end_is_a_wrong_answer_not_a_hang(tmp_path):
    """tts eval on a code task whose model answers with a printing loop: every row written, all wrong."""
    import json as _json

    from tests.fake_openai_server import FakeOpenAI
    from tests.test_cli import tts

    data = tmp_path / "he.jsonl"
    data.write_text("".join(_json.dumps({"task_id": f"T/{i}", "entry_point": "f", "prompt": "def f(x):\n",
                                         "test": "def check(c):\n    assert c(1) == 1\n"}) + "\n" for i in range(3)))
    reply = "```python\ndef f(x):\n    while True:\n        print('y' * 1000)\n```"
    with FakeOpenAI(responder=lambda body: reply) as server:
        r = await asyncio.to_thread(tts, "eval", "--task", "humaneval", "--data", str(data), "-s", "greedy",
                                    "--engine", "openai", "--base-url", server.url, "--model", "fake-model",
                                    "--run-id", "r", "--no-progress", cwd=tmp_path, timeout=240)
    assert r.returncode == 0, r.stderr
    rows = [_json.loads(x) for x in (tmp_path / "results" / "r" / "results.jsonl").read_text().splitlines()]
    assert [row["correct"] for row in rows] == [False, False, False]


def _keyring():
    """The orchestrator's side of the kernel keyring, through libc's syscall (x86_64 and aarch64 numbers)."""
    import ctypes
    import platform

    from tts.tools import seccomp

    if platform.machine() not in ("x86_64", "aarch64"):
        pytest.skip("no syscall table for this machine")
    libc = ctypes.CDLL(None, use_errno=True)
    return libc, seccomp.number("add_key"), seccomp.number("keyctl")


async def test_the_callers_keyring_is_out_of_reach():
    """A secret in the orchestrator's session keyring: sandboxed code can neither read it nor plant a key there
    (it could, as root and unprivileged, before the seccomp filter)."""
    libc, add_key, keyctl = _keyring()
    secret = f"s3cret-{os.getpid()}".encode()
    key = libc.syscall(add_key, b"user", b"tts-test-secret", secret, len(secret), -3)  # -3: the session keyring
    if key < 0:
        pytest.skip("this kernel refuses keyrings to the test process itself")
    try:
        result = await run(f"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(256)
n = libc.syscall({keyctl}, 11, {key}, buf, 256, 0)  # KEYCTL_READ
print('read', n, buf.raw[:max(n, 0)])
print('planted', libc.syscall({add_key}, b'user', b'tts-planted', b'evil', 4, -3))
""")
        assert secret.decode() not in result.stdout + result.stderr
        assert "read -1" in result.stdout and "planted -1" in result.stdout
        found = libc.syscall(keyctl, 10, -3, b"user", b"tts-planted", 0)  # KEYCTL_SEARCH in our session keyring
        assert found < 0  # nothing was planted
    finally:
        libc.syscall(keyctl, 3, key, 0, 0, 0)  # KEYCTL_REVOKE


async def test_every_writable_place_is_capped_and_root_is_read_only():
    """180 MB once went into /tmp (and /dev/shm, /) under an 8 MB disk cap; memfds held memory no limit counted."""
    result = await run("""
import os
for path in ('/tmp/big', '/dev/shm/big', '/sandbox/big', '/big'):
    try:
        with open(path, 'wb') as f:
            for _ in range(24):
                f.write(b'x' * (1 << 20))
        print(path, 'wrote 24 MB')
    except OSError as e:
        print(path, 'refused', e.errno)
try:
    os.memfd_create('hold')
    print('memfd created')
except OSError as e:
    print('memfd refused', e.errno)
""")
    assert "wrote 24 MB" not in result.stdout and "memfd created" not in result.stdout
    assert result.stdout.count("refused") == 5, result.stdout


async def test_no_new_namespaces_inside_the_sandbox():
    libc, _, _ = _keyring()
    from tts.tools import seccomp

    result = await run(f"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for flag in (0x10000000, 0x00020000, 0x40000000):  # user, mount, net
    if libc.syscall({seccomp.number("unshare")}, flag) == 0:
        print('unshared', flag)
    else:
        print('refused', ctypes.get_errno())
""")
    assert "unshared" not in result.stdout and result.stdout.count("refused") == 3


def test_doctor_reports_the_filter():
    assert "seccomp" in isolation()["active"] and "keyctl" in isolation()["seccomp_denies"]


async def test_uids_differ_across_processes():
    """As root each call runs under a uid of its own: drawn at random now, not counted from 0 in every process."""
    if os.geteuid() != 0:
        pytest.skip("per-call uids are a root feature")
    code = ("import asyncio\nfrom tts.tools.sandbox import run_python\n"
            "print(asyncio.run(run_python('import os; print(os.getuid())')).stdout.strip())")
    uids = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout.strip()
            for _ in range(3)}
    assert len(uids) == 3 and all(int(u) >= UID_BASE for u in uids)
