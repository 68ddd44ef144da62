"""Losses: eq. 4 reconstruction, eq. 5-9 latent augmentation, eq. 10 objective, the
classification losses of the two MiSLAS stages, and those of the comparison methods."""

from lcreg.losses.classification import (
    FocalLoss,
    LabelAwareSmoothing,
    LDAMLoss,
    LogitAdjustedLoss,
    MixupCrossEntropy,
    SoftMixupCrossEntropy,
    WeightedCrossEntropy,
    effective_number_weights,
    mixup,
    remix_targets,
)
from lcreg.losses.isda import ClassISDALoss
from lcreg.losses.latent import CovarianceEstimator, LatentAugmentationLoss, ReconstructionLoss, latent_samples
from lcreg.losses.objective import LCRegObjective

__all__ = [
    "FocalLoss",
    "LabelAwareSmoothing",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "MixupCrossEntropy",
    "SoftMixupCrossEntropy",
    "WeightedCrossEntropy",
    "effective_number_weights",
    "mixup",
    "remix_targets",
    "ClassISDALoss",
    "CovarianceEstimator",
    "LatentAugmentationLoss",
    "ReconstructionLoss",
    "latent_samples",
    "LCRegObjective",
]
