"""One writer per run directory: an exclusive lock held for as long as a process trains into it.

``RUN/.lock`` holds the owner's pid, host and start time (for the message a second writer gets); the exclusion itself
is an ``fcntl.flock`` on that file, which the kernel releases when the owner exits in any way (kill -9 included), so a
lock left by a dead process is never in force: a lock file whose flock can be taken is stale and simply taken over.
Two ``--resume``s of one run, a ``--resume`` of a run still training, or ``--force`` over a live run are refused with
one line naming the owner. Readers (``sample``, ``eval``, ``info``) never take it.

While holding it, the owner removes what killed writers left behind: checkpoint directories being written
(``checkpoints/.tmp-step-*-PID``) and temporary files (``.NAME.tmp-PID``) whose process is gone.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

from ..errors import RunDirError

LOCK_NAME = ".lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # another user's live process
        return True
    return True


def _owner_text(path: Path) -> str:
    try:
        owner = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    since = f" since {owner['started']}" if owner.get("started") else ""
    return f"process {owner.get('pid', '?')} on {owner.get('host', '?')}{since}"


def _busy(run_dir: Path, what: str) -> RunDirError:
    return RunDirError(f"cannot {what} {run_dir}: it is being trained by {_owner_text(run_dir / LOCK_NAME)}; wait "
                       "for that run to end (or stop it: Ctrl-C saves a checkpoint), or use another --out")


class RunLock:
    """The exclusive training lock of one run directory (``acquire`` takes it or raises RunDirError)."""

    def __init__(self, run_dir: Path, fh: Any):
        self.run_dir, self._fh = run_dir, fh

    @classmethod
    def acquire(cls, run_dir: str | Path, what: str = "train into") -> "RunLock":
        import fcntl
        run_dir = Path(run_dir)
        path = run_dir / LOCK_NAME
        fh = open(path, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise _busy(run_dir, what) from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": _dt.datetime.now().isoformat(timespec="seconds")}))
        fh.flush()
        lock = cls(run_dir, fh)
        lock.clean_stale_temporaries()
        return lock

    @staticmethod
    def check_free(run_dir: str | Path, what: str) -> None:
        """Refuse (RunDirError) when a live process holds ``run_dir``'s lock; take nothing, write nothing."""
        import fcntl
        path = Path(run_dir) / LOCK_NAME
        try:
            fh = open(path)
        except OSError:     # no lock file: nobody has trained here with a lock
            return
        with fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                raise _busy(run_dir, what) from None

    def clean_stale_temporaries(self) -> list[Path]:
        """Remove the temporary files and checkpoint directories of writers that died (their pid is gone)."""
        removed: list[Path] = []
        places = [self.run_dir, self.run_dir / "checkpoints", self.run_dir / "samples", self.run_dir / "evals"]
        for folder in places:
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                pid = _temporary_pid(p.name)
                if pid is None or pid == os.getpid() or _pid_alive(pid):
                    continue
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p)
        return removed

    def release(self) -> None:
        if self._fh is None:
            return
        import fcntl
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        finally:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _temporary_pid(name: str) -> int | None:
    """The writer's pid in a temporary name (``.tmp-step-00000010-1234``, ``.report.html.tmp-1234``,
    ``.latest.tmp-1234``), None for any other name."""
    if not name.startswith("."):
        return None
    head, sep, tail = name.rpartition("-")
    if not sep or not tail.isdigit() or ".tmp" not in head and not head.startswith(".tmp"):
        return None
    return int(tail)
