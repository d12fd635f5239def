"""A stop asked for by a signal, remembered even where its KeyboardInterrupt is lost.

The command line turns SIGINT and SIGTERM into KeyboardInterrupt from its first moment (one line, exit 130). Python
drops an exception raised while it runs a finalizer or a callback ("Exception ignored in ..."), so an interrupt that
lands there would be lost and the run would train on; the handler therefore also records the signal here, and the
Trainer starts its loop already stopping (one step, a checkpoint, exit 130) when a stop was asked for during set-up.
"""
from __future__ import annotations

from typing import Any

requested: str | None = None


def interrupt(signum: int, frame: Any) -> None:
    """Signal handler: remember the stop, then interrupt whatever runs now."""
    import signal
    global requested
    requested = signal.Signals(signum).name
    raise KeyboardInterrupt


def clear() -> None:
    global requested
    requested = None
