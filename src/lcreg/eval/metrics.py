"""Metrics reported for every model: top-1/top-5, per-class accuracy, Many/Medium/Few,
ECE and maximum calibration error (15 equal-width confidence bins), NLL."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def calibration_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Equal-width bins on [0, 1] of the max softmax probability: count, accuracy and
    mean confidence per bin (bins are right-closed: (lo, hi], the first includes 0)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(np.float64)
    acc_sum = np.bincount(which, weights=correct.astype(np.float64), minlength=n_bins)
    conf_sum = np.bincount(which, weights=confidence.astype(np.float64), minlength=n_bins)
    safe = np.maximum(count, 1)
    return {"edges": edges, "count": count, "accuracy": acc_sum / safe, "confidence": conf_sum / safe}


def calibration_errors(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> tuple[float, float]:
    """ECE = sum_b (n_b / N) |acc_b - conf_b|; MCE = max over non-empty bins of the gap."""
    bins = calibration_bins(confidence, correct, n_bins)
    gap = np.abs(bins["accuracy"] - bins["confidence"])
    n = max(bins["count"].sum(), 1)
    ece = float((bins["count"] / n * gap).sum())
    nonempty = bins["count"] > 0
    mce = float(gap[nonempty].max()) if nonempty.any() else 0.0
    return ece, mce


def per_class_accuracy(pred: np.ndarray, targets: np.ndarray, num_classes: int) -> np.ndarray:
    """Accuracy per class (NaN for a class absent from the evaluated split)."""
    total = np.bincount(targets, minlength=num_classes).astype(np.float64)
    hits = np.bincount(targets[pred == targets], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, hits / total, np.nan)


def split_accuracy(class_acc: np.ndarray, splits: dict[str, Sequence[int]]) -> dict[str, float | None]:
    """Mean of per-class accuracies over each of Many / Medium / Few (None when empty)."""
    out: dict[str, float | None] = {}
    for name, classes in splits.items():
        vals = class_acc[list(classes)] if len(classes) else np.array([])
        vals = vals[~np.isnan(vals)]
        out[name] = float(vals.mean()) if len(vals) else None
    return out


def classification_metrics(
    logits: torch.Tensor, targets: torch.Tensor, splits: dict[str, Sequence[int]], n_bins: int = 15
) -> dict:
    """All metrics from logits (N, C) and labels (N,). Accuracies are fractions in [0, 1]."""
    logits = logits.float().cpu()
    targets_t = targets.long().cpu()
    num_classes = logits.shape[1]
    probs = torch.softmax(logits, dim=1)
    conf, pred = probs.max(dim=1)
    k = min(5, num_classes)
    top5 = (logits.topk(k, dim=1).indices == targets_t[:, None]).any(dim=1).float().mean().item()
    nll = F.cross_entropy(logits, targets_t).item()
    pred_np, tgt_np = pred.numpy(), targets_t.numpy()
    correct = pred_np == tgt_np
    ece, mce = calibration_errors(conf.numpy(), correct, n_bins)
    class_acc = per_class_accuracy(pred_np, tgt_np, num_classes)
    return {
        "top1": float(correct.mean()),
        "top5": float(top5),
        **split_accuracy(class_acc, splits),
        "ece": ece,
        "mce": mce,
        "nll": nll,
        "per_class": [None if np.isnan(a) else float(a) for a in class_acc],
        "num_samples": int(len(tgt_np)),
    }


def confusion_matrix(pred: np.ndarray, targets: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts, (C, C): entry [t, p] = images of class t predicted as p."""
    return np.bincount(targets * num_classes + pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def group_confusion(matrix: np.ndarray, splits: dict[str, Sequence[int]]) -> tuple[np.ndarray, list[str]]:
    """The confusion matrix summed over Many / Medium / Few groups (non-empty groups only):
    where the images of each group end up."""
    names = [n for n in ("many", "medium", "few") if len(splits.get(n, []))]
    idx = [list(splits[n]) for n in names]
    out = np.array([[matrix[np.ix_(r, c)].sum() for c in idx] for r in idx], dtype=np.int64)
    return out, names
