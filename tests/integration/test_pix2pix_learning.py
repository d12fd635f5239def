"""pix2pix learns a font-to-font translation that carries over to characters it never saw, resumes bit-exactly, and
draws input | output | target grids of held-out characters.

Data: matplotlib's DejaVu fonts (present wherever ganforge is installed), 32 px alnum glyphs, trained on the train
split (51 characters) and measured on the 11 held-out ones (``glyphs?split=test``). The pair is DejaVu Sans -> DejaVu
Sans Bold: a change of stroke weight, which a short run learns well enough to be told from copying with a wide margin
(Sans -> Serif, whose glyphs differ by a few serif pixels, needs minutes: bench/pix2pix_glyphs.py).
"""
from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

import ganforge
from conftest import assert_same_checkpoint, learned
from ganforge.data import load_source, to_model_range, to_uint8
from ganforge.metrics.paired import l1
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint

PAIR = "glyphs:DejaVuSans,DejaVuSans-Bold?chars=alnum&size=32"
# The glyph recipe at a test's size: small widths, a 1-layer (16 px) PatchGAN, lr 1e-3.
SMALL = {"data.source": f"{PAIR}&split=train", "data.held_out": f"{PAIR}&split=test",
         "networks.G.filters": 16, "networks.G.max_filters": 64, "networks.D.filters": 16, "networks.D.n_layers": 1,
         "optim.G.lr": 1e-3, "optim.D.lr": 1e-3, "optim.G.decay_steps": 0, "optim.D.decay_steps": 0,
         "train.threads": 1, "train.log_every": 25, "train.grid_size": 16}
STEPS = 300


def test_translation_of_held_out_characters_beats_copying_the_input(tmp_path):
    torch.set_num_threads(1)
    result = ganforge.train("pix2pix-glyphs", steps=STEPS, out=tmp_path / "run", progress=False,
                            overrides={**SMALL, "train.sample_every": STEPS, "train.checkpoint_every": STEPS})
    model = ganforge.load(result.run_dir)
    test = load_source(f"{PAIR}&split=test")
    train_chars = set(load_source(f"{PAIR}&split=train").meta["chars"])
    assert len(test) == 11 and not train_chars & set(test.meta["chars"])   # never seen in training
    source, target = test.x, test.fields["target"]
    with torch.no_grad():
        out = to_uint8(model.algorithm.translate(to_model_range(source, (-1.0, 1.0)), model.nets), (-1.0, 1.0))
    ours, copy = float(l1(out, target).mean()), float(l1(source, target).mean())
    blank = float(l1(torch.full_like(target, 255), target).mean())
    assert copy < blank                                 # copying is the stronger of the two trivial answers here
    learned("held-out L1, pix2pix / copy-the-input", ours / copy, 0.8, higher=False, chance=1.0)

    # the last progress grid: held-out characters, input | output | target, one a row
    grid = result.run_dir / "samples" / f"step-{STEPS:08d}.png"
    img = Image.open(grid)
    assert img.text["columns"] == "input | output | target"
    arr = np.asarray(img.convert("L"))[::2, ::2]       # 32 px cells shown at 2x
    assert arr.shape == (11 * 34 + 2, 3 * 34 + 2)       # 11 held-out rows x 3 columns, 2 px padding
    held_out_glyphs = {c.tobytes() for c in source[:, 0].numpy()}
    for r in range(11):   # each row's input is a held-out character, its target that character in the bold face
        cell_in = np.ascontiguousarray(arr[2 + r * 34:2 + r * 34 + 32, 2:34])
        cell_target = np.ascontiguousarray(arr[2 + r * 34:2 + r * 34 + 32, 2 + 2 * 34:2 + 2 * 34 + 32])
        assert cell_in.tobytes() in held_out_glyphs
        i = [c.tobytes() for c in source[:, 0].numpy()].index(cell_in.tobytes())
        assert np.array_equal(cell_target, target[i, 0].numpy())
    logged = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    keys = {k for row in logged for k in row}
    assert {"d_loss", "g_loss", "g_adv", "g_l1", "d_real", "d_fake"} <= keys


def test_resume_is_bit_exact(tmp_path):
    torch.set_num_threads(1)
    tiny = {**SMALL, "networks.G.filters": 4, "networks.G.max_filters": 8, "networks.D.filters": 4,
            "train.batch_size": 4, "train.sample_every": 3, "train.checkpoint_every": 3}
    straight = ganforge.train("pix2pix-glyphs", steps=6, out=tmp_path / "a", progress=False, overrides=tiny)
    ganforge.train("pix2pix-glyphs", steps=3, out=tmp_path / "b", progress=False, overrides=tiny)
    resumed = ganforge.train(resume=tmp_path / "b", steps=6, progress=False)
    a = read_checkpoint(latest_checkpoint(straight.run_dir))
    b = read_checkpoint(latest_checkpoint(resumed.run_dir))
    assert_same_checkpoint(a, b)
