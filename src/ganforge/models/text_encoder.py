"""The text encoder of text-to-image GANs, pretrained with an image encoder on a source's (image, caption) pairs.

Reed et al. 2016 ("Generative Adversarial Text to Image Synthesis", section 3; and "Learning Deep Representations of
Fine-Grained Visual Descriptions", the deep symmetric structured joint embedding) train a char-CNN-RNN text encoder
jointly with an image encoder *before* the GAN, then freeze it; AttnGAN (Xu et al. 2018) does the same with its DAMSM
(a bidirectional LSTM and an Inception image encoder). Here, small enough to train in seconds on one CPU thread and
needing nothing downloaded:

- ``TextEncoder`` (role ``text-encoder``, arch ``gru``): word embedding (``data/text.py`` token ids, 0 = padding) ->
  one-layer GRU; the sentence vector is the GRU's hidden state after the caption's last word (``embed_dim``, each
  value in (-1, 1)). A word-level vocabulary replaces Reed's characters: the captions here are built from a small
  vocabulary, and ``data/text.py`` already gives word ids with ``<unk>`` for words a run never saw.
- ``ImageEncoder``: Conv(32, 4, s2) - Conv(64, 4, s2) - Conv(128, 4, s2), LeakyReLU(0.2), global average pooling
  -> Linear(embed_dim), for any image size >= 8.
- the loss is DAMSM's sentence loss (AttnGAN eq. 10-11), a symmetric softmax matching: the cosine similarities of a
  batch's M images and M captions, scaled by gamma3 = 10, cross-entropy of each image against the captions and of
  each caption against the images, the matching pair the target (the symmetric form Reed's DS-SJE also takes, with a
  softmax in place of its structured hinge).

``pretrained_text_encoder(data)`` trains the pair once per source, architecture and seed (a fixed seed: the same
encoder every time), checks caption retrieval on held-out pairs, and caches both networks (safetensors + JSON) in
``cache_dir()/"text"`` as ``metrics/domain.py`` caches its classifiers, saying one line on stderr while it trains.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..errors import ConfigError, DataError
from .registry import register_network

VERSION = 1
SOURCE = ("Reed et al. 2016 (text encoder pretrained with an image encoder, DS-SJE) / AttnGAN's DAMSM sentence loss "
          "(Xu et al. 2018 eq. 10-11), as a word-GRU")
GAMMA3 = 10.0              # AttnGAN's smoothing factor of the sentence-level matching softmax
VOCAB_BYTES_PER_WORD = 32  # room for the vocabulary in the weights: an average word of up to 31 bytes
HELD_OUT_SHARE = 10        # one (image, caption) pair in ten is held out to check retrieval
SPLIT_SEED = 0


class CaptionVocabulary(nn.Module):
    """What every text encoder of a run holds besides its weights: the vocabulary its token ids mean, as UTF-8 words
    joined by newlines in a fixed-size byte buffer (zero-padded), so that it is saved with the weights and a run's
    checkpoint alone turns ``--text "a thin three"`` into ids."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.register_buffer("vocab_bytes", torch.zeros(vocab_size * VOCAB_BYTES_PER_WORD, dtype=torch.uint8))

    @property
    def vocab(self) -> list[str]:
        """id -> word, as set by ``set_vocab`` (empty before)."""
        raw = bytes(self.vocab_bytes.cpu().numpy().tobytes()).rstrip(b"\0")
        return raw.decode("utf-8").split("\n") if raw else []

    def set_vocab(self, vocab: Sequence[str]) -> None:
        """Keep ``vocab`` (id -> word, ``data/text.py``'s ``build_vocab``) with the weights."""
        raw = "\n".join(vocab).encode("utf-8")
        if len(vocab) > self.vocab_size or len(raw) > self.vocab_bytes.numel():
            raise ConfigError(f"a vocabulary of {len(vocab)} words ({len(raw)} bytes) does not fit a text encoder "
                              f"with vocab_size={self.vocab_size}; set networks.T.vocab_size={len(vocab)} or more")
        buf = torch.zeros_like(self.vocab_bytes)
        buf[:len(raw)] = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
        self.vocab_bytes.copy_(buf)

    def tokenize(self, captions: Sequence[str], max_len: int | None = None) -> tuple[torch.Tensor, list[str]]:
        """(int64 N x L token ids of ``captions`` in this encoder's vocabulary, the words it does not know, each
        once, in order). Words it does not know become ``<unk>``; L is the longest caption unless ``max_len``."""
        from ..data.text import encode, words
        vocab = self.vocab
        if not vocab:
            raise ConfigError("this text encoder has no vocabulary yet (it is set when it is pretrained)")
        known = set(vocab)
        unknown = list(dict.fromkeys(w for c in captions for w in words(c) if w not in known))
        length = max_len or max([len(words(c)) for c in captions] + [1])
        return encode(captions, vocab, length).to(self.vocab_bytes.device), unknown


