"""The two data paths (data/streaming.py): a folder of PNGs in memory or streamed through a DataLoader gives the same
batches, the same training and an exact resume; auto picks memory for small data; bad keys are one line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.build import build
from ganforge.config import load_config
from ganforge.data.base import Dataset
from ganforge.data.streaming import StreamingSource
from ganforge.errors import ConfigError, DataError
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint
from ganforge.train.trainer import Trainer

from conftest import assert_same_checkpoint

RECIPE = "dcgan-mnist-quick"


@pytest.fixture(autouse=True)
def _threads(one_thread):
    yield


@pytest.fixture
def pngs(tmp_path: Path) -> Path:
    """30 random grey 20 x 20 PNGs in two class folders: data.image_size=28 makes every sample go through the resize."""
    return write_pngs(tmp_path / "pngs", per_class=15, seed=7)


def write_pngs(root: Path, per_class: int, seed: int) -> Path:
    """``per_class`` random grey 20 x 20 PNGs in each of the class folders a/ and b/ under ``root``."""
    rng = np.random.default_rng(seed)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8), mode="L").save(root / c / f"{i}.png")
    return root


def _over(root: Path, path: str, workers: int = 0, **more: object) -> dict[str, object]:
    return {"data.source": f"folder:{root}", "data.image_size": 28, "data.channels": 1, "data.path": path,
            "data.workers": workers, "train.batch_size": 8, "train.sample_every": 1000, "train.log_every": 1000,
            **more}


def test_auto_picks_memory_for_small_data_and_stream_above_threshold(pngs: Path) -> None:
    assert isinstance(build(load_config(RECIPE, _over(pngs, "auto"))).dataset, Dataset)
    tiny = build(load_config(RECIPE, _over(pngs, "auto", **{"data.stream_threshold_mb": 0.001}))).dataset
    assert isinstance(tiny, StreamingSource) and len(tiny) == 30 and tiny.shape == (1, 28, 28)
    assert tiny.nbytes == 30 * 28 * 28 and tiny.keys() == ("image", "label") and tiny.num_classes == 2
    forced = build(load_config(RECIPE, _over(pngs, "memory", **{"data.stream_threshold_mb": 0.001}))).dataset
    assert isinstance(forced, Dataset)
    # the lazy rows are the memory path's rows
    assert torch.equal(tiny.x[torch.tensor([3, 0, 29])], forced.x[torch.tensor([3, 0, 29])])
    assert torch.equal(tiny.sample_rows(torch.arange(30)).x, forced.x)


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_batches_equal_memory_batches(pngs: Path, tmp_path: Path, workers: int) -> None:
    mem = Trainer(build(load_config(RECIPE, _over(pngs, "memory"))), tmp_path / "m", progress=False)
    st = Trainer(build(load_config(RECIPE, _over(pngs, "stream", workers))), tmp_path / "s", progress=False)
    assert st.stream_loader is not None and mem.stream_loader is None
    for _ in range(9):   # past an epoch of 30 rows: the permutation is redrawn alike
        a, b = mem.next_batch(), st.next_batch()
        assert a.x.dtype == b.x.dtype == torch.float32
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert mem.sampler.state_dict()["pos"] == st.sampler.state_dict()["pos"]
    st.stream_loader.close()


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_training_ends_with_the_memory_weights(pngs: Path, tmp_path: Path, workers: int) -> None:
    mem = ganforge.train(RECIPE, steps=5, out=tmp_path / "m", progress=False, overrides=_over(pngs, "memory"))
    st = ganforge.train(RECIPE, steps=5, out=tmp_path / "s", progress=False, overrides=_over(pngs, "stream", workers))
    assert_same_checkpoint(read_checkpoint(latest_checkpoint(mem.run_dir)),
                           read_checkpoint(latest_checkpoint(st.run_dir)))


def test_streamed_resume_is_bit_exact(pngs: Path, tmp_path: Path) -> None:
    over = _over(pngs, "stream", 2)
    straight = ganforge.train(RECIPE, steps=7, out=tmp_path / "a", progress=False, overrides=over)
    ganforge.train(RECIPE, steps=3, out=tmp_path / "b", progress=False, overrides=over)
    resumed = ganforge.train(resume=tmp_path / "b", steps=7, progress=False)
    assert resumed.steps == 7
    assert_same_checkpoint(read_checkpoint(latest_checkpoint(straight.run_dir)),
                           read_checkpoint(latest_checkpoint(resumed.run_dir)))


@pytest.mark.parametrize("key,value,fragment", [
    ("data.path", "stream", "cannot be streamed"),
    ("data.workers", -1, "data.workers must be >= 0"),
    ("data.stream_threshold_mb", 0, "data.stream_threshold_mb must be > 0"),
])
def test_bad_data_path_keys_are_one_line(key: str, value: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(load_config(RECIPE, {key: value}))
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_two_ranks_streamed_train_like_two_ranks_in_memory(pngs: Path, tmp_path: Path) -> None:
    """Under torchrun each rank's loader decodes only its slice of the global batch: the run ends as in memory."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANFORGE_CACHE": str(tmp_path / "cache")}
    runs = {}
    for path in ("memory", "stream"):
        over = {**_over(pngs, path, 1), "train.threads": 1, "networks.G.hidden": [32], "networks.D.hidden": [16]}
        sets = [a for k, v in over.items() for a in ("--set", f"{k}={json.dumps(v)}")]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
               "ganforge", "train", "gan-mlp-mnist", "--steps", "6", "--out", str(tmp_path / path), *sets,
               "--no-progress"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        runs[path] = read_checkpoint(latest_checkpoint(tmp_path / path))
    assert_same_checkpoint(runs["memory"], runs["stream"], rng_key="torch_ranks")


