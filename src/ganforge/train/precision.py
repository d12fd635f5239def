"""``train.precision: auto``: bf16 where it is fast and learns as well, fp32 elsewhere.

Why the choice depends on the machine (issue 15, measured with ``bench/speed.py --threads 1 --clock cpu``):
- on an Intel Xeon with AVX-512 and AMX-BF16 the book DCGAN (dcgan-mnist) trained 2.72x the plain fp32 loop in bf16
  and 3.09x with bf16 + channels_last; the quick DCGAN at 300 s, bf16 + channels_last made 4,290 steps to fp32's
  2,407 and its samples scored about 2.4x lower on the domain FID;
- on an AMD EPYC with AVX2 only, oneDNN emulates bf16: a dcgan-mnist step ~15x slower than fp32.
So ``auto`` takes bf16 autocast with channels_last on CUDA with bf16 and on a CPU with AVX512-BF16 / AMX
(``native_bf16``), and fp32 everywhere else. Losses and the gradient penalties stay fp32 under autocast
(tests/unit/test_precision.py).

Per family: only algorithms whose class sets ``auto_bf16`` (measured to learn as well in bf16) get it; today that is
the shared adversarial step (the DCGAN family, measured above). The others stay fp32 under auto until measured; ask
for ``train.precision: bf16`` to try one.

``GANFORGE_AUTO_PRECISION=fp32|bf16`` pins what auto picks, whatever the machine (e.g. to compare runs across
machines; the test suite pins fp32 so that its margins mean the same on every CPU).

The choice is made once, when a run starts, and written into its config.yaml (so a resume repeats it exactly, on
any machine) and its run.json (``precision_auto``: what was chosen and why).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import ConfigError

PIN_VARIABLE = "GANFORGE_AUTO_PRECISION"


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str          # fp32 | bf16
    channels_last: bool
    why: str


def choose_precision(device: torch.device, family_ok: bool, family: str, native: bool) -> PrecisionChoice:
    """What ``auto`` means for a run of ``family`` on ``device`` (``native``: whether it does bf16 in hardware)."""
    pinned = os.environ.get(PIN_VARIABLE, "").strip().lower()
    if pinned:
        if pinned not in ("fp32", "bf16"):
            raise ConfigError(f"{PIN_VARIABLE}={pinned!r} is not a precision auto can pin; use fp32 or bf16, or unset "
                              "it")
        return PrecisionChoice(pinned, pinned == "bf16", f"pinned by {PIN_VARIABLE}")
    if not native:
        return PrecisionChoice("fp32", False, f"no native bf16 on this {device.type}: emulated, it is ~15x slower")
    if not family_ok:
        return PrecisionChoice("fp32", False, f"'{family}' is not yet measured to learn as well in bf16")
    return PrecisionChoice("bf16", True, f"native bf16 on {device.type}; '{family}' learns as well in bf16")
