"""Exponential moving average of network weights (Karras et al. 2018 / Yazici et al. 2019).

``ema = decay * ema + (1 - decay) * weights`` after every step once ``step >= start``; before that the copy
follows the weights exactly. Buffers (BN running statistics) are copied, not averaged.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


class EMA:
    def __init__(self, nets: dict[str, nn.Module], decay: float, start: int = 0):
        self.decay, self.start = decay, start
        self.shadow = {k: copy.deepcopy(m).eval().requires_grad_(False) for k, m in nets.items()}

    @torch.no_grad()
    def reset(self, nets: dict[str, nn.Module]) -> None:
        """Make the copy equal to ``nets`` again (after work done before training, e.g. an algorithm's setup)."""
        for key, net in nets.items():
            ema = self.shadow[key]
            torch._foreach_copy_(list(ema.parameters()), [p.detach() for p in net.parameters()])
            for eb, b in zip(ema.buffers(), net.buffers()):
                eb.copy_(b)

    @torch.no_grad()
    def update(self, nets: dict[str, nn.Module], step: int) -> None:
        d = self.decay if step >= self.start else 0.0
        for key, net in nets.items():
            ema = self.shadow[key]
            ema_p = list(ema.parameters())
            src_p = [p.detach() for p in net.parameters()]
            if d == 0.0:
                torch._foreach_copy_(ema_p, src_p)
            else:
                torch._foreach_lerp_(ema_p, src_p, 1.0 - d)
            for eb, b in zip(ema.buffers(), net.buffers()):
                eb.copy_(b)
