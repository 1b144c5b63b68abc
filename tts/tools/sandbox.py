"""Run untrusted (model-written) Python in a subprocess with time, memory, process and output limits.

Layers, each used where the machine allows it:
- a new session (process group), killed whole on timeout, so forked children die too;
- rlimits: CPU seconds, address space, file size, open files, processes;
- as root with util-linux present: a new network namespace (no network) and the uid/gid of `nobody`, so the code
  can neither reach the network nor touch files it does not own (it runs in a fresh temporary directory);
- an audit hook installed before the code runs that refuses sockets, subprocesses, ctypes and file writes outside
  the working directory (a second line, and the only one when the others are unavailable).
The orchestrator never evals or execs model output in its own process.
"""
from __future__ import annotations

import asyncio
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from pydantic import Field

from tts.kernel.types import Frozen

NOBODY = 65534
_GUARD = r'''
import os, sys
_root = os.path.realpath(os.getcwd())
def _hook(event, args):
    if event in ("socket.connect", "socket.bind", "socket.__new__", "subprocess.Popen", "os.system", "os.exec",
                 "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "ctypes.dlopen", "ctypes.cdata"):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event in ("os.remove", "os.rmdir", "os.rename", "shutil.rmtree", "os.chmod", "os.chown", "os.truncate"):
        path = args[0] if args else ""
        if isinstance(path, (str, bytes, os.PathLike)) and not os.path.realpath(os.fsdecode(path)).startswith(_root):
            raise PermissionError(f"sandbox: {event} outside the working directory")
    if event == "open" and len(args) > 1 and isinstance(args[1], str) and any(m in args[1] for m in "wax+"):
        path = args[0]
        if isinstance(path, (str, bytes, os.PathLike)) and not os.path.realpath(os.fsdecode(path)).startswith(_root):
            raise PermissionError("sandbox: writing outside the working directory")
sys.addaudithook(_hook)
del _hook
_code = open("main.py").read()
exec(compile(_code, "main.py", "exec"), {"__name__": "__main__"})
'''


class SandboxLimits(Frozen):
    timeout_s: float = Field(10.0, gt=0)
    cpu_s: int = Field(10, ge=1)
    memory_mb: int = Field(512, ge=32)
    max_processes: int = Field(32, ge=1)
    output_bytes: int = Field(64_000, ge=1)


class SandboxResult(Frozen):
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float
    isolation: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@functools.lru_cache(maxsize=1)
def _drop_privileges_prefix() -> tuple[tuple[str, ...], str] | None:
    """(command prefix, interpreter) that runs as nobody in a network namespace, if this machine allows it."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        return None
    prefix = ("unshare", "--net", "--", "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")
    for python in (sys.executable, shutil.which("python3") or "", "/usr/bin/python3"):
        if python and subprocess.run([*prefix, python, "-c", "pass"], capture_output=True).returncode == 0:
            return prefix, python
    return None


def _limits(limits: SandboxLimits):
    def apply() -> None:
        mem = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024 * 1024,) * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


async def run_python(code: str, limits: SandboxLimits | None = None, stdin: str = "") -> SandboxResult:
    limits = limits or SandboxLimits()
    workdir = tempfile.mkdtemp(prefix="tts-sandbox-")
    isolation = ["process-group", "rlimits", "audit-hook", "tempdir"]
    try:
        with open(os.path.join(workdir, "main.py"), "w") as f:
            f.write(code)
        dropped = _drop_privileges_prefix()
        if dropped:
            prefix, python = dropped
            os.chmod(workdir, 0o777)
            os.chmod(os.path.join(workdir, "main.py"), 0o644)
            isolation += ["no-network", "uid-nobody"]
        else:
            prefix, python = (), sys.executable
        cmd = [*prefix, python, "-I", "-S", "-c", _GUARD]
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, preexec_fn=_limits(limits), env={"PATH": "/usr/bin:/bin", "HOME": workdir})
        timed_out = False
        try:
            out, err = await asyncio.wait_for(_capped(proc, stdin.encode(), limits.output_bytes), limits.timeout_s)
        except (TimeoutError, asyncio.CancelledError) as e:
            timed_out = isinstance(e, TimeoutError)
            _kill_group(proc)
            await proc.wait()
            if not timed_out:
                raise
            out, err = b"", b"timed out"
        _kill_group(proc)  # forked children left behind die with the group
        return SandboxResult(returncode=proc.returncode, stdout=out.decode(errors="replace"),
                             stderr=err.decode(errors="replace")[-4000:], timed_out=timed_out,
                             seconds=round(time.monotonic() - t0, 4), isolation=tuple(isolation))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _capped(proc: asyncio.subprocess.Process, data: bytes, cap: int) -> tuple[bytes, bytes]:
    if data:
        proc.stdin.write(data)
    proc.stdin.close()

    async def read(stream) -> bytes:
        buf = b""
        while chunk := await stream.read(65536):
            if len(buf) < cap:
                buf += chunk[: cap - len(buf)]
        return buf  # keep draining past the cap so the child never blocks on a full pipe

    out, err = await asyncio.gather(read(proc.stdout), read(proc.stderr))
    await proc.wait()
    return out, err


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
