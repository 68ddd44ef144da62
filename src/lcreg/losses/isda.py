"""ISDA on the class features (Wang et al. 2019): the comparison the paper makes against
its latent augmentation (Table 10, "+ ISDA"). Class-conditional covariances of the pooled
features, the upper bound of the expected cross-entropy over N(0, lambda Sigma_y)
perturbations, lambda = lambda0 t / T.

Under mixup a mixed feature belongs to two classes: the bound is taken for both labels and
mixed with mixup's weight, and the statistics take the feature under its dominant label.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from lcreg.losses.latent import CovarianceEstimator, isda_logits


class ClassISDALoss(nn.Module):
    def __init__(self, num_classes: int, dim: int, lambda0: float = 0.5, covariance: str = "full") -> None:
        super().__init__()
        self.estimator = CovarianceEstimator(num_classes, dim, covariance)
        self.lambda0 = lambda0

    def augmented_logits(
        self, pooled: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], labels: torch.Tensor, lam: float
    ) -> torch.Tensor:
        """Eq. 9 of ISDA with the linear classifier's weight W (C, D) as the keys W^T."""
        return isda_logits(self.estimator, pooled, labels, weight.t(), bias, lam)

    def forward(
        self,
        pooled: torch.Tensor,
        weight: torch.Tensor,
        bias: Optional[torch.Tensor],
        y_a: torch.Tensor,
        y_b: torch.Tensor,
        mix: float,
        progress: float,
    ) -> torch.Tensor:
        with torch.autocast(pooled.device.type, enabled=False):
            if self.training:
                self.estimator.update(pooled.detach().float(), y_a if mix >= 0.5 else y_b)
            lam = self.lambda0 * progress
            loss = F.cross_entropy(self.augmented_logits(pooled, weight, bias, y_a, lam), y_a)
            if mix < 1.0:
                loss = mix * loss + (1 - mix) * F.cross_entropy(
                    self.augmented_logits(pooled, weight, bias, y_b, lam), y_b
                )
            return loss
