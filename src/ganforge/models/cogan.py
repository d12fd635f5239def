"""Coupled networks of CoGAN (Liu & Tuzel 2016, "Coupled Generative Adversarial Networks", NIPS, arXiv 1606.07536).

Two GANs, one per domain, whose networks share weights: the two generators share their *first* layers (they decode
the high-level semantics of z alike, then each renders them in its domain with private last layers), the two
discriminators share their *last* layers (private first layers read each domain's low-level features, then one tail
judges the high-level ones). One z gives a pair (x_A, x_B). Seed 002 chapter 3 part 2 (spec 28.2) describes the
sharing; the layer tables below are the official code's (mingyuliutw/CoGAN: the Caffe nets the paper's digit
experiments ran, ``cogan/scripts/run_mnist.edge.cogan.sh`` / ``gan_lib.py``, and their PyTorch port
``cogan_pytorch/src/net_cogan_mnistedge.py``).

Each coupled network is one module with a ``shared`` stack and a private stack per domain (``private_a`` /
``private_b`` in G after the shared trunk, ``stem_a`` / ``stem_b`` in D before the shared tail), so a shared layer is
one set of tensors (one optimizer entry, gradients from both domains added) and the checkpoint holds no duplicates.
``shared_layers`` says how many layers are shared: the paper's default is every G layer but the last and every D
layer but the first (None); 0 gives two independent GANs (the paper's Figure 4 ablation baseline).

``cogan`` generator, 28 px (the paper's digits; run_mnist.edge.cogan.sh: g_neurons 1024,512,256,128,1, kernels
4,3,3,3,6, strides -,2,2,2,1, pads 0,1,1,1,1):
  z (1 x 1) -> FCONV 1024 k4 (4 x 4) -> FCONV 512 k3 s2 p1 (7) -> 256 (13) -> 128 (25), each BN -> bias -> PReLU;
  then per domain FCONV k6 s1 p1 to the domain's channels (28) -> sigmoid.
  Other sizes, a power of two S >= 8 (the official 128 px CelebA net, ``cogan/models/celeba``, at S = 128):
  z -> FCONV filters k4 (4 x 4) -> FCONV k4 s2 p1 halving the width per doubling up to S -> per domain FCONV k3 s1 p1
  to the channels -> ``out_activation`` (the face nets: tanh).
``cogan`` discriminator, 28 px (d_neurons 20,50,500, the LeNet of the paper's table):
  per domain CONV 20 k5 -> max-pool 2; shared CONV 50 k5 -> max-pool 2 -> FC 500 (a k4 conv on the 4 x 4 map) ->
  PReLU -> dropout 0.5 -> FC 1 (the raw score; Caffe's 2-way softmax is the same model as one logit). As in the
  official code there is no nonlinearity after the two convolutions but the max-pooling.
  A power of two S >= 8 (the CelebA net): CONV k5 s2 p2 (k3 s2 p1 from the fourth on) widths 32, 64, 128, ... down to
  2 x 2, each BN -> bias -> PReLU -> dropout (0, 0, 0.1, 0.3 ..., 0.5 on the last), then FC 2048 -> BN -> bias ->
  PReLU -> dropout 0.5 -> FC 1.

Batch norm is the Caffe code's: statistics without a scale (``affine=False``) followed by a learned per-channel bias,
with the layer's own bias dropped (BN removes it). PReLU is per channel, slope 0.25 at start (Caffe's defaults).
``init: msra`` (the default) is the Caffe nets' weight filler for the digit CoGAN (He et al.: N(0, 2 / fan_in)),
``dcgan`` N(0, 0.02) (the CelebA nets' filler), ``keras`` Glorot-uniform; biases start at zero.
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError
from .common import GeneratorBase, OutputActivation, check_widths, output_activation
from .registry import register_network

SOURCE = ("Liu & Tuzel 2016 (CoGAN) section 3 and its digit networks, official code mingyuliutw/CoGAN "
          "(run_mnist.edge.cogan.sh, net_cogan_mnistedge.py; the CelebA nets for other sizes)")
PAPER_DIGITS = 28          # the paper's digit networks are written for 28 x 28 images
DOMAINS = ("a", "b")
CoupledInit = Literal["msra", "dcgan", "keras"]


def check_size(image_size: int, where: str) -> None:
    power = image_size >= 8 and image_size & (image_size - 1) == 0
    if image_size != PAPER_DIGITS and not power:
        fit = max(8, 2 ** round(math.log2(max(image_size, 1))))
        raise ConfigError(f"{where}: the cogan networks take 28 px images (the paper's digits) or a power of two >= 8, "
                          f"got data.image_size={image_size}; use --set data.image_size={fit}")


def check_domain(domain: str) -> str:
    if domain not in DOMAINS:
        raise ConfigError(f"a CoGAN domain is 'a' (data.source) or 'b' (data.streams.b), got {domain!r}")
    return domain


def check_shared(shared_layers: int | None, total: int, where: str, what: str) -> int:
    """The number of shared layers: None -> ``total - 1`` (the paper); at most ``total - 1`` (one private layer per
    domain, else the two domains would be one network)."""
    if shared_layers is None:
        return total - 1
    if not 0 <= shared_layers <= total - 1:
        raise ConfigError(f"{where}.shared_layers must be 0 (two independent GANs) to {total - 1} (all but the "
                          f"{what}; the paper's default) for this {total}-layer network, got {shared_layers}")
    return shared_layers


def init_coupled(module: nn.Module, scheme: CoupledInit) -> None:
    """Weights of every conv, transposed conv and linear layer by ``scheme``, zero biases (the batch norms have no
    parameters; the biases after them and the PReLU slopes keep their Caffe starts, 0 and 0.25)."""
    if scheme not in ("msra", "dcgan", "keras"):
        raise ConfigError(f"init must be msra (the paper's Caffe nets), dcgan or keras, got {scheme!r}")
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if scheme == "msra":
                # Caffe's MSRA filler: N(0, 2 / fan_in); torch counts a transposed conv's fan_in as Caffe does.
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif scheme == "dcgan":
                nn.init.normal_(m.weight, 0.0, 0.02)
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ChannelBias(nn.Module):
    """Caffe's Bias layer after a scale-free BatchNorm: a learned shift per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias.view(1, -1, *([1] * (x.dim() - 2)))


