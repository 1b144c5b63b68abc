"""Run untrusted (model-written) Python isolated by the kernel's mechanisms, never in the orchestrator's process.

Layers, strongest first; `isolation()` says which this machine has (`tts doctor` prints it):
- bubblewrap: new PID, network, IPC, UTS and mount namespaces; a read-only view of /usr and of the Python
  installation and nothing else of the host (no /etc, no /home, no /root, no other runs' results); the working
  directory is a size-capped tmpfs holding only the program; the sandbox's PID 1 dies with its parent, and when it
  dies the kernel kills every process left in the namespace (no survivor of a timeout, however it forked).
- a uid of its own: as root, each call runs under a fresh unprivileged uid (setpriv, inside the namespaces), so
  RLIMIT_NPROC caps that call alone and nothing owned by root is writable; unprivileged, a user namespace of its own
  maps the caller to `nobody` and all capabilities are dropped. Since Linux 5.14 the kernel counts RLIMIT_NPROC per
  user namespace (ucounts), so the limit, set inside the call's namespace before the program runs, caps that call's
  processes and threads alone, not the caller's other processes.
- rlimits: CPU seconds, address space, file size, open files, processes, no core files.
- its own session, killed whole on timeout; an audit hook refusing sockets, subprocesses and ctypes (a last line:
  it can be switched off from inside, which is why nothing relies on it).
Without bubblewrap, `unshare` (root only) gives the PID/network/IPC namespaces but no filesystem view. With none of
these, untrusted code is refused unless TTS_SANDBOX_UNISOLATED=1 says the user accepts running it unisolated.
"""
from __future__ import annotations

import asyncio
import functools
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from pydantic import Field

from tts.kernel.errors import TtsError
from tts.kernel.types import Frozen
from tts.tools import seccomp

UID_BASE = 190_000  # per-call uids (root only): far above any account a distribution creates
UID_RANGE = 1 << 20  # drawn at random per call, so that concurrent tts processes do not share a uid (and its limits)
# Set inside an unprivileged sandbox's own user namespace, where the kernel counts processes per namespace: set
# before bubblewrap made the namespace, it would count every process of the caller's uid.
_NPROC = "import resource\nresource.setrlimit(resource.RLIMIT_NPROC, ({n}, {n}))\n"
_GUARD = r'''
import sys
def _hook(event, args):
    if event in ("socket.connect", "socket.bind", "socket.__new__", "subprocess.Popen", "os.system", "os.exec",
                 "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "ctypes.dlopen", "ctypes.cdata"):
        raise PermissionError(f"sandbox: {event} is not allowed")
sys.addaudithook(_hook)
del _hook
_code = open("main.py").read()
exec(compile(_code, "main.py", "exec"), {"__name__": "__main__"})
'''


class SandboxUnavailable(TtsError):
    """No isolation layer works on this machine, and the user has not opted in to running code without one."""


class SandboxLimits(Frozen):
    timeout_s: float = Field(10.0, gt=0)
    cpu_s: int = Field(10, ge=1)
    memory_mb: int = Field(512, ge=32)
    max_processes: int = Field(32, ge=1)
    output_bytes: int = Field(64_000, ge=1)
    disk_mb: int = Field(64, ge=1, description="size of the sandbox's writable tmpfs")


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


def _python() -> tuple[str, str]:
    """The interpreter to run (its real path, outside any venv) and the installation prefix to show read-only."""
    return os.path.realpath(sys.executable), os.path.realpath(sys.base_prefix)


