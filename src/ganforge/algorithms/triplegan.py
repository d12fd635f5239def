"""Triple-GAN: semi-supervised classification and class-conditional generation with three players.

Source: seed 002 part 3.2 ("2. TripleGAN", sections 2.1-2.3: a classifier C labels images to make more (x, y)
pairs, a discriminator D judges whether a pair comes from the data, from C or from G, and a CGAN-like generator G
makes x from (y, z)); the formulation and the step are the paper's, Li et al. 2017, "Triple Generative
Adversarial Nets" (NeurIPS), Algorithm 1:

    U(C, G, D) = E_(x,y)~p [log D(x, y)] + alpha E_(x,y)~p_c [log(1 - D(x, y))]
                 + (1 - alpha) E_(x,y)~p_g [log(1 - D(G(y, z), y))]
    min_{C,G} max_D  U + R_L + alpha_P R_P,
    R_L = E_(x,y)~p [-log p_c(y | x)]          (cross-entropy on the labelled data)
    R_P = E_(x,y)~p_g [-log p_c(y | x)]        (the "pseudo discriminative loss" on G's pairs)

One ``train_step`` is one iteration of Algorithm 1 with three batches of the trainer's batch size B:
  * unlabelled x_c: ``ctx.real_batch().x``. The trainer hands labels for *all* data; they are ignored here, and
    no loss, log line or decision reads them. C supplies the labels y_c ~ p_c(y | x_c);
  * labelled (x_d, y_d): drawn with replacement from the labelled subset with the global torch RNG (which the
    trainer checkpoints), ``labelled_batch`` of them (0: B);
  * generated (x_g, y_g): y_g class-balanced (0, 1, ..., K-1, 0, 1, ...; p(y) is uniform on the digits, and the
    authors' code does the same), z from the latent prior, x_g = G(z, y_g).
  D:  L_D = BCE(D(x_d, y_d), real) + alpha BCE(D(x_c, y_c), fake) + (1 - alpha) BCE(D(x_g, y_g), fake)
  C:  L_C = alpha mean[p_c(y_c | x_c) l(D(x_c, y_c))] + R_L + alpha_P R_P       (D's scores are constants for C:
      y_c is discrete and x_c is data, so C learns through the weight p_c(y_c | x_c), as in Algorithm 1)
  G:  L_G = (1 - alpha) mean[l(D(x_g, y_g))]
where l is log(1 - D) (``minimax``, as Algorithm 1 writes it for both C and G) or -log D (``nonsaturating``,
Goodfellow et al. 2014's practical form, which the authors' code uses for both). G's form is the objective's
(``objective.name``; the recipe: nonsaturating, as every GAN here). C's form is ``c_adversarial``, default
``minimax``, Algorithm 1's: with a drawn y_c the gradient of p_c(y_c | x) l is l times that of p_c(y_c | x), so
log(1 - D) < 0 always *raises* the drawn label's probability, the more the more D believes the pair (self-training
weighted by D), while -log D > 0 always *lowers* it, pushing C towards uniform predictions (the authors' code
offsets that with its entropy term). Under ``expectation`` both forms move p_c towards the labels D believes.
The order D, C, G is Algorithm 1's.

How y_c is drawn (``pseudo_label``): ``sample`` y_c ~ p_c(y | x_c) (Algorithm 1; the default); ``argmax`` (the
authors' code default) and ``expectation`` (their ``integrate`` flag: every class y weighted by p_c(y | x_c), the
exact expectation over p_c, K times the D evaluations).

C's forward pass on G's samples (for R_P) leaves C's batch-norm running statistics untouched (ganforge's choice):
otherwise the statistics C is evaluated with would partly be those of G's samples, which early in training are
not digits.

Paper vs authors' code. The default is the paper's core loss above, with alpha = 1/2 (paper) and alpha_P = 0.1
(authors' code); the paper switches R_P on only once G makes sensible samples (``pseudo_start``, a step count). The authors' MNIST
code adds a 30-epoch pretraining of C, an entropy term on C's predictions for unlabelled data (0.3), a class-balance
term, weight decay, parameter averaging of C for evaluation, and puts C's argmax-labelled unlabelled pairs among
D's *real* pairs (a second unlabelled batch each step: 400 of them beside only ``num_labelled / 100`` = 1 labelled
pair). Of these ganforge offers ``entropy_weight``, ``d_real_pseudo`` and ``d_labelled_batch`` (how many of the
labelled batch's pairs D sees as real; 0: all of them; the authors' 1) (all off by default) and, for averaging, the
trainer's EMA (``train.ema.enabled``: G and C are averaged); the rest is not implemented. Without
``d_real_pseudo`` D's only real pairs are the labelled ones (100 images), so G can satisfy D by reproducing them:
in a measured paper-recipe run G ignored z (every sample of a class the same image) -- see triplegan-mnist-quick.

The labelled subset. ``setup`` (run once, at step 0 of a fresh run) chooses ``labelled`` examples class-balanced
(``labelled // K`` per class; a remainder goes to randomly chosen classes) from the training data, reproducibly
from ``labelled_seed`` (default: the run seed ``train.seed``, which the builder seeded torch with:
``torch.initial_seed()``). Choosing a balanced subset reads the dataset's labels
once, as the authors' ``create_ssl_data`` does; afterwards only the subset's labels exist for training. Indices,
images and labels are the algorithm's tensor state (``labelled.index``, ``labelled.x``, ``labelled.y``; buffers of a
small module in ``state_modules``), so every checkpoint carries them (in training.safetensors; older checkpoints
kept them among the weights as ``nets.labelled.*``, which still load) and ``--resume`` continues with the same
subset. Held-out evaluation needs data that is
never trained on, labelled or not: train on ``mnist5k?split=train`` (the 4,000 digits outside the fixed 1,000
held-out ones), as the ``triplegan-mnist`` recipe does.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Literal, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import to_model_range
from ..errors import ConfigError, DataError
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, eval_mode, frozen, register_algorithm
from .controls import layout_labels, row_shared, unknown_controls
from .latent import LatentDist, draw_latent
from .needs import check_needs

PseudoLabel = Literal["sample", "argmax", "expectation"]
CAdversarial = Literal["minimax", "nonsaturating"]
SUPPORTED_OBJECTIVES = ("minimax", "nonsaturating")


def choose_labelled(labels: torch.Tensor, count: int, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of a class-balanced labelled subset: ``count // num_classes`` random examples of every class, plus
    one more for ``count % num_classes`` randomly chosen classes; grouped by class. Deterministic in ``generator``."""
    per_class, extra = divmod(count, num_classes)
    bonus = set(torch.randperm(num_classes, generator=generator)[:extra].tolist())
    chosen = []
    for c in range(num_classes):
        members = torch.nonzero(labels.cpu() == c).flatten()
        take = per_class + (c in bonus)
        if len(members) < take:
            raise DataError(f"algorithm.labelled={count} needs {take} examples of class {c}, "
                            f"but the data has {len(members)}; use a smaller algorithm.labelled")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:take]])
    return torch.cat(chosen)


