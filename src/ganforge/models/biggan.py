"""BigGAN's generator and discriminator (Brock, Donahue & Simonyan 2019; seed 002 part 2 section 4 / spec 12), at 32 px
by default: the CIFAR-10 architecture of the paper's appendix as the authors' BigGAN-PyTorch builds it
(``BigGAN.py`` ``G_arch[32]`` / ``D_arch[32]`` with ``ch`` 64: 256 channels in every block).

``biggan`` generator:
  z (latent_dim, N(0, I)) is split into ``blocks + 1`` equal chunks (the *hierarchical latent*, spec 12.3): chunk 0
  -> Linear -> 4 x 4 x widths[0]; chunk i (i >= 1) conditions up-block i. The class enters through one *shared*
  embedding (a bias-free Linear of the one-hot label, ``shared_dim`` 128, the same for every block: "Shared"); each
  up-block's two conditional BatchNorms get ``[shared embedding, z chunk]`` and map it linearly to their gain and
  bias (``nn/conditional_norm.py`` ``linear`` form: gain = 1 + W_g c, bias = W_b c). Up-blocks are SNGAN's
  (``models/resnet_gan.UpBlock``: BN -> ReLU -> up x2 -> conv3x3 -> BN -> ReLU -> conv3x3, shortcut up -> conv1x1),
  then BN -> ReLU -> conv3x3 -> tanh. Optional self-attention (``nn/self_attention.py``, BigGAN-PyTorch's layer is
  the ``official`` form) after the block whose output is ``attention`` pixels wide.
``biggan`` discriminator:
  SNGAN's ResNet D (``models/resnet_gan.ResNetDiscriminator``: optimized block, down-blocks, ReLU, global sum pooling)
  with the projection term (Miyato & Koyama 2018) always on, 256 channels, attention optional as in G; for S2GAN /
  S3GAN (Lucic et al. 2019, spec 13.4) two optional linear heads on the pooled features D~(x): a class head c_CT
  (``classifier_head``) and a 4-way rotation head (``rotation_head``).

Both: spectral normalisation on every layer (the paper: "SN in G and D"; the CBN gain / bias maps too, as
BigGAN-PyTorch's ``SNLinear`` for them), orthogonal initialisation (Saxe et al. 2014; the paper section 4 and
BigGAN-PyTorch ``init='ortho'``) of every Conv / Linear weight, the shared embedding and the CBN maps included;
biases start at zero (ganforge's choice; the authors' code leaves PyTorch's default there). Note that with spectral
normalisation the CBN maps cannot start at zero (``LinearMap``'s own init): W / sigma(W) of a zero matrix is 0 / 0.

``spectral_monitor()`` names the layers whose top singular value sigma_0 (of the raw weight, before spectral
normalisation: spec 12.4 "the key signal") the ``biggan`` algorithm logs: G's first, over-complete linear layer,
the one the paper sees explode at collapse, and D's first convolution.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..nn.self_attention import AttentionForm, SelfAttention
from ..nn.spectral import apply_spectral_norm
from .common import GeneratorBase, OutputActivation, output_activation, up_block_count
from .registry import register_network
from .resnet_gan import ResNetDiscriminator, UpBlock, _attention_at

BIGGAN = ("Brock et al. 2019 (BigGAN): shared class embedding, hierarchical z into conditional BN, SN in G and D, "
          "orthogonal init, projection D; 32 px as BigGAN-PyTorch's G_arch/D_arch[32] (seed 002 part 2 section 4)")


def orthogonal_init(module: nn.Module) -> nn.Module:
    """Orthogonal weights (``nn.init.orthogonal_``: rows or columns orthonormal, the kernel as out x in*k*k) and zero
    biases for every Conv2d, Linear and Embedding of ``module``; before spectral normalisation is applied."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            nn.init.orthogonal_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
    return module


