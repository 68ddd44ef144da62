"""``LongTailNet`` = backbone + head, with timm's forward_features / forward_head split,
and ``create_model`` that builds one from a config."""

from __future__ import annotations

from functools import partial
from typing import Callable, Optional

import torch
import torch.nn as nn

from lcreg.config import ModelConfig
from lcreg.models.backbones import create_backbone
from lcreg.models.classifiers import LearnableLogitScale
from lcreg.models.latent import LatentCategoryHead
from lcreg.models.outputs import HeadOutput


class LongTailNet(nn.Module):
    def __init__(self, backbone: nn.Module, head: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.num_classes = num_classes
        self.logit_scale: Optional[LearnableLogitScale] = None  # added for stage 2

    @property
    def classifier(self) -> nn.Linear:
        return self.head.fc

    @property
    def has_latent_head(self) -> bool:
        return isinstance(self.head, LatentCategoryHead)

    def add_logit_scale(self) -> None:
        if self.logit_scale is None:
            self.logit_scale = LearnableLogitScale(self.num_classes).to(self.classifier.weight.device)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False):
        """The head on a feature map: a ``HeadOutput``, or with ``pre_logits`` only the pooled
        vector the classifier sees (timm's convention; stage 2 trains on it)."""
        if pre_logits:
            return self.head.pre_logits(features)
        out = self.head(features)
        if self.logit_scale is not None:
            out = out._replace(logits=self.logit_scale(out.logits))
        return out

    def forward(self, x: torch.Tensor) -> HeadOutput:
        return self.forward_head(self.forward_features(x))


def create_model(
    cfg: ModelConfig, num_classes: int, head_factory: Optional[Callable[[int, int], nn.Module]] = None
) -> LongTailNet:
    """Backbone from the registry; the head from ``head_factory(in_features, num_classes)``
    (a method's, see lcreg.methods), by default the latent category head of ``cfg.latent``."""
    backbone = create_backbone(cfg.backbone, cfg.pretrained, cfg.padding)
    d = backbone.num_features
    if head_factory is None:
        head_factory = partial(latent_head, cfg=cfg)
    return LongTailNet(backbone, head_factory(d, num_classes), num_classes)


def latent_head(in_features: int, num_classes: int, cfg: ModelConfig) -> LatentCategoryHead:
    lat = cfg.latent
    return LatentCategoryHead(
        in_features,
        num_classes,
        lat.num_latents,
        lat.decoder,
        lat.weights,
        lat.similarity,
        lat.temperature,
        lat.weight_temperature,
        lat.centre,
    )