def _works(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.lru_cache(maxsize=1)
def isolation() -> dict[str, object]:
    """The layers this machine gives, checked once by starting a sandbox: what is active and what is missing."""
    python, _ = _python()
    bwrap = shutil.which("bwrap")
    root = os.geteuid() == 0
    mode = "none"
    filtered = False
    if bwrap and _works([*_bwrap_prefix("/nonexistent", 1, 0), python, "-I", "-S", "-c", "pass"]):
        mode = "bwrap"
        filtered = _filter_works(python)
    elif root and shutil.which("unshare") and shutil.which("setpriv") and _works(
            [*_unshare_prefix(0), python, "-I", "-S", "-c", "pass"]):
        mode = "unshare"
    active = ["session-kill", "rlimits", "audit-hook"]
    if mode == "bwrap":
        active += ["pid-namespace", "net-namespace", "ipc-namespace", "mount-namespace", "read-only-system-view",
                   "private-tmpfs-workdir", "size-capped-tmp-and-shm", "die-with-parent",
                   "uid-per-call" if root else "user-namespace-nobody"]
        if root or _ucounts():
            active.append("process-limit")
        if filtered:
            active.append("seccomp")
    elif mode == "unshare":
        active += ["pid-namespace", "net-namespace", "ipc-namespace", "uid-per-call", "process-limit"]
    wanted = ["pid-namespace", "net-namespace", "ipc-namespace", "mount-namespace", "read-only-system-view",
              "private-tmpfs-workdir", "process-limit", "landlock", "seccomp"]
    return {"mode": mode, "active": active, "missing": [w for w in wanted if w not in active],
            "seccomp_denies": seccomp.blocked() if filtered else []}


def _ucounts() -> bool:
    """Whether the kernel counts RLIMIT_NPROC per user namespace (Linux 5.14 and later)."""
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 14)


def _filter_works(python: str) -> bool:
    """Whether bubblewrap loads the filter here and the filter denies what it should (a keyring call)."""
    bpf = seccomp.program()
    if bpf is None:
        return False
    with tempfile.TemporaryFile() as f:
        f.write(bpf)
        f.flush()
        f.seek(0)
        probe = ("import ctypes, sys\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                 "sys.exit(0 if libc.syscall(%d, 0, 0, 0, 0, 0) == -1 and ctypes.get_errno() == 1 else 3)"
                 % seccomp.number("keyctl"))
        try:
            r = subprocess.run([*_bwrap_prefix("/nonexistent", 2, 0, f.fileno()), python, "-I", "-S", "-c", probe],
                               capture_output=True, timeout=20, pass_fds=(f.fileno(),))
        except (OSError, subprocess.SubprocessError):
            return False
        return r.returncode == 0


def _bwrap_prefix(program_dir: str, uid_slot: int, disk_mb: int, seccomp_fd: int | None = None) -> list[str]:
    python, prefix = _python()
    size = ["--size", str(disk_mb << 20)] if disk_mb else []
    cmd = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc",
           "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox",
           "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
           "--symlink", "usr/bin", "/bin", "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    if not prefix.startswith("/usr/"):
        cmd += ["--ro-bind", prefix, prefix]
    # every writable place is a tmpfs of the disk cap's size (the work dir, /tmp, /dev/shm), and / is read-only
    cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", *size, "--tmpfs", "/tmp",
            "--perms", "1777", *size, "--tmpfs", "/dev/shm",
            "--perms", "0777", *size, "--tmpfs", "/sandbox",
            "--ro-bind-try", os.path.join(program_dir, "main.py"), "/sandbox/main.py", "--remount-ro", "/",
            "--chdir", "/sandbox", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/sandbox"]
    if seccomp_fd is not None:
        cmd += ["--seccomp", str(seccomp_fd)]
    if os.geteuid() == 0:  # drop to a uid of this call's own inside the namespaces
        uid = str(UID_BASE + uid_slot)
        return [*cmd, "--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs"]
    return [*cmd, "--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL", "--"]


def _unshare_prefix(uid_slot: int) -> list[str]:
    uid = str(UID_BASE + uid_slot)
    return ["unshare", "--pid", "--net", "--ipc", "--fork", "--kill-child", "--mount-proc", "--",
            "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--bounding-set=-all",
            "--inh-caps=-all", "--no-new-privs"]


def _limits(limits: SandboxLimits, nproc: bool):
    def apply() -> None:
        mem = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024 * 1024,) * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        if nproc:  # counted per uid: only meaningful where the call has a uid of its own
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


