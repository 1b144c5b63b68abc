"""The strategy registry: a strategy's registration carries everything the app needs to know about it (its name,
aliases, one-line description, config model, what it takes), so that the CLI, the server and the reports derive
their lists from here. Strategy modules import this module, never the package: registration has no import circle."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from pydantic import BaseModel, ValidationError

from tts.kernel.errors import ConfigError


@dataclass(frozen=True)
class StrategySpec:
    name: str
    run: Callable[..., Awaitable[Any]]
    config: type[BaseModel]
    aliases: tuple[str, ...] = ()
    # run takes `upstream: Answer | None` (the previous stage's answer in a composition `a | b`)
    takes_upstream: bool = False
    needs_upstream: bool = False  # only a stage after `|` (a judge): not served or run on its own
    description: str = ""  # one line, for `tts strategies`, the server's model list and the CLI help
    # a stage after `|`: checks the previous stage's config (e.g. a judge needs more than one sample); ConfigError
    check_upstream: Callable[[Any], None] | None = None
    # checked before any engine starts, with the run's config (e.g. that a reward server answers); None: nothing
    preflight: Callable[[Any], Awaitable[None]] | None = None


_REGISTRY: dict[str, StrategySpec] = {}


def register(spec: StrategySpec) -> StrategySpec:
    for key in (spec.name, *spec.aliases):
        _REGISTRY[key] = spec
    return spec


def names() -> list[str]:
    return sorted({s.name for s in _REGISTRY.values()})


def get(name: str) -> StrategySpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown strategy '{name}'; known: {', '.join(names())}") from None


def make_config(spec: StrategySpec, **options: Any) -> BaseModel:
    """The strategy's config from options, dropping those left unset (None); invalid values are a ConfigError."""
    given = {k: v for k, v in options.items() if v is not None and k in spec.config.model_fields}
    try:
        return spec.config(**given)
    except ValidationError as e:
        first = e.errors()[0]
        raise ConfigError(f"invalid option for strategy '{spec.name}': {'.'.join(map(str, first['loc']))}: "
                          f"{first['msg']}") from None


def specs() -> list[StrategySpec]:
    """Every registered strategy once, by name."""
    return [get(name) for name in names()]
