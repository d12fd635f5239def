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
