"""The two-stage trainer of every registered method (lcreg.methods).

Stage 1 (representation): the method's objective on (mixup) batches, SGD with warm-up and
step (or cosine) decay. Stage 2 (classifier): the method's ``Stage2Recipe`` on the frozen
network (MiSLAS: class-balanced batches, label-aware smoothing, a learnable per-class
logit scale, the classifier at ``lr_factor * lr``, optional shift-BN). Both stages run
through one driver (engine/stages.py). The test split is evaluated every ``eval_every``
epochs for the log and at the final epoch for the report; it never selects anything.

Under ``torchrun`` (runtime/distributed.py) each rank trains on its shard of every epoch
with the global batch split over the ranks, DDP averages the gradients, and rank 0 alone
evaluates and writes the run folder.
"""

from __future__ import annotations

import functools
import time
import warnings
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import torch
import torch.nn as nn

from lcreg import run_folder as rf
from lcreg.config import Config, save_config, to_dict
from lcreg.data import DeviceLoader, LongTailData, build_dataset, create_sampler
from lcreg.data.images import ImageSet
from lcreg.data.loaders import eval_loader, split_loader
from lcreg.engine.profiling import step_profiler
from lcreg.engine.runlog import RunLogger
from lcreg.engine.schedule import lr_factor
from lcreg.engine.stages import (
    EpochResult,
    FeaturesAndHead,
    ScaledClassifier,
    Stage1Step,
    Stage2Step,
    StagePlan,
    compile_for_training,
    prepare_stage2,
    stage1_optimizer,
    stage2_optimizer,
    train_one_epoch,
)
from lcreg.errors import LcregError, LcregWarning
from lcreg.eval.latent_diagnostics import collapse_warning
from lcreg.eval.metrics import classification_metrics
from lcreg.eval.outputs import collect_latent_stats, collect_outputs
from lcreg.files import atomic_write_json
from lcreg.methods import create_model, get_method
from lcreg.progress import write as write_line
from lcreg.runtime.checkpoint import load_model_file, save_checkpoint, save_model
from lcreg.runtime.distributed import DistInfo, average_buffers_, main_process_first, rank_device, split_batch, wrap_ddp
from lcreg.runtime.environment import environment_info, seed_everything, select_device, with_resume

# --------------------------------------------------------------------------------------
# loaders


def rank_seed(seed: int, rank: int) -> int:
    """Seed of a rank's augmentation stream: rank 0 keeps ``seed``, the others stay apart."""
    return seed + 7919 * rank


def train_loader(
    cfg: Config,
    split: ImageSet,
    device: torch.device,
    batch_size: int,
    sampler_name: str = "instance",
    total_epochs: int = 1,
    seed: int = 0,
    dist_info: DistInfo = DistInfo(),
):
    """Training loader of this rank: its stride of each epoch's global sampler order, its
    own augmentation stream (rank 0 keeps ``seed``, so a single process is unchanged).
    Evaluation loaders come from ``lcreg.data.loaders.eval_loader``."""
    sampler = create_sampler(
        sampler_name,
        split.targets,
        seed=seed,
        total_epochs=total_epochs,
        num_replicas=dist_info.world_size,
        rank=dist_info.rank,
    )
    if len(sampler) < batch_size:
        raise LcregError(
            f"the training split has {len(split)} images ({len(sampler)} per epoch and process), fewer "
            f"than one batch of {batch_size}: lower the batch size (stage1.batch_size, "
            "stage2.batch_size)"
        )
    return split_loader(
        cfg, split, device, batch_size, train=True, sampler=sampler, seed=rank_seed(seed, dist_info.rank)
    )


# --------------------------------------------------------------------------------------
# evaluation


def evaluate(model: nn.Module, loader: Iterable, device: torch.device, splits: dict, amp: str = "auto") -> dict:
    out = collect_outputs(model, loader, device, amp)
    return classification_metrics(out.logits, out.targets, splits)


def model_summary(data: LongTailData) -> dict:
    """What a checkpoint needs so that eval/predict can rebuild the model on its own."""
    return {
        "class_names": data.class_names,
        "counts": data.counts,
        "splits": data.splits,
        "thresholds": list(data.thresholds),
        "image_shape": data.image_shape,
    }


