"""Recorded traces as an engine: record every completion of a run once (`tts eval --record`), then run any strategy
on them offline (`tts eval --engine replay --traces FILE`), through the same code as a live run, paired and free of
sampling noise (TensorRT-LLM Scaffolding replays its traces the same way).

A recorded completion is keyed by its prompt (a hash of the request's input) and its sample number, `seed + choice`:
the strategies seed their i-th sample `seed + i`, whether they send one request with n samples or n requests of one,
so SC@8 replayed on traces recorded by SC@16 gets the first 8 of the same 16. A sample that was not recorded is an
error on that problem's row (counted, never invented). The replay cuts a trace where a shorter `max_tokens` or a
confidence stop would have ended it (from the recorded per-token logprobs), decodes every trace at one speed
(`latency_per_token_s`, so that early stops see traces finish in the order of their lengths, as a batched engine
does) and streams it in chunks, so a cancelled sample is charged what it had generated."""
from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import AsyncIterator

from tts.kernel.confidence import first_stop, token_confidence
from tts.kernel.engine import Capabilities, EngineBase, EngineWrapper, estimate_tokens, gather_owned
from tts.kernel.errors import ConfigError, DataError
from tts.kernel.types import Chunk, Completion, GenerateRequest, TokenLogprob


class ReplayMiss(LookupError):
    """The replayed strategy asked for a sample the recording does not hold."""


def prompt_key(request: GenerateRequest) -> str:
    raw = request.prompt_text() + ("\x00continue" if request.continue_final else "")
    return hashlib.blake2b(raw.encode(), digest_size=10).hexdigest()


def _sample_numbers(request: GenerateRequest) -> list[int | None]:
    return [None if request.seed is None else request.seed + i for i in range(request.n)]


def _dump_logprobs(logprobs) -> list | None:
    if logprobs is None:
        return None
    return [[t.token, round(t.logprob, 5), [[a, round(lp, 5)] for a, lp in t.top]] for t in logprobs]


def _load_logprobs(raw) -> tuple[TokenLogprob, ...] | None:
    if raw is None:
        return None
    return tuple(TokenLogprob(token=t, logprob=lp, top=tuple((a, b) for a, b in top)) for t, lp, top in raw)


class RecordingEngine(EngineWrapper):
    """Writes every completion the wrapped engine returns (and every stream that finishes) to a JSONL file as it
    arrives: a killed run keeps what it recorded. Cancelled streams are not recorded (they have no whole trace);
    record with early stop off to replay policies that need every sample."""

    def __init__(self, inner, path: Path) -> None:
        super().__init__(inner)
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        except OSError as e:
            raise DataError(f"cannot write the trace recording {self.path}: {e.strerror or e}") from None

    def _write(self, request: GenerateRequest, number: int | None, c: Completion) -> None:
        line = {"prompt": prompt_key(request), "sample": number, "max_tokens": request.max_tokens,
                "text": c.text, "completion_tokens": c.completion_tokens, "prompt_tokens": c.prompt_tokens,
                "finish_reason": c.finish_reason, "logprobs": _dump_logprobs(c.logprobs)}
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()

    async def generate(self, request: GenerateRequest) -> list[Completion]:
        completions = await self.inner.generate(request)
        for number, c in zip(_sample_numbers(request), completions):
            self._write(request, number, c)
        return completions

    async def stream(self, request: GenerateRequest) -> AsyncIterator[Chunk]:
        async for chunk in self.inner.stream(request):
            if chunk.completion is not None:
                self._write(request, request.seed, chunk.completion)
            yield chunk

    def describe(self) -> dict:
        return {**self.inner.describe(), "recorded_to": str(self.path)}

    async def aclose(self) -> None:
        self._file.close()
        await self.inner.aclose()


def read_traces(path: Path) -> list[tuple[tuple[str, int | None], dict]]:
    """A recording's traces as ((prompt key, sample number), trace); a missing, empty or damaged file is one
    error naming the file and line."""
    if not path.is_file():
        raise ConfigError(f"--traces {path}: not a file (record one with tts eval --record)")
    out = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key = (str(row["prompt"]), None if row["sample"] is None else int(row["sample"]))
            row["text"], row["completion_tokens"] = str(row["text"]), int(row["completion_tokens"])
            _load_logprobs(row.get("logprobs"))
        except (ValueError, KeyError, TypeError, RecursionError):
            raise DataError(f"{path}:{number}: not a recorded trace") from None
        out.append((key, row))
    if not out:
        raise DataError(f"{path}: no recorded traces")
    return out


