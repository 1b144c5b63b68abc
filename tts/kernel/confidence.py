"""Trace confidence as DeepConf defines it, computed incrementally while a trace streams.

A token's confidence is -(1/k) * (sum of the top-k logprobs of the distribution it was sampled from): high when the
model puts its mass on one token. A trace's group confidence is the mean over a sliding window of tokens; DeepConf
online stops a trace as soon as a full window's mean falls below a threshold calibrated on a few warm-up traces.
"""
from __future__ import annotations

from collections import deque
from typing import Iterable, Sequence

from tts.kernel.types import ConfidenceStop, TokenLogprob

__all__ = ["ConfidenceStop", "WindowConfidence", "calibrate", "confidences", "first_stop", "lowest_group",
           "token_confidence"]


def token_confidence(top: Sequence[tuple[str, float]], k: int) -> float:
    lps = [lp for _, lp in top[:k]]
    return -sum(lps) / len(lps) if lps else 0.0


def confidences(logprobs: Sequence[TokenLogprob] | None, k: int) -> list[float]:
    return [token_confidence(t.top, k) for t in logprobs or ()]


class WindowConfidence:
    """Sliding-window mean of token confidences, O(1) per token; `lowest` is the lowest full-window mean so far."""

    __slots__ = ("window", "_buf", "_sum", "lowest", "tokens")

    def __init__(self, window: int) -> None:
        self.window = window
        self._buf: deque[float] = deque()
        self._sum = 0.0
        self.lowest: float | None = None
        self.tokens = 0

    def push(self, confidence: float) -> float | None:
        """Add one token; the current window's mean once the window is full, else None."""
        self._buf.append(confidence)
        self._sum += confidence
        self.tokens += 1
        if len(self._buf) > self.window:
            self._sum -= self._buf.popleft()
        if len(self._buf) < self.window:
            return None
        mean = self._sum / self.window
        if self.lowest is None or mean < self.lowest:
            self.lowest = mean
        return mean

    def extend(self, values: Iterable[float]) -> None:
        for v in values:
            self.push(v)

    def below(self, stop: ConfidenceStop, values: Iterable[float]) -> bool:
        """Push tokens; True as soon as a full window's mean is under the threshold. (push() inlined: this runs on
        every streamed chunk of every branch.)"""
        buf, total, window, limit = self._buf, self._sum, self.window, stop.threshold * self.window
        hit = False
        for v in values:
            buf.append(v)
            total += v
            self.tokens += 1
            if len(buf) > window:
                total -= buf.popleft()
            if len(buf) == window:
                if self.lowest is None or total / window < self.lowest:
                    self.lowest = total / window
                if total < limit:
                    hit = True
                    break
        self._sum = total
        return hit


def lowest_group(values: Sequence[float], window: int) -> float:
    """A finished trace's lowest window mean (its mean when it is shorter than one window)."""
    if not values:
        return 0.0
    if len(values) < window:
        return sum(values) / len(values)
    w = WindowConfidence(window)
    w.extend(values)
    return w.lowest  # type: ignore[return-value]


def first_stop(values: Sequence[float], stop: ConfidenceStop) -> int | None:
    """How many tokens a trace with these confidences runs before `stop` ends it (None: it finishes)."""
    w = WindowConfidence(stop.window)
    for i, v in enumerate(values):
        mean = w.push(v)
        if mean is not None and mean < stop.threshold:
            return i + 1
    return None


def calibrate(warmup_lowest: Sequence[float], keep: float) -> float:
    """DeepConf's threshold: the (1 - keep) quantile of the warm-up traces' lowest group confidences, so that about
    `keep` of traces like them run to the end (keep 0.9 is DeepConf-high, 0.1 DeepConf-low)."""
    if not warmup_lowest:
        raise ValueError("calibrating a confidence threshold needs at least one warm-up trace")
    xs = sorted(warmup_lowest)
    pos = (1.0 - keep) * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
