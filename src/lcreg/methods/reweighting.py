"""Loss-side tools for long-tailed data, one stage, no mixup: focal loss, the class-balanced
loss (effective number of samples) and the balanced softmax / logit adjustment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch.nn as nn

from lcreg.config import Config
from lcreg.losses import FocalLoss, LogitAdjustedLoss, WeightedCrossEntropy, effective_number_weights
from lcreg.methods.base import ClassificationObjective, Method, param
from lcreg.registry import METHODS


@METHODS.register()
class Focal(Method):
    name = "focal"
    paper = "Lin et al., Focal Loss for Dense Object Detection (ICCV 2017)"
    summary = "focal loss (gamma = method_params.gamma)"
    mixup = False

    @dataclass
    class Params:
        gamma: float = param(2.0, "focusing parameter (0: cross-entropy)", min=0)

    def create_objective(self, cfg: Config, model: nn.Module, counts: Sequence[int]) -> nn.Module:
        return ClassificationObjective(FocalLoss(len(counts), self.params(cfg).gamma))


@METHODS.register()
class ClassBalanced(Method):
    name = "class_balanced"
    paper = "Cui et al., Class-Balanced Loss Based on Effective Number of Samples (CVPR 2019)"
    summary = "cross-entropy weighted by the effective number of samples (beta = method_params.cb_beta)"
    mixup = False

    @dataclass
    class Params:
        cb_beta: float = param(0.9999, "beta of the effective number of samples", min=0, lt=1)

    def create_objective(self, cfg: Config, model: nn.Module, counts: Sequence[int]) -> nn.Module:
        return ClassificationObjective(
            WeightedCrossEntropy(len(counts), effective_number_weights(counts, self.params(cfg).cb_beta))
        )


@METHODS.register()
class BalancedSoftmax(Method):
    name = "balanced_softmax"
    paper = "Ren et al., Balanced Meta-Softmax (NeurIPS 2020); Menon et al., logit adjustment (ICLR 2021)"
    summary = "cross-entropy of logits + tau log prior (tau = method_params.tau; 1: balanced softmax)"
    mixup = False

    @dataclass
    class Params:
        tau: float = param(1.0, "weight of the log prior added to the logits in the loss (1: balanced softmax)", min=0)

    def create_objective(self, cfg: Config, model: nn.Module, counts: Sequence[int]) -> nn.Module:
        return ClassificationObjective(LogitAdjustedLoss(counts, self.params(cfg).tau))
