"""Losses: eq. 4 reconstruction, eq. 5-9 latent augmentation, eq. 10 objective, and the
classification losses of the two MiSLAS stages."""

from lcreg.losses.classification import LabelAwareSmoothing, MixupCrossEntropy, mixup
from lcreg.losses.latent import CovarianceEstimator, LatentAugmentationLoss, ReconstructionLoss, latent_samples
from lcreg.losses.objective import LCRegObjective

__all__ = [
    "LabelAwareSmoothing", "MixupCrossEntropy", "mixup", "CovarianceEstimator", "LatentAugmentationLoss",
    "ReconstructionLoss", "latent_samples", "LCRegObjective",
]
