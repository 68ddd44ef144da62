"""A model's outputs over a whole split: logits and labels (with per-image latent
histograms), the latent measures of eval/latent_diagnostics.py, similarity maps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from lcreg.eval.latent_diagnostics import LatentStats, image_histograms
from lcreg.models import LongTailNet
from lcreg.runtime.environment import autocast


@dataclass
class SplitOutputs:
    logits: torch.Tensor  # (N, C) float32, CPU
    targets: torch.Tensor  # (N,)
    histograms: Optional[np.ndarray] = None  # (N, M) latent histograms, LCReg models only


@torch.no_grad()
def collect_outputs(
    model: LongTailNet, loader, device: torch.device, amp: str = "auto", histograms: bool = False
) -> SplitOutputs:
    """Logits and labels of a whole split (model in eval mode); with ``histograms``, also
    each image's latent-category weights averaged over positions."""
    model.eval()
    logits, targets, hists = [], [], []
    for images, labels in loader:
        with autocast(device, amp):
            out = model(images.to(device, non_blocking=True))
        logits.append(out.logits.float().cpu())
        targets.append(labels.cpu())
        if histograms and out.weights is not None:
            hists.append(image_histograms(out.weights).cpu())
    return SplitOutputs(torch.cat(logits), torch.cat(targets), torch.cat(hists).numpy() if hists else None)


@torch.no_grad()
def collect_latent_stats(model: LongTailNet, loader, device: torch.device, amp: str = "auto"):
    """Eq. 1-3 over a whole split (model in eval mode) -> (``LatentStats``, targets). Without
    a latent head only the feature map is measured (``feature_positional_share``)."""
    model.eval()
    stats, targets = LatentStats(), []
    for images, labels in loader:
        with autocast(device, amp):
            features = model.forward_features(images.to(device, non_blocking=True))
            if model.has_latent_head:
                maps = model.head.latent_maps(features)
                stats.update(maps.logits, maps.sim, maps.weights, features, maps.uncentred)
            else:
                stats.feature_var.update(features.float())
        targets.append(labels.cpu())
    return stats, torch.cat(targets).numpy()


@torch.no_grad()
def similarity_maps(model: LongTailNet, images: torch.Tensor, device: torch.device) -> np.ndarray:
    """S of eq. 1 for a batch of normalised images: (B, M, H, W) on the CPU."""
    model.eval()
    features = model.forward_features(images.to(device))
    sim = model.head.latent_maps(features).sim
    b, _, h, w = features.shape
    return sim.float().reshape(b, -1, h, w).cpu().numpy()
