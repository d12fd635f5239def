"""The "FID Inception" network: InceptionV3 as in TensorFlow's 2015-12-05 graph, for FID, KID and IS.

FID and IS are only comparable across papers when computed with the same network: the Inception
graph ``inception-2015-12-05.tgz`` used by the original TensorFlow code of Heusel et al. (2017, FID)
and Salimans et al. (2016, IS); seed 001 section 8.2 introduces both scores. pytorch-fid ported its
weights to PyTorch as ``pt_inception-2015-12-05-6726825d.pth``; :class:`FIDInceptionV3` has exactly
the parameter and buffer names and shapes of that state dict, so the file loads with
``strict=True``. Written here without torchvision, following the layout of pytorch-fid's
``fid_inception_v3`` (torchvision's ``Inception3`` patched to match the TF graph):

* every convolution is ``BasicConv2d``: conv without bias, BatchNorm with eps 0.001, ReLU;
* no auxiliary classifier, and a 1008-way ``fc`` (the TF graph has 1008 output units);
* the average pools inside the A, C and first E blocks exclude the zero padding from the mean
  (``count_include_pad=False``, TensorFlow's behaviour);
* the last E block (``Mixed_7c``) pools its pool branch with a 3x3 *max* pool (a quirk of the TF
  graph that the port keeps).

Pre-processing, as pytorch-fid does (documented in its ``InceptionV3`` ``resize_input`` and
``normalize_input``): images in [0, 1] are bilinearly resized to 299 x 299 with
``align_corners=False`` (``torch.nn.functional.interpolate``), then mapped to [-1, 1] by
``2 x - 1``. One-channel images are repeated to three channels, as loading a grayscale PNG with
``PIL.Image.convert("RGB")`` in pytorch-fid does. Other tools resize differently (torch-fidelity
reproduces TensorFlow 1's bilinear resize exactly, clean-fid uses PIL's bicubic), so their FIDs
can differ slightly from pytorch-fid's; ours follow pytorch-fid. Features computed on a GPU differ
slightly from CPU ones (other convolution algorithms, and TF32 convolutions, which PyTorch enables
by default: set ``torch.backends.cudnn.allow_tf32 = False`` for full float32), as in pytorch-fid.

Outputs: ``pool`` (N x 2048, the final average pool: the FID/KID features), ``logits``
(N x 1008, ``fc`` with bias), ``logits_unbiased`` (``pool @ fc.weight.T``) and ``probs``
(softmax of ``logits_unbiased``): the original IS code (openai/improved-gan) multiplies ``pool_3`` by
the weight of ``softmax/logits/MatMul`` only, without the bias, over all 1008 classes.

Nothing is ever downloaded: :func:`load_inception` reads a local file given by path or by the
environment variable ``GANFORGE_INCEPTION_WEIGHTS``.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError, DataError

__all__ = [
    "FIDInceptionV3",
    "load_inception",
    "WEIGHTS_FILENAME",
    "WEIGHTS_URL",
    "WEIGHTS_ENV_VAR",
    "INPUT_SIZE",
]

WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILENAME}"
WEIGHTS_ENV_VAR = "GANFORGE_INCEPTION_WEIGHTS"
INPUT_SIZE = 299
NUM_CLASSES = 1008
POOL_FEATURES = 2048
# TensorFlow's BatchNorm epsilon in the 2015 Inception graph.
BN_EPS = 0.001
# Images slightly outside [0, 1] from float round-off are accepted; beyond this they are an error.
RANGE_TOLERANCE = 1e-3


class BasicConv2d(nn.Module):
    """Convolution (no bias) -> BatchNorm (eps 0.001) -> ReLU; parameters ``conv.weight``, ``bn.*``."""

    def __init__(self, in_channels: int, out_channels: int, **conv_options) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_options)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's 'SAME' average pool divides by the number of real (non-padding) pixels.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """35 x 35 block (Mixed_5b/c/d): 1x1, 5x5, double 3x3 and pool branches -> 224 + pool_features channels."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a): strided 3x3, double 3x3 and max-pool branches -> 384 + 96 + in channels."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3 = self.branch3x3(x)
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch3x3dbl, branch_pool], 1)


