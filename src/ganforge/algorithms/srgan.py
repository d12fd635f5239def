"""Super-resolution: SRResNet (content loss only) and SRGAN (content + 1e-3 adversarial), one step.

Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network" (seed 001's
and seed 002's SRGAN; spec section 24). G maps the bicubic-downscaled ``lowres`` field of a batch to an HR image,
compared with the batch's ``image``; D judges HR images, real or G's. The perceptual loss (eq. 3):

    l_SR = l_X + adversarial_weight * l_Gen,      l_Gen = sum_n -log D(G(I_LR))  (non-saturating; 1e-3 in the paper)

``adversarial_weight: 0`` is SRResNet: G alone on the content loss, D built but never run nor updated (so an SRResNet
run holds the same networks as an SRGAN run, and ``--init-from`` an SRResNet run starts SRGAN from it, as the paper
does). The content loss ``l_X`` (``content``):

- ``mse``: pixel MSE of the HR images in the model's range (SRResNet-MSE, SRGAN-MSE);
- ``vgg54`` / ``vgg22``: MSE of VGG19 features rescaled by 1/12.75 (SRGAN-VGG54, the paper's main model; VGG22),
  from ImageNet weights in a local file, ``vgg_weights: PATH`` (``metrics/perceptual.py``; nothing is downloaded);
- ``domain``: pixel MSE + ``feature_weight`` x the MSE of ganforge's own domain classifier's features (a LeNet
  trained on ``domain_source``, e.g. the bundled digits, cached): ganforge's stand-in where no VGG19 file exists, no
  part of the paper;
- ``auto`` (default): vgg54 when ``vgg_weights`` is given, else domain when ``domain_source`` is, else mse.

``pixel_weight`` (default: 1 for mse and domain, 0 for vgg as the paper) adds the pixel MSE to any of them. What is
in use is said once on stderr when the loss is first built, logged as ``content_*`` terms, and listed by ``setup``.

One step: G(lowres) once; with an adversarial term, one D update on (HR, G's output detached) with the objective's
D loss (nonsaturating by default, the paper), then one G update through the updated D. Objectives whose needs are
weight clipping, a gradient penalty, state after each D step, real scores in G's loss or a joint D loss are met
(``algorithms/needs.py``); auto-encoder discriminators are not. Logged: ``g_loss``, ``content`` and its parts,
``g_adv``, ``d_loss``, ``d_real``, ``d_fake``, and ``psnr``, the training batch's PSNR over all channels (dB).

Grids (``samples_from_data``): lowres (nearest-upscaled) | bicubic | output | target of a fixed held-out batch.
``translate`` maps LR images (``translation_input_shape``: the data's ``lowres`` shape) to HR ones.
"""
from __future__ import annotations

import math
from typing import Any, Literal, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, frozen, register_algorithm
from .controls import unknown_controls
from .needs import check_needs

Content = Literal["auto", "mse", "vgg54", "vgg22", "domain"]


def bicubic_upsample(lowres: torch.Tensor, scale: int, value_range: tuple[float, float]) -> torch.Tensor:
    """The classic baseline: bicubic interpolation of ``lowres`` ``scale`` times (align_corners False, as MATLAB's
    imresize and PIL place the samples), clamped to the value range."""
    up = F.interpolate(lowres.float(), scale_factor=scale, mode="bicubic", align_corners=False)
    return up.clamp(*value_range)


