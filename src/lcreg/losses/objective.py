"""Eq. 10: L = alpha * L_latent_aug + beta * L_recon + gamma * L_cls.

A term whose weight is 0 is not computed at all, which gives the ablation rows of the
paper's Table 7 (latent head only; + aug; + recon; all). Without a latent head only
L_cls remains: the MiSLAS baseline.

``detach_features``: the latent losses see the feature map detached, so they train the
latent head (K, its encoder, the bias of eq. 9) and not the backbone, which then learns
from L_cls alone (through the decoder). Eq. 10 applies them "on the latent category
features" and eq. 8 names its parameters "the encoder parameters for the latent category
features". Eq. 1-3 are then recomputed on the detached map through ``latent_maps`` (the
head's own method), so the backbone receives no gradient from a detached term.
``detach_terms`` names which of the two are detached (both by default; one of them to
measure which term, reaching the backbone, does what: ``loss.detach_terms``).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn

from lcreg.losses.classification import MixupCrossEntropy
from lcreg.losses.latent import LatentAugmentationLoss, ReconstructionLoss
from lcreg.models.latent import LatentMaps
from lcreg.models.outputs import HeadOutput

DETACHABLE = ("recon", "latent_aug")  # the latent losses of eq. 10 that detach_features applies to


class LCRegObjective(nn.Module):
    def __init__(
        self,
        alpha: float = 0.1,
        beta: float = 0.1,
        gamma: float = 1.0,
        latent_aug: LatentAugmentationLoss | None = None,
        reconstruction: ReconstructionLoss | None = None,
        latent_maps: Optional[Callable[[torch.Tensor], LatentMaps]] = None,
        latent_bias: Optional[torch.Tensor] = None,
        detach_terms: tuple[str, ...] = DETACHABLE,
    ) -> None:
        """``latent_maps``: given, the latent losses named in ``detach_terms`` are computed
        on the detached feature map; ``latent_bias``: b of eq. 9 (the head's parameter; a
        reference, not a submodule)."""
        super().__init__()
        unknown = set(detach_terms) - set(DETACHABLE)
        if unknown:
            raise ValueError(f"detach_terms: unknown {sorted(unknown)}; choose from {DETACHABLE}")
        self.detach_terms = frozenset(detach_terms) if latent_maps is not None else frozenset()
        self._latent_bias = [latent_bias]
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.classification = MixupCrossEntropy()
        self.reconstruction = reconstruction if reconstruction is not None else ReconstructionLoss()
        self.latent_aug = latent_aug
        self.latent_maps = latent_maps

    @property
    def detach_features(self) -> bool:
        return bool(self.detach_terms)

    def forward(
        self,
        out: HeadOutput,
        features: torch.Tensor,
        y_a: torch.Tensor,
        y_b: torch.Tensor,
        lam: float,
        progress: float,
        latent_bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict]:
        """Returns the total loss and a dict of the (undetached) terms for logging;
        ``latent_bias`` overrides the one given at construction."""
        latent_bias = latent_bias if latent_bias is not None else self._latent_bias[0]
        terms = {"cls": self.classification(out.logits, y_a, y_b, lam)}
        total = self.gamma * terms["cls"]
        use_recon = out.recon is not None and self.beta > 0
        use_aug = out.weights is not None and self.alpha > 0 and self.latent_aug is not None
        if not (use_recon or use_aug):
            return total, terms
        attached = (features, out.sim, out.weights, out.recon, out.keys)
        detached = attached
        if self.detach_terms:
            f = features.detach()
            maps = self.latent_maps(f)
            detached = (f, maps.sim, maps.weights, maps.recon, maps.keys)
        if use_recon:
            f, _, _, recon, _ = detached if "recon" in self.detach_terms else attached
            terms["recon"] = self.reconstruction(recon, f)
            total = total + self.beta * terms["recon"]
        if use_aug:
            f, sim, weights, _, keys = detached if "latent_aug" in self.detach_terms else attached
            terms["latent_aug"] = self.latent_aug(weights, f, sim, keys, latent_bias, progress)
            total = total + self.alpha * terms["latent_aug"]
        return total, terms
