"""What every `tts` command shares: one error line for a user-facing failure, and the run of a command's coroutine."""
from __future__ import annotations

import asyncio
import signal

import typer

from tts.kernel.errors import TtsError


def _error(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)


def _fail(message: str) -> None:
    _error(message)
    raise typer.Exit(1)


def _guard(make_coro, resumable: bool = False):
    """Run the command's coroutine; a user-facing error becomes one line and exit code 1.

    SIGTERM cancels the run like Ctrl-C does, so that `finally` blocks shut the engine down: vLLM's engine
    processes outlive a parent that dies without shutting them down, and keep the CPU busy."""
    async def main():
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
        return await make_coro()

    try:
        return asyncio.run(main())
    except TtsError as e:
        _fail(str(e))
    except (KeyboardInterrupt, asyncio.CancelledError):
        typer.secho("interrupted: finished results are kept; continue with --resume" if resumable
                    else "stopped", err=True)
        raise typer.Exit(130)