@register_algorithm
class SRGAN(Algorithm):
    name = "srgan"
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)
    source = "Ledig et al. 2017 (SRResNet and SRGAN), section 2.2 and figure 4; seed 001 and seed 002 (SRGAN)"
    needs_keys = ("lowres",)
    samples_from_data = True
    supported_needs = frozenset({Need.WEIGHT_CLIP, Need.GRADIENT_PENALTY, Need.AFTER_D_STEP, Need.REAL_SCORES_IN_G,
                                 Need.JOINT_D_LOSS})
    refused_because = {Need.ENERGY_D: "its D is the VGG-style discriminator scoring HR images, not an auto-encoder",
                       Need.PULLAWAY_TERM: "its D has no auto-encoder codes"}

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo,
                 adversarial_weight: float = 1e-3, content: Content = "auto", vgg_weights: str | None = None,
                 pixel_weight: float | None = None, feature_weight: float = 1.0, domain_source: str | None = None):
        super().__init__(nets, objective, data)
        self.needs = check_needs(self.name, objective, self.supported_needs, why=self.refused_because)
        for key, value in (("adversarial_weight", adversarial_weight), ("feature_weight", feature_weight),
                           ("pixel_weight", 0.0 if pixel_weight is None else pixel_weight)):
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"algorithm.{key} must be a number >= 0, got {value}")
        if content == "auto":
            content = "vgg54" if vgg_weights else ("domain" if domain_source else "mse")
        if content in ("vgg54", "vgg22") and not vgg_weights:
            raise ConfigError(f"algorithm.content={content} needs ImageNet VGG19 weights: give torchvision's "
                              "vgg19-dcbb9e9d.pth (or a .safetensors copy) as --set algorithm.vgg_weights=PATH, or use "
                              "content=mse")
        if content == "domain" and not domain_source:
            raise ConfigError("algorithm.content=domain needs the labelled source its classifier is trained on: --set "
                              "algorithm.domain_source=mnist5k?split=train (the bundled digits)")
        if vgg_weights and content not in ("vgg54", "vgg22"):
            raise ConfigError(f"algorithm.vgg_weights is set but algorithm.content={content} does not use it; set "
                              "content=vgg54 (or auto)")
        self.adversarial_weight, self.content, self.vgg_weights = adversarial_weight, content, vgg_weights
        self.pixel_weight = pixel_weight if pixel_weight is not None else (0.0 if content.startswith("vgg") else 1.0)
        self.feature_weight, self.domain_source = feature_weight, domain_source
        if self.pixel_weight == 0 and (content == "mse" or self.feature_weight == 0):
            raise ConfigError(f"algorithm.content={content} with pixel_weight 0 and feature_weight "
                              f"{self.feature_weight:g}: there is no content loss left; raise one of them")
        # The feature network, built on first use (a weights file or a cached classifier): a plain dict, so that it is
        # no submodule of the algorithm (not a network: no optimizer, checkpoint or EMA copy sees it).
        self._extractor: dict[str, nn.Module] = {}
        self.scale = self.check_data(data)

    # ---------------------------------------------------------------------------------------- data and networks
    @staticmethod
    def data_scale(data: DataInfo) -> int | None:
        """HR side / LR side of the data (None when it has no lowres field or the sides do not divide)."""
        lowres = data.field_shapes.get("lowres")
        if data.kind != "image" or lowres is None or len(lowres) != 3 or lowres[-1] < 1:
            return None
        hr = data.sample_shape[-1]
        return hr // lowres[-1] if hr % lowres[-1] == 0 and data.sample_shape[-2] % lowres[-2] == 0 else None

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        ctx = super().network_context(params, data)
        scale = cls.data_scale(data)
        if scale is not None:
            ctx["G"]["scale"] = scale          # G's upsampling factor follows the data (photos?sr=4: x4)
        return ctx

    def check_data(self, data: DataInfo) -> int:
        """The upsampling factor, after checking that the lowres field is the HR image shrunk by G's scale."""
        G = self.nets["G"]
        scale = int(getattr(G, "scale", 0))
        if not scale:
            raise ConfigError(f"algorithm '{self.name}' needs an upsampling generator (networks.G.arch=srresnet), got "
                              f"{type(G).__name__}")
        lowres = data.field_shapes.get("lowres")
        if lowres is None:       # described data without fields (a recipe check): nothing more to compare
            return scale
        hr = tuple(data.sample_shape)
        if lowres[0] != hr[0]:
            raise DataError(f"the data's lowres field has {lowres[0]} channel(s) but its images {hr[0]}: a source "
                            "whose low- and high-resolution images differ in channels; set data.channels to convert "
                            "both")
        want = (hr[0], hr[1] // scale, hr[2] // scale)
        if tuple(lowres) != want or hr[1] % scale or hr[2] % scale:
            given = self.data_scale(data)
            hint = (f"networks.G.scale={scale} but the data's lowres is {given}x smaller; leave networks.G.scale unset"
                    if given else "the source's lowres is not an integer fraction of its images; choose the crop "
                                  "size in the source (photos?size=, sr:DIR?crop=) as a multiple of the scale")
            raise DataError(f"lowres inputs of {'x'.join(map(str, lowres))} do not make {'x'.join(map(str, hr))} images "
                            f"at x{scale}: {hint}")
        return scale

    # ---------------------------------------------------------------------------------------- content loss
    def describe_content(self) -> str:
        """The content loss in words (said on stderr when it is built, and by setup)."""
        pixel = f"{self.pixel_weight:g} x pixel MSE" if self.pixel_weight else ""
        if self.content == "mse":
            return f"{pixel} (SRResNet-MSE / SRGAN-MSE)"
        if self.content.startswith("vgg"):
            feat = (f"{self.feature_weight:g} x MSE of VGG19 {self.content[3:]} features / 12.75 (weights "
                    f"{self.vgg_weights})")
        else:
            feat = (f"{self.feature_weight:g} x MSE of ganforge's {self.domain_source} domain-classifier features "
                    "(no VGG19 weights given: algorithm.vgg_weights unset)")
        return " + ".join(p for p in (pixel, feat) if p)

    def extractor(self, device: torch.device) -> nn.Module | None:
        """The content loss's feature network (None for mse), built on first use and said on stderr."""
        if self.content == "mse" or self.feature_weight == 0:
            return None
        if "net" not in self._extractor:
            from ..metrics.domain import say
            from ..metrics.perceptual import domain_features, load_vgg19
            value_range = self.value_range or (-1.0, 1.0)
            if self.content.startswith("vgg"):
                net = load_vgg19(self.vgg_weights, self.content, value_range, device)   # type: ignore[arg-type]
            else:
                net = domain_features(str(self.domain_source), value_range, device)
            self._extractor["net"] = net
            say(f"srgan content loss: {self.describe_content()}")
        return self._extractor["net"].to(device)

    def check_training_files(self) -> None:
        """The VGG19 weights are read (and kept for the first step) before the run starts."""
        if self.content.startswith("vgg") and self.feature_weight != 0:
            self.extractor(torch.device("cpu"))

    def set_extractor(self, extractor: nn.Module) -> None:
        """Use ``extractor`` as the content loss's feature network (tests: a VGG of random weights)."""
        self._extractor["net"] = extractor

    def content_loss(self, output: torch.Tensor, target: torch.Tensor,
                     logs: dict[str, torch.Tensor]) -> torch.Tensor:
        """l_X of G's ``output`` against the HR ``target`` (float32), its parts logged."""
        from ..metrics.perceptual import feature_loss
        mse = (output.float() - target.float()).square().mean()
        logs["content_mse"] = mse.detach()
        total = self.pixel_weight * mse
        extractor = self.extractor(output.device)
        if extractor is not None:
            feat = feature_loss(extractor, output, target)
            logs[f"content_{self.content}"] = feat.detach()
            total = total + self.feature_weight * feat
        logs["content"] = total.detach()
        return total

    def setup(self, dataset: Any, device: torch.device) -> dict[str, Any]:
        return {"content": self.content, "content_loss": self.describe_content(),
                "adversarial_weight": self.adversarial_weight, "scale": self.scale}

    # ---------------------------------------------------------------------------------------- training
    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        G, D, obj = self.nets["G"], self.nets["D"], self.objective
        batch = ctx.real_batch()
        lowres, hr = batch["lowres"], batch.x
        logs: dict[str, torch.Tensor] = {}
        with ctx.autocast():
            output = G(lowres)
        if self.adversarial_weight > 0:
            # D on real HR vs G's output (detached: no gradient into G from D's update)
            fake = output.detach().to(hr.dtype)
            with ctx.autocast():
                real_out, fake_out = D(hr), D(fake)
            d_loss = obj.d_loss(real_out, fake_out)
            ctx.update("D", self.needs.penalty(d_loss, D, hr, fake, logs))
            self.needs.clip(D)
            logs.update(d_loss=d_loss.detach(), d_real=real_out.detach().float().mean(),
                        d_fake=fake_out.detach().float().mean())
            self.needs.after_d_step(real_out, fake_out, logs)
        with frozen(D):
            loss = self.content_loss(output, hr, logs)
            if self.adversarial_weight > 0:
                with ctx.autocast():
                    fake_out = D(output)
                    real_out = self.needs.real_scores(lambda: D(hr))
                adversarial = obj.g_loss(fake_out, real_out)
                logs["g_adv"] = adversarial.detach()
                loss = loss + self.adversarial_weight * adversarial
            ctx.update("G", loss)
        logs["g_loss"] = loss.detach()
        mse = logs["content_mse"]
        lo, hi = self.value_range or (-1.0, 1.0)
        logs["psnr"] = 10 * torch.log10((hi - lo) ** 2 / mse.clamp_min(1e-12))
        return logs

    # ---------------------------------------------------------------------------------------- sampling
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device, batch: Any = None,
                      **controls: Any) -> dict[str, torch.Tensor]:
        unknown_controls(controls, (), f"'{self.name}' (super-resolution)")
        if batch is None:
            raise ConfigError(f"algorithm '{self.name}' upsamples given images, it does not sample from noise; use "
                              "ganforge translate RUN --input LOWRES_IMAGES")
        return {"lowres": batch["lowres"][:n].to(device), "image": batch["image"][:n].to(device)}

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return (nets or self.nets)["G"](inputs["lowres"])

    def grid_panels(self, inputs: Mapping[str, torch.Tensor],
                    nets: Mapping[str, nn.Module]) -> dict[str, torch.Tensor] | None:
        lowres = inputs["lowres"]
        return {"lowres": lowres, "bicubic": bicubic_upsample(lowres, self.scale, self.value_range or (-1.0, 1.0)),
                "output": self.generate(inputs, nets), "target": inputs["image"]}

    def translation_input_shape(self, **controls: Any) -> tuple[int, ...]:
        unknown_controls(controls, (), f"'{self.name}' (super-resolution)")
        lowres = self.data.field_shapes.get("lowres")
        if lowres is None:
            c, h, w = self.data.sample_shape
            return (c, h // self.scale, w // self.scale)
        return tuple(lowres)

    def translation_size_multiple(self) -> int | None:
        """SRResNet is fully convolutional: any photo upscales as it is (the paper tests on whole Set5 / BSD100
        images)."""
        return 1

    def evaluation_pairs(self, images: torch.Tensor, fields: Mapping[str, torch.Tensor],
                         **controls: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The held-out set's ``lowres`` field is translated and compared with its HR images."""
        unknown_controls(controls, (), f"'{self.name}' (super-resolution)")
        if "lowres" not in fields:
            raise DataError("evaluating super-resolution needs held-out images with a `lowres` field (a source with "
                            "?sr=K, e.g. photos?split=test&sr=4, or sr:DIR)")
        return fields["lowres"], images

    def translate(self, inputs: torch.Tensor, nets: Mapping[str, nn.Module] | None = None,
                  **controls: Any) -> torch.Tensor:
        unknown_controls(controls, (), f"'{self.name}' (super-resolution)")
        return (nets or self.nets)["G"](inputs)
