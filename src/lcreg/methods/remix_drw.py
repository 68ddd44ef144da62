"""Remix-DRW (Chou et al. 2020): mixup whose label goes wholly to the minority class when
the majority has loss.remix_kappa times its images and the minority's share of the mix is
at least loss.remix_tau; deferred class-balanced re-weighting from the first lr step on."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from lcreg.config import Config
from lcreg.losses import SoftMixupCrossEntropy, remix_targets
from lcreg.methods.base import DRW_KEYS, Method, apply_drw
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
    reads = ("loss.remix_kappa", "loss.remix_tau", *DRW_KEYS)

    def create_objective(self, cfg: Config, model: nn.Module, counts: Sequence[int]) -> nn.Module:
        return RemixObjective(counts, cfg.loss.remix_kappa, cfg.loss.remix_tau)

    def on_epoch_start(self, objective: nn.Module, epoch: int, cfg: Config, counts: Sequence[int]) -> None:
        apply_drw(objective.criterion.ce, epoch, cfg, counts)
