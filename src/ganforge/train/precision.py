"""``train.precision: auto``: bf16 where it is fast and learns as well, fp32 elsewhere.

Why the choice depends on the machine (issue 15, measured with ``bench/speed.py --threads 1 --clock cpu``):
- on an Intel Xeon with AVX-512 and AMX-BF16 the book DCGAN (dcgan-mnist) trained 2.72x the plain fp32 loop in bf16
  and 3.09x with bf16 + channels_last; the quick DCGAN at 300 s, bf16 + channels_last made 4,290 steps to fp32's
  2,407 and its samples scored about 2.4x lower on the domain FID;
- on an AMD EPYC with AVX2 only, oneDNN emulates bf16: a dcgan-mnist step ~15x slower than fp32.
So ``auto`` takes bf16 autocast with channels_last on CUDA with bf16 and on a CPU with AVX512-BF16 / AMX
(``native_bf16``), and fp32 everywhere else. Losses and the gradient penalties stay fp32 under autocast
(tests/unit/test_precision.py).

Per family: auto takes bf16 only where the algorithm's class, its objective's class and each network's class
declare ``auto_bf16`` (``measured_family``; never inherited), i.e. were measured to learn as well in bf16 as in fp32
at equal steps by ``bench/bf16_check.py`` (fp32 seeds 0 and 1 against bf16 + channels_last seed 0; emulated bf16
on a 2-core AMD EPYC, the same arithmetic as native; the table is in the README, "Speed and distributed training").
Measured as well:
- algorithms: the adversarial step (dcgan-mnist-quick 300 steps, FID 188 vs fp32 170 / 246; and the toys below),
  pix2pix (pix2pix-glyphs 700 steps, L1 0.072 vs 0.073 / 0.067), SRGAN's step in its SRResNet phase (srresnet-digits
  800 steps, L1 0.035 vs 0.035 / 0.037; the SRGAN discriminator was not trained there, so the srgan / srresnet
  recipes, which build it, stay fp32), UNIT (unit-digits 200 steps, L1 0.285 vs 0.289 / 0.208), BiGAN (bigan-digits
  1,500 steps, FID 393 vs 406 / 397);
- objectives: nonsaturating (the DCGAN above); on toy:ring8 with the adversarial step (4,000 steps; modes and
  high-quality share) wgan (4 modes vs 5 / 2), hinge (8 vs 8 / 8), fgan (KL: 8 vs 8 / 8), rsgan (8 vs 8 / 8), lsgan
  (1 vs 1 / 1; high-quality 0.46 vs 0.11 / 0.54);
- networks: those of these runs (the book DCGAN's, the MLPs, pix2pix's U-Net and PatchGAN, SRResNet, UNIT's
  encoders / decoders / discriminators, BiGAN's encoder and joint discriminator). A recipe on the measured step and
  loss with another architecture (stylegan-colour's StyleGAN generator, sngan-resnet's ResNets) stays fp32.
Every other family (and the wgan-gp, glsgan, began, ebgan objectives) stays fp32 under auto: at the check's 2-12
emulated CPU-minutes their fp32 runs had not learned anything yet (FID >= 600, content at chance, no toy mode), so
bf16 had no yardstick -- not a failure of bf16 (StyleGAN's and CoGAN's bf16 runs scored 11 % and 19 % above the worse
fp32 seed there, where none of the three had started). ``train.precision: bf16`` asks for it in any family.

``GANFORGE_AUTO_PRECISION=fp32|bf16`` pins what auto picks, whatever the machine (e.g. to compare runs across
machines; the test suite pins fp32 so that its margins mean the same on every CPU).

The choice is made once, when a run starts, and written into its config.yaml (so a resume repeats it exactly, on
any machine) and its run.json (``precision_auto``: what was chosen and why).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ConfigError

PIN_VARIABLE = "GANFORGE_AUTO_PRECISION"


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str          # fp32 | bf16
    channels_last: bool
    why: str


def declares_bf16(cls: type) -> bool:
    """Whether the class itself declares ``auto_bf16 = True``. Never inherited: a subclass changes its parent's step
    or loss (ProGAN's fades, StyleGAN's path-length penalty, RaSGAN's average), so it is measured on its own."""
    return bool(vars(cls).get("auto_bf16", False))


def measured_family(algorithm: Any) -> tuple[bool, str]:
    """Whether ``algorithm``, its objective and each of its networks were measured to learn as well in bf16, and
    the family's name for the message and run.json (``adversarial with hinge``; the unmeasured networks named:
    ``adversarial with nonsaturating, networks StyleGANGenerator, ProGANDiscriminator``)."""
    objective = getattr(algorithm, "objective", None)
    named = getattr(objective, "name", "")
    family = f"{algorithm.name} with {named}" if named else algorithm.name
    unmeasured = sorted({type(net).__name__ for net in getattr(algorithm, "nets", {}).values()
                         if not declares_bf16(type(net))})
    if unmeasured:
        family += f", networks {', '.join(unmeasured)}"
    measured = declares_bf16(type(algorithm)) and (objective is None or declares_bf16(type(objective)))
    return measured and not unmeasured, family


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
