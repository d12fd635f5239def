"""Domain evaluators: small classifiers ganforge trains itself on real labelled data, no download needed.

A LeNet-style CNN (LeCun et al. 1998, with ReLU, max-pooling and dropout) is trained deterministically from a
seed on the labelled source's training split and checked on a held-out, class-balanced split (for
``mnist5k``: 400 train / 100 test digits per class). Its softmax gives IS, the class histogram and label
accuracy of conditional models; its penultimate layer (128-d) gives a domain FID / KID / precision-recall.
The trained weights are cached (safetensors + JSON with the held-out accuracy) in the user cache directory,
``$GANFORGE_CACHE`` or ``~/.cache/ganforge``, keyed by source, shape, seed and a version number.

Training takes a minute or more on a CPU (the first evaluation against a new data set), so it reports on stderr:
one line saying what is trained and where it is cached, a progress bar on a terminal (a plain line each quarter
otherwise, for logs), and the held-out accuracy at the end.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..data import Dataset, load_source, prepare
from ..data.mnist5k import split_train_test
from ..errors import DataError

VERSION = 1


def cache_dir() -> Path:
    root = os.environ.get("GANFORGE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ganforge")
    return Path(root)


class LeNet(nn.Module):
    """Conv(32, 5) - pool - Conv(64, 5) - pool - FC(128) - FC(classes); works for any input size >= 8."""

    feature_dim = 128

    def __init__(self, channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(7), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(64 * 49, self.feature_dim), nn.ReLU())
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.features(x)))


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random translations of up to 2 pixels (zero fill): cheap, label-preserving for digits and clothes."""
    n, _, h, w = x.shape
    pad = F.pad(x, (2, 2, 2, 2))
    dx = torch.randint(0, 5, (n,), generator=g)
    dy = torch.randint(0, 5, (n,), generator=g)
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h))                     # n x h
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w))                     # n x w
    idx_n = torch.arange(n).view(n, 1, 1)
    out = pad.permute(0, 2, 3, 1)[idx_n, rows.view(n, h, 1), cols.view(n, 1, w)]  # n x h x w x c
    return out.permute(0, 3, 1, 2).contiguous()


