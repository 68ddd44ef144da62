"""Remix-DRW (Chou et al. 2020): mixup whose label goes wholly to the minority class when
the majority has kappa times its images and the minority's share of the mix is at least
tau; deferred class-balanced re-weighting from the first lr step on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn

from lcreg.config import Config
from lcreg.losses import SoftMixupCrossEntropy, remix_targets
from lcreg.methods.base import DRWParams, Method, apply_drw, param
from lcreg.registry import METHODS


class RemixObjective(nn.Module):
    def __init__(self, counts: Sequence[int], kappa: float, tau: float) -> None:
        super().__init__()
        self.register_buffer("counts", torch.as_tensor(list(counts), dtype=torch.float32))
        self.kappa, self.tau = kappa, tau
        self.criterion = SoftMixupCrossEntropy(len(counts))

    def forward(self, out, features, y_a, y_b, lam: float, progress: float):
        w = remix_targets(y_a, y_b, lam, self.counts, self.kappa, self.tau)
        loss = self.criterion(out.logits, y_a, y_b, w)
        return loss, {"cls": loss}


@METHODS.register()
class RemixDRW(Method):
    name = "remix_drw"
    paper = "Chou et al., Remix: Rebalanced Mixup (ECCV 2020 workshops)"
    summary = "rebalanced mixup labels, deferred class-balanced re-weighting"

    @dataclass
    class Params(DRWParams):
        kappa: float = param(3.0, "the label goes to the minority when the majority has kappa times its images", min=1)
        tau: float = param(0.5, "... and the minority's share of the mix is at least tau", min=0, max=1)

    def create_objective(self, cfg: Config, model: nn.Module, counts: Sequence[int]) -> nn.Module:
        return RemixObjective(counts, self.params(cfg).kappa, self.params(cfg).tau)

    def on_epoch_start(self, objective: nn.Module, epoch: int, cfg: Config, counts: Sequence[int]) -> None:
        apply_drw(objective.criterion.ce, epoch, cfg, counts)
