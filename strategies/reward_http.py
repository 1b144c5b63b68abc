"""The `reward` scorer: a reward model run by vLLM's pooling runner, either served (`vllm serve MODEL --runner
pooling`) and asked over HTTP, or loaded in this process beside the policy engine (`in_process=True`, `model` a
folder in the hub's format; engine_adapters/vllm_reward.py), which answers in the server's shapes. A process reward model (Qwen2.5-Math-PRM's `Qwen2ForProcessRewardModel`) is asked on `/pooling`: the
solution's steps (split on a delimiter) each followed by the step tag, and vLLM returns a [negative, positive]
probability pair per step tag; the positive probabilities are aggregated by min, last, product or mean. An outcome
reward model is asked on `/classify`, and its positive-class probability is the score.

Each request is charged to the run's budget as a verification call (the prompt tokens the server counted)."""
from __future__ import annotations

from typing import Any

import openai
from pydantic import Field

from tts.kernel.context import Context
from tts.kernel.errors import ConfigError, EngineUnavailable
from tts.kernel.types import Frozen, Problem, Sample, Usage
from tts.kit import judging
from tts.strategies.scorers import Judgement, ScorerSpec, _best, register


class RewardConfig(Frozen):
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "Qwen/Qwen2.5-Math-PRM-7B"
    process: bool = True  # a process reward per step (/pooling); False: one outcome reward (/classify)
    step_tag: str = "<extra_0>"
    delimiter: str = "\n\n"
    aggregate: judging.Aggregate = "min"
    positive_class: int = Field(1, ge=0)
    timeout_s: float = Field(120.0, gt=0)
    api_key: str = "EMPTY"
    in_process: bool = False  # run `model` (a folder, or a hub name) in this process on vLLM's pooling runner
    engine_args: dict[str, Any] = Field(default_factory=dict)  # vLLM engine arguments for an in-process model


def _client(config: RewardConfig) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=config.base_url, api_key=config.api_key, timeout=config.timeout_s,
                              max_retries=2)


def prm_input(question: str, solution: str, config: RewardConfig) -> str:
    """Qwen2.5-Math-PRM's input: the question, then each step followed by the step tag."""
    steps = judging.split_steps(solution, config.delimiter)
    return f"{question}\n" + "".join(f"{step}{config.step_tag}" for step in steps)


def read_pooling(body: dict, config: RewardConfig) -> float | None:
    """The score in a /pooling or /classify response (vLLM's shapes); None where it holds none."""
    try:
        item = body["data"][0]
        if config.process:
            pairs = item["data"]
            positives = [p[config.positive_class] if isinstance(p, list) else p for p in pairs]
            return judging.aggregate_steps([float(x) for x in positives], config.aggregate)
        probs = item.get("probs") or item.get("data")
        return float(probs[config.positive_class])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


async def _ask(client: openai.AsyncOpenAI | None, config: RewardConfig, text: str) -> dict:
    if config.in_process:
        from tts.engine_adapters.vllm_reward import reward_model

        model = await reward_model(config.model, process=config.process, step_tag=config.step_tag,
                                   engine_args=config.engine_args)
        return await model.pool(text)
    path = "/pooling" if config.process else "/classify"
    try:
        return await client.post(path, body={"model": config.model, "input": text}, cast_to=object)
    except openai.NotFoundError:
        raise ConfigError(f"reward server {config.base_url} has no {path} endpoint (serve the model with vLLM's "
                          f"pooling runner: vllm serve MODEL --runner pooling)") from None
    except (openai.APIConnectionError, openai.APITimeoutError) as e:
        raise EngineUnavailable(f"reward server at {config.base_url} is not reachable ({type(e).__name__})") from None


async def judge_reward(ctx: Context, problem: Problem, candidates: list[Sample], config: RewardConfig) -> Judgement:
    vctx = ctx.verifier()
    client = None if config.in_process else _client(config)
    try:
        async def one(sample: Sample) -> float | None:
            reserved = await vctx.budget.admit(1, 1)  # a call counts against the budget's calls and deadline
            body: dict = {}
            try:
                body = await _ask(client, config, prm_input(problem.question, sample.text, config)
                                  if config.process else f"{problem.question}\n{sample.text}")
            finally:
                vctx.budget.settle(reserved, 0)
                prompt = int((body.get("usage") or {}).get("prompt_tokens") or 0) if isinstance(body, dict) else 0
                vctx.charge(Usage(prompt_tokens=prompt, calls=1, verify_prompt_tokens=prompt, verify_calls=1))
            return read_pooling(body, config) if isinstance(body, dict) else None

        outcomes = await vctx.branches([lambda s=s: one(s) for s in candidates], label="reward")
    finally:
        if client is not None:
            await client.close()
    # a candidate the server could not score stays None: the strategy counts it in its note (preflight has
    # already refused a server without the endpoint, before any engine started)
    scores = tuple(o.value if o.status == "ok" else None for o in outcomes)
    return Judgement(scores=scores, chosen=_best(scores), calls=len(candidates),
                     record={"rewards": [None if s is None else round(s, 4) for s in scores],
                             "errors": [o.error for o in outcomes if o.error][:3],
                             "aggregate": config.aggregate if config.process else "outcome"})


async def _step_tag_tokens(config: RewardConfig) -> int | None:
    """How many tokens the served model's tokenizer makes of the step tag (vLLM's /tokenize, at the server's root);
    None where the server has no such endpoint."""
    root = config.base_url.rstrip("/").removesuffix("/v1")
    client = openai.AsyncOpenAI(base_url=root, api_key=config.api_key, timeout=config.timeout_s, max_retries=1)
    try:
        body = await client.post("/tokenize", body={"model": config.model, "prompt": config.step_tag,
                                                    "add_special_tokens": False}, cast_to=object)
        return int(body["count"]) if isinstance(body, dict) and "count" in body else len(body["tokens"])
    except (openai.NotFoundError, KeyError, TypeError, ValueError):
        return None
    finally:
        await client.close()


async def preflight(config: RewardConfig) -> None:
    """Before any engine starts: the server answers, on the endpoint the config needs, with a score; a process
    reward model's step tag is one token of its tokenizer (a PRM scores at its own tag: a tag it splits into pieces
    is scored nowhere, or at a piece, and every step's reward is then meaningless). An in-process model is checked
    from its folder (that it is a reward model, that its tokenizer makes one token of the tag), not started."""
    if config.in_process:
        from tts.engine_adapters.vllm_reward import check_local

        return check_local(config.model, process=config.process, step_tag=config.step_tag,
                           engine_args=config.engine_args)
    client = _client(config)
    try:
        body = await _ask(client, config, f"1 + 1 = 2{config.step_tag}" if config.process else "1 + 1 = 2")
    finally:
        await client.close()
    if config.process:
        pieces = await _step_tag_tokens(config)
        if pieces is not None and pieces != 1:
            raise ConfigError(f"reward server {config.base_url}: the step tag {config.step_tag!r} is {pieces} tokens "
                              f"of model '{config.model}'s tokenizer, not one (set scorer_options step_tag to the "
                              f"model's own tag)")
    if not isinstance(body, dict) or read_pooling(body, config) is None:
        raise ConfigError(f"reward server {config.base_url}: model '{config.model}' answered without a reward "
                          f"(is it a reward model? a process reward model needs its step tag {config.step_tag!r})")


async def close() -> None:
    from tts.engine_adapters.vllm_reward import close_all

    await close_all()


register(ScorerSpec("reward", judge_reward, RewardConfig, "a reward model on vLLM's pooling runner, served (/pooling "
                    "per step, /classify outcome) or in this process", preflight=preflight, close=close))
