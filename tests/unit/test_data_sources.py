"""Data sources on small real files written here: IDX, image folders, npz, CIFAR-10 python batches; plus
mnist5k, the toy mixtures, ``prepare()`` and the batch sampler. Every bad input must be a one-line DataError."""
from __future__ import annotations

import codecs
import gzip
import io
import math
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main as cli_main
from ganforge.data import Dataset, load_source, prepare
from ganforge.data.cifar10 import load_cifar10
from ganforge.data.folder import load_folder
from ganforge.data.idx import load_idx, read_idx
from ganforge.data.sampler import BatchSampler
from ganforge.data.toy2d import mode_centers
from ganforge.errors import DataError, GanforgeError

from conftest import expect_data_error




# ------------------------------------------------------------------------------------------------ IDX
def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX: 0 0 0x08 ndim, big-endian dims, data (the MNIST page's format)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def mnist_dir(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A download folder: plain train files, gzipped t10k files; 4 x 5 images to catch H/W mix-ups."""
    rng = np.random.default_rng(0)
    arrays = {"train_x": rng.integers(0, 256, (6, 4, 5), dtype=np.uint8),
              "train_y": np.array([0, 1, 2, 9, 4, 5], np.uint8),
              "test_x": rng.integers(0, 256, (3, 4, 5), dtype=np.uint8), "test_y": np.array([7, 8, 3], np.uint8)}
    write_idx(tmp_path / "train-images-idx3-ubyte", arrays["train_x"])
    write_idx(tmp_path / "train-labels-idx1-ubyte", arrays["train_y"])
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", arrays["test_x"], gz=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", arrays["test_y"], gz=True)
    return tmp_path, arrays


def test_idx_directory_train_test_and_all_splits(mnist_dir):
    folder, arrays = mnist_dir
    train = load_source(f"idx:{folder}")
    assert train.x.dtype == torch.uint8 and train.x.shape == (6, 1, 4, 5)
    assert np.array_equal(train.x[:, 0].numpy(), arrays["train_x"])
    assert train.y.dtype == torch.int64 and train.y.tolist() == [0, 1, 2, 9, 4, 5]
    assert train.class_names == [str(d) for d in range(10)]

    test = load_source(f"idx:{folder}?split=test")  # read from the .gz files
    assert np.array_equal(test.x[:, 0].numpy(), arrays["test_x"]) and test.y.tolist() == [7, 8, 3]

    both = load_source(f"idx:{folder}?split=all")
    assert both.x.shape == (9, 1, 4, 5) and both.y.tolist() == [0, 1, 2, 9, 4, 5, 7, 8, 3]


def test_idx_single_file_finds_labels_beside_it_and_reads_classes_txt(mnist_dir):
    folder, arrays = mnist_dir
    (folder / "classes.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    test = load_source(f"idx:{folder / 't10k-images-idx3-ubyte.gz'}")
    assert test.y.tolist() == [7, 8, 3] and test.class_names[7] == "c7"
    expect_data_error(lambda: load_source(f"idx:{folder / 't10k-images-idx3-ubyte.gz'}?split=test"), "single file")


def test_idx_gzip_is_detected_by_content_and_dotted_names_are_found(tmp_path):
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    # a gzipped file whose .gz suffix was dropped, with the "train-images.idx3-ubyte" spelling of some mirrors
    write_idx(tmp_path / "train-images.idx3-ubyte", images, gz=True)
    write_idx(tmp_path / "train-labels.idx1-ubyte", np.array([3, 1], np.uint8))
    ds = load_idx(tmp_path)
    assert np.array_equal(ds.x[:, 0].numpy(), images) and ds.y.tolist() == [3, 1]


def test_idx_kaggle_layout_with_each_file_in_a_folder_of_its_name(tmp_path):
    for name, array in [("train-images-idx3-ubyte", np.full((2, 3, 3), 9, np.uint8)),
                        ("train-labels-idx1-ubyte", np.array([4, 6], np.uint8))]:
        (tmp_path / name).mkdir()
        write_idx(tmp_path / name / name, array)
    ds = load_source(f"idx:{tmp_path}")
    assert ds.x.shape == (2, 1, 3, 3) and ds.x.unique().tolist() == [9] and ds.y.tolist() == [4, 6]


def test_idx_without_labels_is_unlabelled(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 3, 3), np.uint8))
    ds = load_source(f"idx:{tmp_path}")
    assert ds.y is None and ds.class_names is None and len(ds) == 2


