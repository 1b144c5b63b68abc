"""Engines by name, each with its own typed spec: `vllm` (in-process, GPU or CPU build), `openai` (any compatible
server), `sim` (a deterministic simulator for tests and overhead benchmarks), `replay` (recorded traces served to any strategy).
Adding an engine is one module plus one
`register` line here."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Literal

from pydantic import Field

from tts.engine_adapters.pool import Policy
from tts.kernel.budget import Price
from tts.kernel.engine import Engine
from tts.kernel.errors import ConfigError
from tts.kernel.types import Frozen, GenerateRequest, Problem


class SimSpec(Frozen):
    kind: Literal["sim"] = "sim"
    accuracy: float = Field(0.7, ge=0.0, le=1.0, description="probability that a completion's answer is right")
    latency_per_token_s: float = Field(0.001, ge=0.0)
    seed: int = 0


class OpenAISpec(Frozen):
    kind: Literal["openai"] = "openai"
    model: str
    base_url: str = "http://127.0.0.1:8000/v1"
    rate_limit: float | None = Field(None, gt=0, description="requests per second")
    # a server that accepts connections and never answers must not hang a run: a read that waits longer fails
    # (and is retried like a 5xx); a long generation still fits in the read timeout
    timeout_s: float = Field(300.0, gt=0, description="seconds to wait for a response")
    connect_timeout_s: float = Field(10.0, gt=0)
    extra_body: dict[str, Any] = {}  # --request-arg: request extras the server takes (vLLM: top_k, min_p, ...)
    # more replicas of the same model (--base-url repeated): a pool routes between them (engine_adapters/pool.py)
    replicas: tuple[str, ...] = ()
    route: Policy = "affinity"
    # a pool's patience with slow and hung replicas (engine_adapters/pool.py): a fixed per-call deadline before a
    # call is retried elsewhere (None: slow_factor x the pool's recent 90th-percentile call latency), and how much
    # slower than its peers a replica may be before it is drained
    deadline_s: float | None = Field(None, gt=0)
    slow_factor: float = Field(4.0, gt=1)


class VLLMSpec(Frozen):
    kind: Literal["vllm"] = "vllm"
    model: str  # as vLLM takes it: a hub id or a model directory (engine_spec resolves local model names)
    name: str | None = None  # the model as the user named it (a local model's name), None for the default
    max_model_len: int = Field(4096, ge=16)
    seed: int = 0
    engine_args: dict[str, Any] = {}  # --engine-arg: vLLM's AsyncEngineArgs, by vLLM's names
    request_args: dict[str, Any] = {}  # --request-arg: SamplingParams fields, and chat_template_kwargs


class ReplaySpec(Frozen):
    kind: Literal["replay"] = "replay"
    traces: Path  # a recording made with `tts eval --record` (engine_adapters/replay.py)
    latency_per_token_s: float = Field(0.001, ge=0.0, description="every trace decodes at this speed")


EngineSpec = SimSpec | OpenAISpec | VLLMSpec | ReplaySpec
Responder = Callable[[GenerateRequest], "str | None"]


@dataclass(frozen=True)
class EngineKind:
    name: str
    spec: type[Frozen]
    open: Callable[..., Awaitable[Engine]]  # (spec, problems, responder, price) -> a started engine


_KINDS: dict[str, EngineKind] = {}


def register(kind: EngineKind) -> None:
    _KINDS[kind.name] = kind


def names() -> tuple[str, ...]:
    return tuple(_KINDS)


def default_engine() -> str:
    """vLLM in-process: on a machine with no GPU that is vLLM's CPU build with the default local model."""
    return "vllm"


_GENERAL = {"seed", "traces"}  # the run's seed reaches the engines that take one; --traces is checked below
_FLAGS = {"accuracy": "sim-accuracy", "latency_per_token_s": "sim-latency", "timeout_s": "request-timeout",
          "deadline_s": "replica-deadline"}


