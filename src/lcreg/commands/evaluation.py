"""``lcreg eval``: a trained model on its test split (or the same kind of data elsewhere):
metrics.json, summary.md and the figures (reliability diagram, per-class accuracy against
training frequency, confusion matrix)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from lcreg.commands.trained import TrainedModel, evaluation_data
from lcreg.data.loaders import eval_loader
from lcreg.errors import LcregError
from lcreg.eval.metrics import calibration_bins, classification_metrics, confusion_matrix, group_confusion
from lcreg.eval.outputs import collect_outputs
from lcreg.eval.plots import plot_confusion, plot_per_class_accuracy, plot_reliability
from lcreg.files import atomic_write_csv, atomic_write_text, check_output_dir, portable_path

EVAL_FILES = (
    "metrics.json",
    "summary.md",
    "reliability.png",
    "per_class_accuracy.png",
    "confusion.png",
    "confusion.csv",
)
SPLIT_NAMES = ("many", "medium", "few")


def split_rule(thresholds) -> str:
    return f"many > {thresholds[0]} >= medium >= {thresholds[1]} > few training images"


def pct(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def summary_markdown(result: dict) -> str:
    m = result["metrics"]
    n = result["split_classes"]
    lines = [
        f"# Evaluation of `{result['checkpoint']}`",
        "",
        f"Split: **{result['split']}** ({m['num_samples']} images) of {result['source']}; "
        f"model stage {result['stage']}.",
        f"Many / Medium / Few by training counts: {result['split_rule']} "
        f"({n['many']} / {n['medium']} / {n['few']} classes).",
        "",
        "| top-1 | top-5 | Many | Medium | Few | ECE | MCE | NLL |",
        "|---|---|---|---|---|---|---|---|",
        f"| {pct(m['top1'])} | {pct(m['top5'])} | {pct(m['many'])} | {pct(m['medium'])} | {pct(m['few'])} "
        f"| {pct(m['ece'])} | {pct(m['mce'])} | {m['nll']:.4f} |",
        "",
        "Accuracies and calibration errors in %, ECE / MCE with 15 equal-width bins.",
        "",
        "| class | training images | split | accuracy |",
        "|---|---|---|---|",
    ]
    split_of = {c: s for s, cs in result["splits"].items() for c in cs}
    order = sorted(range(len(result["counts"])), key=lambda c: -result["counts"][c])
    for c in order:
        lines.append(
            f"| {result['class_names'][c]} | {result['counts'][c]} | {split_of.get(c, '')} | {pct(m['per_class'][c])} |"
        )
    return "\n".join(lines) + "\n"


def evaluate_checkpoint(
    trained: TrainedModel,
    out_dir: Path,
    device: torch.device,
    data_dir: Optional[str] = None,
    split: str = "test",
    batch_size: int = 512,
    amp: Optional[str] = None,
) -> dict:
    """Evaluate, write every file of EVAL_FILES into ``out_dir``, return the result dict.
    ``amp``: the precision of the forward pass (None: the one the model trained with)."""
    data = evaluation_data(trained, data_dir)
    images = data.val if split == "val" else data.test
    if images is None:
        raise LcregError("this model's config has no validation split (data.val_fraction = 0); use --split test")
    check_output_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    amp = trained.cfg.amp if amp is None else amp
    outputs = collect_outputs(trained.model, eval_loader(trained.cfg, images, device, batch_size), device, amp)
    metrics = classification_metrics(outputs.logits, outputs.targets, data.splits)
    counts = list(trained.summary["counts"])
    result = {
        "checkpoint": portable_path(trained.path),
        "stage": trained.stage,
        "split": split,
        "amp": amp,
        "source": data.source,
        "split_rule": split_rule(data.thresholds),
        "thresholds": list(data.thresholds),
        "split_classes": {k: len(data.splits.get(k, [])) for k in SPLIT_NAMES},
        "class_names": trained.class_names,
        "counts": counts,
        "splits": data.splits,
        "metrics": metrics,
    }
    atomic_write_text(out_dir / "metrics.json", json.dumps(result, indent=2))
    atomic_write_text(out_dir / "summary.md", summary_markdown(result))

    probs = torch.softmax(outputs.logits, dim=1)
    conf, pred = probs.max(dim=1)
    targets = outputs.targets.numpy()
    correct = pred.numpy() == targets
    plot_reliability(calibration_bins(conf.numpy(), correct), metrics["ece"], out_dir / "reliability.png")
    plot_per_class_accuracy(
        metrics["per_class"], counts, trained.class_names, data.splits, out_dir / "per_class_accuracy.png"
    )
    matrix = confusion_matrix(pred.numpy(), targets, len(counts))
    rows = [["true \\ predicted", *trained.class_names]]
    rows += [[name, *row.tolist()] for name, row in zip(trained.class_names, matrix)]
    atomic_write_csv(out_dir / "confusion.csv", rows)
    if len(counts) <= 40:
        order = sorted(range(len(counts)), key=lambda c: -counts[c])
        plot_confusion(
            matrix[np.ix_(order, order)],
            [trained.class_names[c] for c in order],
            out_dir / "confusion.png",
            "confusion matrix, classes head to tail (rows sum to 1)",
        )
    else:
        grouped, names = group_confusion(matrix, data.splits)
        plot_confusion(
            grouped, names, out_dir / "confusion.png", "confusion between Many / Medium / Few (rows sum to 1)"
        )
    return result
