"""Shared fixtures. Every test runs with a private cache directory and without a progress bar.

The cache is private to the test session (so the domain classifier is trained once per session, from its seed).
Developers re-running tests may set ``GANFORGE_TEST_CACHE`` to a directory to keep that cache between sessions.
"""
from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    cache = os.environ.get("GANFORGE_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "cache")
    monkeypatch.setenv("GANFORGE_CACHE", cache)
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """One torch thread: tiny networks only lose time to thread hand-offs, and CI has 2 shared cores."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def run_cli(args, capsys):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    from ganforge.cli import main
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err