def engine_spec(kind: str | None, **options: Any) -> EngineSpec:
    """The typed spec of engine `kind` from options (unset ones dropped); an unknown kind or bad value is a
    ConfigError, raised before anything starts."""
    from pydantic import ValidationError

    kind = kind or default_engine()
    if kind not in _KINDS:
        raise ConfigError(f"unknown engine '{kind}'; known: {', '.join(_KINDS)}")
    spec_type = _KINDS[kind].spec
    engine_args, request_args = options.pop("engine_args", None) or {}, options.pop("request_args", None) or {}
    given = {k: v for k, v in options.items() if v is not None and k in spec_type.model_fields}
    stray = [k for k, v in options.items() if v not in (None, (), [], {}) and k not in spec_type.model_fields
             and k not in _GENERAL]
    if stray:  # an option for another engine is a mistake to name, not to drop
        flags = ", ".join(f"--{_FLAGS.get(k, k.replace('_', '-'))}" for k in sorted(stray))
        raise ConfigError(f"{flags} does not apply to the {kind} engine")
    if engine_args and kind != "vllm":
        raise ConfigError(f"--engine-arg applies to the vllm engine, not '{kind}'"
                          + ("; request extras go in --request-arg" if kind == "openai" else ""))
    if request_args and kind in ("sim", "replay"):
        raise ConfigError(f"--request-arg does not apply to the {kind} engine")
    if options.get("traces") is not None and kind != "replay":
        raise ConfigError(f"--traces applies to --engine replay, not '{kind}'")
    if kind == "replay":
        if given.get("traces") is None:
            raise ConfigError("--engine replay needs --traces FILE (a recording made with tts eval --record)")
        from tts.engine_adapters.replay import read_traces

        read_traces(Path(given["traces"]))  # a missing or damaged recording is an error now, before any run folder
    if kind == "vllm":
        from tts.engine_adapters.local_models import resolve
        from tts.engine_adapters.vllm_args import check_engine_args, check_request_args

        # a missing model or an unreachable hub is an error now, before any run folder or engine
        given.update(name=given.get("model"), model=resolve(given.get("model")), engine_args=check_engine_args(engine_args),
                     request_args=check_request_args(request_args))
    elif kind == "openai":
        given["extra_body"] = request_args
        urls = given.get("base_url")
        if isinstance(urls, (list, tuple)):  # --base-url given more than once: a replica pool
            if not urls:
                given.pop("base_url")
            else:
                given["base_url"], given["replicas"] = urls[0], tuple(urls[1:])
        given.setdefault("base_url", os.environ.get("OPENAI_BASE_URL") or OpenAISpec.model_fields["base_url"].default)
        for url in (given["base_url"], *given.get("replicas", ())):
            _check_url(url)
        if not given.get("model"):
            raise ConfigError("--engine openai needs --model (the name the server serves)")
    try:
        return spec_type(**given)
    except ValidationError as e:
        first = e.errors()[0]
        raise ConfigError(f"invalid option for engine '{kind}': {'.'.join(map(str, first['loc']))}: "
                          f"{first['msg']}") from None


def _check_url(url: str) -> None:
    """An http(s) URL with a host and a valid port, or one ConfigError naming it."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as e:
        raise ConfigError(f"--base-url {url!r} is not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--base-url {url!r} is not an http(s) URL with a host")


async def open_engine(spec: EngineSpec, *, problems: list[Problem] | None = None, responder: Responder | None = None,
                      price: Price | None = None) -> Engine:
    """Start the engine a spec names. `price` is what its tokens cost, for money budgets and usage reports;
    `problems` and `responder` let the simulator answer (the other engines ignore them)."""
    return await _KINDS[spec.kind].open(spec, problems or [], responder, price)


async def make_engine(kind: str | None, *, problems: list[Problem] | None = None, responder: Responder | None = None,
                      price: Price | None = None, **options: Any) -> Engine:
    """`open_engine(engine_spec(kind, **options))`, for callers that hold loose options."""
    return await open_engine(engine_spec(kind, **options), problems=problems, responder=responder, price=price)


async def _open_sim(spec: SimSpec, problems, responder, price) -> Engine:
    from tts.engine_adapters.sim import SimConfig, SimulatedEngine

    config = SimConfig(accuracy=spec.accuracy, latency_per_token_s=spec.latency_per_token_s, seed=spec.seed)
    return SimulatedEngine.for_problems(problems, config, responder=responder, price=price)


async def _open_openai(spec: OpenAISpec, problems, responder, price) -> Engine:
    from tts.engine_adapters.openai_http import OpenAIEngine

    def one(url: str, retries: int) -> OpenAIEngine:
        return OpenAIEngine(url, spec.model, rate_limit=spec.rate_limit, price=price, timeout_s=spec.timeout_s,
                            connect_timeout_s=spec.connect_timeout_s, extra_body=spec.extra_body, max_retries=retries)

    if not spec.replicas:
        engine = one(spec.base_url, 4)
        await engine.check()
        return engine
    from tts.engine_adapters.pool import EnginePool

    urls = [spec.base_url, *spec.replicas]
    # a pool fails over instead of retrying a dead replica: one retry each, then the next replica
    pool = EnginePool([one(u, 1) for u in urls], names=urls, policy=spec.route, deadline_s=spec.deadline_s,
                      slow_factor=spec.slow_factor)
    await pool.check()
    return pool


async def _open_vllm(spec: VLLMSpec, problems, responder, price) -> Engine:
    from tts.engine_adapters.vllm_engine import VLLMEngine

    return VLLMEngine.start(spec.model, max_model_len=spec.max_model_len, seed=spec.seed, price=price,
                            engine_args=spec.engine_args, request_args=spec.request_args)


async def _open_replay(spec: ReplaySpec, problems, responder, price) -> Engine:
    from tts.engine_adapters.replay import ReplayEngine

    return ReplayEngine(spec.traces, latency_per_token_s=spec.latency_per_token_s)


register(EngineKind("vllm", VLLMSpec, _open_vllm))
register(EngineKind("replay", ReplaySpec, _open_replay))
register(EngineKind("openai", OpenAISpec, _open_openai))
register(EngineKind("sim", SimSpec, _open_sim))
