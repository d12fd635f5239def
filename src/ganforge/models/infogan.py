"""InfoGAN's discriminator with its auxiliary Q network (seed 004 section 10.2, listing 6.1.2; spec 5.4).

``infogan-book``: ``gan.discriminator(inputs, num_labels=10, num_codes=2)`` of the book's ``lib/gan.py``:
  trunk: [LeakyReLU(0.2) -> Conv k5] x 4 with filters 32, 64, 128 (s2), 256 (s1) -> flatten (4096-d at 28 px),
         exactly the ``dcgan-book`` discriminator's trunk (this class extends it);
  source head: Dense(1) (the book's sigmoid lives in the BCE loss);
  Q network: Dense(layer_filters[-2] = 128) with *no* activation, shared by the heads
         label: Dense(10) (softmax in the loss) and code_k: Dense(1) per continuous code (the book's sigmoid, or
         the paper's Gaussian mean, is applied by the algorithm's code loss).
  Parameters at 28 px with 10 labels and 2 codes: 1,606,541 (spec 0.4).

The generator of InfoGAN is the book's shared generator (``dcgan-book``) fed [z, one-hot label, c1, c2]: the
algorithm passes the one-hot label and codes as its ``cond`` input (74 inputs with z of 62, 112 with z of 100).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError
from .dcgan import BookDCGANDiscriminator
from .init import InitScheme, init_weights
from .registry import register_network

BOOK = "seed 004 section 10.2, listing 6.1.2 (lib/gan.py discriminator with num_labels and num_codes; spec 5.4)"


class InfoOutputs(NamedTuple):
    """Raw outputs of the InfoGAN discriminator for a batch of B images."""

    source: torch.Tensor      # B: real/fake score (logit)
    label: torch.Tensor       # B x num_classes: categorical-code logits, Q(c_cat | x) = softmax
    code: torch.Tensor        # B x num_codes: one raw value per continuous code (sigmoid -> the book's Q(c | x))


@register_network("discriminator", "infogan-book", BOOK)
class InfoGANDiscriminator(BookDCGANDiscriminator):
    def __init__(self, num_classes: int, num_codes: int = 2, image_size: int = 28, channels: int = 1,
                 filters: Sequence[int] = (32, 64, 128, 256), kernel_size: int = 5, leaky_slope: float = 0.2,
                 q_dim: int | None = None, init: InitScheme = "keras"):
        """``q_dim``: width of the Q network's shared linear layer; None is the book's ``layer_filters[-2]``."""
        super().__init__(image_size=image_size, channels=channels, filters=filters, kernel_size=kernel_size,
                         leaky_slope=leaky_slope, init=init)
        if num_classes < 2 or num_codes < 0:
            raise ConfigError(f"infogan-book needs >= 2 categories and >= 0 continuous codes "
                              f"(got {num_classes}, {num_codes})")
        self.num_classes, self.num_codes = num_classes, num_codes
        width = q_dim or filters[-2]
        self.q_shared = nn.Linear(self.feature_dim, width)          # Dense(128), linear, as in the listing
        self.q_label = nn.Linear(width, num_classes)
        # One Dense(1) per code as the book builds them (code1, code2, ...), so each has its own glorot init.
        self.q_codes = nn.ModuleList(nn.Linear(width, 1) for _ in range(num_codes))
        for module in (self.q_shared, self.q_label, self.q_codes):
            init_weights(module, init)

    def forward(self, x: torch.Tensor) -> InfoOutputs:   # type: ignore[override]
        h = self.trunk(x)
        q = self.q_shared(h)
        code = torch.cat([head(q) for head in self.q_codes], 1) if self.num_codes else q[:, :0]
        return InfoOutputs(self.head(h).squeeze(1), self.q_label(q), code)