class FIDInceptionC(nn.Module):
    """17 x 17 block (Mixed_6b..e) with factorised 1x7 / 7x1 convolutions -> 768 channels."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            branch7x7dbl = layer(branch7x7dbl)
        branch_pool = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a): 3x3 and 7x7x3 strided branches plus max pool -> 320 + 192 + in channels."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            branch7x7x3 = layer(branch7x7x3)
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch7x7x3, branch_pool], 1)


class FIDInceptionE(nn.Module):
    """8 x 8 block (Mixed_7b/c) with split 1x3 / 3x1 branches -> 2048 channels.

    ``pool="avg"`` (Mixed_7b) uses the padding-excluding average pool; ``pool="max"`` (Mixed_7c)
    the 3x3 max pool of the TF 2015 graph.
    """

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        if self.pool == "avg":
            pooled = _tf_avg_pool(x)
        else:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        branch_pool = self.branch_pool(pooled)
        return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)


class FIDInceptionV3(nn.Module):
    """InceptionV3 with the TF-2015 quirks; state dict layout of ``pt_inception-2015-12-05-6726825d.pth``.

    ``forward(images)`` takes float images in [0, 1], shape (N, 1 or 3, H, W), any H and W, and
    returns ``{"pool", "logits", "logits_unbiased", "probs"}`` (see the module docstring).
    A freshly built network has random weights; use :func:`load_inception` for the real ones.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.fc = nn.Linear(POOL_FEATURES, NUM_CLASSES)

    @staticmethod
    def preprocess(images: torch.Tensor) -> torch.Tensor:
        """Validate ``images`` and return the network input: 3 x 299 x 299 in [-1, 1] (pytorch-fid)."""
        if not isinstance(images, torch.Tensor):
            raise DataError(f"Inception input must be a torch tensor of shape (N, C, H, W); got {type(images).__name__}")
        if not images.is_floating_point():
            hint = "; divide uint8 images by 255" if images.dtype == torch.uint8 else ""
            raise DataError(f"Inception input must be float images in [0, 1]; got dtype {images.dtype}{hint}")
        if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
            raise DataError(
                f"Inception input must have shape (N, C, H, W) with N >= 1 and C = 1 or 3; got {tuple(images.shape)}"
            )
        if not torch.isfinite(images).all():
            raise DataError("Inception input contains NaN or inf; check the generator output")
        low, high = float(images.min()), float(images.max())
        if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
            raise DataError(
                f"Inception input must lie in [0, 1]; got values in [{low:.3g}, {high:.3g}]"
                " (map tanh outputs in [-1, 1] with (x + 1) / 2)"
            )
        x = images.clamp(0.0, 1.0)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return 2.0 * x - 1.0

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        parameter = self.fc.weight
        if isinstance(images, torch.Tensor):
            images = images.to(parameter.device)  # resize on the network's device; dtype is checked first
        x = self.preprocess(images).to(parameter.dtype)
        x = self.Conv2d_1a_3x3(x)  # 32 x 149 x 149
        x = self.Conv2d_2a_3x3(x)  # 32 x 147 x 147
        x = self.Conv2d_2b_3x3(x)  # 64 x 147 x 147
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # 64 x 73 x 73
        x = self.Conv2d_3b_1x1(x)  # 80 x 73 x 73
        x = self.Conv2d_4a_3x3(x)  # 192 x 71 x 71
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # 192 x 35 x 35
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)  # ends at 2048 x 8 x 8
        pool = F.adaptive_avg_pool2d(x, output_size=1).flatten(1)
        logits_unbiased = pool @ self.fc.weight.T
        return {
            "pool": pool,
            "logits": logits_unbiased + self.fc.bias,
            "logits_unbiased": logits_unbiased,
            "probs": torch.softmax(logits_unbiased, dim=1),
        }


def _where_to_get_it() -> str:
    return (
        f"download {WEIGHTS_FILENAME} from the pytorch-fid release ({WEIGHTS_URL}) and pass"
        f" --inception-weights PATH or set {WEIGHTS_ENV_VAR}=PATH"
    )


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from .weights_file import read_weights_file
    loaded = read_weights_file(path, "Inception weights", WEIGHTS_FILENAME, ", re-download it")
    return dict(loaded)


def _check_keys(state: dict[str, torch.Tensor], model: nn.Module, path: Path) -> None:
    expected = model.state_dict()
    # BatchNorm's step counter is not used in eval mode and old ports do not store it.
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise CheckpointError(
            f"Inception weights {path} do not match the FID InceptionV3 layout: {'; '.join(parts)};"
            f" expected {WEIGHTS_FILENAME}"
        )
    wrong_shape = [
        f"{key} {tuple(state[key].shape)} != {tuple(value.shape)}"
        for key, value in expected.items()
        if state[key].shape != value.shape
    ]
    if wrong_shape:
        raise CheckpointError(
            f"Inception weights {path} have {len(wrong_shape)} tensors of the wrong shape"
            f" (e.g. {'; '.join(wrong_shape[:3])}); expected {WEIGHTS_FILENAME}"
        )


def load_inception(path: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu") -> FIDInceptionV3:
    """Build :class:`FIDInceptionV3` and load its weights from a local file, in eval mode, without gradients.

    ``path`` defaults to the environment variable ``GANFORGE_INCEPTION_WEIGHTS``. The file is
    ``pt_inception-2015-12-05-6726825d.pth`` (read with ``torch.load(weights_only=True)``) or a
    ``.safetensors`` file with the same keys. Raises ConfigError when no file is configured or it
    does not exist, CheckpointError when it is unreadable or its keys/shapes do not match.
    """
    if path is None or str(path) == "":
        path = os.environ.get(WEIGHTS_ENV_VAR) or None
    if path is None:
        raise ConfigError(f"FID/KID/IS need the Inception weights file {WEIGHTS_FILENAME}: {_where_to_get_it()}")
    weights_path = Path(path).expanduser()
    if not weights_path.is_file():
        raise ConfigError(f"Inception weights file {weights_path} not found: {_where_to_get_it()}")
    state = _read_state_dict(weights_path)
    model = FIDInceptionV3()
    _check_keys(state, model, weights_path)
    model.load_state_dict(state, strict=True)
    model.eval().requires_grad_(False)
    return model.to(device)