def test_read_idx_big_endian_int_types(tmp_path):
    # type 0x0C = int32, stored big-endian: the parser must swap to native order
    values = np.array([[1, -2], [70000, 3]], dtype=">i4")
    path = tmp_path / "ints.idx"
    path.write_bytes(bytes([0, 0, 0x0C, 2]) + struct.pack(">2I", 2, 2) + values.tobytes())
    out = read_idx(path)
    assert out.dtype == np.int32 and out.tolist() == [[1, -2], [70000, 3]]


def test_idx_truncated_file_names_expected_and_actual_bytes(tmp_path):
    data = idx_bytes(np.zeros((6, 4, 5), np.uint8))  # 16 header + 120 pixel bytes = 136
    (tmp_path / "train-images-idx3-ubyte").write_bytes(data[:100])
    expect_data_error(lambda: load_source(f"idx:{tmp_path}"), "train-images-idx3-ubyte", "truncated", "136", "100")


def test_idx_bad_inputs(tmp_path, mnist_dir):
    folder, _ = mnist_dir
    expect_data_error(lambda: load_source(f"idx:{tmp_path / 'nope'}"), "does not exist", "nope")
    expect_data_error(lambda: load_source("idx:"), "needs a path")
    # a labels file given as the images: the magic number says so
    labels_file = folder / "train-labels-idx1-ubyte"
    expect_data_error(lambda: load_source(f"idx:{labels_file}"), "holds IDX labels", "0x00000803")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "train-images-idx3-ubyte").write_bytes(b"\x89PNG not idx at all")
    expect_data_error(lambda: load_source(f"idx:{junk}"), "is not an IDX file")
    cut_gz = tmp_path / "cutgz"
    cut_gz.mkdir()
    whole = gzip.compress(idx_bytes(np.zeros((50, 8, 8), np.uint8)))
    (cut_gz / "train-images-idx3-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    expect_data_error(lambda: load_source(f"idx:{cut_gz}"), "train-images-idx3-ubyte.gz", "ends early")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([1, 2], np.uint8), gz=True)
    expect_data_error(lambda: load_source(f"idx:{folder}?split=test"), "2 labels", "3 images")
    empty = tmp_path / "empty"
    empty.mkdir()
    expect_data_error(lambda: load_source(f"idx:{empty}"), "no train images", "train-images-idx3-ubyte")
    expect_data_error(lambda: load_source(f"idx:{folder}?split=valid"), "unknown split")
    expect_data_error(lambda: load_source(f"idx:{folder}?fold=1"), "unknown option 'fold'")


# --------------------------------------------------------------------------------------------- folder
def save(img: Image.Image, path: Path, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kwargs)


def test_folder_class_subfolders_sizes_and_alpha(tmp_path):
    rng = np.random.default_rng(1)
    cat0 = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    save(Image.fromarray(cat0), tmp_path / "cat" / "a.png")
    # 12 x 8 (w x h): the centre 8 x 8 square is kept, the 2-pixel white margins are cropped away
    wide = np.full((8, 12, 3), 255, np.uint8)
    wide[:, 2:10] = rng.integers(0, 200, (8, 8, 3), dtype=np.uint8)
    save(Image.fromarray(wide), tmp_path / "cat" / "nested" / "b.png")
    save(Image.new("RGB", (16, 16), (40, 120, 200)), tmp_path / "dog" / "c.jpg", quality=95)
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = (250, 10, 90)
    rgba[:4, :, 3] = 255  # top half opaque, bottom half transparent (composited over black)
    save(Image.fromarray(rgba, "RGBA"), tmp_path / "dog" / "d.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    save(Image.new("RGB", (8, 8)), tmp_path / ".hidden" / "skip.png")

    ds = load_source(f"folder:{tmp_path}")
    assert ds.class_names == ["cat", "dog"] and ds.y.tolist() == [0, 0, 1, 1]
    assert ds.x.dtype == torch.uint8 and ds.x.shape == (4, 3, 8, 8)  # the most common side, 8
    assert np.array_equal(ds.x[0].permute(1, 2, 0).numpy(), cat0)  # lossless, no resampling: exact
    assert np.array_equal(ds.x[1].permute(1, 2, 0).numpy(), wide[:, 2:10])
    jpeg = ds.x[2].float()  # 16 -> 8 with LANCZOS of a flat colour: the colour, up to JPEG error
    assert (jpeg - torch.tensor([40.0, 120, 200]).view(3, 1, 1)).abs().max() <= 3
    assert ds.x[3, :, :4].permute(1, 2, 0).reshape(-1, 3).unique(dim=0).tolist() == [[250, 10, 90]]
    assert ds.x[3, :, 4:].max() == 0

    small = load_folder(tmp_path, image_size=4)
    assert small.x.shape == (4, 3, 4, 4)
    assert (small.x[2].float() - torch.tensor([40.0, 120, 200]).view(3, 1, 1)).abs().max() <= 3
    big = load_source(f"folder:{tmp_path}?size=16&channels=1")  # enlarging (BICUBIC) and grey conversion
    assert big.x.shape == (4, 1, 16, 16)
    # Pillow's L = (299 R + 587 G + 114 B) / 1000: (40, 120, 200) -> 105.2
    assert (big.x[2].float() - 105).abs().max() <= 3


def test_folder_flat_majority_grey_and_formats(tmp_path):
    grey = np.arange(36, dtype=np.uint8).reshape(6, 6) * 7
    save(Image.fromarray(grey, "L"), tmp_path / "g1.png")
    save(Image.fromarray(grey, "L"), tmp_path / "g2.bmp")
    save(Image.fromarray(grey, "L"), tmp_path / "g3.tif")
    save(Image.fromarray(grey, "L"), tmp_path / "g4.webp", lossless=True)
    save(Image.new("RGB", (6, 6), (255, 0, 0)), tmp_path / "r5.gif")  # palette image, first frame
    wide16 = np.array([[0, 65535], [257 * 100, 257 * 3]], dtype=np.uint16)
    save(Image.fromarray(wide16), tmp_path / "s6.png")  # a 16-bit grey PNG (mode I;16), 2 x 2

    ds = load_folder(tmp_path, image_size=6)
    assert ds.y is None and ds.class_names is None and ds.x.shape == (6, 1, 6, 6)  # 5 grey files vs 1 colour
    for i in range(4):
        assert np.array_equal(ds.x[i, 0].numpy(), grey), i
    assert ds.x[4].unique().tolist() == [76]  # L of pure red = 299 * 255 / 1000 = 76.2
    native = load_folder(tmp_path)  # most common side is 6; the 2 x 2 file is enlarged
    assert native.x.shape == (6, 1, 6, 6)
    only16 = tmp_path / "only16"
    save(Image.fromarray(wide16), only16 / "s.png")
    assert load_folder(only16).x[0, 0].tolist() == [[0, 255], [100, 3]]  # scaled by 255/65535, not clipped


def test_folder_applies_exif_orientation(tmp_path):
    pixels = np.zeros((2, 4), np.uint8)
    pixels[:, 2:] = 255  # stored 4 wide x 2 high: left half black, right half white
    img = Image.fromarray(pixels, "L")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": shown 2 wide x 4 high, black on top
    save(img, tmp_path / "rot.png", exif=exif)
    out = load_folder(tmp_path).x[0, 0]
    assert out.tolist() == [[0, 0], [255, 255]]  # the centre square of the upright picture


def test_folder_bad_inputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    expect_data_error(lambda: load_source(f"folder:{empty}"), "no images found", str(empty))
    (empty / "readme.txt").write_text("hello")
    expect_data_error(lambda: load_source(f"folder:{empty}"), "no images found")
    expect_data_error(lambda: load_source(f"folder:{tmp_path / 'missing'}"), "does not exist")
    expect_data_error(lambda: load_source(f"folder:{empty / 'readme.txt'}"), "is a file, not a folder")

    corrupt = tmp_path / "corrupt"
    save(Image.new("RGB", (4, 4)), corrupt / "good.png")
    (corrupt / "bad.png").write_bytes(b"this is not a png")
    expect_data_error(lambda: load_source(f"folder:{corrupt}"), "bad.png", "cannot read image")

    truncated = tmp_path / "truncated"
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "JPEG")
    truncated.mkdir()
    (truncated / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    expect_data_error(lambda: load_source(f"folder:{truncated}"), "cut.jpg")

    mixed = tmp_path / "mixed"
    save(Image.new("L", (4, 4)), mixed / "loose.png")
    save(Image.new("L", (4, 4)), mixed / "cls" / "x.png")
    expect_data_error(lambda: load_source(f"folder:{mixed}"), "both images", "cls")
    expect_data_error(lambda: load_source(f"folder:{corrupt}?size=big"), "size='big'")
    expect_data_error(lambda: load_source(f"folder:{corrupt}?channels=2"), "1 (grey) or 3 (RGB)")


# ------------------------------------------------------------------------------------------------ npz
def test_npz_layouts_dtypes_and_labels(tmp_path):
    rng = np.random.default_rng(3)
    nhwc = rng.integers(0, 256, (4, 5, 6, 3), dtype=np.uint8)
    np.savez(tmp_path / "nhwc.npz", nhwc, labels=np.array([0, 2, 1, 2]))
    ds = load_source(f"npz:{tmp_path / 'nhwc.npz'}")
    assert ds.x.shape == (4, 3, 5, 6) and ds.x.is_contiguous()
    assert np.array_equal(ds.x.permute(0, 2, 3, 1).numpy(), nhwc)
    assert ds.y.tolist() == [0, 2, 1, 2] and ds.class_names == ["0", "1", "2"]

    nchw = rng.integers(0, 256, (2, 3, 5, 5), dtype=np.uint8)
    np.savez(tmp_path / "nchw.npz", x=nchw)
    assert np.array_equal(load_source(f"npz:{tmp_path / 'nchw.npz'}").x.numpy(), nchw)

    # values k/255 in [0, 1] come back as exactly k; 2k/255 - 1 in [-1, 1] too
    k = rng.integers(0, 256, (3, 4, 4))
    np.savez(tmp_path / "unit.npz", x=(k / 255.0).astype(np.float32), y=np.array([[1], [0], [1]]))
    unit = load_source(f"npz:{tmp_path / 'unit.npz'}")
    assert unit.x.shape == (3, 1, 4, 4) and np.array_equal(unit.x[:, 0].numpy(), k) and unit.y.tolist() == [1, 0, 1]
    k[0, 0, 0] = 0  # make sure a negative value is present, so the [-1, 1] reading is chosen
    np.savez(tmp_path / "tanh.npz", x=2 * k / 255.0 - 1, y=np.eye(3)[[2, 0, 1]],
             class_names=np.array(["ant", "bee", "cow"]))
    tanh = load_source(f"npz:{tmp_path / 'tanh.npz'}")
    assert np.array_equal(tanh.x[:, 0].numpy(), k)
    assert tanh.y.tolist() == [2, 0, 1] and tanh.class_names == ["ant", "bee", "cow"]

    # tiny images where both axes 1 and 3 could be channels: the equal spatial pair decides
    assert load_source(f"npz:{_save(tmp_path / 'a.npz', np.zeros((2, 3, 4, 4), np.uint8))}").x.shape == (2, 3, 4, 4)
    assert load_source(f"npz:{_save(tmp_path / 'b.npz', np.zeros((2, 4, 4, 3), np.uint8))}").x.shape == (2, 3, 4, 4)
    np.save(tmp_path / "plain.npy", np.full((2, 3, 3), True))
    assert load_source(f"npz:{tmp_path / 'plain.npy'}").x.unique().tolist() == [255]


def _save(path: Path, images: np.ndarray) -> Path:
    np.savez(path, images)
    return path


def test_npz_bad_inputs(tmp_path):
    expect_data_error(lambda: load_source(f"npz:{tmp_path / 'missing.npz'}"), "does not exist")
    np.savez(tmp_path / "other.npz", foo=np.zeros(3), bar=np.zeros(2))
    expect_data_error(lambda: load_source(f"npz:{tmp_path / 'other.npz'}"), "'foo'", "'bar'", "'arr_0' or 'x'")
    np.savez(tmp_path / "range.npz", x=np.full((2, 4, 4), 200.0))
    expect_data_error(lambda: load_source(f"npz:{tmp_path / 'range.npz'}"), "[200, 200]", "[0, 1] or [-1, 1]")
    np.savez(tmp_path / "ints.npz", x=np.full((2, 4, 4), 1000, np.int32))
    expect_data_error(lambda: load_source(f"npz:{tmp_path / 'ints.npz'}"), "[1000, 1000]", "0..255")
    nan = np.zeros((2, 4, 4))
    nan[1, 2, 3] = np.nan
    np.savez(tmp_path / "nan.npz", x=nan)
    expect_data_error(lambda: load_source(f"npz:{tmp_path / 'nan.npz'}"), "NaN")
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}, None], dtype=object))
    expect_data_error(lambda: load_source(f"npz:{tmp_path / 'objects.npz'}"), "Python objects")
    np.savez(tmp_path / "shape.npz", x=np.zeros((2, 5, 5, 2), np.uint8))
    expect_data_error(lambda: load_source(f"npz:{tmp_path / 'shape.npz'}"), "(2, 5, 5, 2)", "channels")
    np.savez(tmp_path / "count.npz", x=np.zeros((3, 4, 4), np.uint8), labels=np.array([0, 1]))
    expect_data_error(lambda: load_source(f"npz:{tmp_path / 'count.npz'}"), "3 images but 2 labels")
    np.savez(tmp_path / "neg.npz", x=np.zeros((2, 4, 4), np.uint8), labels=np.array([0, -1]))
    expect_data_error(lambda: load_source(f"npz:{tmp_path / 'neg.npz'}"), "-1")
    np.savez(tmp_path / "none.npz", x=np.zeros((0, 4, 4), np.uint8))
    expect_data_error(lambda: load_source(f"npz:{tmp_path / 'none.npz'}"), "no images")
    (tmp_path / "garbage.npz").write_bytes(b"definitely not a zip archive")
    expect_data_error(lambda: load_source(f"npz:{tmp_path / 'garbage.npz'}"), "not a .npz archive", "b'defini")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "other.npz").read_bytes()[:60])
    expect_data_error(lambda: load_source(f"npz:{tmp_path / 'cut.npz'}"), "cut.npz")
    expect_data_error(lambda: load_source(f"npz:{tmp_path}"), "is a directory")


