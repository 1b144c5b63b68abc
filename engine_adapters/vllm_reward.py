"""A reward model in this process, on vLLM's pooling runner (the CPU build or the GPU build), beside the policy engine.

It answers in the shape vLLM's server gives on `/pooling` and `/classify`, so the `reward` scorer reads a local model and
a served one the same way: a process reward model (`*ForProcessRewardModel`, token classification) returns a
[negative, positive] probability pair at each step tag; an outcome reward model (`*ForSequenceClassification`)
returns its class probabilities.

Models are started once per process and kept, keyed by what started them: a scorer is called once per problem and a
reward model takes seconds to load. `close_all()` ends them (the app calls it when a run, a session or the server
ends); a watchdog ends their engine processes should this process die without it."""
from __future__ import annotations

import asyncio
import json
import os
import uuid
import weakref
from pathlib import Path
from typing import Any

from tts.kernel.errors import ConfigError, EngineUnavailable

# architectures vLLM runs as reward models without a `convert` option
REWARD_ARCHITECTURES = ("ForProcessRewardModel", "ForRewardModel", "ForSequenceClassification",
                        "ForTokenClassification")


class VLLMRewardModel:
    def __init__(self, llm, model: str, step_tag_id: int | None, watchdog=None):
        self.llm, self.model, self.step_tag_id, self._watchdog = llm, model, step_tag_id, watchdog

    @classmethod
    def start(cls, model: str, *, process: bool, step_tag: str, max_model_len: int = 4096, kv_cache_gib: int = 1,
              engine_args: dict | None = None) -> "VLLMRewardModel":
        from tts.engine_adapters.vllm_engine import _all_cores, cpu_dtype

        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gib))
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", _all_cores())
        try:
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.platforms import current_platform
            from vllm.v1.engine.async_llm import AsyncLLM
        except ImportError as e:
            raise EngineUnavailable(f"vLLM is not installed ({e}); install the `cpu` or `vllm` extra") from None
        from tts.engine_adapters.watchdog import child_pids, guard

        defaults = dict(runner="pooling", enforce_eager=True, max_model_len=max_model_len, disable_log_stats=True,
                        dtype=cpu_dtype() if current_platform.is_cpu() else "auto",
                        use_tqdm_on_load=os.environ.get("VLLM_LOGGING_LEVEL", "INFO").upper() in ("DEBUG", "INFO"))
        before = set(child_pids())
        try:
            llm = AsyncLLM.from_engine_args(AsyncEngineArgs(model=model, **{**defaults, **(engine_args or {})}))
        except Exception as e:
            raise EngineUnavailable(f"vLLM could not start reward model {model}: {type(e).__name__}: {e}") from None
        tag_id = None
        if process:
            ids = llm.get_tokenizer().encode(step_tag, add_special_tokens=False)
            tag_id = ids[0] if len(ids) == 1 else None  # preflight has refused a tag of several tokens
        return cls(llm, model, tag_id, guard(sorted(set(child_pids()) - before)))

    async def pool(self, text: str) -> dict[str, Any]:
        """One input's rewards, as vLLM's server would return them on /pooling (process) or /classify (outcome)."""
        from vllm import PoolingParams

        process = self.step_tag_id is not None
        params = PoolingParams(task="token_classify" if process else "classify",
                               **({"step_tag_id": self.step_tag_id} if process else {}))
        final = None
        async for out in self.llm.encode(text, params, request_id=f"reward-{uuid.uuid4().hex}"):
            final = out
        if final is None:
            return {}
        data = final.outputs.data.float().tolist()
        usage = {"prompt_tokens": len(final.prompt_token_ids), "cached_tokens": final.num_cached_tokens}
        return {"data": [{"data": data} if process else {"probs": data}], "usage": usage}

    async def aclose(self) -> None:
        from tts.engine_adapters.vllm_engine import shutdown

        llm, self.llm, watchdog, self._watchdog = self.llm, None, self._watchdog, None
        shutdown(llm, watchdog)


_OPEN: dict[str, VLLMRewardModel] = {}
_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # a lock per event loop: a lock may not cross loops


async def reward_model(model: str, *, process: bool, step_tag: str, engine_args: dict | None = None
                       ) -> VLLMRewardModel:
    """The process's reward model for these settings, started on first use (off the event loop: loading blocks)."""
    key = json.dumps([model, process, step_tag, engine_args or {}], sort_keys=True, default=str)
    async with _LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock()):
        if key not in _OPEN:
            _OPEN[key] = await asyncio.to_thread(VLLMRewardModel.start, model, process=process, step_tag=step_tag,
                                                 engine_args=engine_args)
        return _OPEN[key]


async def close_all() -> None:
    while _OPEN:
        _, rm = _OPEN.popitem()
        await rm.aclose()


def check_local(model: str, *, process: bool, step_tag: str, engine_args: dict | None = None) -> None:
    """Before any engine starts: the model's folder is there, it is a reward model vLLM's pooling runner takes (or is
    converted to one by `engine_args={'convert': ...}`), and a process reward model's step tag is one token of its
    tokenizer. A hub name (not a folder) is left to vLLM."""
    folder = Path(model).expanduser()
    if not folder.exists():
        if model.startswith((".", "/", "~")):
            raise ConfigError(f"reward model folder {model} does not exist")
        return
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"reward model {model}: no readable config.json ({type(e).__name__})") from None
    archs = config.get("architectures") or []
    if not (engine_args or {}).get("convert") and not any(a.endswith(REWARD_ARCHITECTURES) for a in archs):
        raise ConfigError(f"reward model {model} is {', '.join(archs) or 'of no declared architecture'}, not a reward "
                          f"model (vLLM's pooling runner takes *ForProcessRewardModel, *ForRewardModel or "
                          f"*ForSequenceClassification; scorer_options engine_args={{'convert': 'classify'}} converts "
                          f"a causal LM)")
    if process:
        pieces = _tag_pieces(folder, step_tag)
        if pieces != 1:
            raise ConfigError(f"reward model {model}: the step tag {step_tag!r} is {pieces} tokens of its tokenizer, "
                              f"not one (set scorer_options step_tag to the model's own tag)")


def _tag_pieces(folder: Path, tag: str) -> int:
    try:
        from tokenizers import Tokenizer

        return len(Tokenizer.from_file(str(folder / "tokenizer.json")).encode(tag, add_special_tokens=False).ids)
    except Exception as e:  # no tokenizer.json (a sentencepiece model): let transformers read the folder
        try:
            from transformers import AutoTokenizer

            return len(AutoTokenizer.from_pretrained(str(folder)).encode(tag, add_special_tokens=False))
        except Exception:
            raise ConfigError(f"reward model {folder}: its tokenizer cannot be read ({type(e).__name__})") from None
