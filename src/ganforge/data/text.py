"""Captions as token ids: the ``text`` batch key (int64 N x L, 0 = padding).

A word-level vocabulary built from the captions of the dataset itself (lower-cased, split into runs of letters,
digits and apostrophes), so no tokenizer or embedding is downloaded. Id 0 is padding and id 1 stands for a word
the vocabulary does not hold (``<unk>``), so a model trained on one caption set can read another's words. The
vocabulary travels in ``Dataset.meta["vocab"]`` (a list: id -> word) and is saved with a run, so text given at
sampling time is encoded the way training saw it.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

import torch

PAD, UNK = 0, 1
WORD = re.compile(r"[a-z0-9']+")


def words(caption: str) -> list[str]:
    return WORD.findall(caption.lower())


def build_vocab(captions: Iterable[str], min_count: int = 1, max_size: int | None = None) -> list[str]:
    """id -> word: padding, unknown, then the words seen at least ``min_count`` times, most frequent first (ties
    alphabetically, so the vocabulary does not depend on the order captions were read)."""
    counts = Counter(w for c in captions for w in words(c))
    ranked = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    if max_size is not None:
        ranked = ranked[:max(0, max_size - 2)]
    return ["<pad>", "<unk>", *ranked]


def encode(captions: Sequence[str], vocab: Sequence[str], max_len: int) -> torch.Tensor:
    """int64 N x max_len token ids, right-padded with 0 (longer captions are cut at max_len words)."""
    index = {w: i for i, w in enumerate(vocab)}
    out = torch.zeros(len(captions), max_len, dtype=torch.int64)
    for row, caption in enumerate(captions):
        ids = [index.get(w, UNK) for w in words(caption)][:max_len]
        if ids:
            out[row, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return out


def decode(ids: torch.Tensor, vocab: Sequence[str]) -> list[str]:
    """Token ids back to text (padding dropped), e.g. for a grid's captions."""
    rows = ids.tolist() if ids.dim() == 2 else [ids.tolist()]
    return [" ".join(vocab[i] if 0 <= i < len(vocab) else "<unk>" for i in row if i != PAD) for row in rows]
