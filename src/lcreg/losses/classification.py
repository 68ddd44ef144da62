"""Classification losses: soft-target cross-entropy (mixup) and label-aware smoothing."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def mixup(images: torch.Tensor, targets: torch.Tensor, alpha: float, rng: np.random.Generator,
          generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al.): one lambda ~ Beta(alpha, alpha) per batch, drawn on the host so
    the step never waits on the device; pairs from a random permutation. Returns the mixed
    images, both label sets and lambda."""
    if alpha <= 0:
        return images, targets, targets, 1.0
    lam = float(rng.beta(alpha, alpha))
    perm = torch.randperm(images.shape[0], device=images.device, generator=generator)
    return lam * images + (1 - lam) * images[perm], targets, targets[perm], lam


class MixupCrossEntropy(nn.Module):
    """lam * CE(logits, y_a) + (1 - lam) * CE(logits, y_b); plain CE when lam = 1."""

    def forward(self, logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: float) -> torch.Tensor:
        logits = logits.float()
        if lam == 1.0:
            return F.cross_entropy(logits, y_a)
        return lam * F.cross_entropy(logits, y_a) + (1 - lam) * F.cross_entropy(logits, y_b)


class LabelAwareSmoothing(nn.Module):
    """MiSLAS label-aware smoothing: class y gets
    eps_y = eps_tail + (eps_head - eps_tail) * sin(pi/2 * (n_y - n_min) / (n_max - n_min)),
    loss = (1 - eps_y) * NLL + eps_y * mean_c(-log p_c)."""

    def __init__(self, class_counts: Sequence[int], eps_head: float = 0.3, eps_tail: float = 0.0) -> None:
        super().__init__()
        n = torch.as_tensor(list(class_counts), dtype=torch.float64)
        span = (n.max() - n.min()).clamp(min=1)
        eps = eps_tail + (eps_head - eps_tail) * torch.sin(0.5 * math.pi * (n - n.min()) / span)
        self.register_buffer("eps", eps.float())

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)
        eps = self.eps[targets]
        nll = -logp.gather(1, targets[:, None]).squeeze(1)
        smooth = -logp.mean(dim=1)
        return ((1 - eps) * nll + eps * smooth).mean()
