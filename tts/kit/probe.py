"""Probe consensus's settings (the watching is in strategies/probed.py): stop a group of streaming traces once their current answers agree (Dynasor's certaindex,
Parallel-Probe), and prune the traces whose current answer stays an outlier.

At every checkpoint (each `checkpoint_tokens` tokens of a live branch), once `min_final` traces have finished, every
running trace long enough is probed for its current answer (strategies/watched.py: a short greedy continuation of its
prefix, charged like any call). The answers of finished traces and the probed answers of running ones are pooled;
when the most common answer holds at least `agree` of them (and at least `min_answers` answers exist) at `patience`
checkpoints in a row, the running traces are stopped and vote with their probed answer (status "probed"). A running
trace whose probed answer differs from a majority answer at `patience` checkpoints in a row is pruned (no vote).
"""
from __future__ import annotations

from pydantic import Field

from tts.kernel.types import Frozen


class ProbeConfig(Frozen):
    checkpoint_tokens: int = Field(48, ge=1)
    min_tokens: int = Field(32, ge=1, description="traces shorter than this are not probed")
    probe_tokens: int = Field(12, ge=1)
    agree: float = Field(0.75, gt=0.5, le=1.0, description="share of pooled answers the leading answer must hold")
    min_answers: int = Field(3, ge=1)
    # No probe before this many traces have finished. On multi-step problems every trace passes through the same
    # intermediate quantities at about the same time, and early probes agree on one of them (live, GSM8K: 16 eggs a
    # day for an answer of 18); a finished trace's answer is final, and it must be part of the consensus.
    min_final: int = Field(1, ge=0)
    patience: int = Field(2, ge=1, description="checkpoints in a row a consensus (or an outlier) must hold")
    prune_outliers: bool = True
