"""Regularizers: terms added to a network's loss, or in-place constraints applied after its update.

Each is a pure function (or, for historical averaging, a small module holding the running mean) with keyword hyperparameters, so the
training algorithm can call it where the method's source says:

=========================  ==========================================  =============================================
function                   where it goes                               source
=========================  ==========================================  =============================================
gradient_penalty           + lambda * GP to the critic loss            Gulrajani et al. 2017; seed 002 part 1 sec. 6
r1_penalty                 + R1 to the discriminator loss (reals)      Mescheder et al. 2018; seed 002 part 2 sec. 4.3
clip_weights_              after each critic update (in place)         Arjovsky et al. 2017; seed 000 eq. 5.1.20
orthogonal_regularization  + R_beta(W) to the generator loss           Brock et al. 2019; seed 002 part 2 sec. 4
feature_matching_loss      the generator loss (replaces or adds)       Salimans et al. 2016; seed 002 part 2 sec. 2
HistoricalAverageBuffers   + ||theta - mean theta||^2 to a player      Salimans et al. 2016; seed 002 part 2 sec. 2
=========================  ==========================================  =============================================

One-sided label smoothing is a parameter of the classic objectives (``objective.real_label``), and spectral
normalisation a switch on any network (``networks.<key>.spectral_norm``, ``ganforge.nn.spectral``).

Penalties that differentiate the discriminator with respect to its input run in float32 with autocast disabled: the
squared gradient norm under- or overflows easily in half precision.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from .errors import ConfigError

Critic = Callable[[torch.Tensor], torch.Tensor]


def _input_gradients(critic: Critic, inputs: torch.Tensor) -> torch.Tensor:
    """d(sum of critic scores)/d(inputs), one row per sample, kept in the graph so the penalty can be trained.

    Summing the scores is exact for per-sample scores (sample i's score depends only on input i); a patch critic's
    map counts every patch of sample i towards its gradient.
    """
    inputs = inputs.detach().float().requires_grad_(True)
    # The grad call stays inside the fp32 block: with create_graph=True it records new ops (the penalty's
    # double-backward graph), which an enclosing autocast region would otherwise run in bf16.
    with torch.autocast(device_type=inputs.device.type, enabled=False):
        scores = critic(inputs)
        (grads,) = torch.autograd.grad(scores.float().sum(), inputs, create_graph=True)
    return grads.flatten(1)


def gradient_penalty(critic: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor, center: float = 1.0,
                     generator: torch.Generator | None = None,
                     cond: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """WGAN-GP's two-sided penalty ``E_{x_hat}[(||grad_x D(x_hat)||_2 - center)^2]``, without the weight lambda.

    ``x_hat = eps * x_real + (1 - eps) * x_fake`` with one ``eps ~ U[0, 1)`` per sample (Gulrajani et al. 2017,
    algorithm 1; seed 002 part 1 section 6.1: the penalty on P_penalty, the region between P_data and P_G). The
    caller multiplies by lambda (10 in the paper; ``objectives.wasserstein.WGANGP.gp_weight``). ``center`` = 1 is the
    paper's target norm; 0 gives the zero-centred variant. ``generator`` (optional) makes the interpolation
    coefficients reproducible; it may live on the CPU while the data is on an accelerator. ``real`` and ``fake`` are
    detached: the penalty trains only the critic.

    ``cond`` = (condition of the real batch, condition of the fake batch), e.g. one-hot labels, for a conditional
    critic called as ``critic(x, condition)``: the conditions are interpolated with the same eps (a point between a
    real pair and a fake pair, as the unconditional x_hat lies between a real and a fake sample) and held constant;
    the gradient is taken with respect to x only.
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty interpolates real and fake samples one to one, got shapes "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}; use equal real and fake batches")
    batch = real.shape[0]
    draw_on = generator.device if generator is not None else real.device
    eps = torch.rand(batch, generator=generator, device=draw_on, dtype=torch.float32).to(real.device)
    eps = eps.view(batch, *([1] * (real.dim() - 1)))
    interpolates = eps * real.detach().float() + (1.0 - eps) * fake.detach().float()
    if cond is not None:
        cond_real, cond_fake = (c.detach().float() for c in cond)
        if cond_real.shape != cond_fake.shape or len(cond_real) != batch:
            raise ValueError(f"gradient_penalty needs one condition per sample for real and fake, got shapes "
                             f"{tuple(cond_real.shape)} and {tuple(cond_fake.shape)} for a batch of {batch}")
        ceps = eps.view(batch, *([1] * (cond_real.dim() - 1)))
        condition = ceps * cond_real + (1.0 - ceps) * cond_fake
        scores: Critic = lambda x: critic(x, condition)   # noqa: E731
    else:
        scores = critic
    norms = torch.linalg.vector_norm(_input_gradients(scores, interpolates), dim=1)
    return (norms - center).square().mean()


