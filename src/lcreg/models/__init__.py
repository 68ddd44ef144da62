"""Backbones, the latent category head and the network that joins them."""

from lcreg.models.backbones import CifarResNet, TorchvisionResNet, create_backbone
from lcreg.models.classifiers import LearnableLogitScale, LinearHead
from lcreg.models.latent import LatentCategoryHead
from lcreg.models.network import LongTailNet, create_model
from lcreg.models.outputs import HeadOutput

__all__ = [
    "CifarResNet",
    "TorchvisionResNet",
    "create_backbone",
    "LearnableLogitScale",
    "LinearHead",
    "HeadOutput",
    "LatentCategoryHead",
    "LongTailNet",
    "create_model",
]
