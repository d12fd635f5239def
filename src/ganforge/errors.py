"""User-facing errors.

Every problem a user can fix (bad config, missing data, corrupt checkpoint, ...) is raised as a
``GanforgeError`` whose message is one line saying what is wrong, where, and how to fix it. The CLI
prints that line and exits with status 2; it never shows a traceback for these.
"""
from __future__ import annotations


class GanforgeError(Exception):
    """A problem with the user's input that they can fix; the message is shown as one line."""

    exit_code = 2


class ConfigError(GanforgeError):
    """Unknown recipe or key, wrong type or out-of-range value."""


class DataError(GanforgeError):
    """Missing, unreadable or malformed data source."""


class CheckpointError(GanforgeError):
    """Missing, truncated or corrupt checkpoint / run directory."""


class RunDirError(GanforgeError):
    """Output directory conflicts (exists without --resume/--force, not a run, ...)."""


class _RunContext:
    """The run directory the current command works in, so that an unexpected failure can be logged there."""

    run_dir: "object | None" = None


def note_run_dir(path: object) -> None:
    """Called once a command has a run directory (new or resumed): an internal error's trace goes there."""
    _RunContext.run_dir = path


def current_run_dir() -> "object | None":
    return _RunContext.run_dir
