"""tts: parallel reasoning and test-time scaling. `solve` / `solve_sync` are the library entry points."""
from tts.api import Result, solve, solve_sync

__all__ = ["Result", "solve", "solve_sync"]