def r1_penalty(critic: Critic, real: torch.Tensor, gamma: float = 10.0) -> torch.Tensor:
    """R1 zero-centred penalty on real data: ``gamma / 2 * E_{x~p_data}[||grad_x D(x)||^2]``.

    The factor gamma/2 is the one seed 002 part 2 section 4.3 prints (BigGAN's "R_1 := gamma/2 E[||grad D(x)||_F^2]",
    from Mescheder et al. 2018 eq. 9); gamma = 10 is the strength BigGAN reports as stabilising (seed 002, same
    section). The penalty is returned already weighted.
    """
    if not gamma >= 0:
        raise ConfigError(f"r1 gamma must be >= 0, got {gamma}; BigGAN / Mescheder et al. use 10")
    grads = _input_gradients(critic, real)
    return 0.5 * gamma * grads.square().sum(dim=1).mean()


@torch.no_grad()
def clip_weights_(module: nn.Module, c: float = 0.01) -> None:
    """Clamp every parameter of ``module`` to [-c, c] in place (WGAN's weight clipping).

    Seed 000 eq. 5.1.20 / algorithm 5.1.1 line 7: ``w <- clip(w, -c, c)`` after each critic iteration, c = 0.01; the
    book clips all the critic's weights, kernels and biases alike (spec section 2.5). Normalisation layers' gains and
    shifts, if the critic has any, are parameters too and are clipped as Keras' ``layer.get_weights()`` would do
    (their running statistics are buffers and are left alone).
    """
    if not c > 0:
        raise ConfigError(f"weight clipping value must be > 0, got {c}; WGAN uses 0.01")
    for parameter in module.parameters():
        parameter.clamp_(-c, c)


_WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                  nn.ConvTranspose3d)


