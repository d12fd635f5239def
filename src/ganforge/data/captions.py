"""``captions:DIR``: images with captions in same-name text files, as StackGAN / AttnGAN read CUB-200-2011 and
Oxford-102 flowers (the text files of Reed et al. 2016, one caption per line, ten per image).

Two layouts, recognised by their folders:
- mirrored: ``DIR/images/<class>/<name>.jpg`` with ``DIR/text/<class>/<name>.txt`` (CUB as StackGAN's data folder
  holds it; ``text_c10/`` is accepted for ``text/`` and ``jpg/`` for ``images/``, the names of Reed's archives,
  where Oxford-102's images sit flat in ``jpg/`` and only its text has ``class_00001/`` folders);
- same folder: ``DIR/<class>/<name>.jpg`` beside ``DIR/<class>/<name>.txt``, or all flat in ``DIR``.
Images and text files pair by file name without extension; one without the other is refused, naming a few. The
label is the class folder (of the image, or of the text where the images are flat), classes in sorted order as
``folder:`` numbers them; with no class folders there are no labels.

Each (image, caption) pair is one sample: an image with ten captions is ten samples holding the same pixels, so an
epoch sees every caption once (StackGAN instead draws one of an image's captions at random per visit; the same
expectation). Blank lines are skipped; a text file with no caption is refused.

``text`` is ``ganforge.data.text.encode`` of the caption with a vocabulary built (``build_vocab``) from the
captions of the train split only, whatever ``?split=`` loads, so train and test tokens mean the same words; it is
kept in ``meta["vocab"]``. ``?split=train|test|all`` (default train): when DIR holds ``trainclasses.txt`` and / or
``testclasses.txt`` (one class folder name a line, CUB's 150 / 50 zero-shot split of Reed and StackGAN) they pick
the classes (a class in only one list: the other split is every class not in it); otherwise a fixed 90 / 10
split of the images (seed 0, not the run seed, so runs never train on one another's test images).
``?max_len=`` (default 18 words, AttnGAN's WORDS_NUM), ``?size=`` (default 64, StackGAN's stage-I side; each
image's centre square resized, as ``folder:`` does).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import Dataset, check_fits_in_memory, register_source
from .folder import _decode, _images_under, _positive_int, _read_header, _say_once
from .idx import error_reason, split_path_and_options
from .text import build_vocab, encode
from .translation import choice, existing_folder

IMAGE_DIRS = ("images", "jpg")
TEXT_DIRS = ("text", "text_c10")
CLASS_FILES = {"train": "trainclasses.txt", "test": "testclasses.txt"}
SPLITS = ("train", "test", "all")
DEFAULT_MAX_LEN = 18
DEFAULT_SIZE = 64
TEST_SHARE = 10   # 1 image in 10 is held out when there are no class lists
SPLIT_SEED = 0


def _texts_under(folder: Path) -> list[Path]:
    found = []
    for p in sorted(folder.rglob("*.txt")):
        rel = p.relative_to(folder)
        if not any(part.startswith(".") for part in rel.parts):
            found.append(p)
    return found


def _keyed(paths: list[Path], spec: str) -> dict[str, Path]:
    keyed: dict[str, Path] = {}
    for p in paths:
        if p.stem in keyed:
            raise DataError(f"{keyed[p.stem]} and {p} have the same name (from '{spec}'), so which captions go with "
                            f"which image is ambiguous; rename one")
        keyed[p.stem] = p
    return keyed


def _class_of(path: Path, root: Path) -> str | None:
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else None


def _find_pairs(root: Path, spec: str) -> tuple[list[Path], list[Path], list[str | None], str]:
    """(image paths, text paths, class name or None per pair, layout) in sorted order of the images."""
    image_root = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
    text_root = next((root / d for d in TEXT_DIRS if (root / d).is_dir()), None)
    if image_root is not None and text_root is not None:
        layout = f"{image_root.name}/ + {text_root.name}/"
        images, texts = _images_under(image_root), _texts_under(text_root)
    else:
        image_root = text_root = root
        layout = "images beside their .txt"
        skip = {"trainclasses.txt", "testclasses.txt", "allclasses.txt", "valclasses.txt", "trainvalclasses.txt"}
        images = _images_under(root)
        texts = [p for p in _texts_under(root) if p.name not in skip]
    by_image, by_text = _keyed(images, spec), _keyed(texts, spec)
    no_text, no_image = sorted(set(by_image) - set(by_text)), sorted(set(by_text) - set(by_image))
    if not by_image:
        raise DataError(f"no images in {image_root} (from '{spec}'); captions: wants images/ + text/ folders, or "
                        f"images with a same-name .txt of captions beside each")
    if no_text or no_image:
        parts = []
        if no_text:
            parts.append(f"{len(no_text)} images have no same-name .txt ({', '.join(no_text[:3])}"
                         f"{', ...' if len(no_text) > 3 else ''})")
        if no_image:
            parts.append(f"{len(no_image)} .txt files have no image ({', '.join(no_image[:3])}"
                         f"{', ...' if len(no_image) > 3 else ''})")
        raise DataError(f"unmatched captions in {root} ({layout}, from '{spec}'): {'; '.join(parts)}; give every "
                        f"image one .txt of the same name (one caption a line)")
    stems = sorted(by_image, key=lambda s: by_image[s])
    classes = [_class_of(by_image[s], image_root) or _class_of(by_text[s], text_root) for s in stems]
    if any(c is None for c in classes) and any(c is not None for c in classes):
        loose = next(by_image[s] for s, c in zip(stems, classes) if c is None)
        raise DataError(f"{loose} is in no class folder while other images are (from '{spec}'); move it into one, "
                        f"or keep all images flat for unlabelled data")
    return [by_image[s] for s in stems], [by_text[s] for s in stems], classes, layout


def _read_captions(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or error_reason(err)}") from None
    captions = [line.strip() for line in lines if line.strip()]
    if not captions:
        raise DataError(f"{path} holds no caption; write one caption a line, or remove it and its image")
    return captions


def _class_list(root: Path, split: str, class_names: list[str], spec: str) -> set[str] | None:
    path = root / CLASS_FILES[split]
    if not path.is_file():
        return None
    if not class_names:
        raise DataError(f"{path} lists classes but the images of {root} are in no class folders (from '{spec}'); "
                        f"put them in one folder per class, or remove {path.name}")
    listed = {line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()}
    unknown = sorted(listed - set(class_names))
    if unknown:
        raise DataError(f"{path} names {len(unknown)} classes with no folder ({', '.join(unknown[:3])}"
                        f"{', ...' if len(unknown) > 3 else ''}); the class folders are {', '.join(class_names[:3])}"
                        f"{', ...' if len(class_names) > 3 else ''}")
    return listed


def _split_mask(root: Path, classes: list[str | None], class_names: list[str], spec: str) -> dict[str, np.ndarray]:
    """Boolean masks over the images for train and test, and how they were chosen."""
    lists = {s: _class_list(root, s, class_names, spec) for s in CLASS_FILES}
    if lists["train"] is not None or lists["test"] is not None:
        train = lists["train"] if lists["train"] is not None else set(class_names) - lists["test"]
        test = lists["test"] if lists["test"] is not None else set(class_names) - train
        both = sorted(train & test)
        if both:
            raise DataError(f"classes {', '.join(both[:3])} are in both {CLASS_FILES['train']} and "
                            f"{CLASS_FILES['test']} of {root}; list each class in one")
        return {"train": np.array([c in train for c in classes]), "test": np.array([c in test for c in classes])}
    n = len(classes)
    n_test = n // TEST_SHARE if n >= TEST_SHARE else (1 if n >= 2 else 0)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED)).numpy()
    test = np.zeros(n, dtype=bool)
    test[order[:n_test]] = True
    return {"train": ~test, "test": test}


def load_captions(root: Path, split: str = "train", max_len: int = DEFAULT_MAX_LEN, size: int = DEFAULT_SIZE,
                  name: str | None = None) -> Dataset:
    """(image, caption) samples with token ids, labels from class folders (module docstring)."""
    name = name or f"captions:{root}"
    existing_folder(root, name, "a folder of images with same-name .txt captions (or images/ + text/)")
    images, texts, classes, layout = _find_pairs(root, name)
    class_names = sorted({c for c in classes if c is not None})
    masks = _split_mask(root, classes, class_names, name)
    captions = [_read_captions(t) for t in texts]
    vocab = build_vocab(c for keep, caps in zip(masks["train"], captions) if keep for c in caps)
    chosen = np.ones(len(images), dtype=bool) if split == "all" else masks[split]
    picked = np.flatnonzero(chosen)
    if len(picked) == 0:
        raise DataError(f"the {split} split of {root} holds no images (from '{name}'); check "
                        f"{CLASS_FILES.get(split, 'the class lists')} or use ?split=all")
    n = sum(len(captions[i]) for i in picked)
    check_fits_in_memory(n, 3 * size * size, name, f"{n} (image, caption) samples at {size}x{size}",
                         "use a smaller ?size= (each caption is a sample holding its image)")
    x = np.empty((n, 3, size, size), dtype=np.uint8)
    labels, sample_captions, row = [], [], 0
    for i in picked:
        count = len(captions[i])
        x[row:row + count] = _decode(_read_header(images[i]), size, grey=False)[None]
        sample_captions.extend(captions[i])
        labels.extend([class_names.index(classes[i]) if classes[i] is not None else -1] * count)
        row += count
    text = encode(sample_captions, vocab, max_len)
    y = torch.tensor(labels, dtype=torch.int64) if class_names else None
    summary = (f"{name}: {len(picked)} images ({split}, {layout}) with {n} captions, one sample each, "
               f"{len(class_names) or 'no'} classes; vocabulary of {len(vocab)} (train captions), captions cut at "
               f"{max_len} words; images centre-cropped and resized to {size}x{size}")
    _say_once(summary)
    return Dataset(x=torch.from_numpy(x), y=y, name=name, class_names=class_names or None,
                   fields={"text": text},
                   meta={"source": "captions", "root": str(root), "split": split, "vocab": vocab,
                         "max_len": max_len, "image_size": size, "images": len(picked), "summary": summary})


@register_source("captions", "images with same-name .txt captions, CUB / Oxford-102 as StackGAN reads them: "
                             "captions:DIR (images/ + text/ mirror, or .txt beside each image; class folders give "
                             "labels) [?split=train|test|all&max_len=18&size=64]; one sample per caption; "
                             "yields image, text, label", keys=("image", "text", "label"))
def _captions(arg: str, seed: int) -> Dataset:
    spec = f"captions:{arg}"
    path, options = split_path_and_options(arg, "captions", {
        "split": "train, test or all", "max_len": "words per caption, default 18",
        "size": "square side in pixels, default 64"})
    return load_captions(path, choice(options, "split", SPLITS, "train", spec),
                         _positive_int(options, "max_len", spec) or DEFAULT_MAX_LEN,
                         _positive_int(options, "size", spec) or DEFAULT_SIZE, name=spec)
