"""Analysis of the learned latent categories (paper §4.5, Fig. 4-5, Table 8).

An image's *latent histogram* is its softmax weights S_hat (eq. 2) averaged over the
positions of its feature map: a distribution over the M latent categories saying how much
each contributes to the reconstruction f_hat = K S_hat (eq. 3). A class's histogram is the
mean over its images. Table 8 compares classes by the KL divergence of their histograms.

Note: KL(P || Q) is never negative; the paper's Table 8 shows negative entries, so it was
computed some other way the paper does not state. We report the true KL, with ``eps``
added to both distributions (and renormalised) so that empty bins stay finite.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def latent_histograms(weights: np.ndarray) -> np.ndarray:
    """(B, M, N) softmax weights -> (B, M) per-image histograms (rows sum to 1)."""
    return weights.mean(axis=2)


def class_histograms(histograms: np.ndarray, targets: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean latent histogram per class, (C, M); a class without images gets a NaN row."""
    m = histograms.shape[1]
    sums = np.zeros((num_classes, m))
    np.add.at(sums, targets, histograms)
    counts = np.bincount(targets, minlength=num_classes)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def kl_table(class_hist: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """KL(P_i || P_j) for every pair of class histograms: entry [i, j], shape (C, C)."""
    p = class_hist + eps
    p = p / p.sum(axis=1, keepdims=True)
    logp = np.log(p)
    # KL(i||j) = sum_m p_i (log p_i - log p_j) = H-cross terms, one matrix product
    kl = (p * logp).sum(axis=1)[:, None] - p @ logp.T
    # KL >= 0 (Gibbs): the difference of two sums leaves rounding of either sign near 0 (-0.00 on the diagonal)
    np.fill_diagonal(kl, 0.0)
    return np.maximum(kl, 0.0)


def top_latents(class_hist: np.ndarray, k: int) -> np.ndarray:
    """Indices of each class's k heaviest latent categories, (C, k), heaviest first."""
    return np.argsort(-class_hist, axis=1)[:, :k]


def sharing_summary(
    class_hist: np.ndarray, splits: dict[str, Sequence[int]], class_names: Sequence[str], k: int = 5
) -> dict:
    """How much tail classes (Medium + Few) lean on the latent categories of the head (Many).

    For each tail class: the head class nearest in KL, that divergence, and the share of
    its top-k latent categories that are also among the top-k of some head class. The mean
    KL between distinct head classes is given for scale.
    """
    head = [c for c in splits.get("many", []) if not np.isnan(class_hist[c]).any()]
    tail = [c for s in ("medium", "few") for c in splits.get(s, []) if not np.isnan(class_hist[c]).any()]
    k = min(k, class_hist.shape[1])
    kl = kl_table(np.nan_to_num(class_hist))
    tops = top_latents(np.nan_to_num(class_hist), k)
    head_top = set(tops[head].ravel().tolist()) if head else set()
    per_class = []
    for c in tail:
        nearest = min(head, key=lambda h: kl[c, h]) if head else None
        shared = len(set(tops[c].tolist()) & head_top) / k
        per_class.append(
            {
                "class": class_names[c],
                "split": "medium" if c in splits.get("medium", []) else "few",
                "nearest_head_class": None if nearest is None else class_names[nearest],
                "kl_to_nearest_head": None if nearest is None else float(kl[c, nearest]),
                "top_latents": tops[c].tolist(),
                "shared_with_head": shared,
            }
        )
    head_pairs = [kl[i, j] for i in head for j in head if i != j]
    return {
        "top_k": k,
        "head_classes": len(head),
        "tail_classes": len(tail),
        "mean_shared_with_head": float(np.mean([p["shared_with_head"] for p in per_class])) if per_class else None,
        "mean_kl_tail_to_nearest_head": (
            float(np.mean([p["kl_to_nearest_head"] for p in per_class])) if per_class and head else None
        ),
        "mean_kl_between_head_classes": float(np.mean(head_pairs)) if head_pairs else None,
        "tail": per_class,
    }


def top_images_per_latent(histograms: np.ndarray, k: int) -> np.ndarray:
    """For each latent category, the indices of the k images it weighs most on, (M, k)."""
    k = min(k, histograms.shape[0])
    return np.argsort(-histograms, axis=0)[:k].T


def sample_per_split(
    targets: np.ndarray, splits: dict[str, Sequence[int]], per_split: int, seed: int = 0
) -> dict[str, list[int]]:
    """Up to ``per_split`` image indices per split, from distinct classes while the split
    has enough of them, reproducibly."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {}
    for name, classes in splits.items():
        present = [c for c in classes if (targets == c).any()]
        rng.shuffle(present)
        picked: list[int] = []
        for i in range(per_split if present else 0):
            idx = np.setdiff1d(np.flatnonzero(targets == present[i % len(present)]), picked)
            if len(idx):
                picked.append(int(rng.choice(idx)))
        out[name] = picked
    return out


def shared_pairs(
    histograms: np.ndarray,
    targets: np.ndarray,
    class_hist: np.ndarray,
    splits: dict[str, Sequence[int]],
    k: int = 3,
) -> list[dict]:
    """Fig. 5: latent categories that a head and a tail class both lean on, each with the
    head image and the tail image that weigh most on it.

    A category's score is min(max over head classes, max over tail classes) of the class
    mean histograms ``class_hist`` (``class_histograms``): high only if some head class *and*
    some tail class use it. The ``k`` best scores above uniform (1 / M) are returned, best
    first; head = Many, tail = Medium + Few. Empty when a side has no images.
    """
    m = histograms.shape[1]
    head_classes = list(splits.get("many", []))
    tail_classes = [c for s in ("medium", "few") for c in splits.get(s, [])]
    head_imgs = np.flatnonzero(np.isin(targets, head_classes))
    tail_imgs = np.flatnonzero(np.isin(targets, tail_classes))
    if not len(head_imgs) or not len(tail_imgs):
        return []
    score = np.minimum(np.nanmax(class_hist[head_classes], axis=0), np.nanmax(class_hist[tail_classes], axis=0))
    pairs = []
    for j in np.argsort(-score)[:k]:
        if score[j] <= 1.0 / m:
            break
        pairs.append(
            {
                "latent": int(j),
                "score": float(score[j]),
                "head_image": int(head_imgs[np.argmax(histograms[head_imgs, j])]),
                "tail_image": int(tail_imgs[np.argmax(histograms[tail_imgs, j])]),
            }
        )
    return pairs
