"""Weight initialisation schemes.

``keras``: glorot-uniform kernels and zero biases, BN gamma 1 / beta 0 -- the Keras defaults the books'
code runs with (spec section 0.6). ``dcgan``: N(0, 0.02) weights as in Radford et al. 2016.
``pytorch``: leave PyTorch's own defaults.
"""
from __future__ import annotations

from typing import Literal

import torch.nn as nn

InitScheme = Literal["keras", "dcgan", "pytorch"]


def init_weights(module: nn.Module, scheme: InitScheme) -> None:
    if scheme == "pytorch":
        return
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if scheme == "keras":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if scheme == "dcgan":
                nn.init.normal_(m.weight, 1.0, 0.02)
            else:
                nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
