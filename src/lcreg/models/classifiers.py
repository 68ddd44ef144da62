"""Plain classifier heads and the stage-2 learnable logit scale."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lcreg.models.outputs import HeadOutput


class LinearHead(nn.Module):
    """Global average pooling + linear classifier: the MiSLAS / plain baseline head."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    def pre_logits(self, features: torch.Tensor) -> torch.Tensor:
        return features.mean((2, 3))

    def forward(self, features: torch.Tensor) -> HeadOutput:
        pooled = self.pre_logits(features)
        return HeadOutput(self.fc(pooled), pooled=pooled)


class NormedLinear(nn.Module):
    """Cosine classifier (LDAM): logits = scale * normalise(x) normalise(W)^T. The scale is
    part of the model, not of the loss, so softmax probabilities (ECE, NLL, ``lcreg predict``)
    are those the model was trained with, not cosines in [-1, 1]. No bias."""

    def __init__(self, in_features: int, num_classes: int, scale: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features).uniform_(-1, 1).renorm_(2, 0, 1e-5).mul_(1e5))
        self.bias = None
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * (F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).t())


class CosineHead(LinearHead):
    """Global average pooling + cosine classifier scaled by ``scale`` (LDAM-DRW: 30)."""

    def __init__(self, in_features: int, num_classes: int, scale: float = 1.0) -> None:
        super().__init__(in_features, num_classes)
        self.fc = NormedLinear(in_features, num_classes, scale)


class LearnableLogitScale(nn.Module):
    """MiSLAS stage 2 (and LWS): one learnable scale per class, initialised to 1, on the logits."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(num_classes))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits * self.scale
