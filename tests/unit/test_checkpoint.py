"""Checkpoint files: exact round trips, atomic replacement, and corrupt files refused with one line."""
from __future__ import annotations

import json

import pytest
import torch

from ganforge.errors import CheckpointError
from ganforge.train.checkpoint import (flatten_state, latest_checkpoint, list_checkpoints, read_checkpoint,
                                       save_checkpoint, unflatten_state)


def _optimizer_state():
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    return net, opt.state_dict()


def test_flatten_roundtrip_of_optimizer_and_rng_state():
    _, opt_state = _optimizer_state()
    state = {"opt": opt_state, "rng": torch.get_rng_state(), "t": (1, 2.5, None, "x"), "l": [torch.ones(2)]}
    tensors = {}
    skel = flatten_state(state, "s", tensors)
    json.dumps(skel)  # the skeleton is plain JSON
    back = unflatten_state(json.loads(json.dumps(skel)), tensors)
    assert back["t"] == (1, 2.5, None, "x")
    assert torch.equal(back["rng"], state["rng"])
    assert torch.equal(back["opt"]["state"][0]["exp_avg"], opt_state["state"][0]["exp_avg"])
    assert back["opt"]["param_groups"] == opt_state["param_groups"]


def test_save_read_and_keep_newest(tmp_path):
    net, opt_state = _optimizer_state()
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, {"w": net.weight}, {"opt": opt_state}, {"step": step}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000020", "step-00000030"]
    weights, training, state = read_checkpoint(latest_checkpoint(tmp_path))
    assert state["step"] == 30 and torch.equal(weights["w"], net.weight.detach())
    assert torch.equal(training["opt"]["state"][0]["exp_avg_sq"], opt_state["state"][0]["exp_avg_sq"])


def test_half_written_checkpoint_is_ignored(tmp_path):
    net, _ = _optimizer_state()
    save_checkpoint(tmp_path, 5, {"w": net.weight}, {}, {"step": 5})
    # a crash while writing step 6 leaves a temp directory and no pointer update
    tmp = tmp_path / "checkpoints" / ".tmp-step-00000006-123"
    tmp.mkdir()
    (tmp / "weights.safetensors").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path).name == "step-00000005"
    # a missing pointer falls back to the newest complete checkpoint
    (tmp_path / "checkpoints" / "latest").unlink()
    assert latest_checkpoint(tmp_path).name == "step-00000005"


@pytest.mark.parametrize("damage", ["truncate_weights", "flip_training", "bad_json", "drop_file"])
def test_damaged_checkpoints_raise_checkpoint_error(tmp_path, damage):
    net, opt_state = _optimizer_state()
    ckpt = save_checkpoint(tmp_path, 1, {"w": net.weight}, {"opt": opt_state}, {"step": 1})
    if damage == "truncate_weights":
        data = (ckpt / "weights.safetensors").read_bytes()
        (ckpt / "weights.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "flip_training":
        data = bytearray((ckpt / "training.safetensors").read_bytes())
        data[-1] ^= 0xFF
        (ckpt / "training.safetensors").write_bytes(bytes(data))
    elif damage == "bad_json":
        (ckpt / "state.json").write_text('{"format": 1, "st')
    else:
        (ckpt / "training.safetensors").unlink()
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(ckpt)
    assert str(ckpt) in str(e.value) and "\n" not in str(e.value)