class ReplayEngine(EngineBase):
    name = "replay"
    capabilities = Capabilities(stream=True, logprobs=True, confidence_stop=True, metered_stream=True)

    def __init__(self, path: Path, latency_per_token_s: float = 0.001, chunk_tokens: int = 16) -> None:
        self.path = Path(path)
        self.latency = latency_per_token_s
        self.chunk_tokens = chunk_tokens
        self.traces: dict[tuple[str, int | None], dict] = {}
        self._unnumbered: dict[str, list[dict]] = {}
        self.served = 0
        self._load()

    def _load(self) -> None:
        for key, row in read_traces(self.path):
            if key[1] is None:
                self._unnumbered.setdefault(key[0], []).append(row)
            else:
                self.traces.setdefault(key, row)  # a sample recorded twice (a resumed recording): the first

    def _find(self, request: GenerateRequest, number: int | None) -> dict:
        key = prompt_key(request)
        row = self.traces.get((key, number))
        if row is None and self._unnumbered.get(key):
            row = self._unnumbered[key].pop(0)
        if row is None:
            held = sum(1 for k, _ in self.traces if k == key)
            raise ReplayMiss(f"replay: sample {number} of this prompt was not recorded ({held} samples of it are)")
        return row

    def _served(self, request: GenerateRequest, row: dict) -> Completion:
        """The recorded trace as this request would have got it: cut by a smaller max_tokens or a confidence stop."""
        text, tokens, finish = row["text"], row["completion_tokens"], row["finish_reason"]
        logprobs = _load_logprobs(row.get("logprobs"))
        cut = None
        if request.confidence_stop is not None:
            if not logprobs or not logprobs[0].top:
                raise ReplayMiss("replay: a confidence stop needs traces recorded with top logprobs (logprobs=k)")
            k = min(len(logprobs[0].top), request.logprobs or len(logprobs[0].top))
            confs = [token_confidence(t.top, k) for t in logprobs]
            at = first_stop(confs, request.confidence_stop)
            if at is not None and at < tokens:
                cut, finish = at, "confidence"
        if request.max_tokens < tokens and (cut is None or request.max_tokens < cut):
            cut, finish = request.max_tokens, "length"
        elif cut is None and request.max_tokens > tokens and finish == "length" and row.get("max_tokens", 0) < \
                request.max_tokens:
            raise ReplayMiss(f"replay: the recorded trace was cut at {tokens} tokens; this request allows "
                             f"{request.max_tokens}")
        if cut is not None:
            if not logprobs:
                raise ReplayMiss("replay: cutting a trace shorter needs traces recorded with logprobs")
            logprobs = logprobs[:cut]
            text, tokens = "".join(t.token for t in logprobs), cut
        keep = request.logprobs is not None or request.confidence_stop is not None
        return Completion(text=text, completion_tokens=tokens, finish_reason=finish,
                          prompt_tokens=int(row.get("prompt_tokens") or 0), logprobs=logprobs if keep else None)

    async def _one(self, request: GenerateRequest, number: int | None) -> Completion:
        c = self._served(request, self._find(request, number))
        t0 = time.monotonic()
        await asyncio.sleep(c.completion_tokens * self.latency)
        self.served += 1
        return c.model_copy(update={"latency_s": time.monotonic() - t0})

    async def generate(self, request: GenerateRequest) -> list[Completion]:
        numbers = _sample_numbers(request)
        if request.n == 1:
            return [await self._one(request, numbers[0])]
        return await gather_owned(self._one(request, k) for k in numbers)

    async def stream(self, request: GenerateRequest) -> AsyncIterator[Chunk]:
        c = self._served(request, self._find(request, request.seed))
        pieces = [t.token for t in c.logprobs] if c.logprobs else None
        step, total = self.chunk_tokens, c.completion_tokens
        for start in range(0, max(total, 1), step):
            end = min(total, start + step)
            await asyncio.sleep((end - start) * self.latency)
            delta = "".join(pieces[start:end]) if pieces else (c.text if end >= total else "")
            confidence = tuple(token_confidence(t.top, len(t.top)) for t in c.logprobs[start:end]) \
                if c.logprobs and c.logprobs[0].top else ()
            if end >= total:
                self.served += 1
                yield Chunk(text=delta, completion_tokens=total, completion=c, confidence=confidence)
                return
            yield Chunk(text=delta, completion_tokens=end, confidence=confidence)

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def describe(self) -> dict:
        return {"replayed_from": str(self.path), "samples_served": self.served}
