"""A failure that is not bad input reaches the user as one line naming the trace file, never as a traceback; and
data that does not fit a recipe's networks is refused before any run directory is made."""
from __future__ import annotations

import ganforge.cli as cli
from ganforge.errors import note_run_dir

from conftest import run_cli


def test_an_internal_error_is_one_line_with_the_trace_in_the_run_directory(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    def broken(args):
        note_run_dir(run_dir)
        raise ZeroDivisionError("division by zero in a step")

    monkeypatch.setitem(cli.COMMANDS, "list", broken)
    monkeypatch.setattr("ganforge.errors._RunContext.run_dir", None)
    code, out, err = run_cli(["list"], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "ZeroDivisionError: division by zero in a step" in err and str(run_dir / "error.log") in err
    trace = (run_dir / "error.log").read_text()
    assert "Traceback" in trace and "def broken" not in trace and "ZeroDivisionError" in trace


def test_without_a_run_directory_the_trace_goes_to_a_temporary_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr("ganforge.errors._RunContext.run_dir", None)
    monkeypatch.setitem(cli.COMMANDS, "list", lambda args: [][1])
    code, _, err = run_cli(["list"], capsys)
    logs = list(tmp_path.glob("ganforge-error-*.log"))
    assert code == 1 and len(err.strip().splitlines()) == 1 and len(logs) == 1 and str(logs[0]) in err
    assert "IndexError" in logs[0].read_text()


def test_image_recipe_on_toy_points_is_refused_before_a_run_directory_exists(tmp_path, capsys):
    out = tmp_path / "x"
    code, _, err = run_cli(["train", "dcgan-mnist-quick", "--data", "toy:ring8", "--steps", "1", "--out", out],
                           capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "1x28x28" in err and "vectors of shape 2" in err and not out.exists()


def test_vector_recipe_on_images_is_refused_before_a_run_directory_exists(tmp_path, capsys):
    out = tmp_path / "z"
    code, _, err = run_cli(["train", "gan-toy", "--data", "mnist5k", "--steps", "1", "--out", out], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err and not out.exists(), err
