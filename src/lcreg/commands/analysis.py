"""``lcreg analyze``: what the latent categories of a trained LCReg model learned.

Writes diagnostics.json (do the latent categories carry image content? see
eval/latent_diagnostics.py), image_histograms.png (Fig. 4-5: images of Many / Medium / Few
classes beside their latent histograms), shared_categories.png (Fig. 5: the latent
categories a head and a tail class both lean on, a head and a tail image of each with its
similarity map), latent_montage.png (per latent category, the
images that weigh most on it with its similarity map overlaid), kl_table.csv +
kl_heatmap.png (Table 8), class_histograms.csv, sharing.json and analysis.md. A model
without a latent head gets diagnostics.json only (the backbone's positional share).

The diagnostics take class means from the training split (unaugmented) and score the
held-out split: the run's validation split when it has one, else the test split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from lcreg.commands.trained import TrainedModel, evaluation_data
from lcreg.data import LongTailData
from lcreg.data.loaders import eval_loader
from lcreg.data.transforms import normalized_batch, split_images
from lcreg.errors import LcregError
from lcreg.eval.analysis import (
    class_histograms,
    kl_table,
    sample_per_split,
    shared_pairs,
    sharing_summary,
    top_images_per_latent,
)
from lcreg.eval.latent_diagnostics import class_kl_summary, nearest_class_mean_accuracy, shared_categories
from lcreg.eval.latent_plots import (
    plot_image_histograms,
    plot_kl_heatmap,
    plot_latent_montage,
    plot_shared_categories,
)
from lcreg.eval.outputs import collect_latent_stats, collect_outputs, similarity_maps
from lcreg.files import atomic_write_csv, atomic_write_text, check_output_dir, portable_path

ANALYSIS_FILES = (
    "diagnostics.json",
    "image_histograms.png",
    "shared_categories.png",
    "latent_montage.png",
    "kl_table.csv",
    "kl_heatmap.png",
    "class_histograms.csv",
    "sharing.json",
    "analysis.md",
)


def _write_matrix(path: Path, matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], corner: str) -> None:
    table = [[corner, *cols]] + [[name, *[f"{v:.6g}" for v in row]] for name, row in zip(rows, matrix)]
    atomic_write_csv(path, table)


def analysis_markdown(sharing: dict, usage: np.ndarray, names: Sequence[str], kl: np.ndarray, order: list[int]) -> str:
    def f(x):
        return "n/a" if x is None else f"{x:.3f}"

    active = int((usage > 1.0 / len(usage) / 4).sum())
    lines = [
        "# Latent-category analysis",
        "",
        f"{len(usage)} latent categories; {active} carry more than a quarter of the uniform share "
        f"(1/{len(usage)}) of the weight over the split.",
        "",
        f"Tail classes (Medium + Few): {sharing['tail_classes']}; head classes (Many): {sharing['head_classes']}.",
        f"Share of a tail class's top-{sharing['top_k']} latent categories that are also among some head class's "
        f"top-{sharing['top_k']}: **{f(sharing['mean_shared_with_head'])}**.",
        f"Mean KL from a tail class to its nearest head class: {f(sharing['mean_kl_tail_to_nearest_head'])}; "
        f"mean KL between two head classes: {f(sharing['mean_kl_between_head_classes'])}.",
        "",
        "| tail class | split | nearest head class | KL | top latents | shared with head |",
        "|---|---|---|---|---|---|",
    ]
    for t in sharing["tail"]:
        lines.append(
            f"| {t['class']} | {t['split']} | {t['nearest_head_class']} | {f(t['kl_to_nearest_head'])} "
            f"| {', '.join(map(str, t['top_latents']))} | {t['shared_with_head']:.2f} |"
        )
    if len(order) <= 12:
        lines += [
            "",
            "KL(row || column) of the classes' mean latent histograms (Table 8 of the paper):",
            "",
            "| | " + " | ".join(names[c] for c in order) + " |",
            "|---" * (len(order) + 1) + "|",
        ]
        for i in order:
            lines.append(f"| {names[i]} | " + " | ".join(f"{kl[i, j]:.2f}" for j in order) + " |")
    return "\n".join(lines) + "\n"


def latent_diagnostics(trained: TrainedModel, data: LongTailData, device: torch.device, batch_size: int = 512) -> dict:
    """The measures of eval/latent_diagnostics.py on a trained model: training split for the
    class means, the held-out split (val, else test) for everything else."""
    cfg, model = trained.cfg, trained.model
    held_name, held = ("val", data.val) if data.val is not None else ("test", data.test)
    held_stats, held_y = collect_latent_stats(model, eval_loader(cfg, held, device, batch_size), device, cfg.amp)
    out: dict = {
        "checkpoint": portable_path(trained.path),
        "held_out_split": held_name,
        "held_out_images": int(len(held_y)),
        "latent_head": model.has_latent_head,
        "feature_positional_share": held_stats.feature_var.share(),
    }
    if not model.has_latent_head:
        return out
    train_stats, train_y = collect_latent_stats(
        model, eval_loader(cfg, data.train, device, batch_size), device, cfg.amp
    )
    num_classes = len(trained.class_names)
    keys = model.head.compared_latents().detach().float().cpu()
    held_hist = held_stats.histogram_array()
    class_hist = class_histograms(held_hist, held_y, num_classes)
    out.update(held_stats.summary(keys))
    out["training_images"] = int(len(train_y))
    out["histogram_class_accuracy"] = nearest_class_mean_accuracy(
        train_stats.histogram_array(), train_y, held_hist, held_y, num_classes
    )
    out["histogram_class_accuracy_chance"] = 1.0 / num_classes
    out["class_kl"] = class_kl_summary(class_hist)
    out["shared_categories"] = shared_categories(class_hist, data.splits)
    out["class_names"] = trained.class_names
    return out


def analyze_checkpoint(
    trained: TrainedModel,
    out_dir: Path,
    device: torch.device,
    data_dir: Optional[str] = None,
    per_split: int = 3,
    num_latents_shown: int = 8,
    images_per_latent: int = 6,
    latents: Optional[Sequence[int]] = None,
    images: Optional[Sequence[int]] = None,
    seed: int = 0,
    batch_size: int = 512,
) -> dict:
    """``images``: test-split indices for the histogram figure (default: ``per_split``
    sampled images of each of Many / Medium / Few); ``latents``: the categories of the
    montage (default: the ``num_latents_shown`` most used)."""
    data = evaluation_data(trained, data_dir)
    m = trained.model.head.num_latents if trained.model.has_latent_head else 0
    bad = [j for j in latents or [] if not 0 <= j < m]
    if bad:
        raise LcregError(f"latent categories {bad} out of range 0..{m - 1}")
    bad = [i for i in images or [] if not 0 <= i < len(data.test)]
    if bad:
        raise LcregError(f"image indices {bad} out of range 0..{len(data.test) - 1} (test split)")
    check_output_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    diagnostics = latent_diagnostics(trained, data, device, batch_size)
    atomic_write_text(out_dir / "diagnostics.json", json.dumps(diagnostics, indent=2))
    if not trained.model.has_latent_head:
        return {"checkpoint": portable_path(trained.path), "num_latents": 0, "diagnostics": diagnostics}
    split = data.test
    cfg, names, m = trained.cfg, trained.class_names, trained.model.head.num_latents
    outputs = collect_outputs(
        trained.model, eval_loader(cfg, split, device, batch_size), device, cfg.amp, histograms=True
    )
    hist, targets = outputs.histograms, outputs.targets.numpy()
    preds = outputs.logits.argmax(dim=1).numpy()

    # Fig. 4-5: chosen or sampled images of each split beside their histograms
    split_of = {c: s for s, cs in data.splits.items() for c in cs}
    if images:
        picked: dict[str, list[int]] = {"chosen": list(images)}
    else:
        picked = sample_per_split(targets, data.splits, per_split, seed)
    idx = [i for s in ("many", "medium", "few", "chosen") for i in picked.get(s, [])]
    captions = [f"{names[targets[i]]}\n({split_of.get(int(targets[i]), '?')})" for i in idx]
    plot_image_histograms(split_images(cfg, split, idx), hist[idx], captions, out_dir / "image_histograms.png")

    # Fig. 5: categories shared by head and tail classes, a head and a tail image of each
    chist = class_histograms(hist, targets, len(names))  # Fig. 5 and Table 8
    pairs = shared_pairs(hist, targets, chist, data.splits)
    both = [i for p in pairs for i in (p["head_image"], p["tail_image"])]
    cats = [p["latent"] for p in pairs for _ in (0, 1)]
    pics = split_images(cfg, split, both) if both else np.zeros((0, 1, 1, 3), np.uint8)
    maps = (
        similarity_maps(trained.model, normalized_batch(cfg, pics), device)[np.arange(len(both)), cats]
        if both
        else pics[..., 0]
    )
    shared_captions = [f"{names[targets[i]]} ({split_of.get(int(targets[i]), '?')})" for i in both]
    plot_shared_categories(
        pics, maps, hist[both], [p["latent"] for p in pairs], shared_captions, out_dir / "shared_categories.png"
    )

    # montage: the most used (or the chosen) latent categories, their top images, S overlaid
    usage = hist.mean(axis=0)
    if latents:
        shown = list(latents)
    else:
        shown = np.argsort(-usage)[: min(num_latents_shown, m)].tolist()
    top = top_images_per_latent(hist, images_per_latent)[shown]  # (L, k)
    flat = top.ravel().tolist()
    pics = split_images(cfg, split, flat)
    maps = similarity_maps(trained.model, normalized_batch(cfg, pics), device)
    sel = maps[np.arange(len(flat)), np.repeat(shown, top.shape[1])]
    k = top.shape[1]
    montage_captions = [[f"{names[targets[i]]} {hist[i, j]:.2f}" for i in row] for row, j in zip(top, shown)]
    plot_latent_montage(
        pics.reshape(len(shown), k, *pics.shape[1:]),
        sel.reshape(len(shown), k, *sel.shape[1:]),
        shown,
        montage_captions,
        out_dir / "latent_montage.png",
    )

    # Table 8: KL between class histograms, classes head to tail
    kl = kl_table(np.nan_to_num(chist))
    counts = trained.summary["counts"]
    order = sorted(range(len(names)), key=lambda c: -counts[c])
    _write_matrix(
        out_dir / "kl_table.csv",
        kl[np.ix_(order, order)],
        [names[c] for c in order],
        [names[c] for c in order],
        "KL(row || column)",
    )
    _write_matrix(out_dir / "class_histograms.csv", chist, names, [f"latent_{j}" for j in range(m)], "class")
    plot_kl_heatmap(kl[np.ix_(order, order)], [names[c] for c in order], out_dir / "kl_heatmap.png")
    sharing = sharing_summary(chist, data.splits, names)
    result = {
        "checkpoint": portable_path(trained.path),
        "num_latents": m,
        "num_images": int(len(targets)),
        "accuracy_on_split": float((preds == targets).mean()),
        "latent_usage": usage.tolist(),
        "montage_latents": shown,
        "histogram_images": picked,
        "shared_pairs": pairs,
        "sharing": sharing,
    }
    atomic_write_text(out_dir / "sharing.json", json.dumps(result, indent=2))
    result["diagnostics"] = diagnostics
    atomic_write_text(out_dir / "analysis.md", analysis_markdown(sharing, usage, names, kl, order))
    return result
