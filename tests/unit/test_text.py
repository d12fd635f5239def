from __future__ import annotations

import torch

from ganforge.data.text import PAD, UNK, build_vocab, decode, encode


def test_vocabulary_is_ordered_by_frequency_then_alphabet():
    vocab = build_vocab(["A red bird.", "a small red bird", "the bird wing"])
    assert vocab[:2] == ["<pad>", "<unk>"]
    assert vocab[2:5] == ["bird", "a", "red"]            # 3, 2, 2 occurrences; ties alphabetical
    assert build_vocab(["x y", "y"], min_count=2) == ["<pad>", "<unk>", "y"]


def test_encode_pads_cuts_and_marks_unknown_words():
    vocab = build_vocab(["a red bird"])
    ids = encode(["A RED bird flies", "red", ""], vocab, max_len=3)
    assert ids.dtype == torch.int64 and ids.shape == (3, 3)
    assert ids[0].tolist() == [vocab.index("a"), vocab.index("red"), vocab.index("bird")]      # cut at 3 words
    assert ids[1].tolist() == [vocab.index("red"), PAD, PAD] and ids[2].tolist() == [PAD] * 3
    assert encode(["blue"], vocab, 2)[0].tolist() == [UNK, PAD]
    assert decode(ids[:2], vocab) == ["a red bird", "red"]
