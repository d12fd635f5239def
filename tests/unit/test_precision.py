"""Mixed precision: what must stay fp32 under bf16 autocast does, and the Trainer's precision checks."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import ganforge
from ganforge.errors import ConfigError
from ganforge.objectives import objective_class, objective_names
from ganforge.regularizers import gradient_penalty, r1_penalty
from ganforge.train.trainer import native_bf16


def _critic_and_batches() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    D = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    return D, torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)


def test_losses_and_penalties_are_fp32_under_bf16_training():
    """D's scores come out in bf16 under autocast; every objective's losses (softplus / BCE / logsumexp-style terms)
    are computed and returned in fp32; the gradient penalty and R1, called after the autocast block as the
    algorithms call them, equal their all-fp32 values."""
    D, real, fake = _critic_and_batches()
    checked = []
    with torch.autocast("cpu", dtype=torch.bfloat16):
        real_out, fake_out = D(real).squeeze(1), D(fake).squeeze(1)
        assert real_out.dtype == torch.bfloat16
        for name in objective_names():
            obj = objective_class(name)()
            if getattr(obj, "energy_based", False):    # scores are reconstruction energies of an auto-encoder D
                continue
            for loss in (obj.d_loss(real_out, fake_out), obj.g_loss(fake_out, real_out)):
                assert loss.dtype == torch.float32 and torch.isfinite(loss), name
            checked.append(name)
    assert {"nonsaturating", "wgan", "hinge"} <= set(checked)
    gp, r1 = gradient_penalty(D, real, fake, generator=torch.Generator().manual_seed(1)), r1_penalty(D, real)
    assert gp.dtype == torch.float32 and r1.dtype == torch.float32
    # computed in fp32: R1 by hand in float64 agrees to 1e-5 (a bf16 double-backward is off by ~1e-3)
    x = real.double().requires_grad_(True)
    (grad,) = torch.autograd.grad(D.double()(x).sum(), x)
    torch.testing.assert_close(r1.double(), 0.5 * 10.0 * grad.flatten(1).square().sum(1).mean(), rtol=1e-5, atol=0)


def test_input_gradient_penalties_stay_fp32_when_called_inside_autocast():
    D, real, _ = _critic_and_batches()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = r1_penalty(D, real)
    torch.testing.assert_close(inside, r1_penalty(D, real))


def test_precision_checks(tmp_path, capsys):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        ganforge.train("gan-toy", steps=1, out=tmp_path / "a", progress=False, precision="fp16",
                       overrides={"train.device": "cpu"})
    if not native_bf16(torch.device("cpu")):     # this CPU emulates bf16: the run says so, once, and still trains
        with pytest.warns(UserWarning, match="CPU without bf16 instructions") as caught:
            run = ganforge.train("gan-toy", steps=2, out=tmp_path / "b", progress=False, precision="bf16",
                                 overrides={"train.device": "cpu", "networks.G.hidden": [8], "networks.D.hidden": [8],
                                            "train.batch_size": 8, "train.grid_size": 4})
        assert run.steps == 2
        assert sum("CPU without bf16 instructions" in str(w.message) for w in caught) == 1


# ----------------------------------------------------------------------------------------- train.precision: auto
@pytest.mark.parametrize("native, family_ok, expected", [(True, True, ("bf16", True)), (False, True, ("fp32", False)),
                                                         (True, False, ("fp32", False))])
def test_auto_takes_bf16_only_with_native_bf16_on_a_measured_family(monkeypatch, native, family_ok, expected):
    from ganforge.train.precision import choose_precision
    monkeypatch.delenv("GANFORGE_AUTO_PRECISION", raising=False)
    choice = choose_precision(torch.device("cpu"), family_ok, "adversarial", native)
    assert (choice.precision, choice.channels_last) == expected
    assert choice.why


def test_auto_is_decided_once_and_written_into_the_run(tmp_path, monkeypatch, capsys):
    """A new run resolves auto with this machine's bf16 support (faked native here, so the test means the same on
    every CPU) and the family's flag; config.yaml keeps the concrete choice, run.json says why, and a resume on a
    machine that decides otherwise repeats the recorded choice."""
    import importlib
    import json

    import yaml

    trainer_module = importlib.import_module("ganforge.train.trainer")   # ganforge.train is also the function
    monkeypatch.delenv("GANFORGE_AUTO_PRECISION", raising=False)
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: True)
    tiny = {"train.device": "cpu", "networks.G.hidden": [8], "networks.D.hidden": [8], "train.batch_size": 8,
            "train.grid_size": 4, "train.checkpoint_every": 1}
    run = ganforge.train("gan-toy", steps=1, out=tmp_path / "a", progress="log", overrides=tiny)
    assert "precision auto -> bf16 + channels_last" in capsys.readouterr().err
    config = yaml.safe_load((run.run_dir / "config.yaml").read_text())["train"]
    assert (config["precision"], config["channels_last"]) == ("bf16", True)
    recorded = json.loads((run.run_dir / "run.json").read_text())["precision_auto"]
    assert recorded["precision"] == "bf16" and "native bf16" in recorded["why"]
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: False)   # "another machine"
    with pytest.warns(UserWarning, match="CPU without bf16 instructions"):
        resumed = ganforge.train(resume=run.run_dir, steps=2, progress=False)
    assert resumed.config.train.precision == "bf16" and resumed.steps == 2
    # A family not measured in bf16 (BEGAN's loss: its fp32 recipes do not learn the toy, so bf16 could not be
    # compared) stays fp32 under auto on the same native machine.
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: True)
    other = ganforge.train("began-toy", steps=1, out=tmp_path / "b", progress=False,
                           overrides={"train.batch_size": 8, "train.grid_size": 4})
    assert other.config.train.precision == "fp32"
    why = json.loads((other.run_dir / "run.json").read_text())["precision_auto"]["why"]
    assert why.startswith("'adversarial with began") and "is not yet measured" in why


def test_auto_pin_is_checked(monkeypatch):
    from ganforge.train.precision import choose_precision
    monkeypatch.setenv("GANFORGE_AUTO_PRECISION", "fp8")
    with pytest.raises(ConfigError, match="GANFORGE_AUTO_PRECISION='fp8'"):
        choose_precision(torch.device("cpu"), True, "adversarial", True)
    monkeypatch.setenv("GANFORGE_AUTO_PRECISION", "fp32")
    assert choose_precision(torch.device("cpu"), True, "adversarial", True).precision == "fp32"


def test_a_subclass_does_not_inherit_its_parents_bf16_measurement():
    """ProGAN and StyleGAN subclass the adversarial step but change it (fades, a path-length penalty); RaSGAN shares
    RSGAN's base: auto takes bf16 for a class only where that class itself was measured (bench/bf16_check.py), and
    only with an objective and networks measured too."""
    from ganforge.algorithms.adversarial import Adversarial
    from ganforge.build import build
    from ganforge.config import load_config
    from ganforge.train.precision import declares_bf16, measured_family

    class ChangedStep(Adversarial):
        pass

    assert declares_bf16(Adversarial) and not declares_bf16(ChangedStep)
    assert measured_family(build(load_config("hinge-sn-toy", {})).algorithm) == (True, "adversarial with hinge")
    assert measured_family(build(load_config("began-toy", {})).algorithm)[0] is False
    # the measured step and loss with unmeasured networks: fp32 under auto, the networks named
    assert measured_family(build(load_config("stylegan-colour", {})).algorithm) == (
        False, "adversarial with nonsaturating, networks ProGANDiscriminator, StyleGANGenerator")
