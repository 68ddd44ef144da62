"""Do the latent categories carry image content? Measures of a trained latent head.

The equations of LCReg can all be met by latent categories that ignore the image: on
CIFAR-10-LT the as-written reading learned a fixed category-by-position code (99.6% of the
variance of K^T f explained by position alone, identical histograms for every image). These
measures tell such a collapse from categories that describe what is in the image:

- ``positional_share``: fraction of the variance of the similarity logits A = K^T f (per
  category, over images and positions) that the position alone explains, i.e. the share of
  the pattern that is the same for every image. 1 = pure position code; a content-driven
  map has most of its variance between images.
- ``feature_positional_share``: the same for the backbone's feature map f (per channel).
- ``uncentred_positional_share`` (a head with ``model.latent.centre=true`` only): the same for
  K^T f before the centring. ``positional_share`` is measured on the centred logits eq. 2 uses,
  near 0 by construction; this one says whether the categories still align with a position
  code that the centring then discards.
- ``effective_rank``: exp of the entropy of K's normalised singular values (Roy & Vetterli,
  2007); M for M equally strong independent latent features, 1 for a single direction. K as
  eq. 1 compares it (unit columns under cosine similarity).
- ``category_cosine_max``: the largest cosine between two distinct latent categories; 1 when
  two (or all) of them are the same vector, which gives them the same similarity map.
- ``saturation``: fraction of the similarity maps S outside (0.01, 0.99).
- ``histogram_entropy``: mean entropy of the per-image latent histograms (S_hat averaged
  over positions), against its maximum ln M (flat histograms).
- ``histogram_class_accuracy``: each held-out image goes to the class whose mean training
  histogram is nearest (Euclidean); 1 / C is chance. Says whether histograms describe classes.
- ``class_kl``: KL(P_i || P_j) between class mean histograms (plain) and its symmetric mean.
- ``shared_categories``: per latent category, how many head (Many) and tail (Medium + Few)
  classes use it above the uniform share 1 / M (Fig. 5: tail classes reuse head categories).

Everything accumulates batch by batch (sums in float64), so a whole split never sits in
memory at once.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch

from lcreg.eval.analysis import class_histograms, kl_table


class PositionalVariance:
    """Streaming share of variance explained by position for values (B, C, N): C channels
    (latent categories or feature channels), N positions. Per channel the total sum of
    squares around its mean over images and positions is split into the part of the
    per-position mean over images (the same for every image) and the rest; the returned
    share pools both over channels."""

    def __init__(self) -> None:
        self.sum: Optional[torch.Tensor] = None  # (C, N) sum over images
        self.sq = 0.0  # (C,) sum of squares, per channel
        self.count = 0

    @torch.no_grad()
    def update(self, values: torch.Tensor) -> None:
        x = values.detach().flatten(2).double()
        s = x.sum(0)
        self.sum = s if self.sum is None else self.sum + s
        self.sq = self.sq + (x * x).sum((0, 2))
        self.count += x.shape[0]

    def share(self) -> float:
        if self.sum is None or self.count < 2:
            return float("nan")
        b, n = self.count, self.sum.shape[1]
        mean = self.sum.sum(1) / (b * n)  # (C,)
        total = self.sq - b * n * mean**2
        positional = (self.sum**2).sum(1) / b - b * n * mean**2
        return float(positional.sum() / total.sum().clamp(min=1e-30))


def effective_rank(keys: torch.Tensor) -> float:
    """exp(H(p)), p the singular values of K normalised to sum 1."""
    s = torch.linalg.svdvals(keys.detach().double())
    p = s / s.sum().clamp(min=1e-30)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def category_cosine_max(keys: torch.Tensor) -> float:
    """Largest cosine similarity between two distinct columns of K (D, M)."""
    k = torch.nn.functional.normalize(keys.detach().double(), dim=0)
    cos = k.T @ k
    cos.fill_diagonal_(-1.0)
    return float(cos.max())


def image_histograms(weights: torch.Tensor) -> torch.Tensor:
    """Per-image latent histograms (B, M): S_hat (B, M, N) averaged over positions, renormalised
    in float32, since a bf16 softmax sums to 1 only to about 1e-3 (the histogram entropy of a
    bf16 analysis came out 0.002 above its maximum ln M)."""
    h = weights.float().mean(dim=2)
    return h / h.sum(dim=1, keepdim=True)


def histogram_entropy(histograms: np.ndarray) -> float:
    """Mean entropy (nats) of per-image histograms (B, M)."""
    h = np.clip(histograms, 1e-12, None)
    return float(-(h * np.log(h)).sum(1).mean())


def nearest_class_mean_accuracy(
    train_hist: np.ndarray, train_targets: np.ndarray, test_hist: np.ndarray, test_targets: np.ndarray, num_classes: int
) -> float:
    """Accuracy of assigning each test histogram to the nearest (Euclidean) class mean of
    the training histograms; classes without training images are never chosen."""
    means = class_histograms(train_hist, train_targets, num_classes)
    present = ~np.isnan(means).any(1)
    d = ((test_hist[:, None, :] - np.nan_to_num(means)[None]) ** 2).sum(-1)
    d[:, ~present] = np.inf
    return float((d.argmin(1) == test_targets).mean())


def shared_categories(class_hist: np.ndarray, splits: dict[str, Sequence[int]]) -> dict:
    """Per latent category the number of head and tail classes whose mean histogram gives
    it more than the uniform share 1 / M; and how many categories both head and tail use."""
    m = class_hist.shape[1]
    used = np.nan_to_num(class_hist) > 1.0 / m  # (C, M)
    head = [c for c in splits.get("many", [])]
    tail = [c for s in ("medium", "few") for c in splits.get(s, [])]
    head_use = used[head].sum(0) if head else np.zeros(m, dtype=int)
    tail_use = used[tail].sum(0) if tail else np.zeros(m, dtype=int)
    return {
        "classes_per_category": used.sum(0).astype(int).tolist(),
        "head_classes_per_category": np.asarray(head_use, dtype=int).tolist(),
        "tail_classes_per_category": np.asarray(tail_use, dtype=int).tolist(),
        "categories_used": int(used.any(0).sum()),
        "categories_shared_head_tail": int(((head_use > 0) & (tail_use > 0)).sum()),
        "head_classes": len(head),
        "tail_classes": len(tail),
    }


class LatentStats:
    """Accumulates the per-batch measures of one split: feed ``update`` the outputs of
    ``LatentCategoryHead.latent_maps`` and the feature map, read ``summary``."""

    def __init__(self) -> None:
        self.logit_var, self.feature_var = PositionalVariance(), PositionalVariance()
        self.uncentred_var: Optional[PositionalVariance] = None  # a centred head's K^T f before centring
        self.saturated = 0
        self.entries = 0
        self.histograms: list[np.ndarray] = []

    @torch.no_grad()
    def update(
        self,
        logits: torch.Tensor,
        sim: torch.Tensor,
        weights: torch.Tensor,
        features: torch.Tensor,
        uncentred: Optional[torch.Tensor] = None,
    ) -> None:
        self.logit_var.update(logits.float())
        if uncentred is not None:
            if self.uncentred_var is None:
                self.uncentred_var = PositionalVariance()
            self.uncentred_var.update(uncentred.float())
        self.feature_var.update(features.float())
        s = sim.float()
        self.saturated += int(((s <= 0.01) | (s >= 0.99)).sum())
        self.entries += s.numel()
        self.histograms.append(image_histograms(weights).cpu().numpy())

    def histogram_array(self) -> np.ndarray:
        return np.concatenate(self.histograms) if self.histograms else np.zeros((0, 0))

    def summary(self, keys: torch.Tensor) -> dict:
        hist = self.histogram_array()
        m = keys.shape[1]
        return {
            "positional_share": self.logit_var.share(),
            "feature_positional_share": self.feature_var.share(),
            "uncentred_positional_share": self.uncentred_var.share() if self.uncentred_var is not None else None,
            "effective_rank": effective_rank(keys),
            "category_cosine_max": category_cosine_max(keys),
            "num_latents": m,
            "saturation": self.saturated / max(self.entries, 1),
            "histogram_entropy": histogram_entropy(hist) if len(hist) else float("nan"),
            "histogram_entropy_max": math.log(m),
        }


# positional_share from which the latent categories count as a position code: the as-written
# reading reached 0.97-0.997 (screen and full length), the readings whose histograms tell
# classes apart 0.24-0.37 (results/latent_screen.md, results/readings.md)
POSITION_CODE_SHARE = 0.9


# an effective rank of K below this is one latent category in M copies: Table 7's "latent
# categories alone" run (no eq. 4, no eq. 8-9) ended at 1.09 of 40, every pair of categories at
# cosine 0.99999 and every histogram flat; the readings with content keep 21-24
ONE_CATEGORY_RANK = 2.0

# a reading's latent categories carry image content when the image explains more of K^T f
# than its position does, an image's histogram names its class at least twice as often as
# chance (nearest class-mean histogram), and the categories are not one vector in M copies;
# used to settle the default (results/readings.md)
CONTENT_SHARE = 0.5
CONTENT_ACCURACY_OVER_CHANCE = 2.0


def carries_content(
    positional_share: float,
    histogram_class_accuracy: float,
    chance: float,
    effective_rank: Optional[float] = None,
) -> bool:
    """Whether latent categories with these diagnostics carry image content (see above);
    ``chance``: the diagnostics' ``histogram_class_accuracy_chance``; ``effective_rank`` of K,
    where known."""
    if effective_rank is not None and effective_rank < ONE_CATEGORY_RANK:
        return False
    return positional_share < CONTENT_SHARE and histogram_class_accuracy >= CONTENT_ACCURACY_OVER_CHANCE * chance


def collapse_warning(diagnostics: dict) -> Optional[str]:
    """One sentence when the latent categories collapsed: into a position code
    (``positional_share`` >= POSITION_CODE_SHARE) or into one category (``effective_rank`` <
    ONE_CATEGORY_RANK); else None."""
    share = diagnostics.get("positional_share")
    if share is not None and share >= POSITION_CODE_SHARE:
        return (
            f"the latent categories encode position, not image content: {share:.1%} of the variance of K^T f is "
            "the same for every image (positional_share); the similarity maps and histograms say little about the "
            "image (docs/method.md, 'Readings')"
        )
    rank, m = diagnostics.get("effective_rank"), diagnostics.get("num_latents")
    if rank is not None and rank < ONE_CATEGORY_RANK and (m is None or m >= ONE_CATEGORY_RANK):  # M = 1 is asked for
        of_m = f" of {m}" if m else ""
        return (
            f"the latent categories collapsed into one: K has effective rank {rank:.2f}{of_m}, so every "
            "category gives the same similarity map and every "
            "histogram is flat (the reconstruction and augmentation losses are what keep them apart; "
            "docs/method.md, 'Readings')"
        )
    return None


def class_kl_summary(class_hist: np.ndarray) -> dict:
    """Plain KL(P_i || P_j) and the symmetric (KL_ij + KL_ji) / 2 over distinct pairs."""
    present = ~np.isnan(class_hist).any(1)
    kl = kl_table(np.nan_to_num(class_hist))
    sym = (kl + kl.T) / 2
    off = ~np.eye(len(kl), dtype=bool) & present[:, None] & present[None, :]
    vals = sym[off]
    return {
        "plain": kl.tolist(),
        "symmetric": sym.tolist(),
        "median_symmetric": float(np.median(vals)) if vals.size else float("nan"),
        "max_symmetric": float(vals.max()) if vals.size else float("nan"),
    }
