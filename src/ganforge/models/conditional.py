"""Class-conditional discriminators: the book's CGAN and ACGAN discriminators, and a projection discriminator.

All three share the ``dcgan-book`` trunk of seed 000's ``lib/gan.py`` ([LeakyReLU(0.2) -> Conv k5] x 4 with filters
32, 64, 128 (s2), 256 (s1) -> flatten, 4096-d at 28 px; no BN; spec 0.4), so these classes extend
``BookDCGANDiscriminator`` and differ only in how the label enters:

``cgan-book``: the CGAN discriminator the book's ACGAN is built from (Atienza ch. 4, ``cgan-mnist-4.3.1.py``
  ``build_discriminator(inputs, labels, image_size)``; seed 000 section 3 "starting from the CGAN code, only the
  discriminator and the training function change"): the one-hot label goes through Dense(image_size * image_size),
  is reshaped to one image plane and concatenated to the image as an extra channel; the trunk then sees 2 channels
  (the LeakyReLU is applied to that 2-channel input too, as the book's loop does) -> Dense(1). 1,090,001 parameters
  at 28 px with 10 classes.
``projection-book``: the projection discriminator (Miyato & Koyama 2018, "cGANs with projection discriminator"; seed
  002 part 2 section 5.2 shows it as BigGAN's D, and part 3 section 1.4 names the design where one network judges
  realism and produces an embedding and a second judges whether x and c match as the one that works better):
  ``D(x, y) = psi(phi(x)) + <V y, phi(x)>``, ``phi`` the trunk's features (the input of the book's Dense(1),
  ``psi``), ``V`` a learned class embedding (``embed``: a bias-free Linear(4096 -> classes), so ``<V y, phi(x)>``
  is ``embed(phi(x))[y]`` for a one-hot y). 1,121,537 parameters. The paper applies ReLU and global sum pooling to
  phi and spectral normalisation to every layer; here phi is the book trunk's flattened output (no activation, as
  the book's head sees it) and ``spectral_norm`` is an option (off, like the book D).
``acgan-book``: ``gan.discriminator(inputs, num_labels=10)`` of seed 000 listing 5.3.1 (spec 4.3): the image only;
  source = Dense(1) on the trunk (sigmoid in the loss), label = Dense(num_labels)(Dense(layer_filters[-2] = 128) with
  *no* activation) (softmax in the loss). Returns ``ACGANOutputs(source, label)``. 1,606,283 parameters (spec 0.4).

The conditional *generator* of both books is the shared one (``dcgan-book``) fed ``concat[z, one-hot label]``
(``gan.generator(inputs, labels=labels)``: 110 inputs, 1,363,521 parameters, spec 0.3): the conditional algorithms
give it ``cond_dim = num_classes`` and pass the one-hot label as its ``cond`` input, so no separate class is needed.

Conditional discriminators take ``(x, cond)`` with ``cond`` one-hot (B x classes) or soft label vectors, and say
so with ``takes_labels = True``; the ACGAN discriminator takes ``x`` only and has ``num_classes`` class logits.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..nn.spectral import apply_spectral_norm
from .dcgan import BookDCGANDiscriminator
from .init import InitScheme, init_weights
from .registry import register_network

CGAN = ("Atienza ch. 4 CGAN discriminator (label -> Dense(H*W) -> extra image channel), the base of seed 000 "
        "section 3's ACGAN")
PROJECTION = "Miyato & Koyama 2018 projection discriminator on the seed 000 lib/gan.py trunk; seed 002 part 3 1.4"
ACGAN = "seed 000 section 3, listing 5.3.1 (lib/gan.py discriminator with num_labels; spec 4.3)"


class ACGANOutputs(NamedTuple):
    """Raw outputs of the ACGAN discriminator for a batch of B images."""

    source: torch.Tensor      # B: real/fake score (logit; the book's sigmoid is in the BCE loss)
    label: torch.Tensor       # B x num_classes: class logits (the book's softmax is in the cross-entropy)


def _check_data(num_classes: int, sample_shape: Sequence[int] | None, arch: str) -> None:
    if sample_shape is not None and len(sample_shape) != 3:
        raise ConfigError(f"the {arch} discriminator is convolutional and needs images; the data's samples have "
                          f"shape {tuple(sample_shape)}")
    if num_classes < 2:
        raise ConfigError(f"the {arch} discriminator needs labelled data with >= 2 classes, got {num_classes}")


@register_network("discriminator", "cgan-book", CGAN)
class BookCGANDiscriminator(BookDCGANDiscriminator):
    takes_labels = True

    def __init__(self, num_classes: int, image_size: int = 28, channels: int = 1,
                 filters: Sequence[int] = (32, 64, 128, 256), kernel_size: int = 5, leaky_slope: float = 0.2,
                 init: InitScheme = "keras", spectral_norm: bool = False, sample_shape: Sequence[int] | None = None):
        _check_data(num_classes, sample_shape, "cgan-book")
        # The label plane is one more input channel of the same trunk.
        super().__init__(image_size=image_size, channels=channels + 1, filters=filters, kernel_size=kernel_size,
                         leaky_slope=leaky_slope, init=init)
        self.num_classes, self.image_size = num_classes, image_size
        self.label_plane = nn.Linear(num_classes, image_size * image_size)   # Dense(image_size * image_size)
        init_weights(self.label_plane, init)
        if spectral_norm:
            apply_spectral_norm(self)

    def joined(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The image with the label's plane as an extra channel (Keras: concatenate([x, y]) on the channel axis)."""
        plane = self.label_plane(cond.to(x.dtype)).view(len(x), 1, self.image_size, self.image_size)
        return torch.cat([x, plane.to(x.dtype)], 1)

    def features(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:   # type: ignore[override]
        return self.trunk(self.joined(x, cond))

    def forward_with_features(self, x: torch.Tensor, cond: torch.Tensor  # type: ignore[override]
                              ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x, cond)
        return self.head(h).squeeze(1), h

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:   # type: ignore[override]
        return self.forward_with_features(x, cond)[0]


@register_network("discriminator", "projection-book", PROJECTION)
class ProjectionDiscriminator(BookDCGANDiscriminator):
    takes_labels = True

    def __init__(self, num_classes: int, image_size: int = 28, channels: int = 1,
                 filters: Sequence[int] = (32, 64, 128, 256), kernel_size: int = 5, leaky_slope: float = 0.2,
                 init: InitScheme = "keras", spectral_norm: bool = False, sample_shape: Sequence[int] | None = None):
        _check_data(num_classes, sample_shape, "projection-book")
        super().__init__(image_size=image_size, channels=channels, filters=filters, kernel_size=kernel_size,
                         leaky_slope=leaky_slope, init=init)
        self.num_classes = num_classes
        # V: one feature_dim-vector per class; glorot-initialised like every other layer here, so the projection
        # term starts at the scale of the unconditional head's output.
        self.embed = nn.Linear(self.feature_dim, num_classes, bias=False)
        init_weights(self.embed, init)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward_with_features(self, x: torch.Tensor, cond: torch.Tensor  # type: ignore[override]
                              ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        projection = (self.embed(h) * cond.to(h.dtype)).sum(1)          # <V y, phi(x)>
        return self.head(h).squeeze(1) + projection, h

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:   # type: ignore[override]
        return self.forward_with_features(x, cond)[0]


@register_network("discriminator", "acgan-book", ACGAN)
class BookACGANDiscriminator(BookDCGANDiscriminator):
    def __init__(self, num_classes: int, image_size: int = 28, channels: int = 1,
                 filters: Sequence[int] = (32, 64, 128, 256), kernel_size: int = 5, leaky_slope: float = 0.2,
                 aux_dim: int | None = None, init: InitScheme = "keras", spectral_norm: bool = False,
                 sample_shape: Sequence[int] | None = None):
        """``aux_dim``: width of the class head's linear hidden layer; None is the book's ``layer_filters[-2]``."""
        _check_data(num_classes, sample_shape, "acgan-book")
        super().__init__(image_size=image_size, channels=channels, filters=filters, kernel_size=kernel_size,
                         leaky_slope=leaky_slope, init=init)
        if aux_dim is not None and aux_dim < 1:
            raise ConfigError(f"aux_dim must be >= 1 (None: the book's {filters[-2]}), got {aux_dim}")
        self.num_classes = num_classes
        width = aux_dim or filters[-2]
        self.aux = nn.Linear(self.feature_dim, width)      # Dense(128), linear, as in listing 5.3.1
        self.label = nn.Linear(width, num_classes)           # Dense(num_labels) -> softmax (in the loss)
        init_weights(self.aux, init)
        init_weights(self.label, init)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> ACGANOutputs:   # type: ignore[override]
        h = self.trunk(x)
        return ACGANOutputs(self.head(h).squeeze(1), self.label(self.aux(h)))