def bn_block(channels: int, dims: int = 2) -> list[nn.Module]:
    """BN (statistics only) -> bias -> PReLU per channel, as each hidden layer of the Caffe nets."""
    bn = nn.BatchNorm2d(channels, affine=False) if dims == 2 else nn.BatchNorm1d(channels, affine=False)
    return [bn, ChannelBias(channels), nn.PReLU(channels)]


# ----------------------------------------------------------------------------------------------- generator
def generator_plan(image_size: int) -> tuple[list[tuple[int, int, int]], tuple[int, int, int]]:
    """(kernel, stride, padding) of each trunk layer (the first maps the 1 x 1 noise to 4 x 4) and of the head."""
    if image_size == PAPER_DIGITS:
        return [(4, 1, 0), (3, 2, 1), (3, 2, 1), (3, 2, 1)], (6, 1, 1)      # 4 -> 7 -> 13 -> 25 -> 28
    ups = int(math.log2(image_size)) - 2
    return [(4, 1, 0)] + [(4, 2, 1)] * ups, (3, 1, 1)


@register_network("coupled-generator", "cogan", SOURCE)
class CoupledGenerator(GeneratorBase):
    """Two generators sharing their first ``shared_layers`` layers; ``forward(z)`` gives the pair (x_A, x_B)."""

    def __init__(self, latent_dim: int, image_size: int = 28, channels: int = 1, channels_b: int | None = None,
                 filters: int = 1024, shared_layers: int | None = None, out_activation: OutputActivation = "sigmoid",
                 init: CoupledInit = "msra"):
        """``filters``: the width of the first layer (1024 in the paper), halved by each later trunk layer;
        ``channels_b``: domain B's channels (the algorithm passes data.streams.b's; default domain A's)."""
        super().__init__()
        check_size(image_size, "networks.G")
        check_widths([filters], "networks.G.filters")
        if latent_dim < 1:
            raise ConfigError(f"algorithm.latent_dim must be >= 1 for the cogan generator, got {latent_dim}")
        trunk_plan, head_plan = generator_plan(image_size)
        self.latent_dim, self.out_activation, self.image_size = latent_dim, out_activation, image_size
        self.channels_a, self.channels_b = channels, channels_b if channels_b is not None else channels
        self.total_layers = len(trunk_plan) + 1
        self.shared_layers = check_shared(shared_layers, self.total_layers, "networks.G", "last")
        widths = [max(filters // 2 ** i, 1) for i in range(len(trunk_plan))]
        k = self.shared_layers

        def trunk_layer(i: int) -> nn.Module:
            kernel, stride, pad = trunk_plan[i]
            width_in = latent_dim if i == 0 else widths[i - 1]
            # no bias: the batch norm after it removes any constant (the Caffe nets' Bias layer comes after BN)
            return nn.Sequential(nn.ConvTranspose2d(width_in, widths[i], kernel, stride, pad, bias=False),
                                 *bn_block(widths[i]))

        def head(out_channels: int) -> nn.Module:
            kernel, stride, pad = head_plan
            return nn.Sequential(nn.ConvTranspose2d(widths[-1], out_channels, kernel, stride, pad),
                                 output_activation(out_activation))

        def private(out_channels: int) -> nn.ModuleList:
            return nn.ModuleList([trunk_layer(i) for i in range(k, len(trunk_plan))] + [head(out_channels)])

        self.shared = nn.ModuleList([trunk_layer(i) for i in range(k)])
        self.private_a = private(self.channels_a)
        self.private_b = private(self.channels_b)
        init_coupled(self, init)

    def trunk(self, z: torch.Tensor) -> torch.Tensor:
        h = z.reshape(len(z), self.latent_dim, 1, 1)
        for layer in self.shared:
            h = layer(h)
        return h

    @staticmethod
    def _run(layers: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            h = layer(h)
        return h

    def domain(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        """Domain ``domain``'s ('a' or 'b') image of each z, without rendering the other domain."""
        return self._run(self.private_a if check_domain(domain) == "a" else self.private_b, self.trunk(z))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(z)
        return self._run(self.private_a, h), self._run(self.private_b, h)


# ----------------------------------------------------------------------------------------------- discriminator
def conv_dropouts(n: int) -> list[float]:
    """Dropout after each conv of the power-of-two discriminator: the CelebA net's 0, 0, 0.1, 0.3, 0.3, 0.5 for its
    six convs, as many 0.3s as there are middle layers for other depths (0.5 after the last conv from four on)."""
    rates = [0.0, 0.0, 0.1] + [0.3] * max(n - 4, 0) + ([0.5] if n >= 4 else [])
    return rates[:n]


@register_network("coupled-discriminator", "cogan", SOURCE)
class CoupledDiscriminator(nn.Module):
    """Two discriminators sharing their last ``shared_layers`` layers; ``forward(x, domain)`` gives raw scores N x 1
    of domain ``domain``'s discriminator."""

    def __init__(self, image_size: int = 28, channels: int = 1, channels_b: int | None = None,
                 filters: Sequence[int] | None = None, shared_layers: int | None = None, dropout: bool = True,
                 init: CoupledInit = "msra"):
        """``filters``: the widths of the hidden layers (28 px: [20, 50, 500]; a power of two S: a width per conv
        down to 2 x 2, then the hidden FC's, e.g. [32, 64, 128, 256, 2048] at 32 px); ``dropout: false`` turns the
        nets' dropout layers off."""
        super().__init__()
        check_size(image_size, "networks.D")
        digits = image_size == PAPER_DIGITS
        n_convs = 2 if digits else int(math.log2(image_size)) - 1
        default = [20, 50, 500] if digits else [32 * 2 ** i for i in range(n_convs)] + [2048]
        widths = list(default if filters is None else filters)
        if len(widths) != n_convs + 1:
            raise ConfigError(f"networks.D.filters must give {n_convs + 1} widths at {image_size} px ({n_convs} convs "
                              f"and the hidden FC layer, e.g. {default}), got {widths}")
        check_widths(widths, "networks.D.filters")
        self.channels_a, self.channels_b = channels, channels_b if channels_b is not None else channels
        self.total_layers = n_convs + 2
        self.shared_layers = check_shared(shared_layers, self.total_layers, "networks.D", "first")
        first_shared = self.total_layers - self.shared_layers

        def layer(i: int, in_channels: int) -> nn.Module:
            if digits:
                if i < n_convs:       # CONV k5 -> max-pool 2, no nonlinearity (the official nets)
                    return nn.Sequential(nn.Conv2d(in_channels if i == 0 else widths[i - 1], widths[i], 5),
                                         nn.MaxPool2d(2))
                if i == n_convs:      # FC 500 on the 4 x 4 map, as a k4 conv (net_cogan_mnistedge.py)
                    return nn.Sequential(nn.Conv2d(widths[i - 1], widths[i], 4), nn.PReLU(widths[i]),
                                         nn.Dropout(0.5 if dropout else 0.0), nn.Flatten())
                return nn.Linear(widths[-1], 1)
            if i < n_convs:
                kernel = 5 if i < 3 else 3
                return nn.Sequential(nn.Conv2d(in_channels if i == 0 else widths[i - 1], widths[i], kernel, 2,
                                               kernel // 2, bias=False),
                                     *bn_block(widths[i]), nn.Dropout(conv_dropouts(n_convs)[i] if dropout else 0.0))
            if i == n_convs:          # FC 2048 on the 2 x 2 map
                return nn.Sequential(nn.Flatten(), nn.Linear(widths[i - 1] * 4, widths[i], bias=False),
                                     *bn_block(widths[i], dims=1), nn.Dropout(0.5 if dropout else 0.0))
            return nn.Linear(widths[-1], 1)

        self.stem_a = nn.ModuleList([layer(i, self.channels_a) for i in range(first_shared)])
        self.stem_b = nn.ModuleList([layer(i, self.channels_b) for i in range(first_shared)])
        self.shared = nn.ModuleList([layer(i, self.channels_a) for i in range(first_shared, self.total_layers)])
        init_coupled(self, init)

    def forward(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        h = x
        for layer in self.stem_a if check_domain(domain) == "a" else self.stem_b:
            h = layer(h)
        for layer in self.shared:
            h = layer(h)
        return h.reshape(len(x), 1)
