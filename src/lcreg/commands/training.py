"""``lcreg train``: check the inputs (preset and overrides, ``--resume``, ``--stage 2 --from``)
before any folder exists or changes, pick the run folder on rank 0 and lock it for as long
as this process trains in it, train, print the final metrics. A run that fails before its
first checkpoint leaves no folder behind."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

from lcreg import run_folder as rf
from lcreg.commands.run_config import check_overrides_read, data_overrides, resolve_config, split_config_args
from lcreg.errors import LcregError


def new_run_dir(out: Optional[str], cfg, lock: contextlib.ExitStack) -> Path:
    """``--out`` (empty, or a failed start's leftovers) or ``output_dir/NAME-seedS-STAMP``,
    created, locked (``lock`` holds it) and checked writable. The leftovers of a failed
    start are removed only once the lock is held: a live run holds it, so its files are
    never taken for leftovers."""
    if out:
        run_dir = Path(out)
        if run_dir.exists() and not run_dir.is_dir():
            raise LcregError(f"--out {run_dir} is a file, not a folder; pick a folder name")
        if run_dir.is_dir() and not rf.only_start_files(run_dir):  # refused before the lock is even tried
            raise LcregError(
                f"run folder {run_dir} already exists and is not empty; pick another --out or continue it with --resume"
            )
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path(cfg.output_dir) / f"{cfg.name}-seed{cfg.seed}-{stamp}"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".lcreg-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise LcregError(f"cannot create run folder {run_dir}: {e.strerror or type(e).__name__}") from None
    lock.enter_context(rf.locked(run_dir))
    rf.clear_failed_start(run_dir)  # under the lock: what is left is a failed start's
    return run_dir


def check_resume(run_dir: Path, cfg) -> Optional[dict]:
    """Everything ``--resume`` reads, checked before the folder changes: the run's files
    parse, the run is not finished, and its checkpoint is this run's (same config)."""
    from lcreg.config import to_dict
    from lcreg.runtime.checkpoint import load_checkpoint

    if rf.is_finished(run_dir):
        raise LcregError(
            f"{run_dir} is finished (final_metrics.json and its model files are complete); nothing to resume"
        )
    if (run_dir / rf.ENVIRONMENT).exists():  # written again if missing
        rf.read_environment(run_dir)
    rf.read_records(run_dir)
    ckpt = run_dir / rf.CHECKPOINT
    if not ckpt.exists():
        return None
    state = load_checkpoint(ckpt)
    if not isinstance(state.get("stage"), int) or not isinstance(state.get("epoch"), int):
        raise LcregError(f"{ckpt} is not a training checkpoint (no stage and epoch)")
    if state.get("config") is not None and state["config"] != to_dict(cfg):
        from lcreg.config import from_dict

        if to_dict(from_dict(state["config"])) != to_dict(cfg):
            raise LcregError(
                f"{ckpt} was written by another run (its config differs from {run_dir / rf.CONFIG}); "
                "it cannot continue this one"
            )
    return state


def train_inputs(args: argparse.Namespace):
    """(config, stages, resume checkpoint, stage-1 model) of a train command, checked; the
    run folder is not created here."""
    from lcreg.config import load_config, load_saved_config
    from lcreg.runtime.checkpoint import load_model_file

    stages = {"1": (1,), "2": (2,), "all": (1, 2)}[args.stage]
    if args.resume:
        run_dir = Path(args.resume)
        if args.config or args.out or args.from_run:
            raise LcregError(
                "--resume continues a run as it was configured; give no preset, overrides, --out or --from"
            )
        if not (run_dir / rf.CONFIG).is_file():
            raise LcregError(f"{run_dir} is not a run folder (no config.yaml)")
        cfg = load_saved_config(run_dir / rf.CONFIG)
        return cfg, stages, check_resume(run_dir, cfg), None
    if args.stage != "2":
        cfg = resolve_config(args)
        if cfg.stage1.epochs == 0:
            raise LcregError(
                "stage1.epochs=0 trains no representation; to re-train only the classifier of a "
                "finished stage 1, use --stage 2 --from RUN"
            )
        return cfg, stages, None, None
    if not args.from_run:
        raise LcregError("--stage 2 needs --from RUN (a run folder with its stage-1 model)")
    src = Path(args.from_run)
    stage1_model = (rf.stage_model(src, 1) or src / rf.model_file(1)) if src.is_dir() else src
    if not stage1_model.is_file():
        raise LcregError(f"{stage1_model} does not exist; run stage 1 first")
    preset, overrides = split_config_args(args.config)
    if preset:
        raise LcregError("with --from, give only key=value overrides (the config comes from the run)")
    if not (stage1_model.parent / rf.CONFIG).is_file():
        raise LcregError(f"{stage1_model.parent} holds no config.yaml next to the stage-1 model")
    base = load_saved_config(stage1_model.parent / rf.CONFIG)
    load_model_file(stage1_model)  # refused here if unreadable or unsafe, before any run folder exists
    held_out = validation_split(base)  # before load_config, which may apply the overrides to base
    cfg = load_config(None, overrides + data_overrides(args), base=base)
    check_overrides_read(cfg, overrides)
    carved = cfg.data.val_source == "train" and (cfg.data.val_fraction > 0 or cfg.data.val_list)
    if carved and validation_split(cfg) != held_out:  # images the selection left out were never trained on
        # choices made on it (tau of tau-norm) mean nothing on images stage 1 trained on (every tau scored 1.0)
        raise LcregError(
            f"stage 2's validation split (data.val_fraction={cfg.data.val_fraction}, data.val_list="
            f"{cfg.data.val_list}) is not the one the stage-1 run held out (data.val_fraction={held_out[0]}, "
            f"data.val_list={held_out[1]}): its images were trained on; train stage 1 with the same split"
        )
    return cfg, stages, None, stage1_model


def validation_split(cfg) -> tuple:
    """What decides a run's validation images: fraction, list file and selection seed."""
    return cfg.data.val_fraction, cfg.data.val_list, cfg.data.selection_seed


def train(args: argparse.Namespace) -> int:
    """Single process, or one rank of ``torchrun --nproc_per_node N -m lcreg train ...``."""
    from lcreg.engine.train import Trainer
    from lcreg.runtime.distributed import broadcast_object, destroy, init_distributed

    cfg, stages, resume, stage1_model = train_inputs(args)
    info = init_distributed(cfg.device)
    run_dir: Optional[Path] = None
    created = False  # this process made the run folder (rank 0): removed if no epoch completes
    lock = contextlib.ExitStack()  # the run folder's lock, held (by rank 0) until training ends
    try:
        if args.resume:
            run_dir = Path(args.resume)
            if info.is_main:
                lock.enter_context(rf.locked(run_dir))
                resume = check_resume(run_dir, cfg)  # again, under the lock: another process may have gone on
            for stale in run_dir.glob("*.tmp"):  # pathlib's * matches hidden names too
                stale.unlink(missing_ok=True)  # a write that a killed process never finished
        else:  # rank 0 picks (and checks) the folder; every rank gets its name, or its error
            chosen: tuple = (None, None)
            if info.is_main:
                try:
                    chosen = (str(new_run_dir(args.out, cfg, lock)), None)
                except LcregError as e:
                    chosen = (None, str(e))
            path, error = broadcast_object(chosen, info)
            if error:
                raise LcregError(error)
            run_dir, created = Path(path), info.is_main
        trainer = Trainer(cfg, run_dir, show_progress=not args.no_progress, profile_steps=args.profile, dist_info=info)
        if info.is_main:
            if resume is None:
                trainer.write_run_files()
            else:
                trainer.record_resume(resume)
            where = f" ({info.world_size} processes)" if info.enabled else ""
            if not args.no_progress:
                print(f"run folder: {run_dir}{where}", file=sys.stderr)
        final = trainer.run(stages, resume=resume, stage1_model=stage1_model)
    except BaseException:
        # a run that ends before its first checkpoint leaves no folder behind (nothing to resume)
        if created and run_dir is not None and not (run_dir / rf.CHECKPOINT).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        lock.close()
        destroy(info)
    if info.is_main:
        summary = {
            stage: {k: v for k, v in m.get("test", {}).items() if k != "per_class"}
            for stage, m in rf.stage_metrics(final).items()
        }
        out = {"run_dir": str(run_dir), "final": summary}
        # stage 1's last content measures (the backbone's alone without a latent head)
        if final.get("stage1", {}).get("diagnostics"):
            out["diagnostics"] = final["stage1"]["diagnostics"]
        print(json.dumps(out, indent=2) if getattr(args, "json", False) else human_summary(out, cfg))
    return 0


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def human_summary(out: dict, cfg) -> str:
    """What a run ended with, for a person: test accuracy per stage (%, two decimals),
    calibration, what the latent categories carry, and where to look next."""
    lines = [f"run folder: {out['run_dir']}", "", "test split      top-1    Many  Medium     Few     ECE"]
    for stage, m in out["final"].items():
        cells = [_pct(m.get(k)) for k in ("top1", "many", "medium", "few", "ece")]
        lines.append(f"{'stage ' + stage[-1]:<12}" + "".join(f"{c:>8}" for c in cells))
    d = out.get("diagnostics") or {}
    if d.get("positional_share") is not None:
        lines += [
            "",
            f"latent categories: effective rank {d['effective_rank']:.1f} of {cfg.model.latent.num_latents}; "
            f"position alone explains {100 * d['positional_share']:.0f}% of their similarity to the features "
            "(100% would be a position code: docs, Method)",
        ]
    lines += ["", f"next: lcreg report {out['run_dir']}   (figures, calibration, latent categories)"]
    return "\n".join(lines)
