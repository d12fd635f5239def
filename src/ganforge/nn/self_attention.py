"""The self-attention block of SAGAN (Zhang et al. 2019; seed 002 part 2 section 3; spec 11.2).

For a feature map x (B x C x H x W, N = H W positions) three 1x1 convolutions give queries f(x), keys g(x) and
values h(x); the attention of output position j on input position i is a softmax over the key positions i:

    s_ij = f(x_j)^T g(x_i),    beta_{j,i} = exp(s_ij) / sum_i exp(s_ij),    o_j = v( sum_i beta_{j,i} h(x_i) )

and the block returns ``y = gamma * o + x`` with a learned scalar gamma initialised to 0, so the network starts
from its local (convolutional) cues and learns how much non-local evidence to add (the paper, section 4).

``form`` chooses between the three forms in circulation (queries and keys always C/8 channels, C-bar = C/8):

``paper`` (default): the published (ICML 2019, arXiv v2+) form: values h: C -> C/8 and an output 1x1 conv
  v: C/8 -> C. What the task asks for as "the paper's form", and what the spec (11.2, "paper default") names
  ``attn_value_bottleneck``.
``seed``: the seed's / arXiv v1 form: values h: C -> C, no output conv.
``official``: the authors' TensorFlow code and BigGAN-PyTorch's ``Attention`` layer: values C/2 and an output
  conv C/2 -> C, with keys and values max-pooled 2x2 (N/4 key positions: a quarter of the memory and time).

The convolutions have no bias, as in the official code (BigGAN-PyTorch ``bias=False``); a bias on the keys would
shift every score of a query by the same amount and leave the softmax unchanged. Spectral normalisation of the
1x1 convs is the networks' business (``apply_spectral_norm`` over the whole G or D catches them).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError

AttentionForm = Literal["paper", "seed", "official"]
FORMS: tuple[str, ...] = ("paper", "seed", "official")


class SelfAttention(nn.Module):
    """SAGAN's self-attention on a C-channel feature map; ``forward(x)`` keeps the shape."""

    def __init__(self, channels: int, form: AttentionForm = "paper", key_ratio: int = 8) -> None:
        super().__init__()
        if form not in FORMS:
            raise ConfigError(f"attention form must be one of {', '.join(FORMS)}, got {form!r}")
        if key_ratio < 1 or channels < key_ratio:
            raise ConfigError(f"self-attention needs at least {key_ratio} channels (queries and keys have C/"
                              f"{key_ratio}), got {channels}; widen the layer or move the attention")
        self.channels, self.form = channels, form
        key = channels // key_ratio
        value = {"paper": key, "seed": channels, "official": max(1, channels // 2)}[form]
        self.query = nn.Conv2d(channels, key, 1, bias=False)        # f
        self.key = nn.Conv2d(channels, key, 1, bias=False)          # g
        self.value = nn.Conv2d(channels, value, 1, bias=False)      # h
        self.out = nn.Conv2d(value, channels, 1, bias=False) if form != "seed" else None   # v
        self.pool = form == "official"
        self.gamma = nn.Parameter(torch.zeros(()))
        for conv in (self.query, self.key, self.value, self.out):
            if conv is not None:
                nn.init.xavier_uniform_(conv.weight)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """beta: B x N x M, row j the attention of output position j over the M key positions (rows sum to 1)."""
        q = self.query(x).flatten(2)                                        # B x C' x N
        k = self.key(x)
        if self.pool:
            k = F.max_pool2d(k, 2)
        k = k.flatten(2)                                                    # B x C' x M
        return torch.softmax(q.transpose(1, 2) @ k, dim=-1)                 # softmax over the key positions

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """o (before gamma): B x C x H x W."""
        beta = self.attention(x)
        h = self.value(x)
        if self.pool:
            h = F.max_pool2d(h, 2)
        o = (h.flatten(2) @ beta.transpose(1, 2)).view(len(x), -1, *x.shape[2:])   # o_j = sum_i beta_ji h_i
        return self.out(o) if self.out is not None else o

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool and (x.shape[-1] % 2 or x.shape[-2] % 2):
            raise ConfigError(f"the official attention form max-pools its keys 2x2 and needs an even feature map, "
                              f"got {tuple(x.shape[-2:])}; place the attention at another resolution")
        return x + self.gamma * self.attend(x)
