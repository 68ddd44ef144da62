"""The two stages as plans for one epoch driver.

A ``StagePlan`` is everything one stage needs (loader, optimiser, scheduler, the step on a
batch, the modules' train/eval modes, a hook before each epoch); ``train_one_epoch`` runs
any plan for one epoch. Stage 1 trains the whole network on the method's objective over
(mixup) batches; stage 2 re-trains the classifier of the frozen network by the method's
``Stage2Recipe``. The same code serves every registered method.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn as nn

from lcreg.config import Config
from lcreg.engine.compilation import compile_or_fall_back, is_compiled, resolve_mode, should_compile
from lcreg.errors import LcregError
from lcreg.losses import mixup
from lcreg.methods import Stage2Recipe
from lcreg.models import LongTailNet
from lcreg.progress import progress
from lcreg.runtime.distributed import average_, world_size
from lcreg.runtime.environment import autocast


@dataclass
class EpochResult:
    losses: dict[str, float]
    images: int
    seconds: float

    def record(self) -> dict:
        return {"loss": self.losses, "images_per_s": self.images / max(self.seconds, 1e-9), "seconds": self.seconds}


@dataclass
class StagePlan:
    stage: int
    epochs: int
    loader: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    step: Callable[[torch.Tensor, torch.Tensor], dict]  # one optimisation step: loss terms
    modes: Callable[[], None]  # the modules' train / eval modes for an epoch
    before_epoch: Callable[[int], None] = field(default=lambda epoch: None)  # schedule hooks (DRW)


def set_loader_epoch(loader, epoch: int) -> None:
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    elif getattr(loader, "sampler", None) is not None and hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)


def run_steps(
    loader,
    step_fn: Callable[[torch.Tensor, torch.Tensor], dict],
    device: torch.device,
    log_every: int,
    desc: str,
    show: bool,
    after_step: Optional[Callable[[], None]] = None,
) -> EpochResult:
    """Drive ``step_fn`` over a loader; sums loss terms on the device and syncs with the
    host only every ``log_every`` steps (progress bar) and at the end. ``after_step``: the
    profiler's step."""
    sums: dict[str, torch.Tensor] = {}
    n_steps, n_images = 0, 0
    start = time.perf_counter()
    bar = progress(loader, show=show, desc=desc, leave=False, dynamic_ncols=True)
    for images, targets in bar:
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        terms = step_fn(images, targets)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0) + v.detach().float()
        n_steps += 1
        n_images += images.shape[0]
        if after_step is not None:
            after_step()
        if show and n_steps % log_every == 0:
            bar.set_postfix({k: f"{(v / n_steps).item():.3f}" for k, v in sums.items()})
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    losses = {k: (v / max(n_steps, 1)).item() for k, v in average_(sums).items()}
    n_images *= world_size()
    if any(not math.isfinite(v) for v in losses.values()):
        terms = ", ".join(f"{k} {v:.4g}" for k, v in losses.items())
        raise LcregError(
            f"non-finite loss in {desc} ({terms}); lower the learning rate or a loss weight (the "
            "checkpoint of the last completed epoch is kept: lcreg train --resume RUN)"
        )
    return EpochResult(losses, n_images, seconds)


def train_one_epoch(
    plan: StagePlan,
    epoch: int,
    device: torch.device,
    log_every: int,
    show: bool,
    after_step: Optional[Callable[[], None]] = None,
) -> EpochResult:
    """One epoch of any stage of any method."""
    set_loader_epoch(plan.loader, epoch)
    plan.modes()
    plan.before_epoch(epoch)
    return run_steps(
        plan.loader,
        plan.step,
        device,
        log_every,
        f"stage {plan.stage} epoch {epoch + 1}/{plan.epochs}",
        show,
        after_step,
    )


def fused(model: nn.Module) -> dict:
    """Fused SGD (one kernel for all parameters) on CUDA; the foreach default elsewhere."""
    return {"fused": True} if next(model.parameters()).is_cuda else {}


# --------------------------------------------------------------------------------------
# stage 1


