"""Errors a user can act on. The CLI prints their message as one line and exits non-zero."""


class TtsError(Exception):
    """Base of every error whose message is meant for the user, not a traceback."""


class EngineUnavailable(TtsError):
    """The engine cannot be reached or started; every further call would fail the same way."""


class DataError(TtsError):
    """A data file is missing or malformed."""


class ConfigError(TtsError):
    """An unknown strategy, engine, model or an invalid option."""


class BudgetExhausted(TtsError):
    """The run's budget has no room for another call; the strategy answers with what it has."""
