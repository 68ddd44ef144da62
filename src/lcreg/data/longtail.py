"""Long-tailed class profiles, the LDAM/MiSLAS subset selection and Many/Medium/Few splits.

The selection reproduces the public CIFAR-LT recipe exactly: ``np.random.seed(seed)`` once,
then for each class in label order shuffle that class's indices and keep the first n_c.
With seed 0 this gives CIFAR-10-LT 12,406 / 13,996 / 20,431 and CIFAR-100-LT
10,847 / 12,608 / 19,573 images at IF 100 / 50 / 10 (checked in tests/test_longtail.py).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from lcreg.errors import LcregError


def class_counts_profile(n_max: int, num_classes: int, imbalance_factor: float, profile: str = "exp") -> list[int]:
    """Images kept per class: class 0 is the head, class C-1 the tail."""
    if imbalance_factor < 1:
        raise LcregError(f"imbalance factor must be >= 1, got {imbalance_factor}")
    if profile == "exp":
        if num_classes == 1:
            return [n_max]
        return [int(n_max * (1.0 / imbalance_factor) ** (c / (num_classes - 1))) for c in range(num_classes)]
    if profile == "step":
        half = num_classes // 2
        return [n_max if c < half else int(n_max / imbalance_factor) for c in range(num_classes)]
    raise LcregError(f"unknown imbalance profile '{profile}' (exp, step)")


def select_longtail(targets: Sequence[int], counts: Sequence[int], seed: Optional[int] = 0) -> np.ndarray:
    """Indices of the long-tailed subset, in class order, LDAM/MiSLAS style.

    ``counts[c]`` images of class c are kept. Classes with fewer images than asked keep all.
    """
    counts = [int(n) for n in counts]
    targets = np.asarray(targets)
    state = np.random.get_state()  # leave the caller's global RNG as it was
    try:
        if seed is not None:
            np.random.seed(seed)
        keep = []
        for c, n_c in enumerate(counts):
            idx = np.where(targets == c)[0]
            np.random.shuffle(idx)
            keep.append(idx[:n_c])
    finally:
        np.random.set_state(state)
    return np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)


def make_longtail_indices(
    targets: Sequence[int],
    num_classes: int,
    imbalance_factor: float,
    profile: str = "exp",
    seed: Optional[int] = 0,
    n_max: Optional[int] = None,
    by_size: bool = False,
) -> np.ndarray:
    """Profile + selection in one call; n_max defaults to the largest class present.

    The profile's i-th count goes to class i (``by_size=False``: the CIFAR-LT recipe, whose
    classes are equally large) or to the i-th largest class (``by_size=True``: user data, so
    that the largest class keeps its images and the asked imbalance factor is met; ties
    keep label order)."""
    targets = np.asarray(targets)
    available = np.bincount(targets, minlength=num_classes)
    if n_max is None:
        n_max = int(available.max())
    profile_counts = class_counts_profile(n_max, num_classes, imbalance_factor, profile)
    if not by_size:
        return select_longtail(targets, profile_counts, seed)
    counts = np.empty(num_classes, dtype=np.int64)
    counts[np.argsort(-available, kind="stable")] = profile_counts
    return select_longtail(targets, counts.tolist(), seed)


def shot_splits(counts: Sequence[int], many_threshold: int = 100, few_threshold: int = 20) -> dict[str, list[int]]:
    """Many (> many_threshold), Medium (few_threshold..many_threshold), Few (< few_threshold).

    The usual definition (classifier-balancing's ``shot_acc``), computed from the actual
    training counts, never from hard-coded index ranges.
    """
    many, medium, few = [], [], []
    for c, n in enumerate(counts):
        if n > many_threshold:
            many.append(c)
        elif n < few_threshold:
            few.append(c)
        else:
            medium.append(c)
    return {"many": many, "medium": medium, "few": few}


def held_out_count(n: int, fraction: float, min_per_class: int = 1) -> int:
    """Images of a class of ``n`` that a split of ``fraction`` holds out: at least
    ``min_per_class`` when the class has two or more images, never all of them."""
    if n < 2:
        return 0
    return min(max(int(round(n * fraction)), min_per_class), n - 1)


def stratified_split(
    targets: Sequence[int], fraction: float, seed: int = 0, min_per_class: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices per class: ``fraction`` of each class (at least ``min_per_class`` when
    the class has two or more images) goes to the second part."""
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed)
    first, second = [], []
    for c in np.unique(targets):
        idx = np.where(targets == c)[0]
        rng.shuffle(idx)
        k = held_out_count(len(idx), fraction, min_per_class)
        second.append(idx[:k])
        first.append(idx[k:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))
