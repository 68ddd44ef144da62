"""MiSLAS + ISDA on the class features (Wang et al. 2019): the comparison of the paper's
Table 10 ("+ ISDA") against LCReg's latent augmentation: class-conditional covariances of
the pooled features (noisy for tail classes), lambda = loss.lambda0 t / T; MiSLAS stage 2."""

from __future__ import annotations

from typing import Optional, Sequence

import torch.nn as nn

from lcreg.config import Config
from lcreg.losses import ClassISDALoss
from lcreg.methods.base import MISLAS_STAGE2, Method, Stage2Recipe, mislas_stage2
from lcreg.registry import METHODS


class ISDAObjective(nn.Module):
    def __init__(self, classifier: nn.Linear, isda: ClassISDALoss) -> None:
        super().__init__()
        self.isda = isda
        self._classifier = [classifier]  # a reference, not a submodule: its weights belong to the model

    def forward(self, out, features, y_a, y_b, lam: float, progress: float):
        fc = self._classifier[0]
        loss = self.isda(out.pooled, fc.weight, fc.bias, y_a, y_b, lam, progress)
        return loss, {"cls_isda": loss}


@METHODS.register()
class ISDA(Method):
    name = "isda"
    paper = "Wang et al., Implicit Semantic Data Augmentation for Deep Networks (NeurIPS 2019)"
    summary = "MiSLAS with ISDA on class features (class-conditional covariances)"
    has_stage2 = True
    reads = ("loss.lambda0", "loss.covariance", *MISLAS_STAGE2)

    def create_objective(self, cfg: Config, model: nn.Module, counts: Sequence[int]) -> nn.Module:
        fc = model.head.fc
        return ISDAObjective(fc, ClassISDALoss(fc.out_features, fc.in_features, cfg.loss.lambda0, cfg.loss.covariance))

    def stage2_recipe(self, cfg: Config, counts: Sequence[int]) -> Optional[Stage2Recipe]:
        return mislas_stage2(cfg, counts)
