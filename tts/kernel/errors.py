"""Errors a user can act on. The CLI prints their message as one line and exits non-zero."""


class TtsError(Exception):
    """Base of every error whose message is meant for the user, not a traceback."""


class EngineUnavailable(TtsError):
    """The engine cannot be reached or started; every further call would fail the same way."""


class DataError(TtsError):
    """A data file is missing or malformed."""


class UnreadableGold(DataError):
    """A row's gold answer cannot be read as one value of the task's kind (a loader collects these per file)."""

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class ConfigError(TtsError):
    """An unknown strategy, engine, model or an invalid option."""


class BudgetExhausted(TtsError):
    """The run's budget has no room for another call; the strategy answers with what it has."""


class MissingExtra(ConfigError):
    """An optional dependency that a feature needs is not installed."""


def require(module: str, extra: str, feature: str):
    """Import an optional dependency, or one MissingExtra line naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{feature} needs {module.split('.')[0]}, which is not installed: "
                           f"pip install 'tts-orchestrator[{extra}]'") from None
