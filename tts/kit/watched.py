"""The answer probe's words: a probe ends a trace's prefix with PROBE_LEAD and the task's answer cue, and reads the
answer from a short greedy continuation (the probing itself is in strategies/watched.py)."""
from __future__ import annotations

from tts.kernel.errors import ConfigError

# Dynasor's probe: the trace's prefix, this lead, then the task's answer cue ("The answer is", "\\boxed{", "Answer:")
PROBE_LEAD = "\n\nSo far, my current best guess for the final answer is: "


def answer_cue(task) -> str:
    """The words a probe ends a trace's prefix with (the task's answer cue); a task without one cannot be probed."""
    if task.answer_cue is None:
        raise ConfigError(f"task '{task.name}' has no answer to probe (its answers are programs): probe consensus "
                          f"and the probe pruning signals do not apply")
    return task.answer_cue
