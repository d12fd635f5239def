"""Network building blocks shared by the model families: spectral normalisation, minibatch discrimination,
minibatch standard deviation and virtual batch normalisation."""
from .minibatch import MinibatchDiscrimination, MinibatchStdDev
from .spectral import apply_spectral_norm, spectral_norm_estimate, weight_as_matrix
from .vbn import VirtualBatchNorm, VirtualBatchNormHost, refresh_references
from .conditioning_augmentation import ConditioningAugmentation, kl_to_standard_normal  # noqa: F401  (StackGAN)

__all__ = ["MinibatchDiscrimination", "MinibatchStdDev", "VirtualBatchNorm", "VirtualBatchNormHost",
           "apply_spectral_norm", "refresh_references", "spectral_norm_estimate", "weight_as_matrix"]
