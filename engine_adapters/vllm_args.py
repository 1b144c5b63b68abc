"""Engine and request arguments for vLLM, checked against vLLM's own names before anything starts.

`--engine-arg KEY=VALUE` reaches `AsyncEngineArgs` unchanged (tensor_parallel_size, gpu_memory_utilization, dtype,
quantization, max_model_len, ...); `--request-arg KEY=VALUE` reaches `SamplingParams` (top_k, min_p,
repetition_penalty, ...) or, for `chat_template_kwargs`, the chat template (e.g. enable_thinking)."""
from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from tts.kernel.errors import ConfigError

# Set by tts itself from its own options, per request or from --model / --seed: not overridable here.
TTS_OWNED_ENGINE = {"model": "--model", "seed": "--seed"}
TTS_OWNED_REQUEST = {"n": "-n or the strategy's n", "max_tokens": "--max-tokens", "temperature": "--temperature",
                     "top_p": "a strategy option", "stop": "the strategy", "seed": "--seed", "logprobs": "the strategy",
                     "output_kind": "tts"}
TEMPLATE_KEYS = {"chat_template_kwargs"}


def _suggest(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def engine_arg_names() -> set[str]:
    from vllm.engine.arg_utils import AsyncEngineArgs

    return {f.name for f in dataclasses.fields(AsyncEngineArgs)}


def sampling_param_names() -> set[str]:
    from vllm import SamplingParams

    fields = getattr(SamplingParams, "__struct_fields__", None)
    return set(fields) if fields else {f.name for f in dataclasses.fields(SamplingParams)}


def check_engine_args(args: dict[str, Any]) -> dict[str, Any]:
    if not args:
        return args
    try:
        known = engine_arg_names()
    except ImportError as e:
        raise ConfigError(f"--engine-arg needs vLLM installed to check its names ({e})") from None
    for key in args:
        if key in TTS_OWNED_ENGINE:
            raise ConfigError(f"--engine-arg {key}: set it with {TTS_OWNED_ENGINE[key]}")
        if key not in known:
            raise ConfigError(f"--engine-arg {key}: not a vLLM engine argument{_suggest(key, known)}")
    return args


def check_request_args(args: dict[str, Any]) -> dict[str, Any]:
    if not args:
        return args
    try:
        known = sampling_param_names() | TEMPLATE_KEYS
    except ImportError as e:
        raise ConfigError(f"--request-arg needs vLLM installed to check its names ({e})") from None
    for key, value in args.items():
        if key in TTS_OWNED_REQUEST:
            raise ConfigError(f"--request-arg {key}: tts sets it per request; use {TTS_OWNED_REQUEST[key]}")
        if key not in known:
            raise ConfigError(f"--request-arg {key}: not a vLLM sampling parameter{_suggest(key, known)}")
        if key in TEMPLATE_KEYS and not isinstance(value, dict):
            raise ConfigError(f"--request-arg {key}: expected a JSON object, e.g. {key}='{{\"enable_thinking\": false}}'")
    return args
