"""Classification losses: soft-target cross-entropy (mixup) and label-aware smoothing."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def mixup(
    images: torch.Tensor,
    targets: torch.Tensor,
    alpha: float,
    rng: np.random.Generator,
    generator: Optional[torch.Generator] = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
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


# --------------------------------------------------------------------------------------
# the comparison methods' losses (Table 1, Table 10 and the usual long-tailed tools)


def effective_number_weights(class_counts: Sequence[int], beta: float = 0.9999) -> torch.Tensor:
    """Class-balanced weights (Cui et al. 2019): w_c proportional to (1 - beta) / (1 - beta^n_c),
    normalised to sum to the number of classes. Classes without images get weight 0."""
    n = torch.as_tensor(list(class_counts), dtype=torch.float64)
    w = torch.where(n > 0, (1 - beta) / (1 - beta ** n.clamp(min=1)), torch.zeros_like(n))
    return (w / w.sum() * (n > 0).sum()).float()


class WeightedCrossEntropy(nn.Module):
    """Cross-entropy with optional per-class weights (``weight=None``: plain CE). The DRW
    schedule switches the weights on during training (``set_weight``)."""

    def __init__(self, num_classes: int, weight: Optional[torch.Tensor] = None) -> None:
        super().__init__()
        self.register_buffer("weight", torch.ones(num_classes) if weight is None else weight.float())
        self.weighted = weight is not None

    def set_weight(self, weight: Optional[torch.Tensor]) -> None:
        self.weighted = weight is not None
        if weight is not None:
            self.weight.copy_(weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), targets, weight=self.weight if self.weighted else None)


class LDAMLoss(WeightedCrossEntropy):
    """LDAM (Cao et al. 2019) on logits s * cos(x, w_c) of a scaled cosine classifier: the
    target logit is lowered by s * Delta_c, Delta_c = max_margin * n_c^(-1/4) / max_c' n_c'^(-1/4),
    i.e. the cross-entropy of s * (cos - Delta_y)."""

    def __init__(self, class_counts: Sequence[int], max_margin: float = 0.5, scale: float = 30.0) -> None:
        super().__init__(len(class_counts))
        n = torch.as_tensor(list(class_counts), dtype=torch.float64).clamp(min=1)
        m = n**-0.25
        self.register_buffer("margins", (m * (max_margin / m.max())).float())
        self.scale = scale

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        shifted = logits - F.one_hot(targets, logits.shape[1]) * (self.scale * self.margins[targets])[:, None]
        return super().forward(shifted, targets)


class FocalLoss(WeightedCrossEntropy):
    """Focal loss (Lin et al. 2017): -(1 - p_t)^gamma log p_t, with optional class weights."""

    def __init__(self, num_classes: int, gamma: float = 2.0, weight: Optional[torch.Tensor] = None) -> None:
        super().__init__(num_classes, weight)
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1).gather(1, targets[:, None]).squeeze(1)
        loss = -((1 - logp.exp()) ** self.gamma) * logp
        if self.weighted:
            w = self.weight[targets]
            return (w * loss).sum() / w.sum()
        return loss.mean()


class LogitAdjustedLoss(nn.Module):
    """Balanced softmax (Ren et al. 2020) / logit adjustment (Menon et al. 2021): CE of
    logits + tau * log prior; tau = 1 is the balanced softmax. Prediction uses the plain
    logits, so the prior is removed at test time."""

    def __init__(self, class_counts: Sequence[int], tau: float = 1.0) -> None:
        super().__init__()
        n = torch.as_tensor(list(class_counts), dtype=torch.float64).clamp(min=1)
        self.register_buffer("log_prior", (tau * torch.log(n / n.sum())).float())

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float() + self.log_prior, targets)


def remix_targets(
    y_a: torch.Tensor, y_b: torch.Tensor, lam: float, class_counts: torch.Tensor, kappa: float = 3.0, tau: float = 0.5
) -> torch.Tensor:
    """Remix (Chou et al. 2020): per pair, the label weight of y_a is lam, except that it
    goes wholly to the minority class when the majority has kappa times its images and the
    minority's share of the mix is at least tau. Returns the weight of y_a per sample."""
    n_a, n_b = class_counts[y_a].float(), class_counts[y_b].float()
    w = torch.full_like(n_a, float(lam))
    w = torch.where((n_a / n_b >= kappa) & (lam < tau), torch.zeros_like(w), w)  # y_b is the minority
    w = torch.where((n_b / n_a >= kappa) & (1 - lam < tau), torch.ones_like(w), w)  # y_a is the minority
    return w


class SoftMixupCrossEntropy(nn.Module):
    """w * CE(logits, y_a) + (1 - w) * CE(logits, y_b) with a weight per sample (Remix);
    optional class weights (DRW)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.ce = WeightedCrossEntropy(num_classes)

    def forward(self, logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)
        nll_a = -logp.gather(1, y_a[:, None]).squeeze(1)
        nll_b = -logp.gather(1, y_b[:, None]).squeeze(1)
        if self.ce.weighted:
            nll_a, nll_b = nll_a * self.ce.weight[y_a], nll_b * self.ce.weight[y_b]
        return (w * nll_a + (1 - w) * nll_b).mean()