class Trainer:
    """Owns one run folder: data, model, logs, checkpoints, both stages."""

    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        show_progress: bool = True,
        profile_steps: int = 0,
        dist_info: DistInfo = DistInfo(),
    ) -> None:
        self.cfg, self.run_dir, self.dist = cfg, Path(run_dir), dist_info
        self.main = dist_info.is_main  # rank 0 evaluates, logs and writes the run folder
        self.show = show_progress and self.main
        self.profile_steps = profile_steps if self.main else 0
        self.device = rank_device(dist_info, select_device(cfg.device))
        self.method = get_method(cfg.method)
        self.method.check(cfg)
        seed_everything(cfg.seed, cfg.deterministic)
        with main_process_first(dist_info):
            self.data = build_dataset(cfg.data)
        # channels_last: measured 352 vs 302 img/s for the ResNet-32 step on the 2-core CPU
        self.model = create_model(cfg, self.data.num_classes, self.method).to(
            self.device, memory_format=torch.channels_last
        )
        self.objective = self.method.create_objective(cfg, self.model, self.data.counts).to(self.device)
        self.logger = RunLogger(self.run_dir) if self.main else None
        self.rng = np.random.default_rng(cfg.seed)
        # wall time of the run: this process's, plus what earlier processes logged before a resume
        self._started, self._elapsed_before = time.perf_counter(), 0.0
        self._warned_collapse = False
        # the stages the method plans, recorded so that "finished" needs no method registry
        self.final: dict = rf.read_final(self.run_dir) or {"stages": list(self.method.stages(cfg))}

    # -- bookkeeping ------------------------------------------------------------------
    def write_run_files(self) -> None:
        save_config(self.cfg, self.run_dir / rf.CONFIG)
        atomic_write_json(self.run_dir / rf.ENVIRONMENT, environment_info(self.device))
        atomic_write_json(self.run_dir / rf.DATA_STATS, self.data.stats())

    def record_resume(self, checkpoint: dict) -> None:
        """Add this process to environment.json's ``resumes`` (commit, device, command, and
        the stage and epoch it continues from)."""
        path = self.run_dir / rf.ENVIRONMENT
        env = rf.read_environment(self.run_dir) if path.is_file() else environment_info(self.device)
        atomic_write_json(path, with_resume(env, self.device, checkpoint["stage"], checkpoint["epoch"]))

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
        summary = stats.summary(self.model.head.compared_latents().detach().float().cpu())
        return {
            k: summary[k]
            for k in (
                "positional_share",
                "feature_positional_share",
                "effective_rank",
                "category_cosine_max",
                "saturation",
                "histogram_entropy",
            )
        }

    def _warn_collapse(self, epoch: int, epochs: int, diagnostics: dict) -> None:
        """Say once per process, from epoch 10 on, that the latent categories collapsed: into a
        position code (the as-written reading's forms within its first 10 epochs) or into one
        category (without eq. 4 and eq. 8-9, over about 100 epochs). The run goes on."""
        if self._warned_collapse or epoch < min(10, epochs):
            return
        message = collapse_warning({**diagnostics, "num_latents": getattr(self.model.head, "num_latents", None)})
        if message is not None:
            self._warned_collapse = True
            warnings.warn(f"stage 1 epoch {epoch}: {message}", LcregWarning, stacklevel=2)

    def _evaluate_all(self) -> dict:
        return {
            name: evaluate(self.model, loader, self.device, self.data.splits, self.cfg.amp)
            for name, loader in self._eval_loaders.items()
        }

    def _checkpoint(self, stage: int, epoch: int, optimizer, scheduler, loader) -> None:
        if not self.main:
            return
        save_checkpoint(
            {
                "stage": stage,
                "epoch": epoch,
                "model": self.model.state_dict(),
                "objective": self.objective.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": self.rng.bit_generator.state,
                "loader_rng": loader.generator.get_state() if getattr(loader, "generator", None) is not None else None,
                "config": to_dict(self.cfg),
                "summary": model_summary(self.data),
                "elapsed_s": self.elapsed(),
            },
            self.run_dir / rf.CHECKPOINT,
        )

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
        # the model first, then the metrics: a stage with metrics always has its model
        meta = {"config": to_dict(self.cfg), "stage": stage, "summary": model_summary(self.data)}
        save_model(self.run_dir / rf.model_file(stage), self.model.state_dict(), meta)
        atomic_write_json(self.run_dir / rf.FINAL, self.final)

    def stage_finished(self, stage: int) -> bool:
        """Its model file complete and its final metrics written (both written atomically)."""
        return f"stage{stage}" in self.final and rf.stage_model(self.run_dir, stage) is not None

    def _run_stage(self, plan: StagePlan, resume: Optional[dict] = None) -> None:
        """One stage of any method: restore a checkpoint, then per epoch train, log (with the
        diagnostics in stage 1 and the evaluation every ``eval_every`` epochs), checkpoint,
        and at the last epoch write the stage's metrics and model file."""
        start = 0
        if resume is not None:
            self._restore(resume, plan.optimizer, plan.scheduler, plan.loader)
            start = resume["epoch"]
        for epoch in range(start, plan.epochs):
            profile = self.profile_steps if plan.stage == 1 and epoch == start else 0
            with step_profiler(self.run_dir / "profile", profile, self.device) as after_step:
                result = train_one_epoch(plan, epoch, self.device, self.cfg.log_every, self.show, after_step)
            average_buffers_(self.model)
            self._log_epoch(plan, epoch, result)
        if start >= plan.epochs and not self.stage_finished(plan.stage):
            # resumed from the last epoch's checkpoint of a process that died before the
            # stage's files were complete: write them from the checkpointed model
            self._finish_stage(plan.stage, plan.epochs, self._evaluate_all() if self.main else {})

    def _log_epoch(self, plan: StagePlan, epoch: int, result: EpochResult) -> None:
        stage, epochs = plan.stage, plan.epochs
        record = {"stage": stage, "epoch": epoch + 1, "lr": plan.optimizer.param_groups[0]["lr"], **result.record()}
        if stage == 1 and self.main:
            record["diagnostics"] = self._diagnostics()
            self._warn_collapse(epoch + 1, plan.epochs, record["diagnostics"])
        last = epoch + 1 == epochs
        evaluate_now = last or (self.cfg.eval_every > 0 and (epoch + 1) % self.cfg.eval_every == 0)
        if evaluate_now and self.main:
            evals = self._evaluate_all()
            record.update(evals)
            if self.show:
                t = evals["test"]
                write_line(
                    f"stage {stage} epoch {epoch + 1}/{epochs}: loss {result.losses['total']:.4f} "
                    f"test top1 {t['top1']:.4f} many {t['many']} medium {t['medium']} few {t['few']} "
                    f"ece {t['ece']:.4f} ({record['images_per_s']:.0f} img/s)"
                )
        record["elapsed_s"] = self.elapsed()
        if self.logger is not None:
            self.logger.log_epoch(record)
        self._checkpoint(stage, epoch + 1, plan.optimizer, plan.scheduler, plan.loader)
        if last:
            self._finish_stage(stage, epoch + 1, {k: record[k] for k in ("test", "val", "diagnostics") if k in record})

    # -- stages -------------------------------------------------------------------------
    def stage1_plan(self) -> StagePlan:
        s = self.cfg.stage1
        batch = split_batch(s.batch_size, self.dist)
        loader = train_loader(
            self.cfg, self.data.train, self.device, batch, s.sampler, s.epochs, seed=self.cfg.seed, dist_info=self.dist
        )
        steps = len(loader)
        optimizer = stage1_optimizer(self.cfg, self.model)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda i: lr_factor(i, steps, s.epochs, s.warmup_epochs, s.schedule, s.milestones, s.lr_decay)
        )
        compile_for_training(self.model, self.cfg, self.device, batch)
        forward = wrap_ddp(FeaturesAndHead(self.model), self.dist, self.device)
        # mixup's pairing draws from the device loader's generator (same device as the batch)
        generator = loader.generator if isinstance(loader, DeviceLoader) else None
        step = Stage1Step(
            forward,
            self.objective,
            optimizer,
            scheduler,
            self.cfg,
            self.device,
            s.mixup_alpha if self.method.mixup else 0.0,
            self.rng,
            generator,
            s.epochs * steps,
        )

        def modes() -> None:
            self.model.train()
            self.objective.train()

        def before_epoch(epoch: int) -> None:
            step.step = epoch * steps  # exact after a resume too
            self.method.on_epoch_start(self.objective, epoch, self.cfg, self.data.counts)

        return StagePlan(1, s.epochs, loader, optimizer, scheduler, step, modes, before_epoch)

    @functools.cached_property
    def stage2_recipe(self):
        """The method's stage-2 recipe, built once; its sampler, lr factor and BN mode are the
        resolved config's stage2 section."""
        return self.method.stage2_recipe(self.cfg, self.data.counts)

    def stage2_plan(self) -> StagePlan:
        s, recipe = self.cfg.stage2, self.stage2_recipe
        prepare_stage2(self.model, recipe)
        loader = train_loader(
            self.cfg,
            self.data.train,
            self.device,
            split_batch(s.batch_size, self.dist),
            s.sampler,
            s.epochs,
            seed=self.cfg.seed + 1,
            dist_info=self.dist,
        )
        steps = len(loader)
        optimizer = stage2_optimizer(self.cfg, self.model, recipe)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: lr_factor(i, steps, s.epochs, 0, "cosine"))
        classifier = wrap_ddp(ScaledClassifier(self.model), self.dist, self.device, broadcast_buffers=False)
        step = Stage2Step(
            self.model, classifier, recipe.criterion.to(self.device), optimizer, scheduler, self.cfg, self.device
        )
        # frozen trunk: train mode only re-estimates BN statistics (shift-BN), eval mode keeps them
        return StagePlan(2, s.epochs, loader, optimizer, scheduler, step, lambda: self.model.train(s.shift_bn))

    def stage2_post_hoc(self) -> None:
        """A stage 2 without training (tau-normalisation): its choice is made on the
        validation split, then the stage's metrics and model file are written."""
        recipe = self.stage2_recipe
        if "val" not in self._eval_loaders:
            raise LcregError(
                f"method {self.cfg.method} chooses its stage 2 on a validation split; set data.val_fraction (e.g. 0.1)"
            )
        prepare_stage2(self.model, recipe)

        def balanced_val_accuracy() -> float:
            per_class = evaluate(self.model, self._eval_loaders["val"], self.device, self.data.splits, self.cfg.amp)[
                "per_class"
            ]
            present = [a for a in per_class if a is not None]
            return float(np.mean(present))

        choice = recipe.post_hoc(self.model.classifier, balanced_val_accuracy)
        evals = self._evaluate_all() if self.main else {}
        self.final["stage2_choice"] = choice
        if self.logger is not None:
            self.logger.log_epoch({"stage": 2, "epoch": 0, "choice": choice, **evals, "elapsed_s": self.elapsed()})
        self._finish_stage(2, 0, evals)

    def stage1(self, resume: Optional[dict] = None) -> None:
        self._run_stage(self.stage1_plan(), resume)

    def stage2(self, resume: Optional[dict] = None) -> None:
        recipe = self.stage2_recipe
        if recipe is not None and recipe.post_hoc is not None:
            self.stage2_post_hoc()
        else:
            self._run_stage(self.stage2_plan(), resume)

    def load_stage1_model(self, path: Path) -> None:
        state = load_model_file(path, self.device)
        self.model.load_state_dict(state["model"])

    def run(
        self, stages: tuple[int, ...] = (1, 2), resume: Optional[dict] = None, stage1_model: Optional[Path] = None
    ) -> dict:
        """Run the given stages. ``resume``: the checkpoint dict of this run folder;
        ``stage1_model``: where stage 2 takes its weights when stage 1 is not run here."""
        resume_stage = resume["stage"] if resume is not None else None
        try:
            if 1 in stages and resume_stage != 2:
                self.stage1(resume if resume_stage == 1 else None)
            if 2 in stages and 2 in self.method.stages(self.cfg):
                if 1 not in stages and resume_stage != 2:
                    self.load_stage1_model(
                        stage1_model or rf.stage_model(self.run_dir, 1) or self.run_dir / rf.model_file(1)
                    )
                self.stage2(resume if resume_stage == 2 else None)
        finally:
            if self.logger is not None:
                self.logger.close()
        return self.final
