"""The unconditional adversarial step: n_critic discriminator updates, then one generator update.

Goodfellow et al. 2014, algorithm 1; seed 000 ``gan.train`` (spec 0.8) and WGAN algorithm 5.1.1 (n_critic);
seed 001's training function. How the discriminator sees one real and one fake batch is a choice the
sources make differently, so it is a parameter (``d_update``):

- ``sum``: one update on ``L_D = loss(real) + loss(fake)`` from two forward passes (the usual PyTorch form);
- ``combined``: one update on the concatenated 2B batch, loss averaged over it (seed 000 ``gan.train``:
  ``discriminator.train_on_batch(concat(real, fake), [1]*B + [0]*B)``), i.e. half the ``sum`` loss, and BN in D
  (if any) sees both halves together;
- ``separate``: two updates, first on the real batch, then on the fake batch (seed 000 WGAN listing 5.1.2,
  "this tweak prevents vanishing gradients"; seed 001 ``train()``).

``fake_bn='eval'`` makes the discriminator-step fakes with G's BatchNorm in inference mode, as Keras'
``generator.predict()`` does in the book code; ``'train'`` uses batch statistics (the common PyTorch port).

Regularizers and training techniques (all off by default; the default step is the plain one above):

==========================  ========================================================================================
parameter                   what it does (source)
==========================  ========================================================================================
``weight_clip``             clamp every D parameter to [-c, c] after each critic iteration (after both updates in
                            ``separate`` mode, as the book's listing 5.1.2 does); unset, the objective's
                            ``clip_value`` applies (``wgan``: 0.01; seed 000 eq. 5.1.20, algorithm 5.1.1 line 7)
objective ``d_penalty``     WGAN-GP's lambda * E[(||grad D(x_hat)|| - 1)^2] on interpolates, added to every critic
                            loss (``objective.gp_weight``, 10; seed 002 part 1 section 6)
``gp_weight``/``gp_center`` the same gradient penalty for any other objective (e.g. hinge + GP, GLS-GAN)
``r1_gamma``                R1 = gamma/2 E[||grad D(x)||^2] on reals (seed 002 part 2 section 4.3)
``r1_every``                lazy R1 (Karras et al. 2020, StyleGAN2 section 3.1): R1 in every k-th critic iteration
                            only, backpropagated with gain k into that iteration's real-batch update (one optimizer
                            step; StyleGAN2 takes a separate one); 1, the default: R1 in every update
``orthogonal_reg``          {G: beta, D: beta}: BigGAN's beta ||W^T W (.) (1 - I)||_F^2 added to that player's loss
                            (seed 002 part 2 section 4 "Ortho.")
``historical_averaging``    {G: w, D: w}: w ||theta - mean_t theta||^2 added to that player's loss; the exact running
                            mean is the algorithm's tensor state (``historical_average.<net>.*``, checkpointed in
                            training.safetensors; Salimans et al. 2016; seed 002 part 2 section 2)
``generator_loss``          ``feature_matching``: G minimises ||E f(x) - E f(G(z))||^2 over D's intermediate features
                            instead of the objective's G loss (Salimans et al. 2016 section 3.1; seed 002 part 2
                            section 2); ``objective+feature_matching`` adds it (``feature_matching_weight``)
``vbn_refresh``             generators built with ``norm: virtual``: the reference batch of noise is fixed in
                            ``setup``; ``every_step`` replays it through the current G before each step (the paper)
``vbn_reference_grad``      with ``every_step``: the G step also trains through the reference statistics (the
                            reference batch replayed in its graph, as the authors' code; default); false keeps them
                            constants (one forward less; measured to leave G at checkerboards: nn/vbn.py)
``ae_pretrain_steps``       energy-based D only: pre-train the auto-encoder on real data before the game (seed 002
                            part 3 section 2: EBGAN's auto-encoder "is trained beforehand on real images")
``reuse_fake``              the G step trains through the last critic iteration's G(z) (its noise, kept with its
                            graph) instead of drawing new noise and running G again, as the PyTorch DCGAN example
                            does; the books' loops draw fresh noise for G, so it is off by default. Exactly the G
                            step on the critic's noise (G is unchanged in between); G's BatchNorm running statistics
                            see one forward a step instead of two. Saves G's forward (speed: README, bench/speed.py)
==========================  ========================================================================================

One-sided label smoothing is the classic objectives' ``real_label`` (it changes D's targets for real samples only);
spectral normalisation is ``networks.D.spectral_norm: true``; TTUR is simply different ``optim.D.lr`` / ``optim.G.lr``
(seed 002 part 2 section 3.3). EBGAN and BEGAN need an auto-encoder discriminator whose output is the per-sample
reconstruction energy (``models/autoencoder.py``); EBGAN's pull-away term (``objective.pt_weight``) is computed on
the encoder's embedding of the fake batch, and BEGAN's controller state k_t and convergence measure M are logged
(``k_t``, ``M``) and k_t is checkpointed with the objective's state.

Penalties are added where the loss they belong to is: in ``separate`` mode, R1 to the real-batch update, the
gradient penalty and the parameter penalties (orthogonal, historical) to the fake-batch update, so each is counted
once per critic iteration. Input-gradient penalties run in float32 with autocast off (``regularizers.py``).

Gradient accumulation (``train.accumulate: N``, ``trainer.py``): every update of a step is computed on N
consecutive micro-batches of the step's real batch, noise and (D step) fakes, each one's mean loss and per-sample
penalties (R1, GP) backpropagated with gain rows/B, the parameter penalties once per update, then one optimizer
step. The random draws are those of N = 1 except the GP's interpolation coefficients (drawn per micro-batch). With
N = 1 and ``r1_every`` = 1 each update is the one ``ctx.update`` it always was.
"""
from __future__ import annotations

