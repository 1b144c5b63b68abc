"""tts: parallel reasoning and test-time scaling. `solve` / `solve_sync` are the library entry points.

The package is laid out in floors, each importing only the floors below it:
kernel (types, engine protocol, budget, trace, context, branches) < kit (voting, stopping, equivalence, pruning)
< tools (sandbox, tool registry) < engine_adapters, tasks < strategies < app (runs, CLI, server, jobs, report).
The entry points are loaded on first use, so that importing a lower floor never drags the application in.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Result", "solve", "solve_sync"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tts.app import api

        return getattr(api, name)
    raise AttributeError(f"module 'tts' has no attribute {name!r}")
