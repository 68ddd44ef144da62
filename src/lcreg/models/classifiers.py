"""Plain classifier heads and the stage-2 learnable logit scale."""

from __future__ import annotations

import torch
import torch.nn as nn

from lcreg.models.latent import HeadOutput


class LinearHead(nn.Module):
    """Global average pooling + linear classifier: the MiSLAS / plain baseline head."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    def pre_logits(self, features: torch.Tensor) -> torch.Tensor:
        return features.mean((2, 3))

    def forward(self, features: torch.Tensor) -> HeadOutput:
        return HeadOutput(self.fc(self.pre_logits(features)))


class LearnableLogitScale(nn.Module):
    """MiSLAS stage 2: one learnable scale per class, initialised to 1, on the logits."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(num_classes))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits * self.scale
