"""DeepConf online inside vLLM: a logits processor that ends a sequence when its sliding-window confidence falls
below the request's threshold, so a low-confidence trace stops in the engine's own step, not a round trip later.

It is installed once for the engine (`logits_processors=[...]`) and does nothing for requests that do not ask: a
request opts in through `SamplingParams.extra_args["tts_confidence_stop"] = {threshold, window, top_k, eos}`.
The token confidence is computed from the raw logits (before temperature), as vLLM's returned logprobs are, so the
adapter can tell from the returned logprobs that a trace was cut here.
"""
from __future__ import annotations

from collections import deque

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

KEY = "tts_confidence_stop"


class _Trace:
    __slots__ = ("threshold", "window", "top_k", "eos", "buf", "total")

    def __init__(self, threshold: float, window: int, top_k: int, eos: int) -> None:
        self.threshold, self.window, self.top_k, self.eos = threshold, window, top_k, eos
        self.buf: deque[float] = deque()
        self.total = 0.0

    def push(self, confidence: float) -> bool:
        """True when this token's window is full and its mean is under the threshold."""
        self.buf.append(confidence)
        self.total += confidence
        if len(self.buf) > self.window:
            self.total -= self.buf.popleft()
        return len(self.buf) == self.window and self.total / self.window < self.threshold


class ConfidenceStopProcessor(LogitsProcessor):
    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool) -> None:
        self.traces: dict[int, _Trace] = {}  # persistent-batch row -> its trace's window

    @classmethod
    def validate_params(cls, sampling_params) -> None:
        args = (sampling_params.extra_args or {}).get(KEY)
        if args is not None and not {"threshold", "window", "top_k"} <= set(args):
            raise ValueError(f"extra_args.{KEY} needs threshold, window and top_k")

    def is_argmax_invariant(self) -> bool:
        return False  # forcing the end token changes what greedy decoding picks

    @staticmethod
    def _new(params, prompt_ids, output_ids) -> _Trace | None:
        args = (params.extra_args or {}).get(KEY)
        if args is None:
            return None
        eos = args.get("eos")
        if eos is None:
            eos = next(iter(params.all_stop_token_ids), None)
        if eos is None:
            return None
        return _Trace(float(args["threshold"]), int(args["window"]), int(args["top_k"]), int(eos))

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        process_dict_updates(self.traces, batch_update, self._new)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.traces:
            return logits
        rows = [r for r in self.traces if r < logits.shape[0]]
        if not rows:
            return logits
        index = torch.tensor(rows, device=logits.device)
        k = max(self.traces[r].top_k for r in rows)
        top = torch.log_softmax(logits.index_select(0, index).float(), dim=-1).topk(k, dim=-1).values
        for i, row in enumerate(rows):
            trace = self.traces[row]
            confidence = -float(top[i, : trace.top_k].mean())
            if trace.push(confidence):
                logits[row].fill_(float("-inf"))
                logits[row, trace.eos] = 0.0
        return logits