def _unnormalised_weight(layer: nn.Module) -> torch.Tensor:
    """The layer's trained weight tensor: under spectral normalisation, the raw W (reading ``layer.weight`` would run
    a power iteration and change the stored singular vectors)."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original
    return layer.weight


def filters_as_rows(layer: nn.Module) -> torch.Tensor:
    """The weight as a matrix with one row per output unit (filter): (out, in * kernel). ConvTranspose stores its
    weight as (in, out, ...), so its dims 0 and 1 are swapped first."""
    weight = _unnormalised_weight(layer)
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        weight = weight.transpose(0, 1)
    return weight.flatten(1)


def orthogonal_regularization(module: nn.Module, beta: float = 1e-4) -> torch.Tensor:
    """BigGAN's relaxed orthogonal regularisation ``R_beta(W) = beta * ||W^T W (.) (1 - I)||_F^2``, summed over layers.

    Seed 002 part 2 section 4 ("Ortho."; the printed "(I - I)" is a garbled "1 - I"): the diagonal is removed so the
    term minimises the pairwise cosine similarity of the filters without constraining their norms. W^T W is the Gram
    matrix of the filters (one per output unit), here ``rows @ rows.T``. Applied to the weights of every Linear,
    Conv and ConvTranspose layer; biases, embeddings and normalisation gains are excluded (Brock et al. 2019, section
    3.1 and appendix). beta = 1e-4 (Brock et al. section 3.1).
    """
    if not beta >= 0:
        raise ConfigError(f"orthogonal regularisation beta must be >= 0, got {beta}; BigGAN uses 1e-4")
    total: torch.Tensor | None = None
    for layer in module.modules():
        if not isinstance(layer, _WEIGHT_LAYERS):
            continue
        rows = filters_as_rows(layer).float()
        gram = rows @ rows.T
        off_diagonal = gram * (1.0 - torch.eye(gram.shape[0], device=gram.device, dtype=gram.dtype))
        term = off_diagonal.square().sum()
        total = term if total is None else total + term
    if total is None:
        first = next(module.parameters(), None)
        return torch.zeros((), device=first.device if first is not None else None)
    return beta * total


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Feature matching: ``||E_x f(x) - E_z f(G(z))||_2^2`` over the discriminator's intermediate features f.

    Salimans et al. 2016 section 3.1; seed 002 part 2 section 2 ("feature mapping"). Features of any shape are
    flattened per sample; the batch means are compared. The real mean is a target for the generator and is detached.
    (The authors' code averages the squared differences over the feature dimension instead of summing them; the
    paper's squared norm is used here.)
    """
    real_mean = real_features.detach().float().flatten(1).mean(dim=0)
    fake_mean = fake_features.float().flatten(1).mean(dim=0)
    if real_mean.shape != fake_mean.shape:
        raise ValueError(f"feature matching needs features of the same size for real and fake samples, got "
                         f"{real_mean.numel()} and {fake_mean.numel()} per sample")
    return (real_mean - fake_mean).square().sum()


class HistoricalAverageBuffers(nn.Module):
    """Historical averaging of one network, with the running mean held in buffers.

    The penalty ``||theta - (1/t) sum_{i=1..t} theta[i]||^2`` (Salimans et al. 2016 section 3.3; seed 002 part 2
    section 2; the paper gives no weight: the recipe chooses it), with the exact (not exponential) running mean
    ``mean_t = mean_{t-1} + (theta_t - mean_{t-1}) / t`` held in float32 buffers (``mean_0``, ``mean_1``, ... in the
    order of ``net.parameters()``, and ``steps``), so a training algorithm keeps it as its tensor state
    (``Algorithm.state_modules``) and the mean is checkpointed bit-exactly (safetensors), restored on resume, and
    never goes through JSON. It starts from the network's parameters at construction, i.e. the initial parameters
    count as theta[1]; call ``update(net)`` after every optimizer step of that network and add
    ``weight * penalty(net)`` to its loss.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        parameters = list(net.parameters())
        self.count = len(parameters)
        self.register_buffer("steps", torch.ones((), dtype=torch.long))
        for i, parameter in enumerate(parameters):
            self.register_buffer(f"mean_{i}", parameter.detach().float().clone())

    def means(self) -> list[torch.Tensor]:
        return [getattr(self, f"mean_{i}") for i in range(self.count)]

    def _parameters_of(self, net: nn.Module) -> list[torch.Tensor]:
        parameters = list(net.parameters())
        if len(parameters) != self.count or any(p.shape != m.shape for p, m in zip(parameters, self.means())):
            raise ValueError("historical average was built for a different network (its parameters do not match)")
        return parameters

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        """Add the network's current parameters to the exact running mean."""
        self.steps += 1
        t = float(self.steps)
        for parameter, mean in zip(self._parameters_of(net), self.means()):
            mean.add_((parameter.detach().float() - mean) / t)

    def penalty(self, net: nn.Module) -> torch.Tensor:
        """``sum over parameters of ||theta - mean theta||^2`` (float32), differentiable in theta."""
        total = torch.zeros((), device=self.steps.device)
        for parameter, mean in zip(self._parameters_of(net), self.means()):
            total = total + (parameter.float() - mean).square().sum()
        return total
