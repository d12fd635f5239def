"""How many CPU threads torch uses for training (``train.threads``; 0 = auto).

Why auto is not torch's default: torch starts one OpenMP thread per core, and OpenMP threads spin while they wait
for each other. On a machine another job also uses, those threads fight for the same cores. Measured on a 2-core
Xeon with ``bench/threads.py`` (dcgan-mnist-quick, steps/s): idle machine 9.2 with 1 thread, 14.7 with 2; beside a
second training job 8.4 with 1 thread, 4.3 with 2. So auto takes the cores that are idle when training starts: the
usable cores less those other processes keep busy, at least 1. On an idle machine that is every core, as torch
would choose; on a busy one fewer. An explicit ``train.threads=N`` is always obeyed, and pins the float results:
a resume is bit-exact at the same thread count, and auto may pick another one on a busier machine.

Busy cores are measured from /proc/stat over a short sleep (so this process does not count itself), once per
process; where there is no /proc/stat, from the 1-minute load average.
"""
from __future__ import annotations

import functools
import math
import os
import time

SAMPLE_SECONDS = 0.2


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):   # not Linux
        return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from the first line of /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)      # idle + iowait
    total = sum(fields[:8])                                         # guest time is already in user time
    return total - idle, total


@functools.lru_cache(maxsize=1)
def busy_cores() -> float:
    """Cores other processes keep busy now (this one sleeps while it measures)."""
    try:
        busy0, total0 = _cpu_times()
        time.sleep(SAMPLE_SECONDS)
        busy1, total1 = _cpu_times()
        if total1 > total0:
            return (busy1 - busy0) / (total1 - total0) * (os.cpu_count() or 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):   # no load figure on this platform: assume idle
        return 0.0


def auto_threads(cores: int | None = None, load: float | None = None) -> int:
    """Idle cores now: ``cores - load`` rounded to a whole core, between 1 and ``cores``."""
    cores = usable_cores() if cores is None else cores
    load = busy_cores() if load is None else load
    return max(1, min(cores, math.floor(cores - load + 0.5)))


def training_threads(configured: int) -> int:
    """The thread count a run uses: ``configured`` when > 0, else ``auto_threads()``."""
    return configured if configured > 0 else auto_threads()
