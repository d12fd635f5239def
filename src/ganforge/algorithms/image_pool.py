"""The image pool: a history of generated images that the discriminator is trained on.

Shrivastava et al. 2017 ("Learning from Simulated and Unsupervised Images through Adversarial Training", section
2.3): D sees generated images from earlier generators as well as the current one, so it does not forget what it
rejected and G cannot oscillate between modes D has forgotten. CycleGAN (Zhu et al. 2017, section 4: "a history of
the 50 previously generated images") uses it exactly as the official code's ``ImagePool.query``, which this follows:

  for each generated image in the batch:
    while the pool holds fewer than ``capacity`` images: store it, and give it back unchanged;
    once full: with probability ``swap_prob`` (0.5) give back a uniformly chosen stored image and put the new one in
    its place; otherwise give back the new one.

The pool is the algorithm's tensor state (``Algorithm.state_tensors``): its buffers ``images`` (n x C x H x W,
float32, n growing from 0 to ``capacity``) and ``count`` (n, int64; kept as the official code's ``num_imgs`` and as
a consistency check of a checkpoint). An ``ImagePool`` is a module without parameters: put it in the algorithm's
``state_modules`` so it moves with the algorithm to the device and is checkpointed; since its size varies, the
algorithm's ``state_mismatch`` / ``load_state_tensors`` use ``pooled_state_mismatch`` / ``load_pooled_state`` below.

Its random draws come from the global torch CPU generator, whose state the trainer checkpoints with every run
(``rng.torch``), so a resumed run draws exactly what the uninterrupted one would have.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn as nn

from ..errors import ConfigError
from .base import tensor_mismatch


class ImagePool(nn.Module):
    """Up to ``capacity`` past generated images of shape ``sample_shape`` (``capacity`` 0: no pool, ``query`` gives
    its input back)."""

    def __init__(self, capacity: int, sample_shape: tuple[int, ...], swap_prob: float = 0.5):
        super().__init__()
        if capacity < 0:
            raise ConfigError(f"an image pool holds capacity >= 0 images (CycleGAN: 50; 0: no pool), got {capacity}")
        if not 0.0 <= swap_prob <= 1.0:
            raise ConfigError(f"the image pool's swap probability must be in [0, 1] (CycleGAN: 0.5), got {swap_prob}")
        self.capacity, self.sample_shape, self.swap_prob = capacity, tuple(sample_shape), swap_prob
        self.register_buffer("images", torch.zeros((0, *self.sample_shape)))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @torch.no_grad()
    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        """The batch D is trained on in place of ``fakes`` (detached, float32, same order and size), and ``fakes``
        stored for later queries (official ``ImagePool.query``)."""
        if self.capacity == 0:
            return fakes.detach()
        out = []
        for fake in fakes.detach().to(self.images.dtype):
            if len(self) < self.capacity:
                self.images = torch.cat([self.images, fake.unsqueeze(0)])
                out.append(fake)
            elif float(torch.rand(())) < self.swap_prob:
                slot = int(torch.randint(self.capacity, ()))
                out.append(self.images[slot].clone())
                self.images[slot] = fake
            else:
                out.append(fake)
        self.count.fill_(len(self))
        return torch.stack(out)

    # -- checkpointing: the state has a varying size ------------------------------------------------------------------
    def state_mismatch(self, given: Mapping[str, torch.Tensor], prefix: str = "") -> str | None:
        """Why ``given`` (``images`` and ``count``, as ``state_dict`` names them) cannot be this pool's state, or
        None."""
        for key in ("images", "count"):
            if key not in given:
                return f"{prefix}{key} is not in the checkpoint"
        extra = [k for k in given if k not in ("images", "count")]
        if extra:
            return f"the checkpoint's {prefix}{extra[0]} has no place in an image pool"
        images, count = given["images"], given["count"]
        if images.dim() != 1 + len(self.sample_shape) or tuple(images.shape[1:]) != self.sample_shape:
            return (f"{prefix}images holds images of shape {list(images.shape[1:])} in the checkpoint but "
                    f"{list(self.sample_shape)} here")
        if len(images) > self.capacity:
            return (f"{prefix}images holds {len(images)} images in the checkpoint but the pool here holds "
                    f"{self.capacity}")
        if count.numel() != 1 or int(count) != len(images):
            return f"{prefix}count says {count.tolist()} but {prefix}images holds {len(images)} images"
        return None

    @torch.no_grad()
    def load_state(self, given: Mapping[str, torch.Tensor]) -> None:
        """Restore what ``state_dict`` gave, bit for bit, onto this pool's device (``state_mismatch`` checked first)."""
        bad = self.state_mismatch(given)
        if bad:
            raise ValueError(bad)
        self.images = given["images"].to(device=self.images.device, dtype=self.images.dtype).clone()
        self.count.copy_(given["count"])


def _parts(modules: Mapping[str, nn.Module], tensors: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    return {name: {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")} for name in modules}


def pooled_state_mismatch(modules: Mapping[str, nn.Module], tensors: Mapping[str, torch.Tensor],
                          where: str) -> str | None:
    """``Algorithm.state_mismatch`` for state modules among which are image pools: a pool takes any size up to its
    capacity, every other module exactly its own shapes. Names are ``<module>.<buffer>`` as ``state_tensors``."""
    parts = _parts(modules, tensors)
    claimed = {f"{name}.{k}" for name, part in parts.items() for k in part}
    for name, module in modules.items():
        if isinstance(module, ImagePool):
            bad = module.state_mismatch(parts[name], f"algorithm.{name}.")
        else:
            bad = tensor_mismatch(module.state_dict(), parts[name], f"algorithm.{name}.", where)
        if bad:
            return bad
    extra = [k for k in tensors if k not in claimed]
    return f"the checkpoint's algorithm.{extra[0]} has no place in {where}" if extra else None


def load_pooled_state(modules: Mapping[str, nn.Module], tensors: Mapping[str, torch.Tensor]) -> None:
    """``Algorithm.load_state_tensors`` for state modules among which are image pools."""
    for name, part in _parts(modules, tensors).items():
        module = modules[name]
        if isinstance(module, ImagePool):
            module.load_state(part)
        else:
            module.load_state_dict(part, strict=True)
