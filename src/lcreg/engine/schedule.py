"""Per-iteration learning-rate factors: linear warm-up, then step decay or cosine."""

from __future__ import annotations

import math
from typing import Sequence


def lr_factor(
    step: int,
    steps_per_epoch: int,
    epochs: int,
    warmup_epochs: int = 0,
    schedule: str = "step",
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
) -> float:
    """Multiplier of the base lr at global iteration ``step`` (0-based).

    Warm-up rises linearly to 1 over ``warmup_epochs`` (MiSLAS: epoch e < 5 uses
    lr * (e + 1) / 5, here per iteration). ``step``: x gamma after each milestone epoch.
    ``cosine``: half a cosine from the end of warm-up to the last iteration.
    """
    epoch = step / max(steps_per_epoch, 1)
    if warmup_epochs > 0 and epoch < warmup_epochs:
        return (step + 1) / (warmup_epochs * steps_per_epoch)
    if schedule == "step":
        return gamma ** sum(epoch >= m for m in milestones)
    total = max(epochs * steps_per_epoch - warmup_epochs * steps_per_epoch, 1)
    t = (step - warmup_epochs * steps_per_epoch) / total
    return 0.5 * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0)))
