"""Shared-latent translators: UNIT, Lample et al.'s latent domain adversary, ComboGAN and XGAN: ONE step, switches.

Source: seed 002 chapter 3 part 2, "big transformation" (spec 28). Large changes of style cannot stay pixel-close, so
each domain gets an auto-encoder ``x -> enc_x -> latent -> dec_x``, trained to reconstruct its images and, through one
discriminator per domain on the decoded outputs, to be sharp; a translation is ``dec_y(enc_x(x))`` (spec 28.1). Two
independent auto-encoders use their latents differently, so the translation is a sharp image of "a different person".
Spec 28.6: "all four share one module: per-domain encoder and decoder, per-domain image discriminators, and a
reconstruction loss. Each adds one switch":

* sharing (spec 28.2, CoGAN's idea as UNIT uses it): the encoders' last and the decoders' first layers are one copy
  for every domain: ``networks.E.share_last`` / ``networks.Dec.share_first`` (residual blocks,
  ``models/shared_latent.py``);
* ``latent_adversary_weight`` (spec 28.3, Lample et al.): a classifier D_lat reads the domain from a latent; the
  encoders are trained to fool it (``latent_adversary: flip``, Fader Networks / Unsupervised MT: the classifier's
  loss with the labels flipped), or to maximise its loss (``reverse``, the gradient reversal of DANN that XGAN uses);
* ``pixel_cycle_weight`` (spec 28.4, ComboGAN): the big cycle ``x -> enc_x -> dec_y -> enc_y -> dec_x`` returns x;
* ``latent_cycle_weight`` (spec 28.5, XGAN's semantic consistency): ``enc_y(dec_y(enc_x(x)))`` stays ``enc_x(x)``.

The step, for one pair of domains (i, j) with a batch a of domain i and a batch b of domain j (``z = E_d(x)`` the
code, ``h = z + latent_noise * N(0, I)`` while training, UNIT's VAE sampling; ``h = z`` with latent_noise 0):

  G step (optimizer group G: the encoders E and decoders Dec; D and D_lat frozen):
    adv     = g(D_j(Dec_j(h_a))) + g(D_i(Dec_i(h_b)))                               ``g_adv``, x gan_weight
    recon   = d(Dec_i(h_a), a) + d(Dec_j(h_b), b)                                   ``recon``, x recon_weight
    kl      = mean(z_a^2) + mean(z_b^2)                                             ``kl``, x kl_weight
    cycle   = d(Dec_i(h'_a), a) + d(Dec_j(h'_b), b), z'_a = E_j(Dec_j(h_a)), ...    ``cycle``, x pixel_cycle_weight
    kl_cyc  = mean(z'_a^2) + mean(z'_b^2)                                           ``kl_cycle``, x kl_cycle_weight
    sem     = e(z'_a, z_a) + e(z'_b, z_b)                               ``latent_cycle``, x latent_cycle_weight
    lat_adv = fool(D_lat(z_a), i) + fool(D_lat(z_b), j)                 ``lat_adv``, x latent_adversary_weight
  D step (optimizer group D: the image discriminators D and D_lat; after the G step, on its fakes):
    d_loss  = d_weight (dl(D_i(a), D_i(pool_i(Dec_i(h_b)))) + dl(D_j(b), D_j(pool_j(Dec_j(h_a)))))
            + CE(D_lat(z_a), i) + CE(D_lat(z_b), j)                                 ``d_lat`` (codes detached)

g / dl are the objective's generator / discriminator losses of the raw per-patch scores; d the pixel distance
(``l1``: mean |x - y|, UNIT's and the papers' L1; ``smooth_l1``: torch's SmoothL1Loss, ComboGAN's official code);
e the latent distance (``l1``, ``mse`` or ``cosine``: 1 - cosine similarity of the flattened codes, per sample;
XGAN writes ||.|| without naming it, spec 28.5 [V]); CE the cross-entropy over the N domains (with two domains the
binary cross-entropy of spec 28.3); ``fool`` is the cross-entropy against the other domains' labels, each with
weight 1/(N-1) (``flip``: with two domains exactly the flipped label; with N the expectation of Fader Networks'
random other label), or minus CE (``reverse``). A term whose weight is 0 is not computed (nor its forward passes).
Every term sums the two directions, as the papers' objectives (L = L_1 + L_2). ``kl`` is the KL divergence of UNIT's
q(z|x) = N(z_mean, I) from N(0, I) up to a constant and a factor 1/2, as the official code computes it
(``_compute_kl``: the mean of the squared code).

D_lat is trained in every configuration (its ``lat_acc``, the share of codes whose domain it reads, says how
domain-specific the shared latent still is: spec 28.1's "dims 1-2 for hair in one encoder, 3-4 in the other"); it
acts on the encoders only when ``latent_adversary_weight`` > 0. The image pools (``image_pool.py``, ``pool_size`` past
fakes per domain; 0: none) are the algorithm's tensor state (``pool_0.images``, ...), checkpointed bit-exactly.

Domains: the main data (``data.source``) is domain 0, each other stream of ``data.streams`` (in the config's order;
not ``data.held_out``) one more domain, each drawn by its own sampler, so the domains are unpaired even when they are
views of one set (``mnist5k?domain=edges``), and a user's folders are the domains as they lie on disk (CycleGAN's
``unaligned:DIR?domain=A`` / ``?domain=B``, ComboGAN's one folder per domain ``folder:DIR/trainC``). With two domains
every step trains the pair (0, 1); with N > 2, ComboGAN's scheme: each step a random pair, only those two streams
drawn (from a generator seeded with the step plus a seed drawn when the algorithm is built, the checkpointed
``pairs.seed``: every rank of a distributed run trains the same pair). ``algorithm.domains`` names them (default
``a`` for the main data, then the stream names). Images of all domains must have one size (the latent map is
shared); channels may differ.

Translation and grids: ``translate(direction=AtoB|BtoA)`` (domains 0 -> 1 / 1 -> 0), or ``to=NAME`` with
``from_domain=NAME`` (default: domain 0); ``Dec_to(E_from(x))`` without noise. The held-out batch (``data.held_out``)
holds domain-0 images; its grid shows input | output | reconstruction | target with two domains (as CycleGAN's) and
input | to each other domain | target with more.

Objectives: any whose needs this step meets: weight clipping of the image discriminators. Not a gradient penalty or
relativistic scores (not provided), BEGAN's state (N discriminators, one state) or energy-based Ds.

The registered names are thin subclasses holding the paper settings as defaults (``PAPER``); the recipes state every
value again with its provenance.
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, frozen, register_algorithm
from .controls import unknown_controls
from .image_pool import ImagePool, load_pooled_state, pooled_state_mismatch
from .needs import check_needs

HELD_OUT = "held_out"          # config.HELD_OUT: the grid stream, never a domain
DIRECTIONS = ("AtoB", "BtoA")
PixelDistance = Literal["l1", "smooth_l1"]
LatentDistance = Literal["l1", "mse", "cosine"]
LatentAdversary = Literal["flip", "reverse"]
WEIGHTS = ("gan_weight", "d_weight", "recon_weight", "pixel_cycle_weight", "latent_cycle_weight",
           "latent_adversary_weight", "kl_weight", "kl_cycle_weight", "latent_noise")


def domain_streams(data: DataInfo) -> list[str]:
    """The data streams that are domains, in order: ``main``, then every stream but the held-out one."""
    return ["main", *[name for name in data.streams if name != HELD_OUT]]


def domain_shapes(data: DataInfo, who: str) -> list[tuple[int, ...]]:
    """C x H x W of each domain; one line when there is one domain only or the image sizes differ."""
    streams = domain_streams(data)
    if len(streams) < 2:
        raise DataError(f"algorithm '{who}' translates between two or more domains, one data stream each, but the "
                        "config has data.source only; add domain B with --set data.streams.b.source=SOURCE (e.g. "
                        "'unaligned:DIR?domain=B', 'folder:DIR/trainB', 'mnist5k?split=train&domain=edges')")
    shapes = [tuple(data.sample_shape)] + [tuple(data.streams[s].sample_shape) for s in streams[1:]]
    for name, shape in zip(streams[1:], shapes[1:]):
        if shape[1:] != shapes[0][1:]:
            raise DataError(f"algorithm '{who}' translates between images of one size (the latent map is shared), "
                            f"but data.source is {'x'.join(map(str, shapes[0][1:]))} and data.streams.{name} "
                            f"{'x'.join(map(str, shape[1:]))}; set data.image_size to give every domain one size")
    return shapes


def domain_names(data: DataInfo, names: Sequence[str] | None, who: str) -> list[str]:
    """``algorithm.domains`` checked against the domain streams, or the default ``a`` + the stream names."""
    streams = domain_streams(data)
    if names is None:
        return ["a", *streams[1:]]
    given = [str(n) for n in names]
    if len(given) != len(streams) or len(set(given)) != len(given):
        raise ConfigError(f"algorithm.domains names {len(given)} domain(s) ({', '.join(given)}) but algorithm "
                          f"'{who}' has {len(streams)} distinct ones, one per data stream ({', '.join(streams)}); "
                          "give one distinct name each, in that order")
    return given


class PairSchedule(nn.Module):
    """The seed of the random pairs of domains (N > 2): a buffer, so it is checkpointed with the pools."""

    def __init__(self, seed: int):
        super().__init__()
        self.register_buffer("seed", torch.tensor(seed, dtype=torch.int64))


class SharedLatentTranslator(Algorithm):
    """The one step of spec 28.6; see the module docstring. Subclasses only set ``PAPER`` (their papers' defaults)."""

    name = "shared-latent"
    roles = {"E": "encoder", "Dec": "decoder", "D": "discriminator", "D_lat": "latent-classifier"}
    optimizer_groups = {"G": ("E", "Dec"), "D": ("D", "D_lat")}
    ema_networks = ("E", "Dec")
    sampling_network = "Dec"
    samples_from_data = True
    translate_controls = ("direction", "to", "from_domain")
    supported_needs = frozenset({Need.WEIGHT_CLIP})
    refused_because = {
        Need.GRADIENT_PENALTY: "this step provides no gradient penalty on its per-domain discriminators",
        Need.REAL_SCORES_IN_G: "its generator loss does not compare fakes with real scores",
        Need.JOINT_D_LOSS: "this step provides only separable discriminator losses",
        Need.AFTER_D_STEP: "its per-domain discriminators would all update the one objective state",
        Need.ENERGY_D: "its discriminators are PatchGANs, not auto-encoders",
        Need.PULLAWAY_TERM: "its discriminators have no auto-encoder codes"}
    # The paper defaults of a registered subclass: what an argument left at None means.
    PAPER: ClassVar[dict[str, Any]] = {}

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo,
                 latent_dim: int | None = None, domains: Sequence[str] | None = None,
                 gan_weight: float | None = None, d_weight: float | None = None, recon_weight: float | None = None,
                 pixel_cycle_weight: float | None = None, latent_cycle_weight: float | None = None,
                 latent_adversary_weight: float | None = None, latent_adversary: LatentAdversary | None = None,
                 kl_weight: float | None = None, kl_cycle_weight: float | None = None,
                 latent_noise: float | None = None, pixel_distance: PixelDistance | None = None,
                 latent_distance: LatentDistance | None = None, pool_size: int | None = None):
        super().__init__(nets, objective, data)
        given = dict(latent_dim=latent_dim, gan_weight=gan_weight, d_weight=d_weight, recon_weight=recon_weight,
                     pixel_cycle_weight=pixel_cycle_weight, latent_cycle_weight=latent_cycle_weight,
                     latent_adversary_weight=latent_adversary_weight, latent_adversary=latent_adversary,
                     kl_weight=kl_weight, kl_cycle_weight=kl_cycle_weight, latent_noise=latent_noise,
                     pixel_distance=pixel_distance, latent_distance=latent_distance, pool_size=pool_size)
        s = {k: self.setting(k, v) for k, v in given.items()}
        self.needs = check_needs(self.name, objective, self.supported_needs, why=self.refused_because)
        paper = ", ".join(f"{k} {self.setting(k, None)}" for k in WEIGHTS if k in self.PAPER)
        for key in WEIGHTS:
            if not s[key] >= 0:
                raise ConfigError(f"algorithm.{key} must be >= 0 (the paper's: {paper}), got {s[key]}")
        if not s["d_weight"] > 0:
            raise ConfigError(f"algorithm.d_weight must be > 0 (the paper's: {paper}), got {s['d_weight']}")
        for key, choices in (("latent_adversary", ("flip", "reverse")), ("pixel_distance", ("l1", "smooth_l1")),
                             ("latent_distance", ("l1", "mse", "cosine"))):
            if s[key] not in choices:
                raise ConfigError(f"algorithm.{key} must be one of {', '.join(choices)}, got {s[key]!r}")
        if s["pool_size"] < 0:
            raise ConfigError(f"algorithm.pool_size must be >= 0 (ComboGAN: 50 past fakes per domain; 0: none), "
                              f"got {s['pool_size']}")
        for key, value in s.items():
            setattr(self, key, value)
        self.shapes = domain_shapes(data, self.name)
        self.names = domain_names(data, domains, self.name)
        self.domain_streams = domain_streams(data)
        self.check_networks()
        # Past fakes of each domain: state, not networks (no optimizer, EMA copy or weights file sees them).
        for d, shape in enumerate(self.shapes):
            self.state_modules[f"pool_{d}"] = ImagePool(self.pool_size, shape)
        if self.n_domains > 2:     # drawn from the build's seeded RNG: the same on every rank, checkpointed
            self.state_modules["pairs"] = PairSchedule(int(torch.randint(2 ** 62, ())))

    @classmethod
    def setting(cls, key: str, value: Any) -> Any:
        """``value``, or the paper default of this family when it is None."""
        if value is not None:
            return value
        if key not in cls.PAPER:
            raise ConfigError(f"algorithm '{cls.name}' has no default for algorithm.{key}; set it")
        return cls.PAPER[key]

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        """Every network gets the channels of each domain (their number is N) and the latent width."""
        ctx = super().network_context(params, data)
        channels = tuple(shape[0] for shape in domain_shapes(data, cls.name))
        latent = cls.setting("latent_dim", params.get("latent_dim"))
        for key in ctx:
            ctx[key].update(domain_channels=channels, latent_dim=latent)
        return ctx

    def check_networks(self) -> None:
        """The four networks agree with the data and each other (one line naming the setting to change)."""
        channels = tuple(shape[0] for shape in self.shapes)
        for key in self.roles:
            have = tuple(getattr(self.nets[key], "domain_channels", ()))
            if have != channels:
                raise ConfigError(f"networks.{key} is built for domains with channels {list(have)} but the data's "
                                  f"{len(channels)} domains have {list(channels)}; leave networks.{key}."
                                  "domain_channels out (the algorithm sets it from the data streams)")
        E, Dec = self.nets["E"], self.nets["Dec"]
        for key in ("latent_dim", "n_downsample"):
            if getattr(E, key, None) != getattr(Dec, key, None):
                raise ConfigError(f"networks.E and networks.Dec disagree on {key} ({getattr(E, key, None)} and "
                                  f"{getattr(Dec, key, None)}): the decoders read what the encoders write; set "
                                  f"networks.Dec.{key} to networks.E's")

    @property
    def n_domains(self) -> int:
        return len(self.shapes)

    # -- state: the per-domain pools, whose size grows up to pool_size -------------------------------------------------
    def state_mismatch(self, tensors: Mapping[str, torch.Tensor]) -> str | None:
        return pooled_state_mismatch(self.state_modules, tensors, f"algorithm '{self.name}'")

    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        load_pooled_state(self.state_modules, tensors)

    def pool(self, domain: int) -> ImagePool:
        return self.state_modules[f"pool_{domain}"]

    # -- losses (also what the unit tests check against direct computation) -----------------------------------------
    def pixel_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """d(x, y): the mean absolute difference (``l1``) or torch's SmoothL1Loss (``smooth_l1``), in float32."""
        x, y = x.float(), y.float()
        return (x - y).abs().mean() if self.pixel_distance == "l1" else F.smooth_l1_loss(x, y)

    def latent_loss(self, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """e(z, target) between two batches of codes: mean |.|, mean squared difference, or 1 - cosine per sample."""
        z, target = z.float(), target.float()
        if self.latent_distance == "l1":
            return (z - target).abs().mean()
        if self.latent_distance == "mse":
            return (z - target).square().mean()
        return (1 - F.cosine_similarity(z.flatten(1), target.flatten(1), dim=1)).mean()

    @staticmethod
    def kl_loss(z: torch.Tensor) -> torch.Tensor:
        """UNIT's KL term of q(z|x) = N(z, I) from N(0, I): the mean squared code (official ``_compute_kl``)."""
        return z.float().square().mean()

    def domain_ce(self, logits: torch.Tensor, domain: int) -> torch.Tensor:
        """D_lat's cross-entropy for codes all of ``domain``."""
        target = torch.full((len(logits),), domain, dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits.float(), target)

    def fool_loss(self, logits: torch.Tensor, domain: int) -> torch.Tensor:
        """The encoders' latent adversarial loss for codes of ``domain``: ``flip`` the cross-entropy against every
        other domain with weight 1/(N-1) (two domains: the flipped label), ``reverse`` minus D_lat's own loss."""
        if self.latent_adversary == "reverse":
            return -self.domain_ce(logits, domain)
        logp = F.log_softmax(logits.float(), dim=1)
        others = [k for k in range(logp.shape[1]) if k != domain]
        return -logp[:, others].mean(dim=1).mean()

    def noisy(self, z: torch.Tensor) -> torch.Tensor:
        """UNIT's sampling of the shared latent while training: z + latent_noise * N(0, I) (the global RNG)."""
        return z + self.latent_noise * torch.randn_like(z) if self.latent_noise > 0 else z

    # -- training ------------------------------------------------------------------------------------------------------
    def pair(self, step: int) -> tuple[int, int]:
        """The two domains of step ``step``: (0, 1) with two domains, else a random pair (ComboGAN's scheme) from a
        generator seeded with the run's pair seed + step (``PairSchedule``): every rank trains the same pair, and a
        resumed run the pair the uninterrupted one would have."""
        if self.n_domains == 2:
            return 0, 1
        g = torch.Generator().manual_seed(int(self.state_modules["pairs"].seed) + int(step))
        i, j = torch.randperm(self.n_domains, generator=g)[:2].tolist()
        return int(i), int(j)

    def generator_losses(self, a: torch.Tensor, b: torch.Tensor, i: int, j: int) -> dict[str, Any]:
        """The G losses of one pair (i, j) with a of domain i and b of domain j, and what the D step reuses: the
        fakes (``fake_a``: b in domain i, ``fake_b``: a in domain j) and the codes ``z_a``, ``z_b``."""
        E, Dec, D, D_lat = (self.nets[k] for k in ("E", "Dec", "D", "D_lat"))
        z_a, z_b = E(a, i), E(b, j)
        h_a, h_b = self.noisy(z_a), self.noisy(z_b)
        fake_b, fake_a = Dec(h_a, j), Dec(h_b, i)
        parts: dict[str, torch.Tensor] = {}
        parts["g_adv"] = self.objective.g_loss(D(fake_b, j)) + self.objective.g_loss(D(fake_a, i))
        total = self.gan_weight * parts["g_adv"]
        if self.recon_weight > 0:
            parts["recon"] = self.pixel_loss(Dec(h_a, i), a) + self.pixel_loss(Dec(h_b, j), b)
            total = total + self.recon_weight * parts["recon"]
        if self.kl_weight > 0:
            parts["kl"] = self.kl_loss(z_a) + self.kl_loss(z_b)
            total = total + self.kl_weight * parts["kl"]
        if self.pixel_cycle_weight > 0 or self.latent_cycle_weight > 0 or self.kl_cycle_weight > 0:
            back_a, back_b = E(fake_b, j), E(fake_a, i)       # the codes of the translations
            if self.pixel_cycle_weight > 0:
                parts["cycle"] = (self.pixel_loss(Dec(self.noisy(back_a), i), a)
                                  + self.pixel_loss(Dec(self.noisy(back_b), j), b))
                total = total + self.pixel_cycle_weight * parts["cycle"]
            if self.kl_cycle_weight > 0:
                parts["kl_cycle"] = self.kl_loss(back_a) + self.kl_loss(back_b)
                total = total + self.kl_cycle_weight * parts["kl_cycle"]
            if self.latent_cycle_weight > 0:
                parts["latent_cycle"] = self.latent_loss(back_a, z_a) + self.latent_loss(back_b, z_b)
                total = total + self.latent_cycle_weight * parts["latent_cycle"]
        if self.latent_adversary_weight > 0:
            parts["lat_adv"] = self.fool_loss(D_lat(z_a), i) + self.fool_loss(D_lat(z_b), j)
            total = total + self.latent_adversary_weight * parts["lat_adv"]
        parts["g_loss"] = total
        return {"parts": parts, "fake_a": fake_a, "fake_b": fake_b, "z_a": z_a, "z_b": z_b}

    def discriminator_losses(self, a: torch.Tensor, b: torch.Tensor, i: int, j: int, pooled_a: torch.Tensor,
                             pooled_b: torch.Tensor, z_a: torch.Tensor, z_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """The D losses: each image D on its domain's reals and (pooled) fakes, times d_weight; D_lat's cross-entropy
        on the (detached) codes; and D_lat's accuracy."""
        D, D_lat = self.nets["D"], self.nets["D_lat"]
        d_i = self.d_weight * self.objective.d_loss(D(a, i), D(pooled_a, i))
        d_j = self.d_weight * self.objective.d_loss(D(b, j), D(pooled_b, j))
        logits_a, logits_b = D_lat(z_a.detach()), D_lat(z_b.detach())
        d_lat = self.domain_ce(logits_a, i) + self.domain_ce(logits_b, j)
        with torch.no_grad():
            hits = torch.cat([logits_a.argmax(1) == i, logits_b.argmax(1) == j])
        return {"d_loss": d_i + d_j + d_lat, "d_img": d_i + d_j, "d_lat": d_lat, "lat_acc": hits.float().mean()}

    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        i, j = self.pair(ctx.step)
        # independent draws, each stream its own sampler: unpaired
        a, b = ctx.real_batch(self.domain_streams[i]).x, ctx.real_batch(self.domain_streams[j]).x
        D, D_lat = self.nets["D"], self.nets["D_lat"]

        with frozen(D, D_lat), ctx.autocast():        # gradients flow through D and D_lat, their weights stay
            out = self.generator_losses(a, b, i, j)
        ctx.update("G", out["parts"]["g_loss"])

        # D step on the fakes of the G step (made before G's update, as CycleGAN's and ComboGAN's official code).
        pooled_b, pooled_a = self.pool(j).query(out["fake_b"]), self.pool(i).query(out["fake_a"])
        with ctx.autocast():
            d_parts = self.discriminator_losses(a, b, i, j, pooled_a, pooled_b, out["z_a"], out["z_b"])
        # the recipe's regularize: sample penalties (R1, R2, DRAGAN) on each image D of the pair (algorithms/needs.py)
        penalties: dict[str, torch.Tensor] = {}
        loss_d = self.needs.penalty(d_parts["d_loss"], lambda x: D(x, i), a, pooled_a, penalties, key="gp_A")
        loss_d = self.needs.penalty(loss_d, lambda x: D(x, j), b, pooled_b, penalties, key="gp_B")
        ctx.update("D", loss_d)
        self.needs.clip(D)
        return {**{k: v.detach() for k, v in out["parts"].items()}, **{k: v.detach() for k, v in d_parts.items()},
                **penalties}

    # -- sampling from data and translating ----------------------------------------------------------------------------
    def domain_index(self, value: Any, what: str) -> int:
        """A domain's index from its name or index (``to`` / ``from_domain``)."""
        if value in self.names:
            return self.names.index(value)
        if isinstance(value, int) or str(value).isdigit():
            index = int(value)
            if 0 <= index < self.n_domains:
                return index
        raise ConfigError(f"unknown domain {value!r} for {what}; the model has domains {', '.join(self.names)} "
                          f"(or their indices 0..{self.n_domains - 1})")

    def route(self, direction: str | None = None, to: Any = None, from_domain: Any = None) -> tuple[int, int]:
        """(source, target) domain indices from the translate controls; default domain 0 -> 1."""
        if direction is not None:
            if to is not None or from_domain is not None:
                raise ConfigError("give either direction=AtoB|BtoA or to=DOMAIN (with from_domain=DOMAIN), not both")
            if direction not in DIRECTIONS:
                raise ConfigError(f"direction must be AtoB (domain {self.names[0]} -> {self.names[1]}) or BtoA "
                                  f"({self.names[1]} -> {self.names[0]}), got {direction!r}")
            return (0, 1) if direction == "AtoB" else (1, 0)
        src = 0 if from_domain is None else self.domain_index(from_domain, "from_domain")
        if to is None:
            dst = 1 if src == 0 else 0
        else:
            dst = self.domain_index(to, "to")
        return src, dst

    def translate_with(self, x: torch.Tensor, src: int, dst: int,
                       nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        n = nets or self.nets
        return n["Dec"](n["E"](x, src), dst)

    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      batch: Any = None, **controls: Any) -> dict[str, torch.Tensor]:
        """The held-out images (of domain ``from_domain``, default 0), their target (when the held-out source has the
        true counterpart) and the route, as per-sample domain indices."""
        unknown_controls(controls, self.translate_controls, f"'{self.name}'")
        if batch is None:
            raise ConfigError(f"algorithm '{self.name}' translates images: its samples come from data (the held-out "
                              "batch), not from noise")
        src, dst = self.route(**{k: v for k, v in controls.items() if v is not None})
        image = batch["image"][:n].to(device)
        inputs = {"image": image, "from_domain": torch.full((len(image),), src, dtype=torch.long, device=device),
                  "to_domain": torch.full((len(image),), dst, dtype=torch.long, device=device)}
        if "target" in batch:
            inputs["target"] = batch["target"][:n].to(device)
        return inputs

    @staticmethod
    def _one(indices: torch.Tensor) -> int:
        value = int(indices[0])
        if not bool((indices == value).all()):
            raise ValueError("a batch of translations goes from one domain to one domain")
        return value

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return self.translate_with(inputs["image"], self._one(inputs["from_domain"]), self._one(inputs["to_domain"]),
                                   nets)

    def grid_panels(self, inputs: Mapping[str, torch.Tensor],
                    nets: Mapping[str, nn.Module]) -> dict[str, torch.Tensor] | None:
        """Two domains: input | output | reconstruction (the cycle back) | target; more: input | to each other domain
        | target (``target``: the held-out source's true counterpart, when it has one)."""
        x, src = inputs["image"], self._one(inputs["from_domain"])
        panels = {"input": x}
        if self.n_domains == 2:
            dst = self._one(inputs["to_domain"])
            out = self.translate_with(x, src, dst, nets)
            panels.update(output=out, reconstruction=self.translate_with(out, dst, src, nets))
        else:
            for d, name in enumerate(self.names):
                if d != src:
                    panels[f"to {name}"] = self.translate_with(x, src, d, nets)
        if "target" in inputs:
            panels["target"] = inputs["target"]
        return panels

    def output_shape(self) -> tuple[int, ...]:
        """Samples are translations from domain 0 to domain 1 (the default route)."""
        return tuple(self.shapes[1])

    def translation_input_shape(self, **controls: Any) -> tuple[int, ...]:
        unknown_controls(controls, self.translate_controls, f"'{self.name}'")
        src, _ = self.route(**{k: v for k, v in controls.items() if v is not None})
        return tuple(self.shapes[src])

    def translate(self, inputs: torch.Tensor, nets: Mapping[str, nn.Module] | None = None,
                  direction: str | None = None, to: Any = None, from_domain: Any = None,
                  **controls: Any) -> torch.Tensor:
        """``Dec_to(E_from(x))``: ``direction`` AtoB (domain 0 -> 1, the default) or BtoA, or ``to`` a domain (name
        or index) from ``from_domain`` (default domain 0)."""
        unknown_controls(controls, self.translate_controls, f"'{self.name}'")
        src, dst = self.route(direction, to, from_domain)
        return self.translate_with(inputs, src, dst, nets)


@register_algorithm
class UNIT(SharedLatentTranslator):
    """UNIT (Liu, Breuel & Kautz 2017, "Unsupervised Image-to-Image Translation Networks", NIPS): VAE-GANs whose
    encoders' last and decoders' first layers are shared (networks.E.share_last / networks.Dec.share_first: 1), the
    latent sampled with unit-variance noise, KL and L1 reconstruction terms, and the cycle through the other domain.
    Weights: the paper's lambda_0 = 10 (GAN), lambda_1 = lambda_3 = 0.1 (KL), lambda_2 = lambda_4 = 100 (L1), as the
    official code's ``exps/unit/*.yaml`` (gan_w 10, kl_direct_link_w / kl_cycle_link_w 0.1, ll_direct_link_w /
    ll_cycle_link_w 100); its D loss is gan_w times the two domains' BCE losses (d_weight 10)."""

    name = "unit"
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)
    source = ("seed 002 chapter 3 part 2 (spec 28.2: shared encoder/decoder layers); Liu, Breuel & Kautz 2017, "
              "Unsupervised Image-to-Image Translation Networks (NIPS), section 3 and the official code "
              "mingyuliutw/UNIT (cocogan_trainer.py, exps/unit/*.yaml)")
    PAPER = dict(latent_dim=256, gan_weight=10.0, d_weight=10.0, recon_weight=100.0, pixel_cycle_weight=100.0,
                 latent_cycle_weight=0.0, latent_adversary_weight=0.0, latent_adversary="flip", kl_weight=0.1,
                 kl_cycle_weight=0.1, latent_noise=1.0, pixel_distance="l1", latent_distance="l1", pool_size=0)


@register_algorithm
class ComboGAN(SharedLatentTranslator):
    """ComboGAN (Anoosheh, Agustsson, Timofte & Van Gool 2017, "ComboGAN: Unrestrained Scalability for Image Domain
    Translation", arXiv 1712.06909): one encoder and one decoder per domain, nothing shared, N domains, each step a
    random pair trained as CycleGAN (LSGAN, the cycle loss with lambda 10, pools of 50 fakes, D's loss halved); the
    official code (AAnoosheh/ComboGAN): SmoothL1 for the cycle, lambda_identity (the within-domain auto-encoding,
    here ``recon``) 0, lambda_latent 0."""

    name = "combogan"
    source = ("seed 002 chapter 3 part 2 (spec 28.4: the big cycle); Anoosheh et al. 2017, ComboGAN: Unrestrained "
              "Scalability for Image Domain Translation, section 3, and the official code AAnoosheh/ComboGAN "
              "(combogan_model.py, options)")
    PAPER = dict(latent_dim=256, gan_weight=1.0, d_weight=0.5, recon_weight=0.0, pixel_cycle_weight=10.0,
                 latent_cycle_weight=0.0, latent_adversary_weight=0.0, latent_adversary="flip", kl_weight=0.0,
                 kl_cycle_weight=0.0, latent_noise=0.0, pixel_distance="smooth_l1", latent_distance="l1",
                 pool_size=50)


@register_algorithm
class XGAN(SharedLatentTranslator):
    """XGAN (Royer, Bousmalis, Gouws, Bertsch, Mosseri, Cole & Murphy 2017, "XGAN: Unsupervised Image-to-Image
    Translation for Many-to-Many Mappings", arXiv 1711.05139): a dual auto-encoder with partly shared encoders and
    decoders, reconstruction, a domain-adversarial classifier on the embedding (DANN's gradient reversal:
    ``latent_adversary: reverse``), the semantic consistency loss ||e_1(x) - e_2(g_12(x))|| in both directions
    (``latent_cycle``) and a GAN loss on the translations. Every weight 1 and the L1 distances are ganforge's reading
    (the seed gives no values, spec 28.5 [V]). Not implemented: the optional teacher loss (a pretrained face network's
    features, not available offline)."""

    name = "xgan"
    source = ("seed 002 chapter 3 part 2 (spec 28.5: semantic consistency in latent space); Royer et al. 2017, XGAN: "
              "Unsupervised Image-to-Image Translation for Many-to-Many Mappings, section 3")
    PAPER = dict(latent_dim=256, gan_weight=1.0, d_weight=1.0, recon_weight=1.0, pixel_cycle_weight=0.0,
                 latent_cycle_weight=1.0, latent_adversary_weight=1.0, latent_adversary="reverse", kl_weight=0.0,
                 kl_cycle_weight=0.0, latent_noise=0.0, pixel_distance="l1", latent_distance="l1", pool_size=0)