# -------------------------------------------------------------------------------------------- CIFAR-10
class Python2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle (protocol 2) wrote for CIFAR-10: every str and bytes as a byte string
    (SHORT_BINSTRING / BINSTRING), and numpy's functions under the numpy 1.x module name numpy.core."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_byte_string(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = save_byte_string
    dispatch[bytes] = save_byte_string


def py2_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture
def cifar_dir(tmp_path: Path) -> tuple[Path, dict[str, tuple[np.ndarray, list[int]]]]:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(4)
    batches = {}
    for i, name in enumerate([f"data_batch_{j}" for j in range(1, 6)] + ["test_batch"]):
        n = 3 if name == "test_batch" else 2
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        batches[name] = (data, labels)
        (folder / name).write_bytes(py2_pickle({"batch_label": f"batch {i}", "labels": labels, "data": data,
                                                "filenames": [f"img_{i}_{j}.png" for j in range(n)]}))
    (folder / "batches.meta").write_bytes(py2_pickle({"label_names": CIFAR_NAMES, "num_cases_per_batch": 10000,
                                                      "num_vis": 3072}))
    return folder, batches


def test_cifar10_python2_batches_splits_and_pixel_layout(cifar_dir):
    folder, batches = cifar_dir
    train = load_source(f"cifar10:{folder}")
    assert train.x.dtype == torch.uint8 and train.x.shape == (10, 3, 32, 32)
    assert train.class_names == CIFAR_NAMES
    assert train.y.tolist() == sum((batches[f"data_batch_{j}"][1] for j in range(1, 6)), [])
    first = batches["data_batch_1"][0][0]
    # row layout: 1024 red, then green, then blue, each 32 x 32 row-major
    for c, i, j in [(0, 0, 0), (1, 5, 7), (2, 31, 30)]:
        assert int(train.x[0, c, i, j]) == int(first[c * 1024 + i * 32 + j])
    test = load_source(f"cifar10:{folder.parent}?split=test")  # the parent folder works too
    assert np.array_equal(test.x.reshape(3, -1).numpy(), batches["test_batch"][0])
    assert len(load_cifar10(folder, split="all")) == 13


