"""The networks of the shared-latent translators (``algorithms/shared_latent.py``: UNIT, Lample et al.'s latent domain
adversary, ComboGAN, XGAN): per-domain encoders into one latent space, per-domain decoders out of it, per-domain image
discriminators and a classifier that reads the domain from a latent.

Seed 002 chapter 3 part 2, "big transformation" (spec 28.1: ``x -> enc_x -> latent -> dec_y -> y``, one auto-encoder
per domain, a discriminator per domain on the decoded outputs; spec 28.2: the encoders' last layers and the decoders'
first layers shared, so that both domains use one latent code). Each role is ONE module holding a branch per domain,
so the number of domains N comes from the data (``domain_channels``: one entry per domain, given by the algorithm)
and sharing is an architecture parameter:

Encoders (role ``encoder``, arch ``shared-latent``), for each domain d, as the first half of CycleGAN's ResNet
generator (Zhu et al. 2017 appendix 7.2; the official ``ResnetGenerator``), which is how ComboGAN (Anoosheh et al.
2017, official ``networks.py``: ``ResnetGenEncoder``) and UNIT (Liu et al. 2017, official ``COCOResGen``: three front
convolutions then residual blocks) build theirs:

  c7s1-w -> d(2w) -> ... (``n_downsample`` 3x3 stride-2 convs, the width doubling up to ``latent_dim``)
         -> R x ``n_blocks``                          private to domain d
  -> R x ``share_last``                               ONE copy, shared by every domain (UNIT: 1, ComboGAN: 0)

with w = latent_dim / 2^n_downsample, R a residual block (``resnet_translator.ResidualBlock``), norm and ReLU after
every conv as CycleGAN's. The latent is a map: N x latent_dim x H/2^n x W/2^n.

Decoders (role ``decoder``, arch ``shared-latent``), the mirror image:

  R x ``share_first``                                 ONE copy, shared (UNIT: 1)
  -> for each domain d: R x ``n_blocks`` -> u(w 2^(n-1)) ... u(w) (3x3 stride-2 transposed convs) -> c7s1-C_d -> tanh

Discriminators (role ``discriminator``, arch ``patchgan-domains``): one PatchGAN per domain (``patchgan.py``; Isola et
al. 2017), each on its own domain's images; nothing shared.

Latent domain classifier (role ``latent-classifier``, arch ``latent-domain``): ``n_layers`` 3x3 convs of width
``filters`` with LeakyReLU(0.2) on the latent map, a global average and a linear layer to N logits: "which domain did
this latent come from" (spec 28.3, Lample et al.'s latent discriminator; Fader Networks (Lample et al. 2017) use a
conv layer and two linear layers: this is the smallest network of that kind, stated as ganforge's).

Deviations stated: UNIT's encoders start with a LeakyReLU conv without norm and end their decoders with a 1x1
transposed conv, ComboGAN's use PReLU and 4x4 transposed convs; here every branch is CycleGAN's block design
(ReLU, norm, 3x3 transposed convs, a 7x7 output conv), so that the four methods differ only in what they share and
in their losses. Weights N(0, 0.02) (CycleGAN's and ComboGAN's ``init_type=normal``; UNIT's gaussian init).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import ConfigError
from .common import Norm2d, check_image_size, check_widths, norm2d, uses_bias
from .init import InitScheme, init_weights
from .patchgan import PatchGANDiscriminator
from .registry import register_network
from .resnet_translator import ResidualBlock

SOURCE = ("seed 002 chapter 3 part 2 (spec 28: per-domain auto-encoders sharing a latent space); CycleGAN's ResNet "
          "generator split at the latent as ComboGAN (Anoosheh et al. 2017) and UNIT (Liu et al. 2017) do, the "
          "encoders' last and the decoders' first blocks shared (UNIT)")
D_SOURCE = "Isola et al. 2017 (pix2pix) PatchGAN, one per domain (CycleGAN, UNIT, ComboGAN: a discriminator per domain)"
LAT_SOURCE = ("Lample et al. (spec 28.3: a discriminator on the latent predicts its domain; Fader Networks 2017, "
              "Unsupervised MT 2018); the domain-adversarial classifier of XGAN (Royer et al. 2017) after DANN")


def check_domains(domain_channels: tuple[int, ...], arch: str) -> tuple[int, ...]:
    channels = tuple(int(c) for c in domain_channels)
    if len(channels) < 2 or any(c < 1 for c in channels):
        raise ConfigError(f"the {arch} networks take two or more domains, each with >= 1 channel(s), got "
                          f"domain_channels={list(channels)} (the algorithm sets it from the data streams)")
    return channels


def check_latent(latent_dim: int, n_downsample: int, arch: str) -> int:
    if n_downsample < 0:
        raise ConfigError(f"n_downsample must be >= 0 (the paper's networks: 2), got {n_downsample}")
    if latent_dim < 2 ** n_downsample or latent_dim % 2 ** n_downsample:
        raise ConfigError(f"the {arch} encoders double their width {n_downsample} time(s) up to algorithm.latent_dim, "
                          f"which must be a multiple of {2 ** n_downsample}, got {latent_dim} (e.g. "
                          f"--set algorithm.latent_dim={max(1, latent_dim // 2 ** n_downsample) * 2 ** n_downsample})")
    return latent_dim // 2 ** n_downsample


def _check_blocks(**counts: int) -> None:
    for name, value in counts.items():
        if value < 0:
            raise ConfigError(f"{name} must be >= 0 residual blocks, got {value}")


def _pick(branches: nn.ModuleList, domain: int) -> nn.Module:
    if not 0 <= int(domain) < len(branches):
        raise ValueError(f"domain {domain} is out of range: these networks have domains 0..{len(branches) - 1}")
    return branches[int(domain)]


@register_network("encoder", "shared-latent", SOURCE)
class SharedLatentEncoders(nn.Module):
    """N encoders into one latent space: private stems, the last ``share_last`` residual blocks shared."""
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)

    def __init__(self, domain_channels: tuple[int, ...] = (3, 3), image_size: int = 256, latent_dim: int = 256,
                 n_downsample: int = 2, n_blocks: int = 3, share_last: int = 1, norm: Norm2d = "instance",
                 init: InitScheme = "dcgan"):
        super().__init__()
        channels = check_domains(domain_channels, "shared-latent")
        width = check_latent(latent_dim, n_downsample, "shared-latent")
        check_image_size(image_size, 2 ** n_downsample, "shared-latent", minimum=16)
        _check_blocks(n_blocks=n_blocks, share_last=share_last)
        check_widths([latent_dim], "algorithm.latent_dim")
        bias = uses_bias(norm)
        self.domain_channels, self.latent_dim, self.n_downsample = channels, latent_dim, n_downsample
        self.share_last = share_last

        def stem(c_in: int) -> nn.Sequential:
            w = width
            layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(c_in, w, 7, bias=bias), norm2d(norm, w),
                                       nn.ReLU(inplace=True)]
            for _ in range(n_downsample):
                layers += [nn.Conv2d(w, w * 2, 3, stride=2, padding=1, bias=bias), norm2d(norm, w * 2),
                           nn.ReLU(inplace=True)]
                w *= 2
            layers += [ResidualBlock(w, norm) for _ in range(n_blocks)]
            return nn.Sequential(*layers)

        self.private = nn.ModuleList(stem(c) for c in channels)
        self.shared = nn.Sequential(*[ResidualBlock(latent_dim, norm) for _ in range(share_last)])
        init_weights(self, init)

    @property
    def domains(self) -> int:
        return len(self.private)

    def latent_shape(self, image_size: int) -> tuple[int, int, int]:
        side = image_size // 2 ** self.n_downsample
        return (self.latent_dim, side, side)

    def forward(self, x: torch.Tensor, domain: int) -> torch.Tensor:
        """Images of ``domain`` (N x C_domain x H x W) -> their latent codes (N x latent_dim x H/2^n x W/2^n)."""
        return self.shared(_pick(self.private, domain)(x))


@register_network("decoder", "shared-latent", SOURCE)
class SharedLatentDecoders(nn.Module):
    """N decoders out of one latent space: the first ``share_first`` residual blocks shared, private heads."""
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)

    value_range = (-1.0, 1.0)
    out_activation = "tanh"

    def __init__(self, domain_channels: tuple[int, ...] = (3, 3), image_size: int = 256, latent_dim: int = 256,
                 n_downsample: int = 2, n_blocks: int = 3, share_first: int = 1, norm: Norm2d = "instance",
                 init: InitScheme = "dcgan"):
        super().__init__()
        channels = check_domains(domain_channels, "shared-latent")
        width = check_latent(latent_dim, n_downsample, "shared-latent")
        check_image_size(image_size, 2 ** n_downsample, "shared-latent", minimum=16)
        _check_blocks(n_blocks=n_blocks, share_first=share_first)
        bias = uses_bias(norm)
        self.domain_channels, self.latent_dim, self.n_downsample = channels, latent_dim, n_downsample
        self.share_first = share_first

        def head(c_out: int) -> nn.Sequential:
            w = latent_dim
            layers: list[nn.Module] = [ResidualBlock(w, norm) for _ in range(n_blocks)]
            for _ in range(n_downsample):
                layers += [nn.ConvTranspose2d(w, w // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                           norm2d(norm, w // 2), nn.ReLU(inplace=True)]
                w //= 2
            assert w == width
            layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, c_out, 7), nn.Tanh()]
            return nn.Sequential(*layers)

        self.shared = nn.Sequential(*[ResidualBlock(latent_dim, norm) for _ in range(share_first)])
        self.private = nn.ModuleList(head(c) for c in channels)
        init_weights(self, init)

    @property
    def domains(self) -> int:
        return len(self.private)

    def forward(self, z: torch.Tensor, domain: int) -> torch.Tensor:
        """Latent codes -> images of ``domain`` in [-1, 1]."""
        return _pick(self.private, domain)(self.shared(z))


@register_network("discriminator", "patchgan-domains", D_SOURCE)
class DomainPatchGANs(nn.Module):
    """One PatchGAN per domain (``patchgan.PatchGANDiscriminator``), each taking its own domain's channels."""
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)

    def __init__(self, domain_channels: tuple[int, ...] = (3, 3), image_size: int = 256, filters: int = 64,
                 n_layers: int = 3, norm: Norm2d = "instance", leaky_slope: float = 0.2, init: InitScheme = "dcgan"):
        super().__init__()
        channels = check_domains(domain_channels, "patchgan-domains")
        self.domain_channels = channels
        self.judges = nn.ModuleList(PatchGANDiscriminator(c, image_size, filters, n_layers, norm, leaky_slope, init)
                                    for c in channels)

    @property
    def domains(self) -> int:
        return len(self.judges)

    @property
    def patch_size(self) -> int:
        return self.judges[0].patch_size

    def forward(self, x: torch.Tensor, domain: int) -> torch.Tensor:
        """Raw per-patch scores of ``domain``'s discriminator: N x 1 x H' x W'."""
        return _pick(self.judges, domain)(x)


@register_network("latent-classifier", "latent-domain", LAT_SOURCE)
class LatentDomainClassifier(nn.Module):
    """Latent map -> N domain logits: ``n_layers`` 3x3 convs (LeakyReLU 0.2), a global average, a linear layer."""
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)

    def __init__(self, domain_channels: tuple[int, ...] = (3, 3), latent_dim: int = 256, filters: int = 256,
                 n_layers: int = 2, leaky_slope: float = 0.2, init: InitScheme = "dcgan"):
        super().__init__()
        channels = check_domains(domain_channels, "latent-domain")
        check_widths([filters, latent_dim], "networks.D_lat.filters / algorithm.latent_dim")
        if n_layers < 0:
            raise ConfigError(f"networks.D_lat.n_layers must be >= 0 conv layers, got {n_layers}")
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(n_layers):
            layers += [nn.Conv2d(width, filters, 3, padding=1), nn.LeakyReLU(leaky_slope, inplace=True)]
            width = filters
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, len(channels))
        self.domain_channels = channels
        init_weights(self, init)

    @property
    def domains(self) -> int:
        return self.head.out_features

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """N x latent_dim x h x w -> N x domains raw logits."""
        return self.head(self.features(z).mean(dim=(2, 3)))