@contextlib.contextmanager
def bn_statistics_frozen(module: nn.Module) -> Iterator[None]:
    """Batch-norm layers still normalise with the batch's statistics but leave their running statistics as they
    are (momentum 0): C's inference-mode statistics then come from real images only, never from G's samples."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in saved:
            m.momentum = momentum


class LabelledSubset(nn.Module):
    """The labelled part of a semi-supervised run (not a network): indices into the training data, the images as
    stored there (uint8 for images) and their labels, as buffers so checkpoints carry them."""

    def __init__(self, size: int, sample_shape: tuple[int, ...], image: bool):
        super().__init__()
        self.register_buffer("index", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("x", torch.zeros((size, *sample_shape), dtype=torch.uint8 if image else torch.float32))
        self.register_buffer("y", torch.zeros(size, dtype=torch.long))

    @property
    def chosen(self) -> bool:
        return bool((self.index >= 0).all())

    @torch.no_grad()
    def fill(self, index: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> None:
        self.index.copy_(index)
        self.x.copy_(x)
        self.y.copy_(y)


@register_algorithm
class TripleGAN(Algorithm):
    name = "triplegan"
    source = ("seed 002 part 3.2 (TripleGAN); Li et al. 2017, Triple Generative Adversarial Nets, Algorithm 1; "
              "authors' code github.com/zhenxuan00/triple-gan")
    roles = {"G": "generator", "C": "classifier", "D": "pair_discriminator"}
    optimizer_groups = {"D": ("D",), "C": ("C",), "G": ("G",)}
    ema_networks = ("G", "C")
    sampling_network = "G"
    needs_labels = True
    # Its D, C and G losses are its own per-pair BCE terms (weighted by p_c for C), so no objective need fits them.
    supported_needs = frozenset[Need]()
    applies_sample_penalties = False    # its D losses are its own log-likelihood terms, no needs.penalty
    refused_because = {need: "its losses are its own per-pair log-likelihood terms" for need in Need}

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 100,
                 latent_dist: LatentDist = "uniform", latent_std: float = 1.0, labelled: int = 100,
                 labelled_seed: int | None = None, labelled_batch: int = 0, alpha: float = 0.5,
                 alpha_p: float = 0.1, pseudo_start: int = 0, pseudo_label: PseudoLabel = "sample",
                 c_adversarial: CAdversarial = "minimax", entropy_weight: float = 0.0, d_real_pseudo: bool = False,
                 d_labelled_batch: int = 0):
        super().__init__(nets, objective, data)
        check_needs(self.name, objective, self.supported_needs, why=self.refused_because,
                    instead=f"use objective.name={' or '.join(SUPPORTED_OBJECTIVES)}")
        if objective.name not in SUPPORTED_OBJECTIVES:
            raise ConfigError(f"objective '{objective.name}' does not fit algorithm 'triplegan', which weights "
                              f"per-pair log-likelihood terms of its own; use objective.name="
                              f"{' or '.join(SUPPORTED_OBJECTIVES)}")
        if latent_dim < 1 or latent_std <= 0:
            raise ConfigError(f"algorithm: latent_dim must be >= 1 and latent_std > 0 (got {latent_dim}, {latent_std})")
        if data.num_classes < 2:
            raise DataError("algorithm 'triplegan' needs labelled data with at least 2 classes")
        if labelled < data.num_classes:
            raise ConfigError(f"algorithm.labelled must be >= the number of classes ({data.num_classes}) so every "
                              f"class has a labelled example, got {labelled}")
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"algorithm.alpha must be in [0, 1] (the share of C's pairs among D's fakes), got {alpha}")
        if alpha_p < 0 or entropy_weight < 0 or pseudo_start < 0 or labelled_batch < 0 or d_labelled_batch < 0:
            raise ConfigError("algorithm: alpha_p, entropy_weight, pseudo_start, labelled_batch and d_labelled_batch "
                              f"must be >= 0 (got {alpha_p}, {entropy_weight}, {pseudo_start}, {labelled_batch}, "
                              f"{d_labelled_batch})")
        if labelled_batch and d_labelled_batch > labelled_batch:
            raise ConfigError(f"algorithm.d_labelled_batch={d_labelled_batch} exceeds algorithm.labelled_batch="
                              f"{labelled_batch}: D's labelled pairs are a part of the labelled batch; lower it")
        self.latent_dim, self.latent_dist, self.latent_std = latent_dim, latent_dist, latent_std
        self.labelled, self.labelled_seed, self.labelled_batch = labelled, labelled_seed, labelled_batch
        self.alpha, self.alpha_p, self.pseudo_start = alpha, alpha_p, pseudo_start
        self.pseudo_label, self.c_adversarial, self.entropy_weight = pseudo_label, c_adversarial, entropy_weight
        self.d_real_pseudo, self.d_labelled_batch = d_real_pseudo, d_labelled_batch
        self.num_classes = data.num_classes
        # State, not a network: no optimizer group, EMA copy or weights file includes it.
        self.state_modules["labelled"] = LabelledSubset(labelled, tuple(data.sample_shape), data.kind == "image")

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        ctx = super().network_context(params, data)
        ctx["G"]["cond_dim"] = data.num_classes      # G(z, onehot(y))
        return ctx

    # ---------------------------------------------------------------------------------------- setup
    def setup(self, dataset: Any, device: torch.device) -> dict[str, Any]:
        if dataset.y is None:
            raise DataError(f"algorithm 'triplegan' needs labels to choose its labelled subset; {dataset.name} has none")
        seed = torch.initial_seed() if self.labelled_seed is None else self.labelled_seed
        index = choose_labelled(dataset.y, self.labelled, self.num_classes, torch.Generator().manual_seed(seed))
        subset = self.state_modules["labelled"]
        subset.fill(index.to(subset.index.device), dataset.x[index].to(subset.x.device),
                    dataset.y[index].to(subset.y.device))
        per_class = torch.bincount(subset.y.cpu(), minlength=self.num_classes)
        return {"labelled": int(len(index)), "labelled_per_class": per_class.tolist(), "labelled_seed": int(seed),
                "unlabelled_pool": int(len(dataset))}

    def legacy_state_keys(self) -> dict[str, str | None]:
        # Checkpoints written while the subset was kept among the nets (as a fake network, key "labelled").
        return {"nets.labelled.": "labelled."}

    def labelled_data(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(indices into the training data, images as stored, labels) of the labelled subset."""
        subset = self.state_modules["labelled"]
        if not subset.chosen:
            raise RuntimeError("the labelled subset is chosen in setup(); run it (the trainer does at step 0) first")
        return subset.index, subset.x, subset.y

    # ---------------------------------------------------------------------------------------- losses
    def d_real_terms(self, score: torch.Tensor) -> torch.Tensor:
        """-log D(x, y) per pair (target ``real_label`` of the objective: 1, or < 1 for one-sided smoothing)."""
        s = score.float()
        return F.binary_cross_entropy_with_logits(s, torch.full_like(s, getattr(self.objective, "real_label", 1.0)),
                                                  reduction="none")

    @staticmethod
    def d_fake_terms(score: torch.Tensor) -> torch.Tensor:
        """-log(1 - D(x, y)) per pair = softplus(score)."""
        return F.softplus(score.float())

    @staticmethod
    def adversarial_terms(score: torch.Tensor, form: str) -> torch.Tensor:
        """What C or G minimises per pair: log(1 - D) (``minimax``, Algorithm 1) or -log D (``nonsaturating``)."""
        s = score.float()
        return -F.softplus(s) if form == "minimax" else F.softplus(-s)

    def pseudo_pairs(self, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """C's pairs for unlabelled x: (row of x for each pair, label of each pair, weight p_c(y | x) of each pair).

        ``sample``/``argmax``: one pair per x; ``expectation``: K pairs per x (x repeated, labels 0..K-1)."""
        n, k = probs.shape
        rows = torch.arange(n, device=probs.device)
        if self.pseudo_label == "expectation":
            rows = rows.repeat_interleave(k)
            labels = torch.arange(k, device=probs.device).repeat(n)
        elif self.pseudo_label == "argmax":
            labels = probs.detach().argmax(1)
        else:
            labels = torch.multinomial(probs.detach().float(), 1).squeeze(1)
        return rows, labels, probs[rows, labels]

    def onehot(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels, self.num_classes).float()

    def noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        return draw_latent(n, self.latent_dim, self.latent_dist, self.latent_std, device, generator)

    def labelled_batch_of(self, size: int, value_range: tuple[float, float] | None) -> tuple[torch.Tensor, torch.Tensor]:
        _, xs, ys = self.labelled_data()
        pick = torch.randint(len(ys), (size,), device=ys.device)
        x = xs[pick]
        return (to_model_range(x, value_range) if x.dtype == torch.uint8 else x.float()), ys[pick]

    # ---------------------------------------------------------------------------------------- training
    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        G, C, D = self.nets["G"], self.nets["C"], self.nets["D"]
        a = self.alpha
        # Unlabelled data: the batch's labels are deliberately dropped (only the subset's labels may be used).
        x_c = ctx.real_batch().x
        n, dev = len(x_c), x_c.device
        x_d, y_d = self.labelled_batch_of(self.labelled_batch or n, self.value_range)
        y_g = torch.arange(n, device=dev) % self.num_classes
        z = self.noise(n, dev)
        with ctx.autocast():
            x_g = G(z, self.onehot(y_g))
            probs = F.softmax(C(x_c).float(), 1)         # p_c(y | x_c); its graph is C's, kept for C's update
        rows, y_c, weight = self.pseudo_pairs(probs)
        x_c_pairs = x_c[rows]

        # D: ascend log D(real pairs) + alpha log(1 - D(C's pairs)) + (1 - alpha) log(1 - D(G's pairs)).
        x_real, y_real = x_d, y_d
        if self.d_labelled_batch:
            if self.d_labelled_batch > len(x_d):
                raise ConfigError(f"algorithm.d_labelled_batch={self.d_labelled_batch} exceeds the labelled batch "
                                  f"({len(x_d)}): D's labelled pairs are a part of it; lower it")
            # the batch was drawn at random, so its first pairs are a random draw too
            x_real, y_real = x_d[:self.d_labelled_batch], y_d[:self.d_labelled_batch]
        if self.d_real_pseudo:
            # The authors' code: a second unlabelled batch (labels dropped too), labelled by C's argmax, counts as
            # real pairs beside the labelled ones.
            x_u = ctx.real_batch().x
            with torch.no_grad(), ctx.autocast():
                y_u = C(x_u).argmax(1)
            x_real, y_real = torch.cat([x_real, x_u]), torch.cat([y_real, y_u])
        with ctx.autocast():
            s_d = D(x_real, self.onehot(y_real))
            s_c = D(x_c_pairs, self.onehot(y_c))
            s_g = D(x_g.detach(), self.onehot(y_g))
        # A drawn y_c counts once (Algorithm 1); the expectation weights each class by p_c(y | x).
        d_weight = weight.detach() if self.pseudo_label == "expectation" else torch.ones_like(weight)
        fake_c = (d_weight * self.d_fake_terms(s_c)).sum() / n
        loss_d = self.d_real_terms(s_d).mean() + a * fake_c + (1 - a) * self.d_fake_terms(s_g).mean()
        ctx.update("D", loss_d)

        # C: alpha E_{p_c}[l(D(x, y))] through p_c's weights, + R_L + alpha_P R_P (+ entropy, the authors' code).
        with torch.no_grad(), ctx.autocast():
            s_c_now = D(x_c_pairs, self.onehot(y_c))       # the updated D's view of C's pairs (constants for C)
        c_adv = (weight * self.adversarial_terms(s_c_now, self.c_adversarial)).sum() / n
        with ctx.autocast():
            logits_d = C(x_d)
        r_l = F.cross_entropy(logits_d.float(), y_d)
        loss_c = a * c_adv + r_l
        use_pseudo = self.alpha_p > 0 and ctx.step >= self.pseudo_start
        r_p = torch.zeros((), device=dev)
        if use_pseudo:
            with ctx.autocast(), bn_statistics_frozen(C):
                logits_g = C(x_g.detach())
            r_p = F.cross_entropy(logits_g.float(), y_g)
            loss_c = loss_c + self.alpha_p * r_p
        entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(1).mean()
        if self.entropy_weight > 0:
            loss_c = loss_c + self.entropy_weight * entropy
        ctx.update("C", loss_c)

        # G: descend (1 - alpha) l(D(G(z, y), y)).
        with frozen(D), ctx.autocast():
            s_g_for_g = D(x_g, self.onehot(y_g))
        loss_g = (1 - a) * self.adversarial_terms(s_g_for_g, self.objective.name).mean()
        ctx.update("G", loss_g)

        return {"d_loss": loss_d.detach(), "d_real": s_d.detach().float().mean(),
                "d_fake_c": s_c.detach().float().mean(), "d_fake_g": s_g.detach().float().mean(),
                "c_loss": loss_c.detach(), "c_adv": c_adv.detach(), "c_ce_labelled": r_l.detach(),
                "c_ce_generated": r_p.detach(), "c_entropy": entropy.detach(),
                "c_acc_labelled": (logits_d.detach().argmax(1) == y_d).float().mean(), "g_loss": loss_g.detach()}

    # ---------------------------------------------------------------------------------------- using C and G
    @torch.no_grad()
    def classify(self, images: torch.Tensor, nets: Mapping[str, nn.Module] | None = None,
                 batch_size: int = 500) -> torch.Tensor:
        """C's class probabilities (inference mode) for images in the model's value range."""
        C = (nets or self.nets)["C"]
        with eval_mode(C):
            return torch.cat([F.softmax(C(images[i:i + batch_size]).float(), 1)
                              for i in range(0, len(images), batch_size)])

    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      **controls: Any) -> dict[str, torch.Tensor]:
        unknown_controls(controls, ("label", "labels", "share_noise"), f"'{self.name}' (a class-conditional generator)")
        labels = layout_labels(n, self.num_classes, controls, generator)
        z = row_shared(n, controls, lambda m: self.noise(m, torch.device("cpu"), generator))
        return {"z": z.to(device), "y": labels.to(device)}

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return (nets or self.nets)["G"](inputs["z"], self.onehot(inputs["y"]))

    def sample_labels(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        return inputs["y"]