@register_network("text-encoder", "gru", SOURCE)
class TextEncoder(CaptionVocabulary):
    """Token ids N x L (0 = padding) -> sentence embeddings N x ``embed_dim`` (module docstring)."""

    # Trained by ``pretrained_text_encoder`` on the run's own (image, caption) pairs before the GAN.
    needs_pretraining = True

    def __init__(self, vocab_size: int = 2048, embed_dim: int = 128, word_dim: int = 64):
        if min(vocab_size, embed_dim, word_dim) < 1 or vocab_size < 3:
            raise ConfigError(f"text encoder: vocab_size must be >= 3, embed_dim and word_dim >= 1 (got {vocab_size}, "
                              f"{embed_dim}, {word_dim})")
        super().__init__(vocab_size)
        self.embed_dim, self.word_dim = embed_dim, word_dim
        self.words = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.rnn = nn.GRU(word_dim, embed_dim, batch_first=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.dtype != torch.int64:
            raise ConfigError(f"the text encoder takes int64 N x L token ids, got {tokens.dtype} {list(tokens.shape)}")
        tokens = tokens.clamp(0, self.vocab_size - 1)
        out, _ = self.rnn(self.words(tokens))                                   # N x L x embed_dim
        last = ((tokens != 0).sum(1) - 1).clamp(min=0)                          # the caption's last word
        return out[torch.arange(len(tokens), device=tokens.device), last]


class ImageEncoder(nn.Module):
    """Images N x C x H x W (model range) -> embeddings N x ``embed_dim`` in the text encoder's space."""

    def __init__(self, channels: int, embed_dim: int = 128, widths: Sequence[int] = (32, 64, 128)):
        super().__init__()
        layers: list[nn.Module] = []
        c = channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 4, 2, 1), nn.LeakyReLU(0.2)]
            c = w
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out = nn.Linear(c, embed_dim)
        self.channels, self.embed_dim = channels, embed_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.out(self.trunk(images))


def matching_logits(image_emb: torch.Tensor, text_emb: torch.Tensor, gamma: float = GAMMA3) -> torch.Tensor:
    """gamma * cosine similarity, M images x M captions."""
    return gamma * F.normalize(image_emb, dim=1) @ F.normalize(text_emb, dim=1).t()


def symmetric_matching_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, gamma: float = GAMMA3) -> torch.Tensor:
    """DAMSM's sentence loss L1^s + L2^s (AttnGAN eq. 10-11): caption given image and image given caption, each a
    softmax over the batch with the matching pair as the target (mean over the batch)."""
    logits = matching_logits(image_emb, text_emb, gamma)
    target = torch.arange(len(logits), device=logits.device)
    return F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)


@dataclass
class PretrainedText:
    """A text encoder and the image encoder it was trained with, frozen, and what they were trained on."""

    text: TextEncoder
    image: ImageEncoder
    vocab: list[str]
    source: str
    image_size: int
    channels: int
    value_range: tuple[float, float]
    facts: dict[str, Any] = field(default_factory=dict)     # held-out retrieval, sizes, seconds

    @torch.no_grad()
    def embed_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.text(tokens)

    @torch.no_grad()
    def embed_images(self, images: torch.Tensor, value_range: tuple[float, float] | None = None,
                     batch_size: int = 500) -> torch.Tensor:
        """Embeddings of images (uint8, or floats in ``value_range``, default the encoder's), resized if need be."""
        from ..data.base import to_model_range
        out = []
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size]
            if x.dtype == torch.uint8:
                x = to_model_range(x, self.value_range)
            elif value_range is not None and tuple(value_range) != tuple(self.value_range):
                lo, hi = value_range
                nlo, nhi = self.value_range
                x = (x.float() - lo) / (hi - lo) * (nhi - nlo) + nlo
            if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
                x = F.interpolate(x.float(), size=(self.image_size, self.image_size), mode="bilinear",
                                  antialias=True, align_corners=False)
            out.append(self.image(x.float()))
        return torch.cat(out)


