"""StackedGAN as the book implements it (seed 004 sections 10.3-10.4, stackedgan-mnist-6.2.1.py listings
6.2.1-6.2.5; spec 6). Huang et al. 2017, "Stacked Generative Adversarial Networks".

A pretrained encoder (a CNN classifier) is cut in two stages, ``E0``: image x -> 256-d feature f1 and ``E1``:
f1 -> label y. One GAN per stage learns to invert its encoder stage, each with its own noise code:

    G1(y, z1) -> f1        D1(f1) -> (real/fake, Q1: z1 estimate)
    G0(f1, z0) -> x        D0(x) -> (real/fake, Q0: z0 estimate)

and sampling runs the stack: label -> G1(label, z1) -> feature -> G0(feature, z0) -> image.

Losses (Table 6.2.1, eqs. 6.2.1-6.2.5, as the listings weigh them):
- D_i: BCE(real f_i -> 1, fake f_i -> 0) + w_ent_i * MSE(Q_i(f_i), z_i)  (the Q network shares D_i's layers, so
  its entropy loss is trained with D_i);
- G_i: BCE(fake -> 1) + w_ent_i * MSE(Q_i(G_i(.)), z_i) + w_cond_i * conditional_i, where conditional_0 =
  MSE(E0(G0(f1, z0)), f1) and conditional_1 = categorical cross-entropy(E1(G1(y, z1)), y) ("classifier error");
- weights from the code: w_ent_0 = 10, w_ent_1 = 1, all others 1. (The text says "all 1.0 except the entropy
  loss, 10.0"; the listing uses 10 only for stage 0.)

Training (listing 6.2.5), after the encoder is pretrained in ``setup``: each step draws one real batch (x, y),
f1 = E0(x) from the frozen encoder, then updates in the book's order D1, D0, G1, G0 -- the stages trained
*independently*: G1 is conditioned on the batch's real labels and G0 on the real features E0(x), never on G1's
output (the paper's later joint training is not in the book's code). Each D sees the concatenated [real; fake]
batch (each loss a mean over 2B); the Q target of the real half is the fake half's codes (the listing's
``z1 = concat(fake_z1, fake_z1)``; ``q_loss_on_real: false`` masks it). Each network has its own optimizer group
(D1, D0, G1, G0) with the listing's settings; the listing shares one RMSprop instance between dis0 and dis1 and
one between adv0 and adv1, which differs only in the shared iteration counter of Keras' (negligible, 6e-8) decay
(spec 6.4), and separate groups let a stage's learning rate be set on its own. The encoders are in no optimizer
group: only ``setup`` trains them, and they stay frozen afterwards (their weights are checkpointed).

Encoder pretraining (``train_encoder``, the book repository: Adam with Keras defaults, categorical cross-entropy,
10 epochs, batch 64, shuffled each epoch): on a class-balanced train split of the run's data, its held-out
accuracy measured on the rest (for mnist5k: 4000 / 1000 digits, the split ``split_train_test(seed=0)`` that the
domain evaluator also holds out). Deterministic: its shuffling is seeded from the run's seeded RNG.

Other objectives replace the BCE terms of both stages, with what they need (``algorithms/needs.py``) applied to each
stage's source score: ``wgan``'s weight clipping of D1 and D0 after their updates, ``wgan-gp``'s penalty on each D's
interpolates (features for D1, images for D0; logged ``d1_gp``, ``d0_gp``), the relativistic objectives' real scores
(D1 of the real features, D0 of the real images) in G1's and G0's losses. Refused: auto-encoder objectives (ebgan,
began; these Ds have Q heads), and objectives with a state updated after each D step (BEGAN's k_t): one objective
state cannot follow two discriminators.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Literal, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import Dataset, to_model_range
from ..data.mnist5k import split_train_test
from ..errors import ConfigError, DataError
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, eval_mode, frozen, register_algorithm
from .controls import (check_names, layout_labels, row_constant, row_shared, stage_name, staged, traversal,
                       unknown_controls)
from .latent import draw_latent
from .needs import check_needs


@register_algorithm
class StackedGAN(Algorithm):
    name = "stackedgan"
    source = "seed 004 sections 10.3-10.4, stackedgan-mnist-6.2.1.py listings 6.2.1-6.2.5 (spec 6); Huang et al. 2017"
    roles = {"E0": "feature-encoder", "E1": "feature-classifier", "G1": "feature-generator", "G0": "generator",
             "D1": "feature-discriminator", "D0": "discriminator"}
    optimizer_groups = {"D1": ("D1",), "D0": ("D0",), "G1": ("G1",), "G0": ("G0",)}
    ema_networks = ("G1", "G0")
    sampling_network = "G0"
    needs_labels = True
    code_names = ("z0", "z1")
    supported_needs = frozenset({Need.WEIGHT_CLIP, Need.GRADIENT_PENALTY, Need.REAL_SCORES_IN_G, Need.JOINT_D_LOSS})
    refused_because = {Need.AFTER_D_STEP: "its two stages' discriminators would both update the one objective state",
                       Need.ENERGY_D: "its discriminators have Q heads, they are not auto-encoders",
                       Need.PULLAWAY_TERM: "its discriminators have no auto-encoder codes"}

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 50,
                 feature_dim: int = 256, z_std: float = 0.5, entropy_weight0: float = 10.0,
                 entropy_weight1: float = 1.0, conditional_weight0: float = 1.0, conditional_weight1: float = 1.0,
                 q_loss_on_real: bool = True, fake_bn: Literal["train", "eval"] = "train", encoder_epochs: int = 10,
                 encoder_batch_size: int = 64, encoder_lr: float = 1e-3):
        super().__init__(nets, objective, data)
        self.needs = check_needs(self.name, objective, self.supported_needs, why=self.refused_because)
        if data.kind != "image":
            raise DataError("stackedgan inverts an image classifier; it needs labelled image data (e.g. mnist5k)")
        if latent_dim < 1 or feature_dim < 1 or z_std <= 0:
            raise ConfigError(f"algorithm: latent_dim and feature_dim must be >= 1 and z_std > 0 (got {latent_dim}, "
                              f"{feature_dim}, {z_std})")
        weights = (entropy_weight0, entropy_weight1, conditional_weight0, conditional_weight1)
        if min(weights) < 0:
            raise ConfigError(f"algorithm: the entropy and conditional weights must be >= 0, got {list(weights)}")
        if encoder_epochs < 0 or encoder_batch_size < 1 or encoder_lr <= 0:
            raise ConfigError(f"algorithm: encoder_epochs must be >= 0, encoder_batch_size >= 1 and encoder_lr > 0 "
                              f"(got {encoder_epochs}, {encoder_batch_size}, {encoder_lr})")
        self._check_sizes(latent_dim, feature_dim)
        self.z_dim, self.feature_dim, self.z_std = latent_dim, feature_dim, z_std
        self.entropy_weights = (entropy_weight0, entropy_weight1)
        self.conditional_weights = (conditional_weight0, conditional_weight1)
        self.q_loss_on_real, self.fake_bn = q_loss_on_real, fake_bn
        self.encoder_epochs, self.encoder_batch_size, self.encoder_lr = encoder_epochs, encoder_batch_size, encoder_lr
        self.encoder_facts: dict[str, Any] = {}
        # The encoder is trained once, in setup(), then frozen: it never accumulates gradients in the GAN steps
        # (gradients still flow through it to G0 / G1). Set here, not in setup, so a resumed run is frozen too.
        for key in ("E0", "E1"):
            self.nets[key].requires_grad_(False)

    def _check_sizes(self, z_dim: int, feature_dim: int) -> None:
        """The stage sizes are algorithm settings handed to every network; a network section must not change them."""
        for key in ("E0", "E1", "G1", "D1"):
            if getattr(self.nets[key], "feature_dim", feature_dim) != feature_dim:
                raise ConfigError(f"networks.{key}.feature_dim differs from algorithm.feature_dim={feature_dim}; "
                                  "set algorithm.feature_dim only")
        for key in ("G1", "D1", "D0"):
            if getattr(self.nets[key], "latent_dim", z_dim) != z_dim:
                raise ConfigError(f"networks.{key}.latent_dim differs from algorithm.latent_dim={z_dim}; "
                                  "set algorithm.latent_dim only")
        fc = getattr(self.nets["G0"], "fc", None)
        if isinstance(fc, nn.Linear) and fc.in_features != z_dim + feature_dim:
            raise ConfigError(f"networks.G0 takes {fc.in_features} inputs, but z0 + feature1 = {z_dim + feature_dim}")

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        ctx = super().network_context(params, data)
        z = params.get("latent_dim", cls.default_param("latent_dim"))
        f = params.get("feature_dim", cls.default_param("feature_dim"))
        for key in ctx:
            ctx[key].update(latent_dim=z, feature_dim=f)
        ctx["G0"]["cond_dim"] = f      # gan.generator(feature1, codes=z0): the feature is G0's condition
        return ctx

    # ---------------------------------------------------------------------------------------- encoder
    def setup(self, dataset: Dataset, device: torch.device) -> dict[str, Any]:
        """Pretrain Encoder0 + Encoder1 as one classifier (the book's ``train_encoder``), then freeze them."""
        if dataset.y is None:
            raise DataError(f"stackedgan pretrains its encoder as a classifier, but {dataset.name} has no labels")
        counts = torch.bincount(dataset.y, minlength=dataset.num_classes)
        per_class = max(1, min(int(counts.min()) // 5, 1000))      # 100 of 500 per digit for mnist5k
        train, test = split_train_test(dataset, test_per_class=per_class, seed=0)
        value_range = self.value_range
        assert value_range is not None   # an image generator (checked by build)
        x_train = to_model_range(train.x.to(device), value_range)
        y_train = train.y.to(device)
        E0, E1 = self.nets["E0"], self.nets["E1"]
        # Shuffling seeded from the run's seeded RNG: the same run seed gives the same encoder.
        order = torch.Generator().manual_seed(int(torch.randint(0, 2 ** 31 - 1, ()).item()))
        params = [p for m in (E0, E1) for p in m.parameters()]
        opt = torch.optim.Adam(params, lr=self.encoder_lr, betas=(0.9, 0.999), eps=1e-7)   # Keras 'adam'
        t0 = time.time()
        with torch.enable_grad():
            for p in params:
                p.requires_grad_(True)
            try:
                for _ in range(self.encoder_epochs):
                    perm = torch.randperm(len(x_train), generator=order).to(device)
                    for i in range(0, len(perm), self.encoder_batch_size):
                        idx = perm[i:i + self.encoder_batch_size]
                        loss = F.cross_entropy(E1(E0(x_train[idx])), y_train[idx])
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
            finally:
                for p in params:
                    p.requires_grad_(False)
        seconds = time.time() - t0
        self.encoder_facts = {
            "encoder_test_accuracy": round(self.encoder_accuracy(test.x.to(device), test.y.to(device)), 4),
            "encoder_train_accuracy": round(self.encoder_accuracy(train.x.to(device), y_train), 4),
            "encoder_epochs": self.encoder_epochs, "encoder_train_size": len(train), "encoder_test_size": len(test),
            "encoder_seconds": round(seconds, 1)}
        return dict(self.encoder_facts)

    @torch.no_grad()
    def encoder_accuracy(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
        """Share of ``images`` (uint8, or floats in the model's range) that E1(E0(x)) classifies as ``labels``."""
        if len(images) == 0:
            return float("nan")
        hits = 0
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size]
            x = to_model_range(x, self.value_range) if x.dtype == torch.uint8 else x
            hits += int((self.nets["E1"](self.nets["E0"](x)).argmax(1) == labels[i:i + batch_size]).sum())
        return hits / len(images)

    # ---------------------------------------------------------------------------------------- training
    def noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        """z_i ~ N(0, 0.5^2), n x z_dim (``np.random.normal(scale=0.5, size=[n, z_dim])``)."""
        return draw_latent(n, self.z_dim, "normal", self.z_std, device, generator)

    def one_hot(self, label: torch.Tensor) -> torch.Tensor:
        return F.one_hot(label, self.data.num_classes).float()

    def _predict(self, G: nn.Module) -> contextlib.AbstractContextManager:
        """How the D-step fakes are made: Keras ``predict()`` is BN inference mode (``fake_bn: eval``)."""
        return eval_mode(G) if self.fake_bn == "eval" else contextlib.nullcontext()

    def _discriminator_loss(self, out: Any, n: int, z: torch.Tensor, weight: float) -> tuple[torch.Tensor, ...]:
        """BCE over [real; fake] (mean over 2n) + weight * MSE of Q's estimate against the codes."""
        src = 0.5 * self.objective.d_loss(out.source[:n], out.source[n:])
        if self.q_loss_on_real:
            ent = F.mse_loss(out.code.float(), torch.cat([z, z]))   # the listing's concat(fake_z, fake_z)
        else:
            ent = F.mse_loss(out.code[n:].float(), z)
        return src + weight * ent, src, ent

    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        E0, E1, G0, G1, D0, D1 = (self.nets[k] for k in ("E0", "E1", "G0", "G1", "D0", "D1"))
        batch = ctx.real_batch()
        real, label = batch.x, batch.y
        n, device = len(real), real.device
        y = self.one_hot(label)
        (ent0, ent1), (cond0, cond1) = self.entropy_weights, self.conditional_weights
        needs = self.needs
        penalties: dict[str, torch.Tensor] = {}     # the objective's D penalties (WGAN-GP), for the logs
        with torch.no_grad(), ctx.autocast():
            real_f1 = E0(real).float()                       # enc0.predict(real_images)

        # (1) Discriminator1 + Q1 on [real feature1; G1(real labels, z1)]
        z1 = self.noise(n, device)
        with torch.no_grad(), self._predict(G1), ctx.autocast():
            fake_f1 = G1(z1, y).float()
        with ctx.autocast():
            out1 = D1(torch.cat([real_f1, fake_f1]))
        d1_loss, d1_src, d1_ent = self._discriminator_loss(out1, n, z1, ent1)
        ctx.update("D1", needs.penalty(d1_loss, lambda f: D1(f).source, real_f1, fake_f1, penalties, "d1_gp"))
        needs.clip(D1)

        # (2) Discriminator0 + Q0 on [real images; G0(real feature1, z0)]
        z0 = self.noise(n, device)
        with torch.no_grad(), self._predict(G0), ctx.autocast():
            fake_x = G0(z0, real_f1)
        with ctx.autocast():
            out0 = D0(torch.cat([real, fake_x.to(real.dtype)]))
        d0_loss, d0_src, d0_ent = self._discriminator_loss(out0, n, z0, ent0)
        ctx.update("D0", needs.penalty(d0_loss, lambda x: D0(x).source, real, fake_x, penalties, "d0_gp"))
        needs.clip(D0)

        # (3) Adversarial1: G1 through frozen D1 and E1, conditioned on the real labels
        z1 = self.noise(n, device)
        with frozen(D1, E1):
            with ctx.autocast():
                f1 = G1(z1, y)
                out, logits = D1(f1), E1(f1)
                real_src = needs.real_scores(lambda: D1(real_f1).source)
            g1_adv = self.objective.g_loss(out.source, real_src)
            g1_ent = F.mse_loss(out.code.float(), z1)
            g1_cond = F.cross_entropy(logits.float(), label)
            g1_loss = g1_adv + ent1 * g1_ent + cond1 * g1_cond
            ctx.update("G1", g1_loss)

        # (4) Adversarial0: G0 through frozen D0 and E0, conditioned on the real features
        z0 = self.noise(n, device)
        with frozen(D0, E0):
            with ctx.autocast():
                x = G0(z0, real_f1)
                out, f1_recon = D0(x), E0(x)
                real_src = needs.real_scores(lambda: D0(real).source)
            g0_adv = self.objective.g_loss(out.source, real_src)
            g0_ent = F.mse_loss(out.code.float(), z0)
            g0_cond = F.mse_loss(f1_recon.float(), real_f1)
            g0_loss = g0_adv + ent0 * g0_ent + cond0 * g0_cond
            ctx.update("G0", g0_loss)

        return {"d1_loss": d1_loss.detach(), "d1_src_loss": d1_src.detach(), "d1_ent_loss": d1_ent.detach(),
                "d0_loss": d0_loss.detach(), "d0_src_loss": d0_src.detach(), "d0_ent_loss": d0_ent.detach(),
                "g1_loss": g1_loss.detach(), "g1_adv_loss": g1_adv.detach(), "g1_ent_loss": g1_ent.detach(),
                "g1_cond_loss": g1_cond.detach(), "g0_loss": g0_loss.detach(), "g0_adv_loss": g0_adv.detach(),
                "g0_ent_loss": g0_ent.detach(), "g0_cond_loss": g0_cond.detach(),
                # the listing's enc1_acc: Encoder1's accuracy on G1's features against the labels they were made for
                "enc1_acc": (logits.detach().argmax(1) == label).float().mean(), **penalties}

    # ---------------------------------------------------------------------------------------- sampling
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      **controls: Any) -> dict[str, torch.Tensor]:
        """Controls: ``label``/``labels`` (a row per class); ``stage="z0"`` (or z1): only that code varies along each
        row, the label and the other code shared along it; ``traverse=("z0", lo, hi)``: the book's figures, z0 a
        constant vector swept from lo to hi along each row; ``fix={"z1": 0}``: a code held at a constant vector;
        ``share_noise``: the same codes down each column."""
        model = "'stackedgan'"
        unknown_controls(controls, ("label", "labels", "traverse", "fix", "share_noise", "stage"), model)
        fix = controls.get("fix") or {}
        check_names(fix, self.code_names, "--fix", model)
        stage = stage_name(controls, self.code_names, model)
        trav = traversal(n, controls)
        if trav is not None:
            check_names({trav[0]: None}, self.code_names, "--code", model)
        k = self.data.num_classes
        if controls.get("label") is not None or controls.get("labels"):
            label = layout_labels(n, k, controls, generator)
        elif trav is not None or stage is not None:   # a row keeps one label
            label = row_constant(n, controls, lambda m: torch.randint(k, (m,), generator=generator))
        else:
            label = torch.randint(k, (n,), generator=generator)
        codes = {}
        for name in self.code_names:
            draw = lambda m: self.noise(m, torch.device("cpu"), generator)   # noqa: E731
            if name in fix:
                codes[name] = torch.full((n, self.z_dim), float(fix[name]))
            elif trav is not None and trav[0] == name:
                codes[name] = trav[1].float().view(n, 1).expand(n, self.z_dim).clone()
            elif stage is not None:
                codes[name] = staged(n, controls, name, stage, draw)
            else:
                codes[name] = row_shared(n, controls, draw)
        return {"label": label.to(device), "z0": codes["z0"].to(device), "z1": codes["z1"].to(device)}

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        """Through both stages: feature1 = G1(label, z1), image = G0(feature1, z0)."""
        nets = nets or self.nets
        feature = nets["G1"](inputs["z1"], self.one_hot(inputs["label"]).to(inputs["z1"].dtype))
        return nets["G0"](inputs["z0"], feature)

    def sample_labels(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        return inputs["label"]

    # ---------------------------------------------------------------------------------------- state
    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "encoder": self.encoder_facts}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.encoder_facts = dict(state.get("encoder", {}))
