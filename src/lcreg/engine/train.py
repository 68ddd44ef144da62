"""The two MiSLAS stages around the LCReg objective.

Stage 1 (representation): mixup on the inputs, eq. 10 on the mixed batch, SGD with
warm-up and step (or cosine) decay. Stage 2 (classifier): backbone and latent head frozen,
class-balanced batches, label-aware smoothing, a learnable per-class logit scale, the
classifier at ``lr_factor * lr``, optional shift-BN. The test split is evaluated every
``eval_every`` epochs for the log and at the final epoch for the report; it never selects
anything.

Under ``torchrun`` (engine/distributed.py) each rank trains on its shard of every epoch
with the global batch split over the ranks, DDP averages the gradients, and rank 0 alone
evaluates and writes the run folder.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np
import torch
import torch.nn as nn

from lcreg.config import Config, save_config, to_dict
from lcreg.data import DeviceLoader, LongTailData, build_dataset, create_sampler, uses_device_loader, worker_loader
from lcreg.data.images import ImageSet
from lcreg.engine.checkpoint import load_checkpoint, save_checkpoint
from lcreg.engine.compilation import compile_or_fall_back, is_compiled, resolve_mode, should_compile
from lcreg.engine.distributed import (DistInfo, average_, average_buffers_, main_process_first, rank_device, split_batch,
                                      world_size, wrap_ddp)
from lcreg.engine.environment import autocast, environment_info, seed_everything, select_device
from lcreg.engine.inference import collect_latent_stats, collect_outputs, eval_loader
from lcreg.engine.profiling import step_profiler
from lcreg.engine.runlog import RunLogger
from lcreg.engine.schedule import lr_factor
from lcreg.errors import LcregError
from lcreg.eval.metrics import classification_metrics
from lcreg.files import atomic_write_json
from lcreg.losses import LabelAwareSmoothing, LatentAugmentationLoss, LCRegObjective, ReconstructionLoss, mixup
from lcreg.models import LongTailNet, create_model
from lcreg.progress import progress
from lcreg.progress import write as write_line


# --------------------------------------------------------------------------------------
# loaders


def rank_seed(seed: int, rank: int) -> int:
    """Seed of a rank's augmentation stream: rank 0 keeps ``seed``, the others stay apart."""
    return seed + 7919 * rank


def train_loader(cfg: Config, split: ImageSet, device: torch.device, batch_size: int, sampler_name: str = "instance",
                 total_epochs: int = 1, seed: int = 0, dist_info: DistInfo = DistInfo()):
    """Training loader of this rank: its stride of each epoch's global sampler order, its
    own augmentation stream (rank 0 keeps ``seed``, so a single process is unchanged).
    Evaluation loaders come from ``engine.inference.eval_loader``."""
    d = cfg.data
    sampler = create_sampler(sampler_name, split.targets, seed=seed, total_epochs=total_epochs,
                             num_replicas=dist_info.world_size, rank=dist_info.rank)
    if len(sampler) < batch_size:
        raise LcregError(f"the training split has {len(split)} images ({len(sampler)} per epoch and process), fewer "
                         f"than one batch of {batch_size}: lower the batch size (stage1.batch_size, "
                         "stage2.batch_size)")
    if uses_device_loader(d):
        return DeviceLoader(split, batch_size, device, d.mean, d.std, train=True, sampler=sampler,
                            padding=d.crop_padding, seed=rank_seed(seed, dist_info.rank))
    return worker_loader(split, batch_size, d.image_size, d.mean, d.std, train=True, sampler=sampler,
                         num_workers=d.num_workers, color_jitter=d.color_jitter, pin_memory=device.type == "cuda",
                         seed=rank_seed(seed, dist_info.rank))


def set_loader_epoch(loader, epoch: int) -> None:
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    elif getattr(loader, "sampler", None) is not None and hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)


# --------------------------------------------------------------------------------------
# evaluation


def evaluate(model: nn.Module, loader: Iterable, device: torch.device, splits: dict, amp: str = "auto") -> dict:
    out = collect_outputs(model, loader, device, amp)
    return classification_metrics(out.logits, out.targets, splits)


# --------------------------------------------------------------------------------------
# one epoch of each stage


