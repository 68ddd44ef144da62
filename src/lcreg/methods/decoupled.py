"""Decoupled classifier learning (Kang et al. 2020) on a cross-entropy stage 1 (no mixup):

- ``crt``: classifier re-trained from scratch with class-balanced sampling;
- ``lws``: the classifier kept, a learnable per-class scale trained with class-balanced sampling;
- ``tau_norm``: no training: each class's weight vector divided by its norm to the power tau,
  tau chosen on the validation split (data.val_fraction or data.val_list), never the test split.

``lcreg train --stage 2 --from CE_RUN method=crt`` re-trains the classifier of a finished
cross-entropy run.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from lcreg.config import Config
from lcreg.errors import LcregError
from lcreg.methods.base import Method, Stage2Recipe
from lcreg.registry import METHODS

TAU_GRID = tuple(round(0.1 * i, 1) for i in range(21))  # 0.0 .. 2.0


class _Decoupled(Method):
    mixup = False
    has_stage2 = True
    # their stage 2 fixes sampler, smoothing, lr factor and BN mode: only its schedule is read
    reads = ("stage2.epochs", "stage2.batch_size", "stage2.lr", "stage2.momentum", "stage2.weight_decay")


@METHODS.register()
class CRT(_Decoupled):
    name = "crt"
    paper = "Kang et al., Decoupling Representation and Classifier for Long-Tailed Recognition (ICLR 2020)"
    summary = "CE stage 1; classifier re-trained from scratch, class-balanced"

    stage2_fixed = {"sampler": "class_balanced", "lr_factor": 1.0, "shift_bn": False}

    def stage2_recipe(self, cfg: Config, counts: Sequence[int]) -> Optional[Stage2Recipe]:
        return Stage2Recipe(nn.CrossEntropyLoss(), logit_scale=False, reinit_classifier=True)


@METHODS.register()
class LWS(_Decoupled):
    name = "lws"
    paper = "Kang et al., Decoupling Representation and Classifier for Long-Tailed Recognition (ICLR 2020)"
    summary = "CE stage 1; learnable per-class weight scaling, class-balanced"

    stage2_fixed = {"sampler": "class_balanced", "shift_bn": False}

    def stage2_recipe(self, cfg: Config, counts: Sequence[int]) -> Optional[Stage2Recipe]:
        return Stage2Recipe(nn.CrossEntropyLoss(), train="scale")


def tau_normalize_(classifier: nn.Linear, tau: float, reference: torch.Tensor) -> None:
    """W_c <- W_c / ||W_c||^tau from the stage-1 weights ``reference``; the bias is dropped."""
    with torch.no_grad():
        norms = reference.norm(dim=1, keepdim=True).clamp(min=1e-12)
        classifier.weight.copy_(reference / norms**tau)
        if classifier.bias is not None:
            classifier.bias.zero_()


def choose_tau(classifier: nn.Linear, balanced_accuracy: Callable[[], float]) -> dict:
    """Sweep TAU_GRID, scoring each by ``balanced_accuracy()`` (the validation split's mean
    per-class accuracy); keep the best (the smallest tau on ties)."""
    reference = classifier.weight.detach().clone()
    scores = {}
    for tau in TAU_GRID:
        tau_normalize_(classifier, tau, reference)
        scores[tau] = balanced_accuracy()
    best = max(TAU_GRID, key=lambda t: (scores[t], -t))
    tau_normalize_(classifier, best, reference)
    return {
        "tau": best,
        "validation_balanced_accuracy": {str(t): s for t, s in scores.items()},
        "best_score": float(np.max(list(scores.values()))),
    }


@METHODS.register()
class TauNorm(_Decoupled):
    name = "tau_norm"
    paper = "Kang et al., Decoupling Representation and Classifier for Long-Tailed Recognition (ICLR 2020)"
    summary = "CE stage 1; classifier weights / norm^tau, tau chosen on the validation split"

    reads = ()  # no training in stage 2

    def check(self, cfg: Config) -> None:
        if cfg.data.val_fraction <= 0 and not cfg.data.val_list and cfg.data.val_source != "unused":
            raise LcregError(
                "tau_norm chooses tau on a validation split; set data.val_source=unused (CIFAR-LT: images the "
                "long-tailed selection leaves out), data.val_fraction (e.g. 0.1) or data.val_list"
            )

    def stage2_recipe(self, cfg: Config, counts: Sequence[int]) -> Optional[Stage2Recipe]:
        return Stage2Recipe(nn.CrossEntropyLoss(), logit_scale=False, post_hoc=choose_tau)

    def stage2_epochs(self, cfg: Config) -> int:
        return 0  # a sweep of tau on the validation split, no training