import contextlib
from typing import Any, Literal, Mapping

import torch
import torch.nn as nn

from ..data import to_model_range
from ..errors import ConfigError
from ..objectives import Need, Objective
from ..objectives.energy import pullaway_term
from ..regularizers import (HistoricalAverageBuffers, feature_matching_loss, gradient_penalty,
                            orthogonal_regularization, r1_penalty)
from .base import (Algorithm, DataInfo, StepContext, accumulation, eval_mode, frozen, micro_batches,
                   register_algorithm)
from .controls import unknown_controls
from .latent import LatentDist, draw_latent
from .needs import ALL_NEEDS, check_needs, clip_critics

GeneratorLoss = Literal["objective", "feature_matching", "objective+feature_matching"]
AE_PRETRAIN_BATCH = 64


@register_algorithm
class Adversarial(Algorithm):
    name = "adversarial"
    source = "Goodfellow et al. 2014 (alg. 1); seed 000 gan.train and algorithm 5.1.1; seed 001 train()"
    supported_needs = ALL_NEEDS
    supports_accumulation = True
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 100,
                 latent_dist: LatentDist = "normal", latent_std: float = 1.0, n_critic: int = 1,
                 d_update: Literal["sum", "combined", "separate"] = "sum", fake_bn: Literal["train", "eval"] = "train",
                 weight_clip: float | None = None, gp_weight: float = 0.0, gp_center: float = 1.0,
                 r1_gamma: float = 0.0, r1_every: int = 1, orthogonal_reg: dict[str, float] | None = None,
                 historical_averaging: dict[str, float] | None = None, generator_loss: GeneratorLoss = "objective",
                 feature_matching_weight: float = 1.0, vbn_refresh: Literal["every_step", "once"] = "every_step",
                 ae_pretrain_steps: int = 0, ae_pretrain_lr: float = 1e-3, reuse_fake: bool = False,
                 vbn_reference_grad: bool = True):
        super().__init__(nets, objective, data)
        if latent_dim < 1 or n_critic < 1 or latent_std <= 0:
            raise ConfigError(f"algorithm: latent_dim and n_critic must be >= 1 and latent_std > 0 "
                              f"(got {latent_dim}, {n_critic}, {latent_std})")
        # Separate real and fake updates need a D loss that splits into a real and a fake term.
        supported = self.supported_needs - {Need.JOINT_D_LOSS} if d_update == "separate" else self.supported_needs
        self.needs = check_needs(self.name, objective, supported,
                                 why={Need.JOINT_D_LOSS: "algorithm.d_update=separate updates D on the real and on "
                                                         "the fake batch one after the other: set d_update=sum"})
        self.latent_dim, self.latent_dist, self.latent_std = latent_dim, latent_dist, latent_std
        self.n_critic, self.d_update, self.fake_bn = n_critic, d_update, fake_bn
        D = self.nets["D"]

        # -- Lipschitz constraints and penalties on D -------------------------------------------------------------
        objective_clip = self.needs.clip_value
        if weight_clip is not None:
            if not weight_clip > 0:
                raise ConfigError(f"algorithm.weight_clip must be > 0 (WGAN uses 0.01), got {weight_clip}")
            if objective_clip is not None and objective_clip != weight_clip:
                raise ConfigError(f"algorithm.weight_clip={weight_clip} and objective.clip_value={objective_clip} "
                                  "disagree; set one of them (objective.clip_value=null to use the algorithm's)")
        self.weight_clip = weight_clip if weight_clip is not None else objective_clip
        for key, value in (("gp_weight", gp_weight), ("gp_center", gp_center), ("r1_gamma", r1_gamma),
                           ("feature_matching_weight", feature_matching_weight),
                           ("ae_pretrain_steps", ae_pretrain_steps)):
            if not value >= 0:
                raise ConfigError(f"algorithm.{key} must be >= 0, got {value}")
        self.objective_gp = Need.GRADIENT_PENALTY in self.needs
        if gp_weight > 0 and self.objective_gp:
            raise ConfigError(f"objective '{objective.name}' already adds its gradient penalty (objective.gp_weight="
                              f"{objective.gp_weight}); set algorithm.gp_weight=0 or use objective.name=wgan")
        self.gp_weight, self.gp_center, self.r1_gamma = gp_weight, gp_center, r1_gamma
        if r1_every < 1:
            raise ConfigError(f"algorithm.r1_every must be >= 1 (StyleGAN2 uses 16), got {r1_every}")
        if r1_every > 1 and not r1_gamma > 0:
            raise ConfigError(f"algorithm.r1_every={r1_every} makes R1 lazy, but there is no R1: set "
                              "algorithm.r1_gamma (e.g. 10) or leave r1_every at 1")
        self.r1_every = r1_every

        # -- parameter penalties per network ------------------------------------------------------------------------
        self.orthogonal_reg = self._per_network(orthogonal_reg, "orthogonal_reg")
        self.historical_averaging = self._per_network(historical_averaging, "historical_averaging")
        if self.historical_averaging:
            # The running mean is the algorithm's tensor state (checkpointed beside the optimizer state), not part of
            # the network: the weights file, the EMA copy and --init-from shapes stay those of the architecture.
            self.state_modules["historical_average"] = nn.ModuleDict(
                {key: HistoricalAverageBuffers(self.nets[key]) for key in self.historical_averaging})

        # -- generator loss: objective, feature matching, pull-away term ------------------------------------------
        self.generator_loss, self.feature_matching_weight = generator_loss, feature_matching_weight
        self.feature_matching = generator_loss != "objective"
        self.pt_weight = float(getattr(objective, "pt_weight", 0.0))
        if (self.feature_matching or self.pt_weight > 0) and not hasattr(D, "forward_with_features"):
            what = "feature matching" if self.feature_matching else "EBGAN's pull-away term (objective.pt_weight)"
            raise ConfigError(f"{what} needs D's intermediate features, but networks.D ({type(D).__name__}) has no "
                              "forward_with_features; use an architecture that has one (dcgan-book, mlp, autoencoder)")
        self.g_needs_features = self.feature_matching or self.pt_weight > 0

        # -- energy-based objectives need an auto-encoder discriminator ---------------------------------------------
        energy_d = bool(getattr(D, "outputs_energy", False))
        if objective.energy_based and not energy_d:
            raise ConfigError(f"objective '{objective.name}' scores samples by an auto-encoder's reconstruction "
                              f"energy, but networks.D ({type(D).__name__}) returns plain scores; use "
                              "networks.D.arch=autoencoder (images) or mlp-autoencoder (vectors)")
        if ae_pretrain_steps and not energy_d:
            raise ConfigError("algorithm.ae_pretrain_steps pre-trains an auto-encoder discriminator; networks.D is "
                              "not one (use networks.D.arch=autoencoder or mlp-autoencoder)")
        if not ae_pretrain_lr > 0:
            raise ConfigError(f"algorithm.ae_pretrain_lr must be > 0, got {ae_pretrain_lr}")
        self.ae_pretrain_steps, self.ae_pretrain_lr = ae_pretrain_steps, ae_pretrain_lr
        self.vbn_refresh, self.vbn_reference_grad = vbn_refresh, vbn_reference_grad
        if reuse_fake and fake_bn == "eval":
            raise ConfigError("algorithm.reuse_fake reuses the D step's G(z) in the G step, but fake_bn=eval makes that "
                              "forward in eval mode, which the G step must not train through; set fake_bn=train or "
                              "reuse_fake=false")
        self.reuse_fake = reuse_fake
        # The last critic iteration's (z, G(z)) with its graph, for the G step when reuse_fake is on.
        self._live_fake: tuple[torch.Tensor, torch.Tensor] | None = None
        self.d_regularized = bool(self.objective_gp or gp_weight > 0 or r1_gamma > 0 or "D" in self.orthogonal_reg
                                  or "D" in self.historical_averaging)

    def attach_regularization(self, regularization: Any) -> None:
        """The recipe's ``regularize:`` section, refused where this family's own key already gives the same term."""
        if self.r1_gamma > 0 and any(p.name == "r1" for p in regularization.penalties):
            raise ConfigError("R1 is given twice: algorithm.r1_gamma and regularize.r1; keep one (regularize.r1: "
                              "{gamma: G, every: K} works for every family)")
        both = sorted(set(self.orthogonal_reg) & set(regularization.orthogonal))
        if both:
            raise ConfigError(f"the orthogonal regularisation of {both[0]} is given twice: algorithm.orthogonal_reg and "
                              "regularize.orthogonal; keep one (regularize.orthogonal works for every family)")
        super().attach_regularization(regularization)

    def history(self, key: str) -> HistoricalAverageBuffers:
        """The historical average of network ``key`` (``historical_averaging`` lists it)."""
        return self.state_modules["historical_average"][key]

    def legacy_state_keys(self) -> dict[str, str | None]:
        # Before it was the algorithm's state the running mean was a submodule of the network, so it is in older
        # checkpoints' weights, and in the EMA copy's when G had one (a copy of G's: dropped).
        legacy: dict[str, str | None] = {}
        for key in self.historical_averaging:
            legacy[f"nets.{key}.historical_average."] = f"historical_average.{key}."
            legacy[f"ema.{key}.historical_average."] = None
        return legacy

    def _per_network(self, weights: dict[str, float] | None, key: str) -> dict[str, float]:
        weights = dict(weights or {})
        for net, weight in weights.items():
            if net not in self.roles:
                raise ConfigError(f"algorithm.{key}.{net}: unknown network; '{self.name}' has {', '.join(self.roles)}")
            if not weight >= 0:
                raise ConfigError(f"algorithm.{key}.{net} must be >= 0, got {weight}")
        return {net: weight for net, weight in weights.items() if weight > 0}

    # ---------------------------------------------------------------------------------------- setup
    def setup(self, dataset: Any, device: torch.device) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        G = self.nets["G"]
        if getattr(G, "uses_virtual_batch_norm", False):
            G.set_vbn_reference(self.noise(G.vbn_reference_size, device))
            facts["vbn_reference_size"] = G.vbn_reference_size
        if self.ae_pretrain_steps:
            facts.update(self.pretrain_autoencoder(dataset, device))
        return facts

    def pretrain_autoencoder(self, dataset: Any, device: torch.device) -> dict[str, Any]:
        """Train the auto-encoder D alone to reconstruct real samples (Adam, batches of 64 drawn with replacement)."""
        D = self.nets["D"]
        optimizer = torch.optim.Adam(D.parameters(), lr=self.ae_pretrain_lr)
        value_range = self.value_range if dataset.kind == "image" else None
        energies = []
        for _ in range(self.ae_pretrain_steps):
            idx = torch.randint(len(dataset.x), (AE_PRETRAIN_BATCH,))
            x = dataset.x[idx].to(device)
            x = to_model_range(x, value_range) if value_range is not None else x.float()
            energy = D(x).float().mean()
            optimizer.zero_grad(set_to_none=True)
            energy.backward()
            optimizer.step()
            energies.append(float(energy.detach()))
        return {"ae_pretrain_steps": self.ae_pretrain_steps, "ae_energy_first": energies[0],
                "ae_energy_last": energies[-1]}

    # ---------------------------------------------------------------------------------------- training
    def noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        return draw_latent(n, self.latent_dim, self.latent_dist, self.latent_std, device, generator)

    def _d_penalties(self, loss: torch.Tensor, real: torch.Tensor, fake: torch.Tensor | None, on_real: bool,
                     logs: dict[str, torch.Tensor], parameters: bool = True) -> torch.Tensor:
        """``loss`` plus the discriminator's penalties that belong to this update (see the module docstring): R1
        unless it is lazy (``r1_every`` > 1: the caller adds it), the parameter penalties unless ``parameters`` is
        False (a micro-batch: they go once into the update)."""
        if not (self.d_regularized or self.regularization.has_d_terms):
            return loss
        D, total = self.nets["D"], loss
        if on_real and self.r1_gamma > 0 and self.r1_every == 1:
            r1 = r1_penalty(D, real, self.r1_gamma)
            total, logs["r1"] = total + r1, r1.detach()
        if fake is not None:
            if self.gp_weight > 0 and not self.objective_gp:
                gp = self.gp_weight * gradient_penalty(D, real, fake, center=self.gp_center)
                total, logs["gp"] = total + gp, gp.detach()
            # the objective's penalty (wgan-gp) and the recipe's regularize: terms (R1, R2, DRAGAN), where due
            total = self.needs.penalty(total, D, real, fake, logs)
            if parameters:
                total = self._parameter_penalties("D", total, logs)
        return total

    def _has_parameter_penalties(self, key: str) -> bool:
        return key in self.orthogonal_reg or key in self.historical_averaging

    def _parameter_penalties(self, key: str, total: torch.Tensor, logs: dict[str, torch.Tensor]) -> torch.Tensor:
        net = self.nets[key]
        if key in self.orthogonal_reg:
            ortho = orthogonal_regularization(net, beta=self.orthogonal_reg[key])
            total, logs[f"ortho_{key}"] = total + ortho, ortho.detach()
        if key in self.historical_averaging:
            hist = self.historical_averaging[key] * self.history(key).penalty(net)
            total, logs[f"hist_{key}"] = total + hist, hist.detach()
        return total

    def discriminator_step(self, ctx: StepContext, iteration: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One critic iteration; ``iteration`` counts them over the run (step * n_critic + i), for lazy R1."""
        G, D, obj = self.nets["G"], self.nets["D"], self.objective
        real = ctx.real_batch().x
        z = self.noise(len(real), real.device)
        bn = eval_mode(G) if self.fake_bn == "eval" else contextlib.nullcontext()
        if self.reuse_fake:
            # Kept with its graph for the G step (D updates only see it detached; G does not change before its step).
            with ctx.autocast():
                live = G(z)
            self._live_fake, fake = (z, live), live.detach()
        else:
            with torch.no_grad(), bn, ctx.autocast():
                fake = G(z)
        penalty_logs: dict[str, torch.Tensor] = {}
        parts = micro_batches(len(real), accumulation(ctx))
        if len(parts) > 1 or self.r1_every > 1:
            loss, real_out, fake_out = self._d_update_in_parts(ctx, real, fake, parts,
                                                               iteration % self.r1_every == 0, penalty_logs)
        elif self.d_update == "combined":
            with ctx.autocast():
                out = D(torch.cat([real, fake.to(real.dtype)]))
            real_out, fake_out = out[:len(real)], out[len(real):]
            loss = 0.5 * obj.d_loss(real_out, fake_out)
            ctx.update("D", self._d_penalties(loss, real, fake, True, penalty_logs))
        elif self.d_update == "separate":
            with ctx.autocast():
                real_out = D(real)
            loss_real = obj.d_real_loss(real_out)
            ctx.update("D", self._d_penalties(loss_real, real, None, True, penalty_logs))
            with ctx.autocast():
                fake_out = D(fake)
            loss_fake = obj.d_fake_loss(fake_out)
            ctx.update("D", self._d_penalties(loss_fake, real, fake, False, penalty_logs))
            loss = 0.5 * (loss_real + loss_fake)   # what the book's loop logs
        else:
            with ctx.autocast():
                real_out, fake_out = D(real), D(fake)
            loss = obj.d_loss(real_out, fake_out)
            ctx.update("D", self._d_penalties(loss, real, fake, True, penalty_logs))
        clip_critics(self.weight_clip, D)      # the objective's clip_value or algorithm.weight_clip
        if "D" in self.historical_averaging:
            self.history("D").update(D)
        logs = {"d_loss": loss.detach(), "d_real": real_out.detach().float().mean(),
                "d_fake": fake_out.detach().float().mean()}
        logs.update(penalty_logs)
        self.needs.after_d_step(real_out, fake_out, logs)
        return logs, real

    def _d_update_in_parts(self, ctx: StepContext, real: torch.Tensor, fake: torch.Tensor,
                           parts: list[tuple[slice, float]], r1_now: bool,
                           logs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The D update(s) of one critic iteration with ``ctx.backward`` / ``ctx.optimizer_step``: over micro-batches
        (each one's loss and per-sample penalties with gain rows/B, the parameter penalties once), with lazy R1
        (``r1_now``: this iteration's, gain ``r1_every``). The same losses as the one-piece updates; returns the
        logged loss and the scores of the whole batch."""
        D, obj = self.nets["D"], self.objective
        # (penalised with R1, penalised with the fake-side penalties): one update, or separate's real then fake one.
        updates = [(True, False), (False, True)] if self.d_update == "separate" else [(True, True)]
        logged = torch.zeros((), device=real.device)
        real_outs: list[torch.Tensor] = []
        fake_outs: list[torch.Tensor] = []
        for on_real, with_fake in updates:
            for sl, gain in parts:
                r, f = real[sl], fake[sl]
                r_out = f_out = None
                if self.d_update == "combined":
                    with ctx.autocast():
                        out = D(torch.cat([r, f.to(r.dtype)]))
                    r_out, f_out = out[:len(r)], out[len(r):]
                    loss = 0.5 * obj.d_loss(r_out, f_out)
                elif self.d_update == "separate":
                    with ctx.autocast():
                        r_out, f_out = (D(r), None) if on_real else (None, D(f))
                    loss = obj.d_real_loss(r_out) if on_real else obj.d_fake_loss(f_out)
                else:
                    with ctx.autocast():
                        r_out, f_out = D(r), D(f)
                    loss = obj.d_loss(r_out, f_out)
                part_logs: dict[str, torch.Tensor] = {}
                total = self._d_penalties(loss, r, f if with_fake else None, on_real, part_logs, parameters=False)
                ctx.backward("D", total, gain=gain)
                if on_real and r1_now and self.r1_every > 1:
                    r1 = r1_penalty(D, r, self.r1_gamma)
                    ctx.backward("D", r1, gain=gain * self.r1_every)
                    # Logged with its gain: averaged over the steps of a log line it is the penalty's mean share.
                    part_logs["r1"] = self.r1_every * r1.detach()
                for k, v in part_logs.items():
                    logs[k] = logs.get(k, 0) + gain * v
                # separate logs what the book's loop does: the mean of its real and fake losses
                shown = 0.5 * loss if self.d_update == "separate" else loss
                logged = logged + gain * shown.detach()
                if r_out is not None:
                    real_outs.append(r_out.detach())
                if f_out is not None:
                    fake_outs.append(f_out.detach())
            if with_fake and self._has_parameter_penalties("D"):   # not per sample: once per update, gain 1
                ctx.backward("D", self._parameter_penalties("D", torch.zeros((), device=real.device), logs))
            ctx.optimizer_step("D")
        return logged, torch.cat(real_outs), torch.cat(fake_outs)

    def _g_loss(self, ctx: StepContext, z: torch.Tensor, real: torch.Tensor,
                logs: dict[str, torch.Tensor], fake: torch.Tensor | None = None) -> torch.Tensor:
        """G's loss on noise ``z`` (and the real batch, for feature matching or relativistic objectives), without
        the parameter penalties; ``fake``: G(z) already computed with its graph (reuse_fake). Called with D frozen."""
        G, D, obj = self.nets["G"], self.nets["D"], self.objective
        with ctx.autocast():
            if fake is None:
                fake = G(z)
            if self.g_needs_features:
                fake_out, fake_features = D.forward_with_features(fake)
            else:
                fake_out, fake_features = D(fake), None
            real_out = real_features = None
            if self.feature_matching:
                real_out, real_features = D.forward_with_features(real)
            else:
                real_out = self.needs.real_scores(lambda: D(real))
        if self.generator_loss == "feature_matching":
            loss = feature_matching_loss(real_features, fake_features)
            logs["g_fm"] = loss.detach()
        else:
            loss = obj.g_loss(fake_out, real_out)
            if self.feature_matching:
                fm = feature_matching_loss(real_features, fake_features)
                logs["g_adv"], logs["g_fm"] = loss.detach(), fm.detach()
                loss = loss + self.feature_matching_weight * fm
        if self.pt_weight > 0:
            pt = pullaway_term(fake_features)
            logs["g_pt"] = pt.detach()
            loss = loss + self.pt_weight * pt
        return loss

    def _vbn_graph(self, G: nn.Module) -> bool:
        """Whether the G step trains through G's VBN reference statistics (replayed in its graph)."""
        return (self.vbn_refresh == "every_step" and self.vbn_reference_grad
                and getattr(G, "uses_virtual_batch_norm", False))

    def generator_step(self, ctx: StepContext, real: torch.Tensor) -> dict[str, torch.Tensor]:
        G = self.nets["G"]
        if not self._vbn_graph(G):
            return self._generator_step(ctx, real)
        self._live_fake = None   # a reused D-step G(z) was normalised with constant statistics
        try:
            return self._generator_step(ctx, real)
        finally:
            G.release_virtual_batch_norm_graph()

    def _generator_step(self, ctx: StepContext, real: torch.Tensor) -> dict[str, torch.Tensor]:
        G, D = self.nets["G"], self.nets["D"]
        vbn_graph = self._vbn_graph(G)
        parts = micro_batches(len(real), accumulation(ctx))
        live, self._live_fake = self._live_fake, None
        if live is not None and len(parts) == 1:
            z, fake = live          # reuse_fake: the D step's noise and G(z), not a second forward
        else:
            # (with train.accumulate the micro-batches each need their own graph: a fresh forward, as without reuse)
            z, fake = self.noise(len(real), real.device), None
        logs: dict[str, torch.Tensor] = {}
        with frozen(D):
            if len(parts) == 1:
                if vbn_graph:
                    G.refresh_virtual_batch_norm(keep_graph=True)
                loss = self._parameter_penalties("G", self._g_loss(ctx, z, real, logs, fake), logs)
                ctx.update("G", loss)
            else:   # train.accumulate: the batch's noise and reals in micro-batches, one optimizer step
                loss = torch.zeros((), device=real.device)
                for sl, gain in parts:
                    part_logs: dict[str, torch.Tensor] = {}
                    if vbn_graph:    # each micro-batch's backward frees its graph: the statistics' too
                        G.refresh_virtual_batch_norm(keep_graph=True)
                    part = self._g_loss(ctx, z[sl], real[sl], part_logs)
                    ctx.backward("G", part, gain=gain)
                    loss = loss + gain * part.detach()
                    for k, v in part_logs.items():
                        logs[k] = logs.get(k, 0) + gain * v
                if self._has_parameter_penalties("G"):
                    penalties = self._parameter_penalties("G", torch.zeros((), device=real.device), logs)
                    ctx.backward("G", penalties)
                    loss = loss + penalties.detach()
                ctx.optimizer_step("G")
        if "G" in self.historical_averaging:
            self.history("G").update(G)
        return {"g_loss": loss.detach(), **logs}

    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        G = self.nets["G"]
        if self.vbn_refresh == "every_step" and getattr(G, "uses_virtual_batch_norm", False):
            G.refresh_virtual_batch_norm()
        sums: dict[str, torch.Tensor] = {}
        for i in range(self.n_critic):
            d_logs, real = self.discriminator_step(ctx, ctx.step * self.n_critic + i)
            for k, v in d_logs.items():
                sums[k] = sums.get(k, 0) + torch.as_tensor(v)
        logs: dict[str, torch.Tensor | float] = {k: v / self.n_critic for k, v in sums.items()}
        logs.update(self.generator_step(ctx, real))
        return logs

    # ---------------------------------------------------------------------------------------- sampling
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      **controls: Any) -> dict[str, torch.Tensor]:
        unknown_controls(controls, (), f"'{self.name}' (an unconditional GAN)")
        return {"z": self.noise(n, device, generator)}

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return (nets or self.nets)["G"](inputs["z"])
