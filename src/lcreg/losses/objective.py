"""Eq. 10: L = alpha * L_latent_aug + beta * L_recon + gamma * L_cls.

A term whose weight is 0 is not computed at all, which gives the ablation rows of the
paper's Table 7 (latent head only; + aug; + recon; all). Without a latent head only
L_cls remains: the MiSLAS baseline.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from lcreg.losses.classification import MixupCrossEntropy
from lcreg.losses.latent import LatentAugmentationLoss, ReconstructionLoss
from lcreg.models.latent import HeadOutput


class LCRegObjective(nn.Module):
    def __init__(self, alpha: float = 0.1, beta: float = 0.1, gamma: float = 1.0,
                 latent_aug: LatentAugmentationLoss | None = None) -> None:
        super().__init__()
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.classification = MixupCrossEntropy()
        self.reconstruction = ReconstructionLoss()
        self.latent_aug = latent_aug

    def forward(self, out: HeadOutput, features: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor,
                lam: float, progress: float, latent_bias: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """Returns the total loss and a dict of the (undetached) terms for logging."""
        terms = {"cls": self.classification(out.logits, y_a, y_b, lam)}
        total = self.gamma * terms["cls"]
        if out.recon is not None and self.beta > 0:
            terms["recon"] = self.reconstruction(out.recon, features)
            total = total + self.beta * terms["recon"]
        if out.weights is not None and self.alpha > 0 and self.latent_aug is not None:
            terms["latent_aug"] = self.latent_aug(out.weights, features, out.sim, out.keys, latent_bias, progress)
            total = total + self.alpha * terms["latent_aug"]
        return total, terms