def test_cifar10_reads_the_tar_archive_and_python3_pickles(cifar_dir, tmp_path):
    folder, batches = cifar_dir
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    assert np.array_equal(load_source(f"cifar10:{archive}?split=test").y.numpy(), batches["test_batch"][1])
    # re-saved by Python 3 with numpy 2: str keys, numpy._core names, protocol 5 uses _frombuffer
    data, labels = batches["test_batch"]
    for protocol in (2, 4, 5):
        (folder / "test_batch").write_bytes(pickle.dumps({"data": data, "labels": labels}, protocol=protocol))
        assert np.array_equal(load_cifar10(folder, "test").x.reshape(3, -1).numpy(), data), protocol


class _Exploit:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return os.makedirs, (self.target,)


class _BadCodec:
    def __reduce__(self):
        return codecs.encode, ("payload", "rot13")


def test_cifar10_refuses_forbidden_globals_without_running_them(cifar_dir, tmp_path):
    folder, batches = cifar_dir
    marker = tmp_path / "pwned"
    (folder / "data_batch_2").write_bytes(pickle.dumps({"data": _Exploit(str(marker)), "labels": []}, protocol=2))
    expect_data_error(lambda: load_source(f"cifar10:{folder}"), "data_batch_2", "os.makedirs", "not a genuine")
    assert not marker.exists()
    (folder / "data_batch_2").write_bytes(pickle.dumps({"data": _BadCodec(), "labels": []}, protocol=2))
    expect_data_error(lambda: load_source(f"cifar10:{folder}"), "_codecs.encode with encoding 'rot13'")


