"""LDAM-DRW (Cao et al. 2019): a cosine classifier, label-distribution-aware margins
(proportional to n^-1/4, at most max_margin, logits scaled by scale), deferred re-weighting
with class-balanced weights (beta = cb_beta) from the first lr
step on. No mixup, one stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch.nn as nn

from lcreg.config import Config
from lcreg.losses import LDAMLoss
from lcreg.methods.base import ClassificationObjective, DRWParams, Method, apply_drw, param
from lcreg.models.classifiers import CosineHead
from lcreg.registry import METHODS


@METHODS.register()
class LDAMDRW(Method):
    name = "ldam_drw"
    paper = "Cao et al., Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss (NeurIPS 2019)"
    summary = "cosine classifier, LDAM margins, deferred class-balanced re-weighting"
    mixup = False

    @dataclass
    class Params(DRWParams):
        max_margin: float = param(0.5, "largest margin (the rarest class's)", min=0)
        scale: float = param(30.0, "logit scale s of the cosine classifier", gt=0)

    def create_head(self, cfg: Config, in_features: int, num_classes: int) -> nn.Module:
        return CosineHead(in_features, num_classes, self.params(cfg).scale)  # logits s * cos

    def create_objective(self, cfg: Config, model: nn.Module, counts: Sequence[int]) -> nn.Module:
        return ClassificationObjective(LDAMLoss(counts, self.params(cfg).max_margin, self.params(cfg).scale))

    def on_epoch_start(self, objective: nn.Module, epoch: int, cfg: Config, counts: Sequence[int]) -> None:
        apply_drw(objective.criterion, epoch, cfg, counts)