def _key(source: str, size: int, channels: int, vocab: Sequence[str], arch: dict[str, Any], seed: int) -> str:
    vocab_hash = hashlib.sha1("\n".join(vocab).encode()).hexdigest()[:8]
    h = hashlib.sha1(f"{source}|{size}|{channels}|{vocab_hash}|{sorted(arch.items())}|{seed}|v{VERSION}".encode())
    safe = "".join(c if c.isalnum() else "_" for c in source)[:40]
    return f"{safe}-{size}px-{channels}ch-seed{seed}-{h.hexdigest()[:12]}"


def _held_out(n: int) -> torch.Tensor:
    """bool N: the held-out pairs (one in HELD_OUT_SHARE, a fixed permutation; none when there are under 20)."""
    mask = torch.zeros(n, dtype=torch.bool)
    if n >= 2 * HELD_OUT_SHARE:
        mask[torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))[:n // HELD_OUT_SHARE]] = True
    return mask


@torch.no_grad()
def retrieval_accuracy(pair: PretrainedText, images: torch.Tensor, tokens: torch.Tensor, candidates: int = 100,
                       seed: int = 0, value_range: tuple[float, float] | None = None) -> float:
    """R-precision at R = 1 (AttnGAN): the share of images whose own caption ranks first among it and
    ``candidates - 1`` others drawn from ``tokens`` (captions written the same way never count as others)."""
    from ..metrics.text_retrieval import r_precision
    return r_precision(pair, images, tokens, candidates=candidates, seed=seed, value_range=value_range)


def train_pair(images: torch.Tensor, tokens: torch.Tensor, vocab_size: int, arch: dict[str, Any],
               value_range: tuple[float, float], seed: int = 0, epochs: int = 12, batch_size: int = 48,
               lr: float = 2e-3) -> tuple[TextEncoder, ImageEncoder]:
    """Train a text and an image encoder on (uint8 image, token ids) pairs with the symmetric matching loss, Adam at
    AttnGAN's DAMSM settings (batch 48, lr 2e-3); deterministic from ``seed`` (its own generator for shuffling, the
    global RNG seeded inside a fork for the initial weights)."""
    from ..data.base import to_model_range
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text = TextEncoder(vocab_size=vocab_size, **arch)
        image = ImageEncoder(images.shape[1], text.embed_dim)
        g = torch.Generator().manual_seed(seed)
        params = [*text.parameters(), *image.parameters()]
        opt = torch.optim.Adam(params, lr=lr)
        text.train(), image.train()
        with torch.enable_grad():
            for _ in range(epochs):
                perm = torch.randperm(len(images), generator=g)
                for i in range(0, len(perm) - 1, batch_size):
                    idx = perm[i:i + batch_size]
                    if len(idx) < 2:
                        continue
                    x = to_model_range(images[idx], value_range)
                    loss = symmetric_matching_loss(image(x), text(tokens[idx]))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
    text.eval(), image.eval()
    text.requires_grad_(False), image.requires_grad_(False)
    return text, image


def pretrained_text_encoder(data: Any, vocab_size: int | None = None, embed_dim: int = 128, word_dim: int = 64,
                            value_range: tuple[float, float] = (-1.0, 1.0), seed: int = 0, epochs: int = 12,
                            batch_size: int = 48, use_cache: bool = True) -> PretrainedText:
    """The frozen text encoder (and its image encoder) for a data source: a spec (``digit-captions``, ``emoji``,
    ``captions:DIR``) or a loaded ``Dataset`` with a ``text`` field and ``meta["vocab"]``. Trained on first use on
    the source's (image, caption) pairs but one in ten (held out: their retrieval is in ``facts``), then cached.
    ``vocab_size`` (default: the source's vocabulary) is the embedding table's size, >= the vocabulary's;
    ``batch_size`` 48 is AttnGAN's DAMSM batch (smaller trains a tiny data set in more steps).

    Touches no global RNG state (building a network draws initial weights, cached or not), so building it inside a
    run leaves the run's random streams as they were."""
    with torch.random.fork_rng(devices=[]):
        return _pretrained_text_encoder(data, vocab_size, embed_dim, word_dim, value_range, seed, epochs, batch_size,
                                        use_cache)


def _pretrained_text_encoder(data: Any, vocab_size: int | None, embed_dim: int, word_dim: int,
                             value_range: tuple[float, float], seed: int, epochs: int, batch_size: int,
                             use_cache: bool) -> PretrainedText:
    from ..data import Dataset, load_source
    from ..metrics.domain import cache_dir, say
    ds = load_source(data) if isinstance(data, str) else data
    if not isinstance(ds, Dataset) or "text" not in ds.fields or "vocab" not in ds.meta:
        name = data if isinstance(data, str) else getattr(data, "name", type(data).__name__)
        raise DataError(f"data {name} has no captions to pretrain a text encoder on; use a source that yields text "
                        "(digit-captions, emoji, captions:DIR)")
    vocab = list(ds.meta["vocab"])
    vocab_size = len(vocab) if vocab_size is None else vocab_size
    if vocab_size < len(vocab):
        raise ConfigError(f"the text encoder's vocab_size={vocab_size} is smaller than the {len(vocab)} words of "
                          f"{ds.name}; set networks.T.vocab_size={len(vocab)} or more")
    arch = {"embed_dim": embed_dim, "word_dim": word_dim}
    size, channels = ds.x.shape[-1], ds.x.shape[1]
    key = _key(ds.name, size, channels, vocab, {**arch, "vocab_size": vocab_size, "epochs": epochs,
                                                "batch_size": batch_size, "range": tuple(value_range)}, seed)
    root = cache_dir() / "text"
    wpath, jpath = root / f"{key}.safetensors", root / f"{key}.json"
    if use_cache and wpath.is_file() and jpath.is_file():
        try:
            facts = json.loads(jpath.read_text())
            text, image = TextEncoder(vocab_size=vocab_size, **arch), ImageEncoder(channels, embed_dim)
            weights = load_file(str(wpath))
            text.load_state_dict({k[5:]: v for k, v in weights.items() if k.startswith("text.")})
            if text.vocab != vocab:
                raise ValueError("the cached encoder's vocabulary differs")
            image.load_state_dict({k[6:]: v for k, v in weights.items() if k.startswith("image.")})
            text.eval().requires_grad_(False), image.eval().requires_grad_(False)
            return PretrainedText(text, image, vocab, ds.name, size, channels, tuple(value_range), facts)
        except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError):
            pass  # a broken cache entry is simply rebuilt
    held = _held_out(len(ds))
    train_idx, test_idx = torch.nonzero(~held).flatten(), torch.nonzero(held).flatten()
    say(f"training the text encoder for {ds.name} ({len(train_idx)} image-caption pairs, vocabulary of "
        f"{len(vocab)}, {epochs} epochs; once: it is cached in {root})")
    started = time.time()
    text, image = train_pair(ds.x[train_idx], ds.fields["text"][train_idx], vocab_size, arch, value_range, seed,
                             epochs, batch_size)
    text.set_vocab(vocab)
    pair = PretrainedText(text, image, vocab, ds.name, size, channels, tuple(value_range))
    facts: dict[str, Any] = {"source": ds.name, "train_pairs": len(train_idx), "held_out_pairs": len(test_idx),
                             "epochs": epochs, "batch_size": batch_size, "seconds": round(time.time() - started, 1), "version": VERSION}
    if len(test_idx) >= 2:
        candidates = min(100, len(test_idx))
        facts["held_out_r_precision"] = retrieval_accuracy(pair, ds.x[test_idx], ds.fields["text"][test_idx],
                                                           candidates=candidates)
        facts["r_precision_candidates"] = candidates
        say(f"text encoder for {ds.name}: held-out R-precision {100 * facts['held_out_r_precision']:.1f} % "
            f"(own caption first among {candidates}) ({facts['seconds']:.0f} s)")
    pair.facts = facts
    if use_cache:
        try:
            root.mkdir(parents=True, exist_ok=True)
            tmp_w, tmp_j = wpath.with_suffix(".tmp"), jpath.with_suffix(".jtmp")
            weights = {**{f"text.{k}": v.contiguous() for k, v in text.state_dict().items()},
                       **{f"image.{k}": v.contiguous() for k, v in image.state_dict().items()}}
            save_file(weights, str(tmp_w))
            tmp_j.write_text(json.dumps(facts, indent=1))
            tmp_w.replace(wpath)
            tmp_j.replace(jpath)
        except OSError:
            pass  # an unwritable cache only costs retraining next time
    return pair