def test_streamed_evaluation_reference_is_the_first_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The during-training evaluator never reads streamed data whole: its FID reference is the first REFERENCE_ROWS
    rows, the memory path's rows; with all rows taken the eval figures are the memory path's exactly."""
    from ganforge.metrics import during_training
    root = write_pngs(tmp_path / "pngs120", per_class=60, seed=3)
    refs: list[torch.Tensor] = []
    real = during_training.Reference
    monkeypatch.setattr(during_training, "Reference", lambda spec, x, y: refs.append(x) or real(spec, x, y))
    more = {"train.eval_every": 2, "train.eval_samples": 100}
    rows = {}
    for path, limit in (("memory", 10_000), ("stream", 10_000), ("stream", 110)):
        monkeypatch.setattr(during_training, "REFERENCE_ROWS", limit)
        run = ganforge.train(RECIPE, steps=2, out=tmp_path / f"{path}{limit}", progress=False,
                             overrides=_over(root, path, **more))
        rows[path, limit] = [r for r in (run.run_dir / "metrics.jsonl").read_text().splitlines() if '"eval"' in r]
    assert [len(x) for x in refs] == [120, 120, 110]
    assert torch.equal(refs[0], refs[1]) and torch.equal(refs[2], refs[0][:110])
    assert [_untimed(r) for r in rows["memory", 10_000]] == [_untimed(r) for r in rows["stream", 10_000]]


def _untimed(line: str) -> dict[str, object]:
    return {k: v for k, v in json.loads(line).items() if k != "time"}


@pytest.mark.parametrize("workers", [0, 2])
def test_a_file_that_fails_to_decode_mid_stream_is_one_line(pngs: Path, tmp_path: Path, workers: int) -> None:
    bad = pngs / "b" / "3.png"
    bad.write_bytes(bad.read_bytes()[:60])   # the header (read at the scan) intact, the pixel data cut
    st = Trainer(build(load_config(RECIPE, _over(pngs, "stream", workers))), tmp_path / "s", progress=False)
    with pytest.raises(DataError) as info:
        for _ in range(9):   # every row is drawn within 30 / 8 batches
            st.next_batch()
    assert "3.png" in str(info.value) and "\n" not in str(info.value), str(info.value)
    assert st.stream_loader is not None
    st.stream_loader.close()


# ---------------------------------------------------------------------------------------------- celeba: streamed
def write_celeba(root: Path, n: int = 12) -> np.ndarray:
    """``n`` aligned 178 x 218 JPEGs (random flat colours in the centre crop) with CelebA's attribute and partition
    files (every image in the train partition); returns the -1/1 attribute table."""
    rng = np.random.default_rng(5)
    names = [f"A{i}" for i in range(40)]
    names[:5] = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    values = np.where(rng.random((n, 40)) < 0.5, -1, 1)
    (root / "img_align_celeba").mkdir(parents=True)
    for i in range(n):
        pixels = np.zeros((218, 178, 3), np.uint8)
        pixels[20:198] = rng.integers(0, 256, 3, dtype=np.uint8)
        pixels[60:100, 40:90] = rng.integers(0, 256, 3, dtype=np.uint8)
        Image.fromarray(pixels).save(root / "img_align_celeba" / f"{i + 1:06d}.jpg", quality=95)
    rows = [f"{i + 1:06d}.jpg " + " ".join(f"{v:2d}" for v in values[i]) for i in range(n)]
    (root / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(names) + "\n" + "\n".join(rows) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{i + 1:06d}.jpg 0\n" for i in range(n)))
    return values


@pytest.mark.parametrize("workers", [0, 2])
def test_celeba_streams_images_with_their_attributes_as_in_memory(tmp_path: Path, workers: int) -> None:
    """A CelebA folder too big for memory streams (images decoded per batch, attributes kept in memory): the same
    batches, attributes included, as the memory path."""
    values = write_celeba(tmp_path / "celeba")
    over = {"data.source": f"celeba:{tmp_path / 'celeba'}?size=32", "data.image_size": 28, "data.channels": 1,
            "data.workers": workers, "train.batch_size": 5, "train.sample_every": 1000, "train.log_every": 1000}
    auto = build(load_config(RECIPE, {**over, "data.path": "auto", "data.stream_threshold_mb": 0.001})).dataset
    assert isinstance(auto, StreamingSource) and auto.keys() == ("image", "attributes") and len(auto) == 12
    mem = Trainer(build(load_config(RECIPE, {**over, "data.path": "memory"})), tmp_path / "m", progress=False)
    st = Trainer(build(load_config(RECIPE, {**over, "data.path": "stream"})), tmp_path / "s", progress=False)
    assert st.stream_loader is not None and isinstance(mem.built.dataset, Dataset)
    assert torch.equal(st.built.dataset.sample_rows(torch.arange(12)).x, mem.built.dataset.x)
    seen = []
    for _ in range(5):          # past an epoch of 12
        a, b = mem.next_batch(), st.next_batch()
        assert torch.equal(a.x, b.x) and torch.equal(a["attributes"], b["attributes"])
        seen.append(b["attributes"])
    # the attributes are the file's, 1 where it says 1 (the first five columns, StarGAN's default attributes)
    assert set(map(tuple, torch.cat(seen).tolist())) <= set(map(tuple, (values[:, :5] == 1).astype(float).tolist()))
    st.stream_loader.close()
