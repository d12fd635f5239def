"""Named batches: datasets carry named per-sample fields, batches are mappings, algorithms declare needed keys."""
from __future__ import annotations

import pytest
import torch

from ganforge.algorithms.base import Batch, DataInfo
from ganforge.data.base import Dataset, prepare, sources_yielding


def _paired(n: int = 6, size: int = 8) -> Dataset:
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    return Dataset(x=a, y=None, name="pairs", fields={"target": 255 - a, "domain": torch.arange(n) % 2})


def test_dataset_fields_follow_subsets_and_preparation():
    ds = _paired()
    assert ds.keys() == ("image", "target", "domain")
    sub = ds.subset(torch.tensor([4, 1]))
    assert torch.equal(sub.fields["target"], 255 - ds.x[[4, 1]]) and sub.fields["domain"].tolist() == [0, 1]
    small = prepare(ds, image_size=4, channels=1)
    # the paired image is resized and converted like the image (the pair stays a pair), other fields untouched
    assert small.x.shape == small.fields["target"].shape == (6, 1, 4, 4)
    assert torch.equal(small.fields["domain"], ds.fields["domain"])


def test_bad_fields_are_refused():
    x = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    with pytest.raises(ValueError, match="not one of"):
        Dataset(x=x, y=None, name="d", fields={"colour": torch.zeros(3)})
    with pytest.raises(ValueError, match="2 in field 'domain'"):
        Dataset(x=x, y=None, name="d", fields={"domain": torch.zeros(2)})
    with pytest.raises(ValueError, match="uint8 NCHW"):
        Dataset(x=x, y=None, name="d", fields={"target": torch.zeros(3, 4)})


def test_batch_is_a_mapping_of_named_tensors():
    b = Batch(x=torch.ones(2, 3), y=torch.tensor([1, 0]), fields={"target": torch.zeros(2, 3)})
    assert b.keys() == ("image", "label", "target") and "target" in b and "lowres" not in b
    assert torch.equal(b["image"], b.x) and torch.equal(b["label"], b.y) and b["target"].sum() == 0
    with pytest.raises(KeyError, match="has image, label, target"):
        b["lowres"]


def test_sources_declare_their_keys():
    assert "toy" in sources_yielding(["vector"]) and "toy" not in sources_yielding(["image"])
    assert "mnist5k" in sources_yielding(["image", "label"])


def test_trainer_batches_carry_fields_in_the_model_range(tmp_path):
    from ganforge.build import Built, build_algorithm, data_info
    from ganforge.config import load_config
    from ganforge.train.trainer import Trainer
    ds = _paired(n=8, size=28)
    ds = Dataset(x=ds.x[:, :1].contiguous(), y=None, name="pairs",
                 fields={"target": ds.fields["target"][:, :1].contiguous(), "domain": ds.fields["domain"]})
    cfg = load_config("dcgan-mnist-quick", {"train.batch_size": 4})
    info = data_info(ds)
    assert info.keys == ("image", "target", "domain") and info.field_shapes["target"] == (1, 28, 28)
    trainer = Trainer(Built(cfg, ds, info, build_algorithm(cfg, info)), tmp_path, progress=False)
    batch = trainer.next_batch()
    lo, hi = trainer.value_range
    assert batch["target"].dtype == torch.float32 and lo <= float(batch["target"].min()) <= float(batch["target"].max()) <= hi
    # the pair is kept: target is the negative of the image, in the model's range
    torch.testing.assert_close(batch["target"], (lo + hi) - batch["image"])
    assert batch["domain"].dtype == torch.int64


def test_an_algorithm_that_needs_a_key_refuses_data_without_it(monkeypatch):
    from ganforge.algorithms.adversarial import Adversarial
    from ganforge.build import build_algorithm
    from ganforge.config import load_config
    from ganforge.errors import DataError
    monkeypatch.setattr(Adversarial, "needs_keys", ("target",))
    info = DataInfo(kind="image", sample_shape=(1, 28, 28), num_classes=10, keys=("image", "label"))
    with pytest.raises(DataError, match="needs batches with target, but mnist5k yields image, label"):
        build_algorithm(load_config("dcgan-mnist-quick"), info)