@dataclass
class EpochResult:
    losses: dict[str, float]
    images: int
    seconds: float

    def record(self) -> dict:
        return {"loss": self.losses, "images_per_s": self.images / max(self.seconds, 1e-9), "seconds": self.seconds}


def _run_steps(loader, step_fn: Callable[[torch.Tensor, torch.Tensor], dict], device: torch.device,
               log_every: int, desc: str, show: bool, after_step: Optional[Callable[[], None]] = None) -> EpochResult:
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
        raise LcregError(f"non-finite loss in {desc} ({terms}); lower the learning rate or a loss weight (the "
                         "checkpoint of the last completed epoch is kept: lcreg train --resume RUN)")
    return EpochResult(losses, n_images, seconds)


class FeaturesAndHead(nn.Module):
    """Backbone and head in one forward that also returns the feature map (the LCReg losses
    need it), so that DistributedDataParallel wraps the whole stage-1 step."""

    def __init__(self, model: LongTailNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        features = self.model.forward_features(x)
        return features, self.model.forward_head(features)


class ScaledClassifier(nn.Module):
    """The part of the model that stage 2 trains: classifier + per-class logit scale."""

    def __init__(self, model: LongTailNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.model.logit_scale(self.model.classifier(pooled))


def train_one_epoch_stage1(model: LongTailNet, objective: LCRegObjective, optimizer: torch.optim.Optimizer,
                           scheduler, loader, device: torch.device, cfg: Config, step0: int, total_steps: int,
                           rng: np.random.Generator, generator: Optional[torch.Generator], desc: str,
                           show: bool = True, after_step: Optional[Callable[[], None]] = None,
                           forward: Optional[nn.Module] = None) -> EpochResult:
    """``forward``: ``FeaturesAndHead(model)``, DDP-wrapped under torchrun."""
    model.train()
    objective.train()
    state = {"step": step0}
    latent_bias = getattr(model.head, "latent_bias", None) if cfg.loss.latent_bias else None
    forward = forward if forward is not None else FeaturesAndHead(model)

    def step(images: torch.Tensor, targets: torch.Tensor) -> dict:
        mixed, y_a, y_b, lam = mixup(images, targets, cfg.stage1.mixup_alpha, rng, generator)
        with autocast(device, cfg.amp):
            features, out = forward(mixed)
        progress = state["step"] / max(total_steps, 1)
        loss, terms = objective(out, features, y_a, y_b, lam, progress, latent_bias)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        state["step"] += 1
        return {"total": loss, **terms}

    return _run_steps(loader, step, device, cfg.log_every, desc, show, after_step)


def train_one_epoch_stage2(model: LongTailNet, criterion: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
                           loader, device: torch.device, cfg: Config, desc: str, show: bool = True,
                           classifier: Optional[nn.Module] = None) -> EpochResult:
    """``classifier``: ``ScaledClassifier(model)``, DDP-wrapped under torchrun."""
    # frozen trunk: train mode only re-estimates BN statistics (shift-BN), eval mode keeps them
    model.train(cfg.stage2.shift_bn)
    classifier = classifier if classifier is not None else ScaledClassifier(model)

    def step(images: torch.Tensor, targets: torch.Tensor) -> dict:
        with torch.no_grad(), autocast(device, cfg.amp):
            pooled = model.head.pre_logits(model.forward_features(images))
        logits = classifier(pooled.float())
        loss = criterion(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        return {"total": loss}

    return _run_steps(loader, step, device, cfg.log_every, desc, show)


# --------------------------------------------------------------------------------------
# run set-up


def build_objective(cfg: Config, model: LongTailNet) -> LCRegObjective:
    latent_aug = None
    if model.has_latent_head:
        latent_aug = LatentAugmentationLoss(model.head.num_latents, model.head.in_features, cfg.loss.covariance,
                                            cfg.loss.lambda0, cfg.loss.latent_samples)
    lo = cfg.loss
    reconstruction = ReconstructionLoss(lo.recon_similarity, lo.recon_temperature, lo.recon_reduction)
    latent_maps = model.head.latent_maps if (lo.detach_features and model.has_latent_head) else None
    return LCRegObjective(lo.alpha, lo.beta, lo.gamma, latent_aug, reconstruction, latent_maps)


def _fused(model: nn.Module) -> dict:
    """Fused SGD (one kernel for all parameters) on CUDA; the foreach default elsewhere."""
    return {"fused": True} if next(model.parameters()).is_cuda else {}


def stage1_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    s = cfg.stage1
    return torch.optim.SGD(model.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay,
                           **_fused(model))


def stage2_optimizer(cfg: Config, model: LongTailNet) -> torch.optim.Optimizer:
    s = cfg.stage2
    return torch.optim.SGD(
        [{"params": model.classifier.parameters(), "lr": s.lr * s.lr_factor},
         {"params": model.logit_scale.parameters(), "lr": s.lr}],
        lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay, **_fused(model),
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


def freeze_for_stage2(model: LongTailNet) -> None:
    model.add_logit_scale()
    for p in model.parameters():
        p.requires_grad_(False)
    for p in list(model.classifier.parameters()) + list(model.logit_scale.parameters()):
        p.requires_grad_(True)


def model_summary(data: LongTailData) -> dict:
    """What a checkpoint needs so that eval/predict can rebuild the model on its own."""
    return {"class_names": data.class_names, "counts": data.counts, "splits": data.splits,
            "thresholds": list(data.thresholds), "image_shape": data.image_shape}


class Trainer:
    """Owns one run folder: data, model, logs, checkpoints, both stages."""

    def __init__(self, cfg: Config, run_dir: Path, show_progress: bool = True, profile_steps: int = 0,
                 dist_info: DistInfo = DistInfo()) -> None:
        self.cfg, self.run_dir, self.dist = cfg, Path(run_dir), dist_info
        self.main = dist_info.is_main  # rank 0 evaluates, logs and writes the run folder
        self.show = show_progress and self.main
        self.profile_steps = profile_steps if self.main else 0
        self.device = rank_device(dist_info, select_device(cfg.device))
        seed_everything(cfg.seed, cfg.deterministic)
        with main_process_first(dist_info):
            self.data = build_dataset(cfg.data)
        # channels_last: measured 352 vs 302 img/s for the ResNet-32 step on the 2-core CPU
        self.model = create_model(cfg.model, self.data.num_classes).to(self.device, memory_format=torch.channels_last)
        self.objective = build_objective(cfg, self.model).to(self.device)
        self.logger = RunLogger(self.run_dir) if self.main else None
        self.rng = np.random.default_rng(cfg.seed)
        # wall time of the run: this process's, plus what earlier processes logged before a resume
        self._started, self._elapsed_before = time.perf_counter(), 0.0
        self.final: dict = {}
        final_path = self.run_dir / "final_metrics.json"
        if final_path.exists():
            self.final = json.loads(final_path.read_text())

    # -- bookkeeping ------------------------------------------------------------------
    def write_run_files(self) -> None:
        save_config(self.cfg, self.run_dir / "config.yaml")
        atomic_write_json(self.run_dir / "environment.json", environment_info(self.device))
        atomic_write_json(self.run_dir / "data_stats.json", self.data.stats())

    def elapsed(self) -> float:
        """Seconds of wall time the run has taken so far, summed over resumed processes
        (data loading, compilation, training, evaluation; not the time between them)."""
        return self._elapsed_before + time.perf_counter() - self._started

    @functools.cached_property
    def _eval_loaders(self) -> dict:
        """Built once per run: a device copy of each evaluated split."""
        loaders = {"test": eval_loader(self.cfg, self.data.test, self.device)}
        if self.data.val is not None:
            loaders["val"] = eval_loader(self.cfg, self.data.val, self.device)
        return loaders

    @functools.cached_property
    def _probe_loader(self):
        """512 fixed training images, unaugmented, for the per-epoch latent diagnostics."""
        n = min(512, len(self.data.train))
        idx = np.sort(np.random.default_rng(self.cfg.seed).permutation(len(self.data.train))[:n])
        return eval_loader(self.cfg, self.data.train.subset(idx), self.device, batch_size=n)

    def _diagnostics(self) -> dict:
        """The cheap content measures of eval/latent_diagnostics.py on the probe images, so a
        collapse of the latent categories shows in the log (and TensorBoard) as it happens."""
        stats, _ = collect_latent_stats(self.model, self._probe_loader, self.device, self.cfg.amp)
        if not self.model.has_latent_head:
            return {"feature_positional_share": stats.feature_var.share()}
        summary = stats.summary(self.model.head.encoded_latents().detach().float().cpu())
        return {k: summary[k] for k in ("positional_share", "feature_positional_share", "effective_rank",
                                        "saturation", "histogram_entropy")}

    def _evaluate_all(self) -> dict:
        return {name: evaluate(self.model, loader, self.device, self.data.splits, self.cfg.amp)
                for name, loader in self._eval_loaders.items()}

    def _checkpoint(self, stage: int, epoch: int, optimizer, scheduler, loader) -> None:
        if not self.main:
            return
        save_checkpoint({
            "stage": stage, "epoch": epoch, "model": self.model.state_dict(),
            "objective": self.objective.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": self.rng.bit_generator.state,
            "loader_rng": loader.generator.get_state() if getattr(loader, "generator", None) is not None else None,
            "config": to_dict(self.cfg), "summary": model_summary(self.data), "elapsed_s": self.elapsed(),
        }, self.run_dir / "checkpoint.pt")

    def _restore(self, state: dict, optimizer, scheduler, loader) -> None:
        self.model.load_state_dict(state["model"])
        self.objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        self.rng.bit_generator.state = state["rng"]
        self._elapsed_before = state.get("elapsed_s", 0.0)  # this process's start-up counts on top
        if self.logger is not None:  # epochs logged after this checkpoint are run again
            self.logger.truncate(state["stage"], state["epoch"])
        if state.get("loader_rng") is not None and getattr(loader, "generator", None) is not None:
            if self.dist.rank == 0:
                loader.generator.set_state(state["loader_rng"])
            else:  # the checkpoint holds rank 0's stream; keep the ranks' streams apart
                loader.generator.manual_seed(rank_seed(self.cfg.seed, self.dist.rank) + 104729 * state["epoch"])

    def _finish_stage(self, stage: int, epoch: int, evals: dict) -> None:
        # wall_seconds: the run's wall time up to the end of this stage
        self.final[f"stage{stage}"] = {"epoch": epoch, "wall_seconds": self.elapsed(), **evals}
        if not self.main:
            return
        atomic_write_json(self.run_dir / "final_metrics.json", self.final)
        save_checkpoint({"model": self.model.state_dict(), "config": to_dict(self.cfg), "stage": stage,
                         "summary": model_summary(self.data)},
                        self.run_dir / f"stage{stage}_model.pt")

    def stage_finished(self, stage: int) -> bool:
        """Its final metrics written and its model file complete (written atomically)."""
        return f"stage{stage}" in self.final and (self.run_dir / f"stage{stage}_model.pt").is_file()

    def _epoch_loop(self, stage: int, epochs: int, start_epoch: int, run_epoch: Callable[[int], EpochResult],
                    optimizer, scheduler, loader) -> None:
        for epoch in range(start_epoch, epochs):
            set_loader_epoch(loader, epoch)
            result = run_epoch(epoch)
            average_buffers_(self.model)
            record = {"stage": stage, "epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], **result.record()}
            if stage == 1 and self.main:
                record["diagnostics"] = self._diagnostics()
            last = epoch + 1 == epochs
            evaluate_now = last or (self.cfg.eval_every > 0 and (epoch + 1) % self.cfg.eval_every == 0)
            if evaluate_now and self.main:
                evals = self._evaluate_all()
                record.update(evals)
                if self.show:
                    t = evals["test"]
                    write_line(f"stage {stage} epoch {epoch + 1}/{epochs}: loss {result.losses['total']:.4f} "
                               f"test top1 {t['top1']:.4f} many {t['many']} medium {t['medium']} few {t['few']} "
                               f"ece {t['ece']:.4f} ({record['images_per_s']:.0f} img/s)")
            record["elapsed_s"] = self.elapsed()
            if self.logger is not None:
                self.logger.log_epoch(record)
            self._checkpoint(stage, epoch + 1, optimizer, scheduler, loader)
            if last:
                self._finish_stage(stage, epoch + 1, {k: record[k] for k in ("test", "val") if k in record})
        if start_epoch >= epochs and not self.stage_finished(stage):
            # resumed from the last epoch's checkpoint of a process that died before the
            # stage's files were complete: write them from the checkpointed model
            self._finish_stage(stage, epochs, self._evaluate_all() if self.main else {})

    # -- stages -------------------------------------------------------------------------
    def stage1(self, resume: Optional[dict] = None) -> None:
        s = self.cfg.stage1
        loader = train_loader(self.cfg, self.data.train, self.device, split_batch(s.batch_size, self.dist),
                               s.sampler, s.epochs, seed=self.cfg.seed, dist_info=self.dist)
        steps = len(loader)
        optimizer = stage1_optimizer(self.cfg, self.model)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: lr_factor(
            i, steps, s.epochs, s.warmup_epochs, s.schedule, s.milestones))
        start = 0
        if resume is not None:
            self._restore(resume, optimizer, scheduler, loader)
            start = resume["epoch"]
        # mixup's pairing draws from the device loader's generator (same device as the batch)
        generator = loader.generator if isinstance(loader, DeviceLoader) else None
        compile_for_training(self.model, self.cfg, self.device, split_batch(s.batch_size, self.dist))
        forward = wrap_ddp(FeaturesAndHead(self.model), self.dist, self.device)

        def run_epoch(epoch: int) -> EpochResult:
            profile = self.profile_steps if epoch == start else 0
            with step_profiler(self.run_dir / "profile", profile, self.device) as after_step:
                return train_one_epoch_stage1(self.model, self.objective, optimizer, scheduler, loader, self.device,
                                              self.cfg, epoch * steps, s.epochs * steps, self.rng, generator,
                                              f"stage 1 epoch {epoch + 1}/{s.epochs}", self.show, after_step,
                                              forward)

        self._epoch_loop(1, s.epochs, start, run_epoch, optimizer, scheduler, loader)

    def stage2(self, resume: Optional[dict] = None) -> None:
        s = self.cfg.stage2
        freeze_for_stage2(self.model)
        loader = train_loader(self.cfg, self.data.train, self.device, split_batch(s.batch_size, self.dist),
                               s.sampler, s.epochs, seed=self.cfg.seed + 1, dist_info=self.dist)
        steps = len(loader)
        optimizer = stage2_optimizer(self.cfg, self.model)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: lr_factor(
            i, steps, s.epochs, 0, "cosine"))
        criterion = LabelAwareSmoothing(self.data.counts, s.eps_head, s.eps_tail).to(self.device)
        start = 0
        if resume is not None:
            self._restore(resume, optimizer, scheduler, loader)
            start = resume["epoch"]

        classifier = wrap_ddp(ScaledClassifier(self.model), self.dist, self.device, broadcast_buffers=False)

        def run_epoch(epoch: int) -> EpochResult:
            return train_one_epoch_stage2(self.model, criterion, optimizer, scheduler, loader, self.device, self.cfg,
                                          f"stage 2 epoch {epoch + 1}/{s.epochs}", self.show, classifier)

        self._epoch_loop(2, s.epochs, start, run_epoch, optimizer, scheduler, loader)

    def load_stage1_model(self, path: Path) -> None:
        state = load_checkpoint(path, self.device)
        self.model.load_state_dict(state["model"])

    def run(self, stages: tuple[int, ...] = (1, 2), resume: Optional[dict] = None,
            stage1_model: Optional[Path] = None) -> dict:
        """Run the given stages. ``resume``: the checkpoint dict of this run folder;
        ``stage1_model``: where stage 2 takes its weights when stage 1 is not run here."""
        resume_stage = resume["stage"] if resume is not None else None
        try:
            if 1 in stages and resume_stage != 2:
                self.stage1(resume if resume_stage == 1 else None)
            if 2 in stages and self.cfg.stage2.epochs > 0:
                if 1 not in stages and resume_stage != 2:
                    self.load_stage1_model(stage1_model or self.run_dir / "stage1_model.pt")
                self.stage2(resume if resume_stage == 2 else None)
        finally:
            if self.logger is not None:
                self.logger.close()
        return self.final
