"""train.threads=0 (auto): the idle cores, so a shared machine is not oversubscribed."""
from __future__ import annotations

from ganforge.train.threads import auto_threads, training_threads


def test_auto_takes_every_core_of_an_idle_machine():
    assert auto_threads(cores=2, load=0.0) == 2
    assert auto_threads(cores=16, load=0.3) == 16


def test_auto_leaves_the_cores_other_jobs_use():
    assert auto_threads(cores=2, load=1.0) == 1       # one other single-threaded job: one thread for us
    assert auto_threads(cores=16, load=3.4) == 13
    assert auto_threads(cores=2, load=7.0) == 1       # never fewer than one


def test_an_explicit_count_is_obeyed():
    assert training_threads(3) == 3
    assert 1 <= training_threads(0) <= auto_threads(load=0.0)
