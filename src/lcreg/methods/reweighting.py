"""Loss-side tools for long-tailed data, one stage, no mixup: focal loss, the class-balanced
loss (effective number of samples) and the balanced softmax / logit adjustment."""

from __future__ import annotations

from typing import Sequence

import torch.nn as nn

from lcreg.config import Config
from lcreg.losses import FocalLoss, LogitAdjustedLoss, WeightedCrossEntropy, effective_number_weights
from lcreg.methods.base import ClassificationObjective, Method
from lcreg.registry import METHODS


@METHODS.register()
class Focal(Method):
    name = "focal"
    paper = "Lin et al., Focal Loss for Dense Object Detection (ICCV 2017)"
    summary = "focal loss (gamma = loss.focal_gamma)"
    mixup = False
    reads = ("loss.focal_gamma",)

    def create_objective(self, cfg: Config, model: nn.Module, counts: Sequence[int]) -> nn.Module:
        return ClassificationObjective(FocalLoss(len(counts), cfg.loss.focal_gamma))


@METHODS.register()
class ClassBalanced(Method):
    name = "class_balanced"
    paper = "Cui et al., Class-Balanced Loss Based on Effective Number of Samples (CVPR 2019)"
    summary = "cross-entropy weighted by the effective number of samples (beta = loss.cb_beta)"
    mixup = False
    reads = ("loss.cb_beta",)

    def create_objective(self, cfg: Config, model: nn.Module, counts: Sequence[int]) -> nn.Module:
        return ClassificationObjective(
            WeightedCrossEntropy(len(counts), effective_number_weights(counts, cfg.loss.cb_beta))
        )


@METHODS.register()
class BalancedSoftmax(Method):
    name = "balanced_softmax"
    paper = "Ren et al., Balanced Meta-Softmax (NeurIPS 2020); Menon et al., logit adjustment (ICLR 2021)"
    summary = "cross-entropy of logits + tau log prior (tau = loss.logit_adjust_tau; 1: balanced softmax)"
    mixup = False
    reads = ("loss.logit_adjust_tau",)

    def create_objective(self, cfg: Config, model: nn.Module, counts: Sequence[int]) -> nn.Module:
        return ClassificationObjective(LogitAdjustedLoss(counts, cfg.loss.logit_adjust_tau))
