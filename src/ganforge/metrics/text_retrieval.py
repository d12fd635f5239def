"""Caption retrieval, AttnGAN's R-precision: does an image's own caption rank first among it and 99 others?

Xu et al. 2018 (AttnGAN, section 5) score a generated image with the pretrained DAMSM encoders: the cosine similarity
of its image embedding with the text embedding of the caption it was generated from and of 99 captions drawn at
random, R-precision at R = 1 being the share of images whose own caption scores highest. The same with the encoders
``models/text_encoder.py`` pretrains for a source (``pretrained_text_encoder``). Captions written exactly like the
image's own (digit captions repeat: "the digit 3, upright") are never drawn as the others, so a hit means the image
matches its caption better than *different* captions; with fewer different captions than ``candidates - 1``, all of
them are the others (the figure then says so through ``candidates_used``).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..errors import DataError


@torch.no_grad()
def r_precision(pair: Any, images: torch.Tensor, tokens: torch.Tensor, candidates: int = 100, seed: int = 0,
                value_range: tuple[float, float] | None = None, with_details: bool = False) -> Any:
    """R-precision (R = 1) of ``images`` (uint8, or floats in ``value_range``) against their captions ``tokens``
    (int64 N x L), each among ``candidates - 1`` different captions of ``tokens`` drawn with ``seed``.
    ``pair``: a ``models.text_encoder.PretrainedText``. ``with_details``: (score, candidates_used)."""
    if len(images) != len(tokens) or len(images) == 0:
        raise DataError(f"R-precision needs one caption per image, got {len(images)} images and {len(tokens)} captions")
    if candidates < 2:
        raise DataError(f"R-precision ranks the own caption among >= 2 candidates, got {candidates}")
    unique, own = torch.unique(tokens, dim=0, return_inverse=True)
    others = min(candidates - 1, len(unique) - 1)
    if others < 1:
        raise DataError("R-precision needs at least two different captions; all the captions given are the same")
    img = F.normalize(pair.embed_images(images, value_range).float(), dim=1)
    txt = F.normalize(pair.embed_text(unique).float(), dim=1)
    sims = img @ txt.t()                                                       # N x U
    g = torch.Generator().manual_seed(seed)
    keys = torch.rand(len(images), len(unique), generator=g)
    keys[torch.arange(len(images)), own] = 2.0                                 # never draw the own caption
    drawn = keys.argsort(1)[:, :others]
    own_score = sims[torch.arange(len(images)), own]
    hit = own_score > sims.gather(1, drawn).max(1).values
    score = float(hit.float().mean())
    return (score, others + 1) if with_details else score