class FeaturesAndHead(nn.Module):
    """Backbone and head in one forward that also returns the feature map (the LCReg losses
    need it), so that DistributedDataParallel wraps the whole stage-1 step."""

    def __init__(self, model: LongTailNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        features = self.model.forward_features(x)
        return features, self.model.forward_head(features)


class Stage1Step:
    """Mixup (when the method mixes), forward, the method's objective, one SGD step. ``step``
    counts optimisation steps over the stage (the ISDA ramp lambda = lambda0 t / T)."""

    def __init__(
        self,
        forward: nn.Module,
        objective: nn.Module,
        optimizer,
        scheduler,
        cfg: Config,
        device: torch.device,
        mixup_alpha: float,
        rng: np.random.Generator,
        generator: Optional[torch.Generator],
        total_steps: int,
        step: int = 0,
    ) -> None:
        self.forward, self.objective, self.optimizer, self.scheduler = forward, objective, optimizer, scheduler
        self.cfg, self.device, self.mixup_alpha = cfg, device, mixup_alpha
        self.rng, self.generator, self.total_steps, self.step = rng, generator, total_steps, step

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> dict:
        mixed, y_a, y_b, lam = mixup(images, targets, self.mixup_alpha, self.rng, self.generator)
        with autocast(self.device, self.cfg.amp):
            features, out = self.forward(mixed)
        loss, terms = self.objective(out, features, y_a, y_b, lam, self.step / max(self.total_steps, 1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return {"total": loss, **terms}


def stage1_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    s = cfg.stage1
    return torch.optim.SGD(
        model.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay, **fused(model)
    )


def compile_for_training(model: LongTailNet, cfg: Config, device: torch.device, batch_size: int) -> bool:
    """torch.compile per ``cfg.compile`` (see engine/compilation.py), triggered on a random
    batch of the training shape so that no data RNG is consumed. Returns whether compiled."""
    if not should_compile(cfg.compile, device) or is_compiled(model):
        return is_compiled(model)
    size = cfg.data.image_size
    gen = torch.Generator(device=device).manual_seed(0)

    def probe() -> torch.Tensor:
        model.train()
        x = torch.randn(batch_size, 3, size, size, device=device, generator=gen)
        with autocast(device, cfg.amp):
            return model(x.contiguous(memory_format=torch.channels_last)).logits.float().sum()

    return compile_or_fall_back(model, resolve_mode(cfg.compile_mode), probe)


# --------------------------------------------------------------------------------------
# stage 2


class ScaledClassifier(nn.Module):
    """The part of the model that stage 2 trains: classifier, then the per-class logit scale
    when the recipe has one."""

    def __init__(self, model: LongTailNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        logits = self.model.classifier(pooled)
        return self.model.logit_scale(logits) if self.model.logit_scale is not None else logits


def prepare_stage2(model: LongTailNet, recipe: Stage2Recipe) -> list[nn.Parameter]:
    """Freeze the network, then set up and unfreeze what the recipe trains: the classifier
    (re-initialised for cRT) and the logit scale, or the scale alone (LWS). Returns the
    trained parameters."""
    if recipe.logit_scale:
        model.add_logit_scale()
    if recipe.reinit_classifier:
        model.classifier.reset_parameters()
    for p in model.parameters():
        p.requires_grad_(False)
    scale = list(model.logit_scale.parameters()) if model.logit_scale is not None else []
    trained = scale if recipe.train == "scale" else list(model.classifier.parameters()) + scale
    for p in trained:
        p.requires_grad_(True)
    return trained


def stage2_optimizer(cfg: Config, model: LongTailNet, recipe: Stage2Recipe) -> torch.optim.Optimizer:
    """The classifier at ``lr_factor * lr`` (MiSLAS: 0.5), the logit scale at ``lr``."""
    s = cfg.stage2
    groups = []
    if recipe.train == "classifier":
        groups.append({"params": list(model.classifier.parameters()), "lr": s.lr * s.lr_factor})
    if model.logit_scale is not None:
        groups.append({"params": list(model.logit_scale.parameters()), "lr": s.lr})
    return torch.optim.SGD(groups, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay, **fused(model))


class Stage2Step:
    """The frozen network's pooled vector (no gradient), then the trained classifier part."""

    def __init__(
        self,
        model: LongTailNet,
        classifier: nn.Module,
        criterion: nn.Module,
        optimizer,
        scheduler,
        cfg: Config,
        device: torch.device,
    ) -> None:
        self.model, self.classifier, self.criterion = model, classifier, criterion
        self.optimizer, self.scheduler, self.cfg, self.device = optimizer, scheduler, cfg, device

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> dict:
        with torch.no_grad(), autocast(self.device, self.cfg.amp):
            pooled = self.model.forward_head(self.model.forward_features(images), pre_logits=True)
        loss = self.criterion(self.classifier(pooled.float()), targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return {"total": loss}