def to_unit(images: torch.Tensor, value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """uint8 (0..255) or float images in ``value_range`` -> float in [0, 1]."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    lo, hi = value_range if value_range is not None else (0.0, 1.0)
    return ((images.float() - lo) / (hi - lo)).clamp(0, 1)


@dataclass
class DomainClassifier:
    """A trained domain classifier and what it was trained on."""

    net: LeNet
    source: str
    image_size: int
    channels: int
    class_names: list[str]
    test_accuracy: float
    train_size: int
    test_size: int

    @torch.no_grad()
    def predict(self, images: torch.Tensor, value_range: tuple[float, float] | None = None,
                batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """(softmax probabilities N x K, penultimate features N x 128) for images N x C x H x W."""
        if images.ndim != 4 or images.shape[1] != self.channels:
            raise DataError(f"the {self.source} evaluator takes N x {self.channels} x H x W images, got "
                            f"{tuple(images.shape)}")
        self.net.eval()
        probs, feats = [], []
        for i in range(0, len(images), batch_size):
            x = to_unit(images[i:i + batch_size], value_range)
            if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
                x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True,
                                  align_corners=False)
            f = self.net.features(x)
            probs.append(F.softmax(self.net.out(f), 1))
            feats.append(f)
        return torch.cat(probs), torch.cat(feats)

    def info(self) -> dict[str, Any]:
        return {"source": self.source, "image_size": self.image_size, "channels": self.channels,
                "test_accuracy": self.test_accuracy, "train_size": self.train_size, "test_size": self.test_size}


def _split(ds: Dataset, seed: int) -> tuple[Dataset, Dataset]:
    counts = torch.bincount(ds.y, minlength=ds.num_classes)
    per_class = max(1, min(int(counts.min()) // 5, 1000))   # 20% of the rarest class, at most 1000 per class
    return split_train_test(ds, test_per_class=per_class, seed=seed)


def say(message: str) -> None:
    print(f"ganforge: {message}", file=sys.stderr, flush=True)


class Progress:
    """Batches done out of ``total``, on stderr: a tqdm bar on a terminal; otherwise (a log file, a pipe, CI) a
    plain line at each quarter, since a bar's carriage returns make one unreadable line in a log."""

    def __init__(self, total: int, what: str, stream: Any = None):
        self.total, self.what, self.done, self.next_quarter = max(1, total), what, 0, 1
        self.stream = stream or sys.stderr
        self.bar = None
        if getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm
            self.bar = tqdm(total=self.total, desc=what, unit="batch", file=self.stream, leave=False,
                            dynamic_ncols=True)

    def update(self, k: int = 1) -> None:
        self.done += k
        if self.bar is not None:
            self.bar.update(k)
            return
        while self.next_quarter <= 4 and self.done * 4 >= self.next_quarter * self.total:
            print(f"ganforge:   {self.what}: {25 * self.next_quarter} % ({self.done}/{self.total} batches)",
                  file=self.stream, flush=True)
            self.next_quarter += 1

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train_classifier(ds: Dataset, seed: int = 0, epochs: int = 12, batch_size: int = 64,
                     lr: float = 1e-3, progress: bool = False) -> tuple[LeNet, float, int, int]:
    """Train a LeNet on ``ds`` (labelled, uint8 images); return (net, held-out accuracy, train n, test n).
    ``progress``: report on stderr (see the module docstring)."""
    if ds.y is None or ds.num_classes < 2:
        raise DataError(f"a domain evaluator needs labelled data with at least 2 classes; {ds.name} has none")
    train, test = _split(ds, seed)
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = LeNet(ds.shape[0], ds.num_classes)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr * 3, total_steps=epochs * ((len(train) + batch_size - 1) // batch_size))
        x_all, y_all = to_unit(train.x), train.y
        net.train()
        bar = Progress(sched.total_steps, f"training the {ds.name} evaluator") if progress else None
        try:
            for _ in range(epochs):
                perm = torch.randperm(len(train), generator=g)
                for i in range(0, len(train), batch_size):
                    idx = perm[i:i + batch_size]
                    x = _augment(x_all[idx], g)
                    loss = F.cross_entropy(net(x), y_all[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    if bar is not None:
                        bar.update()
        finally:
            if bar is not None:
                bar.close()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(to_unit(test.x[i:i + 1000])).argmax(1) for i in range(0, len(test), 1000)])
    acc = float((pred == test.y).float().mean())
    return net, acc, len(train), len(test)


# Below this held-out accuracy the classifier's features do not separate the classes well, and a domain FID
# measured with them says little: the table and the training log flag it.
TRUSTED_ACCURACY = 0.9


def low_accuracy_note(accuracy: float | None) -> str | None:
    """A warning to append when a domain classifier is too weak to trust its FID, or None."""
    if accuracy is None or accuracy >= TRUSTED_ACCURACY:
        return None
    return (f"; below {100 * TRUSTED_ACCURACY:.0f} %: its FID/KID/IS and class figures are unreliable, "
            "use --features inception or more labelled data")


def _key(source: str, image_size: int, channels: int, seed: int) -> str:
    h = hashlib.sha1(f"{source}|{image_size}|{channels}|{seed}|v{VERSION}".encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() else "_" for c in source)[:40]
    return f"{safe}-{image_size}px-{channels}ch-seed{seed}-{h}"


def domain_classifier(source: str = "mnist5k", image_size: int | None = None, channels: int | None = None,
                      seed: int = 0, use_cache: bool = True) -> DomainClassifier:
    """The domain classifier for a labelled data source, trained on first use and cached.

    Touches no global RNG state (building a network draws initial weights), so evaluating during training
    leaves the training streams exactly as they were."""
    with torch.random.fork_rng(devices=[]):
        return _domain_classifier(source, image_size, channels, seed, use_cache)


def _domain_classifier(source: str, image_size: int | None, channels: int | None, seed: int,
                       use_cache: bool) -> DomainClassifier:
    ds = load_source(source, seed=0)
    if ds.kind != "image":
        raise DataError(f"domain evaluators are for images; {source} is {ds.kind} data (use the toy metrics)")
    ds = prepare(ds, image_size, channels)
    size, ch = ds.shape[-1], ds.shape[0]
    key = _key(source, size, ch, seed)
    root = cache_dir() / "domain"
    wpath, jpath = root / f"{key}.safetensors", root / f"{key}.json"
    if use_cache and wpath.is_file() and jpath.is_file():
        try:
            meta = json.loads(jpath.read_text())
            net = LeNet(ch, len(meta["class_names"]))
            net.load_state_dict(load_file(str(wpath)))
            return DomainClassifier(net.eval(), source, size, ch, meta["class_names"], meta["test_accuracy"],
                                    meta["train_size"], meta["test_size"])
        except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError):
            pass  # a broken cache entry is simply rebuilt
    say(f"training the domain evaluator for {source} ({size}x{size}, {ch} channel(s), {len(ds)} labelled images; "
        f"once: it is cached in {root})")
    started = time.time()
    net, acc, n_train, n_test = train_classifier(ds, seed=seed, progress=True)
    say(f"domain evaluator for {source}: held-out accuracy {100 * acc:.1f} % on {n_test} images "
        f"({time.time() - started:.0f} s)" + (low_accuracy_note(acc) or ""))
    names = list(ds.class_names) if ds.class_names else [str(i) for i in range(ds.num_classes)]
    clf = DomainClassifier(net, source, size, ch, names, acc, n_train, n_test)
    if use_cache:
        try:
            root.mkdir(parents=True, exist_ok=True)
            tmp_w, tmp_j = wpath.with_suffix(".tmp"), jpath.with_suffix(".jtmp")
            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_w))
            tmp_j.write_text(json.dumps({**clf.info(), "class_names": names, "version": VERSION}, indent=1))
            tmp_w.replace(wpath)
            tmp_j.replace(jpath)
        except OSError:
            pass  # an unwritable cache only costs retraining next time
    return clf
