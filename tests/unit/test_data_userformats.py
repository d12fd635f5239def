"""The user data formats of the image-to-image and text families, on tiny files written here in the exact on-disk
layouts users download: pix2pix ``aligned`` (A|B side by side), ``paired`` folders, CycleGAN ``unaligned``
(trainA/trainB/testA/testB), ``celeba`` (img_align_celeba + list_attr_celeba.txt + list_eval_partition.txt),
``captions`` (CUB/Oxford-102 images + same-name .txt) and ``sr`` (a DIV2K-style HR folder). Content is asserted
(which half went where, which row, which caption), and every bad file is a one-line DataError."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import base, load_source, prepare
from ganforge.data.base import SOURCE_KEYS, Dataset
from ganforge.data.text import UNK, decode, words
from ganforge.errors import DataError, GanforgeError

from conftest import expect_data_error

BICUBIC = getattr(Image, "Resampling", Image).BICUBIC




def save(path: Path, pixels: np.ndarray, **kwargs) -> np.ndarray:
    """Write an H x W x 3 uint8 array as the image file ``path`` (format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **kwargs)
    return pixels


def chw(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ aligned
@pytest.fixture
def facades(tmp_path: Path) -> tuple[Path, dict[str, list[np.ndarray]]]:
    """pix2pix layout: train/ with 3 A|B images of 8 x 16, test/ with 1; nothing in val/ (edges2shoes has none)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "facades"
    files = {"train": [], "test": []}
    for split, names in (("train", ["3.png", "1.png", "2.png"]), ("test", ["9.png"])):
        for name in names:
            files[split].append((name, save(root / split / name, noise(rng, 8, 16))))
    ordered = {s: [px for _, px in sorted(v)] for s, v in files.items()}   # the loader reads in sorted order
    return root, ordered


def test_aligned_puts_left_half_in_image_and_right_half_in_target(facades):
    root, files = facades
    ds = load_source(f"aligned:{root}")
    assert ds.keys() == ("image", "target") and SOURCE_KEYS["aligned"] == ("image", "target")
    assert ds.x.shape == (3, 3, 8, 8) and ds.fields["target"].shape == (3, 3, 8, 8)
    for i, pixels in enumerate(files["train"]):
        assert torch.equal(ds.x[i], chw(pixels[:, :8])) and torch.equal(ds.fields["target"][i], chw(pixels[:, 8:]))
    flipped = load_source(f"aligned:{root}?direction=BtoA")
    assert torch.equal(flipped.x, ds.fields["target"]) and torch.equal(flipped.fields["target"], ds.x)
    test = load_source(f"aligned:{root}?split=test&direction=BtoA")
    assert len(test) == 1 and torch.equal(test.x[0], chw(files["test"][0][:, 8:]))


def test_aligned_size_option_and_prepare_resize_the_target_with_the_image(facades):
    root, files = facades
    ds = load_source(f"aligned:{root}?size=4")
    assert ds.x.shape == (3, 3, 4, 4)
    half_b = Image.fromarray(files["train"][0][:, 8:]).resize((4, 4), BICUBIC)
    assert torch.equal(ds.fields["target"][0], chw(np.asarray(half_b)))
    full = load_source(f"aligned:{root}")
    ready = prepare(full, 4, 1)
    assert ready.x.shape == (3, 1, 4, 4) and ready.fields["target"].shape == (3, 1, 4, 4)
    # The target went through exactly the image's conversion (as if it were the image), not some other.
    alone = prepare(Dataset(x=full.fields["target"], y=None, name="b"), 4, 1)
    assert torch.equal(ready.fields["target"], alone.x)
    assert not torch.equal(ready.fields["target"], ready.x)


def test_aligned_refuses_files_that_are_not_two_square_halves(facades):
    root, _ = facades
    save(root / "val" / "odd.png", np.zeros((8, 15, 3), np.uint8))
    expect_data_error(lambda: load_source(f"aligned:{root}?split=val"), "odd.png", "15x8", "2 x height")
    (root / "val" / "odd.png").unlink()
    save(root / "val" / "wide.jpg", np.zeros((10, 16, 3), np.uint8))
    expect_data_error(lambda: load_source(f"aligned:{root}?split=val"), "wide.jpg", "16x10")
    expect_data_error(lambda: load_source(f"aligned:{root / 'train'}"), "no train/", "?split=")
    expect_data_error(lambda: load_source(f"aligned:{root}?direction=AB"), "?direction=AtoB or ?direction=BtoA")
    expect_data_error(lambda: load_source(f"aligned:{root}?dir=BtoA"), "unknown option 'dir'", "direction", "split")
    (root / "train" / "1.png").write_bytes(b"not a png")
    expect_data_error(lambda: load_source(f"aligned:{root}"), "1.png")


# ------------------------------------------------------------------------------------------------- paired
def test_paired_matches_files_by_name_and_resizes_to_the_first_image(tmp_path: Path, capsys):
    rng = np.random.default_rng(1)
    a, b = tmp_path / "sketches", tmp_path / "photos"
    pix_a = {n: save(a / f"{n}.png", noise(rng, 6, 8)) for n in ("x", "y", "z")}
    pix_b = {n: save(b / f"{n}.bmp", noise(rng, 6, 8)) for n in ("z", "x")}
    pix_b["y"] = save(b / "y.png", noise(rng, 12, 16))           # another size: resized to A's first (8 x 6)
    ds = load_source(f"paired:{a},{b}")
    assert ds.keys() == ("image", "target") and ds.meta["names"] == ["x", "y", "z"]
    for i, n in enumerate(("x", "y", "z")):
        assert torch.equal(ds.x[i], chw(pix_a[n]))
    assert torch.equal(ds.fields["target"][0], chw(pix_b["x"])) and torch.equal(ds.fields["target"][2], chw(pix_b["z"]))
    assert torch.equal(ds.fields["target"][1], chw(np.asarray(Image.fromarray(pix_b["y"]).resize((8, 6), BICUBIC))))
    assert "1 images resized to 8x6" in capsys.readouterr().err
    assert load_source(f"paired:{a},{b}?size=4").x.shape == (3, 3, 4, 4)


def test_paired_refuses_unmatched_and_ambiguous_names(tmp_path: Path):
    rng = np.random.default_rng(2)
    a, b = tmp_path / "a", tmp_path / "b"
    for n in ("p", "q", "only_a"):
        save(a / f"{n}.png", noise(rng, 4, 4))
    for n in ("p", "q", "only_b1", "only_b2"):
        save(b / f"{n}.png", noise(rng, 4, 4))
    expect_data_error(lambda: load_source(f"paired:{a},{b}"), "1 in", "only_a", "2 in", "only_b1, only_b2")
    (a / "only_a.png").unlink()
    (b / "only_b1.png").unlink()
    (b / "only_b2.png").unlink()
    save(b / "q.jpg", noise(rng, 4, 4))
    expect_data_error(lambda: load_source(f"paired:{a},{b}"), "q.jpg", "q.png", "same name")
    expect_data_error(lambda: load_source(f"paired:{a}"), "two folders", "paired:DIR_A,DIR_B")
    expect_data_error(lambda: load_source(f"paired:{a},{tmp_path / 'nope'}"), "nope", "does not exist")


# ---------------------------------------------------------------------------------------------- unaligned
@pytest.fixture
def horse2zebra(tmp_path: Path) -> tuple[Path, dict[str, list[np.ndarray]]]:
    rng = np.random.default_rng(3)
    root = tmp_path / "horse2zebra"
    files = {"trainA": [save(root / "trainA" / f"n{i}.jpg", noise(rng, 8, 8), quality=100) for i in range(2)],
             "trainB": [save(root / "trainB" / f"m{i}.png", noise(rng, 8, 8)) for i in range(2)],
             "testA": [save(root / "testA" / "t.png", noise(rng, 8, 8))],
             "testB": [save(root / "testB" / "u.png", noise(rng, 8, 8))]}
    files["trainB"].append(save(root / "trainB" / "m9.png", noise(rng, 12, 10)))  # resized to 8 x 8
    return root, files


def test_unaligned_holds_both_domains_with_a_domain_field(horse2zebra, capsys):
    root, files = horse2zebra
    ds = load_source(f"unaligned:{root}")
    assert ds.keys() == ("image", "domain") and ds.meta["domains"] == ["A", "B"]
    assert ds.fields["domain"].tolist() == [0, 0, 1, 1, 1] and ds.x.shape == (5, 3, 8, 8)
    assert torch.equal(ds.x[0], chw(np.asarray(Image.open(root / "trainA" / "n0.jpg").convert("RGB"))))   # JPEG
    assert torch.equal(ds.x[2], chw(files["trainB"][0]))
    assert torch.equal(ds.x[4], chw(np.asarray(Image.fromarray(files["trainB"][2]).resize((8, 8), BICUBIC))))
    assert "1 resized to 8x8" in capsys.readouterr().err
    only_b = load_source(f"unaligned:{root}?domain=B")
    assert only_b.fields["domain"].tolist() == [1, 1, 1] and torch.equal(only_b.x, ds.x[2:])
    test = load_source(f"unaligned:{root}?split=test&size=4")
    assert test.x.shape == (2, 3, 4, 4) and test.fields["domain"].tolist() == [0, 1]
    ready = prepare(ds, 4, 1)
    assert ready.x.shape == (5, 1, 4, 4) and torch.equal(ready.fields["domain"], ds.fields["domain"])


def test_unaligned_refuses_a_missing_domain_folder(horse2zebra):
    root, _ = horse2zebra
    for p in (root / "testB").iterdir():
        p.unlink()
    (root / "testB").rmdir()
    expect_data_error(lambda: load_source(f"unaligned:{root}?split=test"), "no testB/", "testA/, trainA/, trainB/")
    assert len(load_source(f"unaligned:{root}?split=test&domain=A")) == 1
    expect_data_error(lambda: load_source(f"unaligned:{root}?domain=C"), "?domain=A or ?domain=B")
    expect_data_error(lambda: load_source(f"unaligned:{root}?split=val"), "?split=train or ?split=test")


# ------------------------------------------------------------------------------------------------- celeba
CELEBA_ATTRS = ("5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
                "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair "
                "Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face "
                "Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair "
                "Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()
PARTITION = [0, 0, 1, 2, 0, 2]     # 000001..000006: train, train, val, test, train, test
BORDER = (0, 255, 0)


def celeba_colour(i: int) -> tuple[int, int, int]:
    return (40 * i + 20, 200 - 30 * i, 60 + 25 * i)


@pytest.fixture
def celeba(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """6 aligned 178 x 218 JPEGs: a flat colour per image inside the centre 178 x 178, green in the 20 rows above
    and below it (what the crop must cut away), with the attribute and partition files as CelebA ships them."""
    root = tmp_path / "celeba"
    values = np.where(np.random.default_rng(4).random((6, 40)) < 0.5, -1, 1)
    for i in range(6):
        pixels = np.empty((218, 178, 3), np.uint8)
        pixels[:] = BORDER
        pixels[20:198] = celeba_colour(i)
        save(root / "img_align_celeba" / f"{i + 1:06d}.jpg", pixels, quality=95)
    rows = [f"{i + 1:06d}.jpg " + " ".join(f"{v:2d}" for v in values[i]) for i in range(6)]
    (root / "list_attr_celeba.txt").write_text("6\n" + " ".join(CELEBA_ATTRS) + " \n" + "\n".join(rows) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{i + 1:06d}.jpg {p}\n" for i, p in enumerate(PARTITION)))
    return root, values


def assert_celeba_images(ds: Dataset, indices: list[int]) -> None:
    """Sample k is image indices[k]: its flat colour, none of the green the centre crop removes."""
    for k, i in enumerate(indices):
        mean = ds.x[k].float().mean((1, 2))
        assert (mean - torch.tensor(celeba_colour(i), dtype=torch.float32)).abs().max() < 6, (k, i, mean)


def test_celeba_partition_attributes_and_stargan_preprocessing(celeba):
    root, values = celeba
    ds = load_source(f"celeba:{root}?size=32")
    assert ds.keys() == ("image", "attributes") and ds.x.shape == (3, 3, 32, 32)
    assert ds.meta["attributes"] == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    assert ds.meta["files"] == ["000001.jpg", "000002.jpg", "000005.jpg"]
    assert_celeba_images(ds, [0, 1, 4])
    columns = [CELEBA_ATTRS.index(a) for a in ds.meta["attributes"]]
    expected = (values[[0, 1, 4]][:, columns] == 1).astype(np.float32)
    assert ds.fields["attributes"].dtype == torch.float32 and np.array_equal(ds.fields["attributes"].numpy(), expected)
    test = load_source(f"celeba:{root}?split=test&attrs=Smiling,Male&size=16")
    assert_celeba_images(test, [3, 5])
    assert test.meta["attributes"] == ["Smiling", "Male"]
    assert test.fields["attributes"].tolist() == [[float(values[i, CELEBA_ATTRS.index(a)] == 1) for a in
                                                   ("Smiling", "Male")] for i in (3, 5)]
    every = load_source(f"celeba:{root}?split=all&limit=4&size=8")
    assert every.meta["files"] == [f"{i:06d}.jpg" for i in range(1, 5)] and every.x.shape == (4, 3, 8, 8)
    assert load_source(f"celeba:{root}").x.shape == (3, 3, 128, 128)        # StarGAN's default size
    ready = prepare(test, 8, 1)
    assert ready.x.shape == (2, 1, 8, 8) and torch.equal(ready.fields["attributes"], test.fields["attributes"])


def test_celeba_refuses_unknown_attributes_and_bad_files(celeba, monkeypatch):
    root, _ = celeba
    msg = expect_data_error(lambda: load_source(f"celeba:{root}?attrs=Blond_hair"), "'Blond_hair'",
                            "did you mean Blond_Hair", "5_o_Clock_Shadow", "Young")
    assert msg.count(",") >= 39          # all 40 valid names listed
    # 200k faces at 128 px on a small machine: refused before allocating, with the way out.
    monkeypatch.setattr(base, "memory_limit_bytes", lambda: 10_000)
    expect_data_error(lambda: load_source(f"celeba:{root}"), "GiB", "?size=", "?limit=N")
    assert len(load_source(f"celeba:{root}?size=16&limit=2")) == 2           # 2 x 768 bytes fit
    monkeypatch.undo()
    attr = root / "list_attr_celeba.txt"
    good = attr.read_text()
    attr.write_text(good.replace("000003.jpg -1", "000003.jpg  0").replace("000003.jpg  1", "000003.jpg  0"))
    expect_data_error(lambda: load_source(f"celeba:{root}?split=all"), "list_attr_celeba.txt line 5", "1 or -1")
    attr.write_text(good.replace("6\n", "7\n", 1))
    expect_data_error(lambda: load_source(f"celeba:{root}"), "says 7 images", "6 rows")
    attr.write_text(good)
    (root / "img_align_celeba" / "000005.jpg").unlink()
    expect_data_error(lambda: load_source(f"celeba:{root}"), "000005.jpg", "missing")
    save(root / "img_align_celeba" / "000005.jpg", np.zeros((100, 100, 3), np.uint8))
    expect_data_error(lambda: load_source(f"celeba:{root}"), "000005.jpg", "100x100", "178x178")
    (root / "list_eval_partition.txt").unlink()
    expect_data_error(lambda: load_source(f"celeba:{root}?split=val"), "list_eval_partition.txt")
    expect_data_error(lambda: load_source(f"celeba:{root}?split=dev"), "?split=train or ?split=val")
    expect_data_error(lambda: load_source(f"celeba:{root}?crop=100"), "unknown option 'crop'", "attrs", "limit")


# ----------------------------------------------------------------------------------------------- captions
CUB = {  # class folder -> image stem -> captions (the text file has a blank line that is not a caption)
    "001.Black_footed_Albatross": {"Black_Footed_Albatross_0001": ["This bird is dark brown.", "A large seabird"],
                                   "Black_Footed_Albatross_0002": ["A brown bird with long wings"]},
    "002.Laysan_Albatross": {"Laysan_Albatross_0001": ["white head, grey wings", "a white bird soaring"]},
    "003.Sooty_Albatross": {"Sooty_Albatross_0001": ["a sooty bird with an extraordinarily long caption that has "
                                                     "more words than fit"]},
}


def write_cub(root: Path, mirror: bool = True) -> dict[str, tuple[int, int, int]]:
    """CUB as StackGAN holds it: images/<class>/<name>.jpg and text/<class>/<name>.txt (or each .txt beside its
    image); a flat colour per image (non-square, so it is centre-cropped) to tell which image a sample holds."""
    colours = {}
    for c, (cls, images) in enumerate(CUB.items()):
        for k, (stem, captions) in enumerate(images.items()):
            colours[stem] = (60 * c + 30, 90 * k + 40, 200 - 50 * c)
            save(root / ("images" if mirror else "") / cls / f"{stem}.jpg", np.full((20, 28, 3), colours[stem],
                                                                                  np.uint8), quality=95)
            text = root / ("text" if mirror else "") / cls / f"{stem}.txt"
            text.parent.mkdir(parents=True, exist_ok=True)
            text.write_text(captions[0] + "\n\n" + "\n".join(captions[1:]) + ("\n" if len(captions) > 1 else ""))
    return colours


def test_captions_one_sample_per_caption_with_the_train_vocabulary(tmp_path: Path):
    root = tmp_path / "birds"
    colours = write_cub(root)
    (root / "trainclasses.txt").write_text("001.Black_footed_Albatross\n002.Laysan_Albatross\n")
    (root / "testclasses.txt").write_text("003.Sooty_Albatross\n")
    ds = load_source(f"captions:{root}?size=8&max_len=6")
    assert ds.keys() == ("image", "label", "text") and set(SOURCE_KEYS["captions"]) == {"image", "text", "label"}
    expected = [(stem, cap, c) for c, images in enumerate(CUB.values()) if c < 2
                for stem, caps in images.items() for cap in caps]
    assert len(ds) == 5 and ds.x.shape == (5, 3, 8, 8) and ds.fields["text"].shape == (5, 6)
    assert ds.y.tolist() == [c for _, _, c in expected] and ds.class_names == sorted(CUB)
    assert decode(ds.fields["text"], ds.meta["vocab"]) == [" ".join(words(cap)[:6]) for _, cap, _ in expected]
    for row, (stem, _, _) in enumerate(expected):
        assert (ds.x[row].float().mean((1, 2)) - torch.tensor(colours[stem], dtype=torch.float32)).abs().max() < 4
    assert "sooty" not in ds.meta["vocab"]             # the vocabulary is the train captions'
    test = load_source(f"captions:{root}?split=test")
    assert test.y.tolist() == [2] and test.meta["vocab"] == ds.meta["vocab"] and test.x.shape[-1] == 64
    ids = test.fields["text"][0].tolist()
    assert len(ids) == 18 and ids[:3] == [ds.meta["vocab"].index("a"), UNK, ds.meta["vocab"].index("bird")]  # sooty: unknown
    assert len(load_source(f"captions:{root}?split=all&size=8")) == 6
    ready = prepare(ds, 4, 1)
    assert ready.x.shape == (5, 1, 4, 4) and torch.equal(ready.fields["text"], ds.fields["text"])


def test_captions_beside_images_without_class_lists_split_90_10(tmp_path: Path):
    root = tmp_path / "flat"
    for i in range(10):
        save(root / f"img_{i:02d}.png", np.full((6, 6, 3), 20 * i, np.uint8))
        (root / f"img_{i:02d}.txt").write_text(f"picture number {i}\n")
    train, test = load_source(f"captions:{root}?size=6"), load_source(f"captions:{root}?split=test&size=6")
    assert (len(train), len(test)) == (9, 1) and train.y is None and train.keys() == ("image", "text")
    seen = {decode(row[None], train.meta["vocab"])[0].split()[-1] for row in train.fields["text"]}
    held = next(i for i in range(10) if str(i) not in seen)        # the one image whose number train never saw
    assert len(seen) == 9 and int(test.x[0, 0, 0, 0]) == 20 * held
    assert decode(test.fields["text"], test.meta["vocab"]) == ["picture number <unk>"]   # train-only vocabulary
    assert torch.equal(load_source(f"captions:{root}?split=test&size=6").x, test.x)    # fixed, not random


def test_captions_refuses_unmatched_and_empty_files(tmp_path: Path):
    root = tmp_path / "birds"
    write_cub(root, mirror=False)
    (root / "testclasses.txt").write_text("004.Unknown_Bird\n")
    expect_data_error(lambda: load_source(f"captions:{root}"), "testclasses.txt", "004.Unknown_Bird")
    (root / "testclasses.txt").unlink()
    stray = root / "002.Laysan_Albatross" / "Laysan_Albatross_0001.txt"
    stray.write_text("\n\n")
    expect_data_error(lambda: load_source(f"captions:{root}"), "Laysan_Albatross_0001.txt", "no caption")
    stray.unlink()
    expect_data_error(lambda: load_source(f"captions:{root}"), "1 images have no same-name .txt",
                      "Laysan_Albatross_0001")
    expect_data_error(lambda: load_source(f"captions:{root}?max_len=0"), "max_len", "positive whole number")


# ----------------------------------------------------------------------------------------------------- sr
def find_crop(source: np.ndarray, crop: np.ndarray) -> bool:
    """Whether ``crop`` (h x w x 3) is a window of ``source``."""
    h, w = crop.shape[:2]
    windows = np.lib.stride_tricks.sliding_window_view(source, (h, w, 3))[..., 0, :, :, :]
    return bool((windows == crop).all(axis=(-3, -2, -1)).any())


def test_sr_crops_come_from_the_images_and_lowres_is_pil_bicubic(tmp_path: Path):
    rng = np.random.default_rng(5)
    root = tmp_path / "DIV2K_train_HR"
    sources = [save(root / "0001.png", noise(rng, 30, 40)), save(root / "0002.png", noise(rng, 32, 32))]
    ds = load_source(f"sr:{root}?crop=16&crops_per_image=3&scale=4", seed=5)
    assert ds.keys() == ("image", "lowres") and ds.x.shape == (6, 3, 16, 16)
    assert ds.fields["lowres"].shape == (6, 3, 4, 4)
    for row in range(6):
        hr = ds.x[row].permute(1, 2, 0).numpy()
        assert find_crop(sources[row // 3], hr)
        lr = np.asarray(Image.fromarray(hr).resize((4, 4), BICUBIC))
        assert torch.equal(ds.fields["lowres"][row], chw(lr))
    assert torch.equal(load_source(f"sr:{root}?crop=16&crops_per_image=3&scale=4", seed=5).x, ds.x)
    assert not torch.equal(load_source(f"sr:{root}?crop=16&crops_per_image=3&scale=4", seed=6).x, ds.x)
    ready = prepare(ds, 8, 3)
    assert ready.x.shape == (6, 3, 8, 8) and ready.fields["lowres"].shape == (6, 3, 2, 2)   # still x4
    assert load_source(f"sr:{root}?crop=28&crops_per_image=1").fields["lowres"].shape == (2, 3, 7, 7)


def test_sr_refuses_small_images_and_bad_options(tmp_path: Path):
    root = tmp_path / "hr"
    save(root / "big.png", np.zeros((120, 120, 3), np.uint8))
    save(root / "small.png", np.zeros((90, 200, 3), np.uint8))
    expect_data_error(lambda: load_source(f"sr:{root}"), "small.png", "200x90", "96x96 crop")
    expect_data_error(lambda: load_source(f"sr:{root}?crop=30&scale=4"), "not a multiple of scale 4", "?crop=28")
    expect_data_error(lambda: load_source(f"sr:{root}?size=64"), "unknown option 'size'", "crop", "crops_per_image")
    expect_data_error(lambda: load_source(f"sr:{tmp_path / 'empty'}"), "does not exist")