async def run_python(code: str, limits: SandboxLimits | None = None, stdin: str = "") -> SandboxResult:
    limits = limits or SandboxLimits()
    layers = isolation()
    mode = layers["mode"]
    if mode == "none" and os.environ.get("TTS_SANDBOX_UNISOLATED") != "1":
        raise SandboxUnavailable("no sandbox isolation on this machine (install bubblewrap: apt-get install "
                                 "bubblewrap); set TTS_SANDBOX_UNISOLATED=1 to run model-written code unisolated")
    programs = tempfile.mkdtemp(prefix="tts-sandbox-")
    slot = secrets.randbelow(UID_RANGE)
    filter_file, pass_fds = None, ()
    try:
        with open(os.path.join(programs, "main.py"), "w") as f:
            f.write(code)
        python, _ = _python()
        if mode == "bwrap":
            os.chmod(programs, 0o755)
            os.chmod(os.path.join(programs, "main.py"), 0o644)
            if "seccomp" in layers["active"]:
                with open(os.path.join(programs, "filter.bpf"), "wb") as f:
                    f.write(seccomp.program())
                filter_file = open(os.path.join(programs, "filter.bpf"), "rb")  # closed in `finally`
                pass_fds = (filter_file.fileno(),)
            prefix, cwd = _bwrap_prefix(programs, slot, limits.disk_mb, pass_fds[0] if pass_fds else None), "/"
        elif mode == "unshare":
            os.chmod(programs, 0o777)
            os.chmod(os.path.join(programs, "main.py"), 0o644)
            prefix, cwd = _unshare_prefix(slot), programs
        else:
            prefix, cwd = [], programs
        own_userns = mode == "bwrap" and os.geteuid() != 0 and "process-limit" in layers["active"]
        guard = (_NPROC.format(n=limits.max_processes) if own_userns else "") + _GUARD
        cmd = [*prefix, python, "-I", "-S", "-c", guard]
        # Output goes to files, not pipes: a program that floods its output can fill a pipe that nobody reads after
        # a timeout, and Python 3.11's Process.wait() then waits for the pipe as well as the process (a run that
        # never ended). A file is bounded by RLIMIT_FSIZE (the writer dies at the cap) and waited for by nothing.
        paths = [os.path.join(programs, name) for name in ("stdin", "stdout", "stderr")]
        with open(paths[0], "wb") as f:
            f.write(stdin.encode())
        t0 = time.monotonic()
        with open(paths[0], "rb") as fin, open(paths[1], "wb") as fout, open(paths[2], "wb") as ferr:
            proc = await asyncio.create_subprocess_exec(
                *cmd, cwd=cwd, stdin=fin, stdout=fout, stderr=ferr, pass_fds=pass_fds,
                start_new_session=True, preexec_fn=_limits(limits, nproc=mode != "none" and os.geteuid() == 0),
                env={"PATH": "/usr/bin:/bin", "HOME": programs})
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), limits.timeout_s)
        except (TimeoutError, asyncio.CancelledError) as e:
            timed_out = isinstance(e, TimeoutError)
            _kill_group(proc)
            await proc.wait()  # no pipes: returns as soon as the process is reaped
            if not timed_out:
                raise
        _kill_group(proc)  # anything left in the session dies with it (in a PID namespace, already gone)
        out, err = _head(paths[1], limits.output_bytes), _tail(paths[2], 4000)
        if timed_out:
            err = (err + "\ntimed out").lstrip()
        return SandboxResult(returncode=proc.returncode, stdout=out, stderr=err, timed_out=timed_out,
                             seconds=round(time.monotonic() - t0, 4), isolation=tuple(layers["active"]))
    finally:
        if filter_file is not None:
            filter_file.close()
        shutil.rmtree(programs, ignore_errors=True)


def _head(path: str, cap: int) -> str:
    with open(path, "rb") as f:
        return f.read(cap).decode(errors="replace")


def _tail(path: str, cap: int) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - cap))
        return f.read().decode(errors="replace")


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
