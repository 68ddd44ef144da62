"""What a method declares: its head, its stage-1 objective, its stage-2 recipe (or none) and
its schedule hooks. The engine trains any registered method the same way (same data,
loaders, schedule, evaluation); a method never adds a branch to the training loop.

A stage-1 objective is a module called as ``objective(out, features, y_a, y_b, lam,
progress)`` on a (possibly mixed) batch: ``out`` the head's ``HeadOutput``, ``features``
the backbone's map, ``y_a, y_b, lam`` the mixup pairs (``lam = 1``, ``y_b = y_a`` without
mixup), ``progress`` = t / T. It returns the loss and a dict of its terms for the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Optional, Sequence

import torch
import torch.nn as nn

from lcreg.config import RUN_SETTINGS, Config
from lcreg.losses import LabelAwareSmoothing, effective_number_weights
from lcreg.models.classifiers import LinearHead

# what every method reads: the run settings, the data, the backbone and stage 1
COMMON_KEYS = (
    *RUN_SETTINGS,
    "method",
    "seed",
    "data.",
    "model.backbone",
    "model.pretrained",
    "model.padding",
    "stage1.",
)


def _matches(key: str, patterns: Sequence[str]) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in patterns)


# MiSLAS's stage 2, read whole by the methods that use it
MISLAS_STAGE2 = ("stage2.",)


def param(default, help: str, **bounds):
    """A method parameter: its default, one line of help, and bounds (min, max, gt, lt)."""
    return field(default=default, metadata={"help": help, **bounds})


@dataclass
class DRWParams:
    """Deferred re-weighting (Cao et al. 2019)."""

    drw_epoch: Optional[int] = param(None, "class-balanced weights from this epoch on (None: the first lr step)", min=0)
    cb_beta: float = param(0.9999, "beta of the effective number of samples", min=0, lt=1)


@dataclass
class Stage2Recipe:
    """Classifier re-training on the frozen stage-1 network (decoupled learning)."""

    criterion: nn.Module
    train: str = "classifier"  # classifier (+ logit scale if any) | scale (LWS: the scale alone)
    logit_scale: bool = True  # a learnable per-class scale on the logits (MiSLAS, LWS)
    reinit_classifier: bool = False  # cRT: the classifier starts afresh
    post_hoc: Optional[Callable] = None  # tau-normalisation: no training, a choice made on the validation split
    # sampler, lr factor and shift-BN are the resolved config's stage2 section: a method that
    # fixes them says so in Method.stage2_fixed, which config resolution writes there


class ClassificationObjective(nn.Module):
    """A hard-label criterion on (possibly mixed) batches: lam C(y_a) + (1 - lam) C(y_b)."""

    def __init__(self, criterion: nn.Module) -> None:
        super().__init__()
        self.criterion = criterion

    def forward(self, out, features, y_a, y_b, lam: float, progress: float):
        loss = self.criterion(out.logits, y_a)
        if lam < 1.0:
            loss = lam * loss + (1 - lam) * self.criterion(out.logits, y_b)
        return loss, {"cls": loss}


class Method:
    """Base: a linear head, mixup per the config, plain CE, no stage 2."""

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    mixup: ClassVar[bool] = True  # stage 1 mixes batches (stage1.mixup_alpha); False: never
    has_stage2: ClassVar[bool] = False
    # the config keys the method reads beyond those of every method (COMMON_KEYS): dotted
    # keys, or sections ending in "."; an override of any other key is refused
    reads: ClassVar[tuple[str, ...]] = ()
    # the method's own hyper-parameters: a dataclass whose fields (defaults, bounds and help in
    # field metadata: "min", "max", "gt", "lt", "help") are the keys method_params.<name>
    Params: ClassVar[Optional[type]] = None
    # stage-2 settings the method fixes: written into the resolved config's stage2 section
    stage2_fixed: ClassVar[dict] = {}

    def params(self, cfg: Config):
        """The method's parameters of this config (checked and filled when it was resolved)."""
        return self.Params(**cfg.method_params) if self.Params is not None else None

    def reads_key(self, key: str) -> bool:
        """Whether this method's training depends on the dotted config ``key``."""
        if key == "stage1.mixup_alpha":
            return self.mixup
        if key == "method_params" or key.startswith("method_params."):
            return True  # checked against the method's Params when the config is resolved
        return _matches(key, (*COMMON_KEYS, *self.reads))

    def own_keys(self, keys: Sequence[str]) -> list[str]:
        """Of ``keys``, those this method reads that not every method reads."""
        return [k for k in keys if self.reads_key(k) and not _matches(k, COMMON_KEYS)]

    def check(self, cfg: Config) -> None:
        """Refuse a config this method cannot train, before any work (LcregError)."""

    def create_head(self, cfg: Config, in_features: int, num_classes: int) -> nn.Module:
        return LinearHead(in_features, num_classes)

    def create_objective(self, cfg: Config, model: nn.Module, counts: Sequence[int]) -> nn.Module:
        return ClassificationObjective(nn.CrossEntropyLoss())

    def stage2_recipe(self, cfg: Config, counts: Sequence[int]) -> Optional[Stage2Recipe]:
        return None

    def on_epoch_start(self, objective: nn.Module, epoch: int, cfg: Config, counts: Sequence[int]) -> None:
        """Called before each stage-1 epoch (0-based): schedule hooks such as DRW."""

    def stages(self, cfg: Config) -> tuple[int, ...]:
        return (1, 2) if self.has_stage2 and cfg.stage2.epochs > 0 else (1,)

    def stage2_epochs(self, cfg: Config) -> int:
        """Epochs stage 2 trains (0: none, or a post-hoc choice such as tau-norm's): what a
        queue's time estimate counts."""
        return cfg.stage2.epochs if 2 in self.stages(cfg) else 0


def mislas_stage2(cfg: Config, counts: Sequence[int]) -> Stage2Recipe:
    """MiSLAS stage 2: label-aware smoothing, the configured sampler (class-balanced in the
    presets), a learnable logit scale, the classifier at lr_factor * lr, optional shift-BN."""
    return Stage2Recipe(LabelAwareSmoothing(counts, cfg.stage2.eps_head, cfg.stage2.eps_tail))


def drw_epoch(cfg: Config) -> int:
    """Deferred re-weighting starts at method_params.drw_epoch, by default the first lr step (160 of 200)."""
    if cfg.method_params.get("drw_epoch") is not None:
        return cfg.method_params["drw_epoch"]
    return cfg.stage1.milestones[0] if cfg.stage1.milestones else int(0.8 * cfg.stage1.epochs)


def apply_drw(criterion: nn.Module, epoch: int, cfg: Config, counts: Sequence[int]) -> None:
    """DRW (Cao et al. 2019): plain weights before ``drw_epoch``, class-balanced weights
    (effective number, beta = method_params.cb_beta) from it on. ``criterion`` has ``set_weight``."""
    on = epoch >= drw_epoch(cfg)
    device = criterion.weight.device
    beta = cfg.method_params["cb_beta"]
    criterion.set_weight(effective_number_weights(counts, beta).to(device) if on else None)


def weights_or_none(flag: bool, counts: Sequence[int], beta: float) -> Optional[torch.Tensor]:
    return effective_number_weights(counts, beta) if flag else None
