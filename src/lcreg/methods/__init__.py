"""Methods as plug-ins: each file registers one method (or a family) with
``lcreg.registry.METHODS``; ``lcreg methods`` lists them, ``method=NAME`` trains one.

    lcreg train cifar10_lt_if100 method=ldam_drw --data-dir PATH
"""

from __future__ import annotations

from typing import Optional

from lcreg.config import Config
from lcreg.methods import ce, decoupled, isda, lcreg, ldam_drw, mislas, mixup, remix_drw, reweighting  # noqa: F401
from lcreg.methods.base import ClassificationObjective, Method, Stage2Recipe
from lcreg.models.network import LongTailNet
from lcreg.models.network import create_model as _create_model
from lcreg.registry import METHODS


def get_method(name: str) -> Method:
    return METHODS.get(name)()


def create_model(cfg: Config, num_classes: int, method: Optional[Method] = None) -> LongTailNet:
    """The network of ``cfg.method``: backbone from the registry, head from the method."""
    method = method or get_method(cfg.method)
    model = _create_model(cfg.model, num_classes, lambda d, c: method.create_head(cfg, d, c))
    if getattr(model.head, "centre", False):  # the running mean of centred logits: one per position
        import torch

        was_training = model.backbone.training
        with torch.no_grad():
            size = cfg.data.image_size or 32
            h, w = model.backbone.eval()(torch.zeros(1, 3, size, size)).shape[-2:]
        model.backbone.train(was_training)
        model.head.set_positions(h * w)
    return model


__all__ = ["ClassificationObjective", "Method", "Stage2Recipe", "get_method", "create_model", "METHODS"]
