"""An algorithm's tensor state (``Algorithm.state_tensors``) in checkpoints: restored bit-exactly on resume, kept out of
the network weights, and read from checkpoints written before it had its own place (historical averages grafted
into D, TripleGAN's labelled subset stored as a fake network)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import pytest
import torch
from safetensors import safe_open

import ganforge
from ganforge.algorithms.adversarial import Adversarial
from ganforge.build import build
from ganforge.config import load_config
from ganforge.errors import CheckpointError
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint, save_checkpoint
from ganforge.train.trainer import Trainer

from conftest import assert_same_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)

QUIET = {"train.threads": 1, "train.log_every": 2, "train.sample_every": 1000, "train.checkpoint_every": 1000,
         "train.grid_size": 4, "train.batch_size": 16}
TOY = {**QUIET, "networks.G.hidden": [16, 16], "networks.D.hidden": [16]}
HIST = {**TOY, "algorithm.historical_averaging": {"G": 0.1, "D": 0.1}, "train.ema.enabled": True,
        "train.ema.decay": 0.9, "optim.D.schedule": "constant", "optim.G.schedule": "constant"}
TRIPLE = {**QUIET, "networks.G.hidden": [32], "networks.D.hidden": [32, 16], "networks.C.filters": [4, 4, 4, 8, 8],
          "algorithm.labelled": 20, "train.ema.enabled": True, "train.ema.decay": 0.9}


def _final(run_dir: Path) -> tuple[dict[str, torch.Tensor], Any, dict[str, Any]]:
    return read_checkpoint(latest_checkpoint(run_dir))


_assert_identical = assert_same_checkpoint


def _file_keys(ckpt: Path, name: str) -> set[str]:
    with safe_open(str(ckpt / name), framework="pt") as fh:
        return set(fh.keys())


# ---------------------------------------------------------------------------------------------------- the new layout
@pytest.mark.parametrize("recipe, over, prefix", [
    ("hinge-sn-toy", HIST, "algorithm.historical_average."),
    ("triplegan-mnist", TRIPLE, "algorithm.labelled."),
])
def test_state_lives_in_training_safetensors_and_resumes_bit_exactly(tmp_path: Path, recipe: str, over: dict,
                                                                     prefix: str) -> None:
    straight = ganforge.train(recipe, steps=4, out=tmp_path / "a", progress=False, overrides=over)
    ganforge.train(recipe, steps=2, out=tmp_path / "b", progress=False, overrides=over)
    resumed = ganforge.train(resume=tmp_path / "b", steps=4, progress=False)
    a, b = _final(straight.run_dir), _final(resumed.run_dir)
    _assert_identical(a, b)
    state = [k for k in a[0] if k.startswith(prefix)]
    assert state, sorted(a[0])[:5]
    ckpt = latest_checkpoint(straight.run_dir)
    weights_file, training_file = _file_keys(ckpt, "weights.safetensors"), _file_keys(ckpt, "training.safetensors")
    assert not any("historical_average" in k or "labelled" in k for k in weights_file)   # the networks alone
    assert set(state) <= training_file
    if recipe == "hinge-sn-toy":
        assert int(a[0]["algorithm.historical_average.D.steps"]) == 5 and not any(k.startswith("ema.") and "hist" in k
                                                                                for k in a[0])
    # sampling loads it too (TripleGAN's subset), reading only the algorithm's part of training.safetensors
    model = ganforge.load(straight.run_dir)
    assert all(torch.equal(v, model.algorithm.state_tensors()[k[len("algorithm."):]]) for k, v in a[0].items()
               if k.startswith("algorithm."))


def test_init_from_carries_the_state_and_refuses_state_that_does_not_fit(tmp_path: Path) -> None:
    src = ganforge.train("triplegan-mnist", steps=1, out=tmp_path / "src", progress=False, overrides=TRIPLE)
    warm = ganforge.train("triplegan-mnist", steps=1, out=tmp_path / "warm", progress=False, overrides=TRIPLE,
                          init_from=src.run_dir)
    w_src, w_warm = _final(src.run_dir)[0], _final(warm.run_dir)[0]
    assert torch.equal(w_src["algorithm.labelled.index"], w_warm["algorithm.labelled.index"])
    with pytest.raises(CheckpointError, match="state does not fit.*algorithm.labelled.index is \\[20\\] in the "
                                              "checkpoint but \\[30\\] here"):
        ganforge.train("triplegan-mnist", steps=1, out=tmp_path / "bad", progress=False,
                       overrides={**TRIPLE, "algorithm.labelled": 30}, init_from=src.run_dir)
    assert not (tmp_path / "bad").exists()


# ---------------------------------------------------------------------------------------------------- old checkpoints
def _rewrite_in_the_old_layout(run_dir: Path) -> None:
    """Turn the run's latest checkpoint into what ganforge wrote before algorithm state had its own place: the
    historical averages as buffers of G / D (and of G's EMA copy), the labelled subset as the fake network
    ``labelled``, nothing under ``algorithm.``."""
    ckpt = latest_checkpoint(run_dir)
    weights, training, state = read_checkpoint(ckpt)
    old = {k: v for k, v in weights.items() if not k.startswith("algorithm.")}
    for k, v in weights.items():
        if k.startswith("algorithm.historical_average."):
            net, rest = k[len("algorithm.historical_average."):].split(".", 1)
            old[f"nets.{net}.historical_average.{rest}"] = v
            if f"ema.{net}.net.0.weight" in weights:
                old[f"ema.{net}.historical_average.{rest}"] = v.clone()
        elif k.startswith("algorithm.labelled."):
            old["nets.labelled." + k[len("algorithm.labelled."):]] = v
    save_checkpoint(run_dir, int(state["step"]), old, training, state, keep=10)
    doc = json.loads((ckpt / "state.json").read_text())
    assert doc["algorithm_tensors"] == [] and any(".historical_average." in k or "labelled" in k for k in old)


@pytest.mark.parametrize("recipe, over, steps", [("hinge-sn-toy", HIST, 6), ("triplegan-mnist", TRIPLE, 4)])
def test_checkpoints_of_the_old_layout_load_and_resume_bit_exactly(tmp_path: Path, recipe: str, over: dict,
                                                                   steps: int) -> None:
    straight = ganforge.train(recipe, steps=steps, out=tmp_path / "a", progress=False, overrides=over)
    ganforge.train(recipe, steps=steps // 2, out=tmp_path / "b", progress=False, overrides=over)
    _rewrite_in_the_old_layout(tmp_path / "b")
    legacy = read_checkpoint(latest_checkpoint(tmp_path / "b"))[0]
    model = ganforge.load(tmp_path / "b")          # sampling an old checkpoint: its state is mapped, not refused
    if recipe == "triplegan-mnist":
        assert torch.equal(model.algorithm.labelled_data()[0], legacy["nets.labelled.index"])
    else:
        assert torch.equal(model.algorithm.history("D").mean_0, legacy["nets.D.historical_average.mean_0"])
    resumed = ganforge.train(resume=tmp_path / "b", steps=steps, progress=False)
    _assert_identical(_final(straight.run_dir), _final(resumed.run_dir))   # written in the new layout again


# ---------------------------------------------------------------------------------------------------- a pool
class PoolGAN(Adversarial):
    """gan-toy's step with a CycleGAN-style history of fakes (Shrivastava et al. 2017): D sees, for each fake, with
    probability 1/2 one stored earlier (which the new one replaces), once the pool is full. Its state grows from
    empty, so it overrides the state methods instead of keeping fixed-size buffers."""

    pool_size = 24

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.pool = torch.zeros(0, 2)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"pool": self.pool}

    def state_mismatch(self, tensors: Mapping[str, torch.Tensor]) -> str | None:
        pool = tensors.get("pool")
        if set(tensors) != {"pool"} or pool is None or pool.dim() != 2 or pool.shape[1] != 2 \
                or len(pool) > self.pool_size:
            return f"algorithm.pool must be a (<= {self.pool_size}) x 2 history of fakes, got {sorted(tensors)}"
        return None

    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self.pool = tensors["pool"].clone()

    @torch.no_grad()
    def query(self, fake: torch.Tensor) -> torch.Tensor:
        out = fake.clone()
        for i in range(len(fake)):
            if len(self.pool) < self.pool_size:
                self.pool = torch.cat([self.pool, fake[i:i + 1]])
            elif float(torch.rand(())) < 0.5:
                j = int(torch.randint(self.pool_size, ()))
                out[i], self.pool[j] = self.pool[j].clone(), fake[i]
        return out

    def discriminator_step(self, ctx: Any, iteration: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        G, D = self.nets["G"], self.nets["D"]
        real = ctx.real_batch().x
        with torch.no_grad():
            fake = self.query(G(self.noise(len(real), real.device)))
        loss = self.objective.d_loss(D(real), D(fake))
        ctx.update("D", loss)
        return {"d_loss": loss.detach()}, real


def _pool_trainer(run: Path, steps: int) -> Trainer:
    built = build(load_config("gan-toy", {**TOY, "train.steps": steps}))
    a = built.algorithm
    built.algorithm = PoolGAN(dict(a.nets.items()), a.objective, a.data, latent_dim=a.latent_dim)
    run.mkdir(exist_ok=True)
    return Trainer(built, run, progress=False)


def test_a_growing_pool_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    straight = _pool_trainer(tmp_path / "a", 6)
    straight.fit()
    part = _pool_trainer(tmp_path / "b", 3)
    part.fit()
    saved = read_checkpoint(latest_checkpoint(tmp_path / "b"))[0]["algorithm.pool"]
    assert saved.shape == (24, 2) and torch.equal(saved, part.algorithm.pool)    # full after 3 x 16 fakes

    resumed = _pool_trainer(tmp_path / "b", 6)
    resumed.restore()
    assert torch.equal(resumed.algorithm.pool, saved)
    resumed.fit()
    assert torch.equal(resumed.algorithm.pool, straight.algorithm.pool)
    _assert_identical(_final(tmp_path / "a"), _final(tmp_path / "b"))

    # the pool matters: resuming with an empty one instead gives other weights
    forgot = _pool_trainer(tmp_path / "c", 3)
    forgot.fit()
    again = _pool_trainer(tmp_path / "c", 6)
    again.restore()
    again.algorithm.pool = torch.zeros(0, 2)
    again.fit()
    wa, wc = _final(tmp_path / "a")[0], _final(tmp_path / "c")[0]
    assert not torch.equal(wa["nets.D.head.weight"], wc["nets.D.head.weight"])


def test_a_pool_that_does_not_fit_is_refused_before_anything_loads(tmp_path: Path) -> None:
    part = _pool_trainer(tmp_path / "b", 2)
    part.fit()
    other = _pool_trainer(tmp_path / "b", 4)
    other.algorithm.pool_size = 8                  # a smaller pool than the checkpoint's 24
    before = {k: v.clone() for k, v in other.algorithm.nets.state_dict().items()}
    with pytest.raises(CheckpointError, match="state does not fit the configured algorithm: algorithm.pool"):
        other.restore()
    assert all(torch.equal(v, other.algorithm.nets.state_dict()[k]) for k, v in before.items())


# ---------------------------------------------------------------------------------------------------- new step paths
def test_accumulation_lazy_r1_and_lr_mult_resume_bit_exactly(tmp_path: Path) -> None:
    over = {**TOY, "train.accumulate": 2, "algorithm.r1_gamma": 1.0, "algorithm.r1_every": 3,
            "algorithm.d_update": "separate", "optim.G.lr_mult": {"G.net.0": 0.1}}
    straight = ganforge.train("gan-toy", steps=7, out=tmp_path / "a", progress=False, overrides=over)
    ganforge.train("gan-toy", steps=4, out=tmp_path / "b", progress=False, overrides=over)
    resumed = ganforge.train(resume=tmp_path / "b", steps=7, progress=False)
    _assert_identical(_final(straight.run_dir), _final(resumed.run_dir))
    groups = _final(straight.run_dir)[1]["optimizers"]["G"]["param_groups"]
    assert [g.get("lr_mult") for g in groups] == [None, 0.1]
    rows = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert any("r1" in r for r in rows if r.get("kind") == "train")
