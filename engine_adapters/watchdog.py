"""Engine processes die with their parent, even when it is SIGKILLed.

vLLM starts its engine core (and workers) as child processes; a parent killed with SIGKILL runs no cleanup, and
those children keep every core busy. A small watchdog process (this module, run with -m), started after the engine,
knows the engine's process tree; it waits for the parent to disappear (its own parent-death signal wakes it at once)
and then kills the tree.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def child_pids(pid: int | None = None) -> list[int]:
    """Direct children of `pid` (default: this process), from /proc."""
    pid = os.getpid() if pid is None else pid
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def guard(pids: list[int]) -> subprocess.Popen | None:
    """Start a watchdog that kills `pids` and their descendants when this process dies; None where there is no
    /proc (not Linux) or nothing to guard."""
    if not pids or not Path("/proc").exists():
        return None
    return subprocess.Popen([sys.executable, "-I", "-m", __name__, str(os.getpid()), *map(str, pids)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _watch(parent: int, pids: list[int]) -> None:
    try:  # be told at once when the parent dies (Linux); polling covers the rest
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGUSR1)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    signal.signal(signal.SIGUSR1, lambda *a: None)
    signal.signal(signal.SIGTERM, lambda *a: None)
    while os.getppid() == parent:
        time.sleep(1.0)
    todo, tree = list(pids), []
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += child_pids(pid)
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


if __name__ == "__main__":
    _watch(int(sys.argv[1]), [int(p) for p in sys.argv[2:]])
