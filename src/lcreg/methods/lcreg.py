"""LCReg (this paper): the latent category head (eq. 1-3 and the decoder), eq. 10 on mixup
batches in stage 1, MiSLAS's classifier re-training in stage 2."""

from __future__ import annotations

from typing import Optional, Sequence

import torch.nn as nn

from lcreg.config import Config
from lcreg.losses import LatentAugmentationLoss, LCRegObjective, ReconstructionLoss
from lcreg.methods.base import MISLAS_STAGE2, Method, Stage2Recipe, mislas_stage2
from lcreg.models.network import latent_head
from lcreg.registry import METHODS

# loss.detach_terms: which latent losses detach_features detaches
DETACH_TERMS = {"both": ("recon", "latent_aug"), "recon": ("recon",), "latent_aug": ("latent_aug",)}


@METHODS.register()
class LCReg(Method):
    name = "lcreg"
    paper = "Liu, Wu et al., LCReg: Long-Tailed Image Classification with Latent Categories based Recognition"
    summary = "latent categories + reconstruction + latent ISDA (eq. 10), MiSLAS stage 2"
    has_stage2 = True
    reads = (
        "model.latent.",
        "loss.alpha",
        "loss.beta",
        "loss.gamma",
        "loss.lambda0",
        "loss.covariance",
        "loss.latent_samples",
        "loss.latent_bias",
        "loss.detach_features",
        "loss.detach_terms",
        "loss.recon_similarity",
        "loss.recon_temperature",
        "loss.recon_reduction",
        *MISLAS_STAGE2,
    )

    def create_head(self, cfg: Config, in_features: int, num_classes: int) -> nn.Module:
        return latent_head(in_features, num_classes, cfg.model)

    def create_objective(self, cfg: Config, model: nn.Module, counts: Sequence[int]) -> nn.Module:
        lo, head = cfg.loss, model.head
        latent_aug = LatentAugmentationLoss(
            head.num_latents, head.in_features, lo.covariance, lo.lambda0, lo.latent_samples
        )
        reconstruction = ReconstructionLoss(lo.recon_similarity, lo.recon_temperature, lo.recon_reduction)
        return LCRegObjective(
            lo.alpha,
            lo.beta,
            lo.gamma,
            latent_aug,
            reconstruction,
            head.latent_maps if lo.detach_features else None,
            head.latent_bias if lo.latent_bias else None,
            DETACH_TERMS[lo.detach_terms],
        )

    def stage2_recipe(self, cfg: Config, counts: Sequence[int]) -> Optional[Stage2Recipe]:
        return mislas_stage2(cfg, counts)