def test_cifar10_bad_inputs(cifar_dir, tmp_path):
    folder, _ = cifar_dir
    expect_data_error(lambda: load_source(f"cifar10:{tmp_path / 'nowhere'}"), "does not exist")
    expect_data_error(lambda: load_source(f"cifar10:{folder}?split=dev"), "unknown split")
    whole = (folder / "data_batch_4").read_bytes()
    (folder / "data_batch_4").write_bytes(whole[: len(whole) // 2])
    expect_data_error(lambda: load_source(f"cifar10:{folder}"), "data_batch_4", "truncated or corrupt")
    (folder / "data_batch_4").write_bytes(py2_pickle({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}))
    expect_data_error(lambda: load_source(f"cifar10:{folder}"), "data_batch_4", "N x 3072")
    (folder / "data_batch_4").write_bytes(py2_pickle([1, 2, 3]))
    expect_data_error(lambda: load_source(f"cifar10:{folder}"), "holds a list")
    (folder / "data_batch_4").unlink()
    expect_data_error(lambda: load_source(f"cifar10:{folder}"), "data_batch_4 is missing")
    (tmp_path / "fake.tar.gz").write_bytes(b"not a tar")
    expect_data_error(lambda: load_source(f"cifar10:{tmp_path / 'fake.tar.gz'}"), "tar archive")


# -------------------------------------------------------------------------------------- mnist5k and toy
def test_mnist5k_is_5000_balanced_digits():
    ds = load_source("mnist5k")
    assert ds.x.shape == (5000, 1, 28, 28) and ds.x.dtype == torch.uint8
    assert torch.bincount(ds.y, minlength=10).tolist() == [500] * 10
    assert int(ds.x.max()) == 255 and int(ds.x.min()) == 0 and ds.class_names == [str(d) for d in range(10)]
    # every digit has some ink but is mostly background, and a "1" has less ink than a "0" on average
    bright = (ds.x > 127).float().mean(dim=(1, 2, 3))
    assert bool(((bright > 0.02) & (bright < 0.4)).all())
    assert bright[ds.y == 1].mean() < 0.6 * bright[ds.y == 0].mean()
    expect_data_error(lambda: load_source("mnist5k:extra"), "takes only ?split=")


@pytest.mark.parametrize("name, count, std", [("ring8", 8, 0.02), ("grid25", 25, 0.05)])
def test_toy_mixtures_centres_spread_and_seed(name, count, std):
    centres, std_reported = mode_centers(name)
    assert len(centres) == count and std_reported == std
    if name == "ring8":
        for k, (cx, cy) in enumerate(centres.tolist()):
            assert math.isclose(cx, 2 * math.cos(k * math.pi / 4), abs_tol=1e-6)
            assert math.isclose(cy, 2 * math.sin(k * math.pi / 4), abs_tol=1e-6)
    else:
        ticks = [-4.0, -2.0, 0.0, 2.0, 4.0]
        assert sorted(map(tuple, centres.tolist())) == [(a, b) for a in ticks for b in ticks]
    ds = load_source(f"toy:{name}", seed=5)
    assert ds.kind == "vector" and ds.x.shape[1] == 2 and torch.bincount(ds.y).min() > 0.8 * len(ds) / count
    offsets = ds.x - centres[ds.y]
    assert offsets.mean(0).abs().max() < 5 * std / math.sqrt(len(ds))
    assert abs(offsets.std().item() - std) < 0.02 * std
    assert torch.equal(load_source(f"toy:{name}", seed=5).x, ds.x)
    assert not torch.equal(load_source(f"toy:{name}", seed=6).x, ds.x)
    expect_data_error(lambda: load_source("toy:ring9"), "unknown toy")


# -------------------------------------------------------------------------------------------- prepare
def test_prepare_resize_and_channels():
    x = torch.zeros(1, 1, 4, 4, dtype=torch.uint8)
    x[..., 2:] = 175
    out = prepare(Dataset(x=x, y=None, name="halves"), image_size=2, channels=None).x
    # antialiased bilinear at scale 2 is a triangle of half-width 2: output column 0 sees inputs 0, 1, 2 at
    # distances 0.5, 0.5, 1.5 with weights 0.75, 0.75, 0.25 -> (0.25 * 175) / 1.75 = 25; column 1 mirrors -> 150
    assert out.tolist() == [[[[25, 150], [25, 150]]]]
    flat = torch.full((2, 3, 5, 5), 77, dtype=torch.uint8)
    assert prepare(Dataset(x=flat, y=None, name="flat"), 11, None).x.unique().tolist() == [77]

    rgb = torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1)
    assert prepare(Dataset(x=rgb, y=None, name="red"), None, 1).x.item() == 76  # 0.299 * 255 = 76.2
    grey = torch.tensor([[[[9]]]], dtype=torch.uint8)
    assert prepare(Dataset(x=grey, y=None, name="g"), None, 3).x.flatten().tolist() == [9, 9, 9]
    rgba = torch.tensor([1, 2, 3, 4], dtype=torch.uint8).view(1, 4, 1, 1)
    assert prepare(Dataset(x=rgba, y=None, name="a"), None, 3).x.flatten().tolist() == [1, 2, 3]
    two = torch.zeros(1, 2, 3, 3, dtype=torch.uint8)
    expect_data_error(lambda: prepare(Dataset(x=two, y=None, name="two"), None, 3), "2 channels")
    vectors = Dataset(x=torch.zeros(3, 2), y=None, name="v", kind="vector")
    assert prepare(vectors, 32, 3) is vectors


def test_prepare_keeps_the_super_resolution_scale():
    sr = load_source("mnist5k?split=test&sr=4", seed=0)
    grown = prepare(sr, image_size=32, channels=3)
    assert grown.x.shape[1:] == (3, 32, 32) and grown.fields["lowres"].shape[1:] == (3, 8, 8)
    # the lowres is resized as an image of its own (not re-derived from the resized image): its mean grey survives
    assert abs(grown.fields["lowres"].float().mean() - sr.fields["lowres"].float().mean()) < 2
    assert prepare(sr, None, None).fields["lowres"] is sr.fields["lowres"]
    expect_data_error(lambda: prepare(sr, 30, None), "data.image_size=30 must be a multiple of the low-resolution")


# -------------------------------------------------------------------------------------------- sampler
def test_batch_sampler_epochs_determinism_resume_and_ranks():
    sampler = BatchSampler(n=10, batch_size=3, mode="shuffle", seed=7)
    stream = torch.cat([sampler.next() for _ in range(10)])  # 30 indices = 3 whole epochs
    for epoch in range(3):
        assert sorted(stream[10 * epoch:10 * (epoch + 1)].tolist()) == list(range(10))
    assert not torch.equal(stream[:10], stream[10:20])  # a new permutation each epoch
    again = BatchSampler(n=10, batch_size=3, mode="shuffle", seed=7)
    assert torch.equal(torch.cat([again.next() for _ in range(10)]), stream)

    for mode in ("shuffle", "replacement"):
        original = BatchSampler(n=10, batch_size=4, mode=mode, seed=3)
        for _ in range(4):
            original.next()
        state = original.state_dict()
        resumed = BatchSampler(n=10, batch_size=4, mode=mode, seed=999)
        resumed.load_state_dict(state)
        continued = [original.next() for _ in range(5)]
        assert all(torch.equal(a, resumed.next()) for a in continued), mode
        assert all(0 <= int(i) < 10 for batch in continued for i in batch)

    whole = BatchSampler(n=10, batch_size=4, mode="shuffle", seed=11)
    ranks = [BatchSampler(n=10, batch_size=2, mode="shuffle", seed=11, rank=r, world_size=2) for r in range(2)]
    for _ in range(6):
        assert torch.equal(whole.next(), torch.cat([s.next() for s in ranks]))


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_prints_one_line_and_exits_2_on_bad_data(tmp_path, capsys):
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    for spec, fragment in [(f"idx:{tmp_path / 'missing'}", "does not exist"), (f"npz:{tmp_path / 'bad.npz'}", "bad.npz"),
                           (f"folder:{tmp_path / 'imgs'}", "broken.png")]:
        code = cli_main(["train", "dcgan-mnist", "--data", spec, "--steps", "1", "--out", str(tmp_path / "run"),
                         "--device", "cpu", "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and fragment in err and "Traceback" not in err, err
