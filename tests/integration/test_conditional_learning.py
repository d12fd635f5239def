"""Short real runs of the class-conditional recipes on the bundled digits must make the label control the digit.

Each recipe (CGAN with the book's label-plane D, CGAN with the projection D, ACGAN) trains for a few hundred steps
on mnist5k with everything shrunk for speed: digits resized to 16 px, a quarter of the book's channel widths, batch
32, and RMSprop lr 2e-3 for both players (the book's 2e-4 / 1e-4 needs thousands of steps; bench/conditional.py runs
the recipes' own settings). Judge: the nearest class mean of the real training digits in pixel space (79% correct on
the held-out real digits at 28 px), so the test needs no trained classifier. Samples are drawn with balanced
requested labels; the share the judge assigns to the requested label must rise from chance (10%) to well above it.
"""
from __future__ import annotations

import pytest
import torch

import ganforge
from ganforge.data import load_source, prepare

from conftest import learned

SIZE = 16
FAST = {"data.image_size": SIZE, "networks.G.filters": [32, 16, 8], "networks.D.filters": [8, 16, 32, 64],
        "train.batch_size": 32, "optim.D.lr": 2e-3, "optim.G.lr": 2e-3, "train.threads": 1,
        "train.log_every": 50, "train.sample_every": 10_000, "train.checkpoint_every": 10_000, "train.grid_size": 4}


@pytest.fixture(scope="module")
def class_means() -> torch.Tensor:
    ds = prepare(load_source("mnist5k"), SIZE, 1)
    x = ds.x.float().div(255).flatten(1)
    return torch.stack([x[ds.y == c].mean(0) for c in range(10)])


def label_accuracy(algorithm, nets, means: torch.Tensor, n: int = 500) -> float:
    """Share of n samples (n/10 per requested label) whose nearest class mean is the requested label."""
    with torch.random.fork_rng(), torch.no_grad():
        modes = [(m, m.training) for m in nets.values()]
        for m in nets.values():
            m.eval()
        inputs = algorithm.sample_inputs(n, torch.Generator().manual_seed(5), torch.device("cpu"),
                                         labels=list(range(10)), per_row=n // 10)
        images = algorithm.generate(inputs, nets).float().flatten(1)
        for m, flag in modes:
            m.train(flag)
    return float((torch.cdist(images, means).argmin(1) == inputs["y"]).float().mean())


# The book's label-plane CGAN D needs the most steps to start using the label; with the survey e-book's
# matching-aware term (real image + wrong label scored as fake) it gets there in fewer, so that is what runs.
# 250 steps: at 120-200 the label was still taking hold (ACGAN 0.29-0.80 at 120 steps over seeds 0-2 and CPU kinds);
# at 250, measured 0.86-0.94 (ACGAN), 0.79-0.87 (projection), 0.95-0.99 (CGAN) on an AVX-512 Xeon and with AVX2
# kernels, seeds 0-2.
@pytest.mark.parametrize("recipe,steps,extra", [
    ("acgan-mnist", 250, {}),
    ("cgan-projection-mnist", 250, {}),
    ("cgan-mnist", 250, {"algorithm.mismatch_weight": 1.0}),
])
def test_conditional_run_makes_the_label_control_the_digit(recipe, steps, extra, class_means, tmp_path):
    accuracy = {}

    def probe(trainer):
        if trainer.step in (1, steps):
            accuracy[trainer.step] = label_accuracy(trainer.algorithm, trainer.sampling_nets(), class_means)

    run = ganforge.train(recipe, steps=steps, out=tmp_path / "run", progress=False, overrides={**FAST, **extra},
                         on_step=probe)
    learned("label accuracy after one step", accuracy[1], 0.2, higher=False)   # the label does nothing yet
    learned(f"label accuracy after {steps} steps", accuracy[steps], 0.4, chance=0.1)   # 4x chance
    # and the trained model, reloaded from its checkpoint, gives the same figure (sampling path = training path)
    model = ganforge.load(run.run_dir)
    assert abs(label_accuracy(model.algorithm, model.nets, class_means) - accuracy[steps]) < 1e-6
