"""Strategies by name. A strategy is `async def run(ctx, problem, config) -> Answer` with a frozen config model;
one that refines an earlier stage's samples also takes `upstream: Answer | None` (registered with takes_upstream).
Adding a strategy is one module that calls `registry.register` plus one import line below; a package outside tts
registers its own through the `tts.strategies` entry-point group (the module is imported when tts starts)."""
from __future__ import annotations

import sys
from importlib.metadata import entry_points

from tts.strategies.registry import StrategySpec, get, make_config, names, register, specs  # noqa: F401

from tts.strategies import self_consistency  # noqa: E402,F401  (each registers itself)
from tts.strategies import pdr  # noqa: E402,F401
from tts.strategies import apr  # noqa: E402,F401
from tts.strategies import llm_compiler, react  # noqa: E402,F401
from tts.strategies import code_sc  # noqa: E402,F401
from tts.strategies import compose  # noqa: E402,F401
from tts.strategies import deepconf  # noqa: E402,F401
from tts.strategies import judged, reward_http  # noqa: E402,F401
from tts.strategies import open_ended  # noqa: E402,F401
from tts.strategies import beam  # noqa: E402,F401

for _plugin in entry_points(group="tts.strategies"):
    try:
        _plugin.load()
    except Exception as e:  # a broken plugin is named, and the built-in strategies still run
        print(f"warning: strategy plugin '{_plugin.name}' ({_plugin.value}) failed to load: {e}", file=sys.stderr)