def split_latent(z: torch.Tensor, chunks: int) -> list[torch.Tensor]:
    """The hierarchical latent: z (B x latent_dim) as ``chunks`` equal consecutive slices (chunk 0 for the first
    linear layer, chunk i for up-block i)."""
    if z.shape[1] % chunks:
        raise ValueError(f"z of {z.shape[1]} dimensions does not split into {chunks} equal chunks")
    return list(z.split(z.shape[1] // chunks, dim=1))


@register_network("generator", "biggan", BIGGAN)
class BigGANGenerator(GeneratorBase):
    def __init__(self, latent_dim: int = 128, image_size: int = 32, channels: int = 3, cond_dim: int = 0,
                 widths: Sequence[int] = (256, 256, 256, 256), shared_dim: int = 128, hierarchical: bool = True,
                 attention: int | None = None, attention_form: AttentionForm = "official",
                 spectral_norm: bool = True, spectral_norm_iterations: int = 1,
                 out_activation: OutputActivation = "tanh") -> None:
        """``widths``: the 4 x 4 map's channels, then each up-block's. ``cond_dim``: classes (the one-hot label the
        conditional algorithms hand G). ``hierarchical: false``: all of z to the first layer, the blocks' BN get
        the shared embedding only (the paper's ablation rows without "Hier.")."""
        super().__init__()
        blocks = up_block_count(widths, image_size, "biggan", "networks.G.widths")
        if cond_dim < 1:
            raise ConfigError("the biggan generator is class-conditional: use algorithm.name=biggan (or s3gan, "
                              "conditional) on labelled data")
        self.chunks = blocks + 1 if hierarchical else 1
        if latent_dim % self.chunks:
            raise ConfigError(f"algorithm.latent_dim={latent_dim} must split into {self.chunks} equal chunks (the "
                              f"first layer and {blocks} up-blocks; BigGAN's hierarchical z), e.g. "
                              f"{self.chunks * max(1, round(latent_dim / self.chunks))}")
        if shared_dim < 1:
            raise ConfigError(f"networks.G.shared_dim must be >= 1 (BigGAN: 128), got {shared_dim}")
        self.latent_dim, self.cond_dim, self.out_activation = latent_dim, cond_dim, out_activation
        self.hierarchical, self.shared_dim = hierarchical, shared_dim
        self.start = image_size // 2 ** blocks
        chunk = latent_dim // self.chunks
        self.fc = nn.Linear(chunk, self.start ** 2 * widths[0])
        bn_cond = shared_dim + (chunk if hierarchical else 0)
        self.blocks = nn.ModuleList(UpBlock(widths[i], widths[i + 1], bn_cond, "linear") for i in range(blocks))
        sides = [self.start * 2 ** (i + 1) for i in range(blocks)]
        self.attention_after = _attention_at(attention, sides, "networks.G")
        self.attention = (SelfAttention(widths[self.attention_after + 1], attention_form)
                          if self.attention_after is not None else None)
        self.bn_out = nn.BatchNorm2d(widths[-1])
        self.conv_out = nn.Conv2d(widths[-1], channels, 3, padding=1)
        self.shared = nn.Linear(cond_dim, shared_dim, bias=False)    # one-hot @ table = an embedding lookup
        self.act = output_activation(out_activation)
        orthogonal_init(self)
        if spectral_norm:
            apply_spectral_norm(self, n_power_iterations=spectral_norm_iterations)
            # BigGAN-PyTorch's shared embedding is a plain nn.Embedding: the class table is not normalised.
            torch.nn.utils.parametrize.remove_parametrizations(self.shared, "weight", leave_parametrized=False)

    def block_conditions(self, z: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(the first layer's z chunk, each up-block's BN condition [shared embedding(y), z chunk])."""
        shared = self.shared(cond.to(self.shared.weight.dtype))
        if not self.hierarchical:
            return z, [shared] * len(self.blocks)
        first, *rest = split_latent(z, self.chunks)
        return first, [torch.cat([shared, c], dim=1) for c in rest]

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is None:
            raise ValueError(f"this generator takes a condition of {self.cond_dim} dimensions (the one-hot label)")
        first, conds = self.block_conditions(z, cond)
        h = self.fc(first).view(len(z), -1, self.start, self.start)
        for i, (block, c) in enumerate(zip(self.blocks, conds)):
            h = block(h, c)
            if i == self.attention_after:
                h = self.attention(h)
        return self.act(self.conv_out(F.relu(self.bn_out(h))))

    def spectral_monitor(self) -> dict[str, nn.Module]:
        return {"fc": self.fc}


@register_network("discriminator", "biggan", BIGGAN)
class BigGANDiscriminator(ResNetDiscriminator):
    def __init__(self, image_size: int = 32, channels: int = 3, num_classes: int = 0,
                 widths: Sequence[int] = (256, 256, 256, 256), downsample: Sequence[bool] = (True, True, False, False),
                 attention: int | None = None, attention_form: AttentionForm = "official",
                 classifier_head: bool = False, rotation_head: bool = False,
                 spectral_norm: bool = True, spectral_norm_iterations: int = 1) -> None:
        """The projection D. ``classifier_head``: S2GAN-CO's linear classifier c_CT on D~(x); ``rotation_head``:
        S3GAN's 4-way rotation classifier (both need ``algorithm.name: s3gan``)."""
        super().__init__(image_size, channels, num_classes, widths, downsample, attention, attention_form,
                         projection=True, spectral_norm=False)
        self.classifier = nn.Linear(widths[-1], num_classes) if classifier_head else None
        self.rotation = nn.Linear(widths[-1], 4) if rotation_head else None
        orthogonal_init(self)
        if spectral_norm:
            apply_spectral_norm(self, n_power_iterations=spectral_norm_iterations)

    def score(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """D(x, y) from the pooled features h = D~(x): c_r/f(h) + <P y, h>."""
        return self.head(h).squeeze(1) + (self.embed(h) * cond.to(h.dtype)).sum(1)

    def class_logits(self, h: torch.Tensor) -> torch.Tensor:
        if self.classifier is None:
            raise ConfigError("networks.D.classifier_head is off; S2GAN / S3GAN need it (networks.D.classifier_head: true)")
        return self.classifier(h)

    def rotation_logits(self, h: torch.Tensor) -> torch.Tensor:
        if self.rotation is None:
            raise ConfigError("networks.D.rotation_head is off; S3GAN's rotation loss needs it "
                              "(networks.D.rotation_head: true, or algorithm.rotation_weight_d/g: 0)")
        return self.rotation(h)

    def spectral_monitor(self) -> dict[str, nn.Module]:
        return {"conv_in": self.blocks[0].c1}
