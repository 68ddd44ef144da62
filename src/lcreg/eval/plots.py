"""Figures of a run (matplotlib, Agg backend: no display needed): class distribution,
reliability diagram, per-class accuracy against training frequency, confusion matrix,
training curves."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

from lcreg.errors import LcregError, short
from lcreg.files import atomic_write


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_class_distribution(
    counts: Sequence[int], class_names: Sequence[str], splits: dict, path: Path, title: str = ""
) -> None:
    """Bar chart of training images per class (head to tail), coloured by Many/Medium/Few."""
    plt = pyplot()
    colors = {"many": "#1f77b4", "medium": "#ff7f0e", "few": "#d62728"}
    color_of = {c: colors[name] for name, classes in splits.items() for c in classes}
    order = sorted(range(len(counts)), key=lambda c: -counts[c])
    fig, ax = plt.subplots(figsize=(max(6.0, min(0.35 * len(counts), 16.0)), 3.6))
    ax.bar(range(len(order)), [counts[c] for c in order], color=[color_of.get(c, "gray") for c in order])
    if len(counts) <= 40:
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels([class_names[c] for c in order], rotation=60, ha="right", fontsize=8)
    else:
        ax.set_xlabel("classes sorted by training count")
    ax.set_ylabel("training images")
    if max(counts) / max(min(counts), 1) > 20:
        ax.set_yscale("log")
    from matplotlib.patches import Patch

    # explicit patches: legend entries of empty bar containers all take the default colour
    handles = [Patch(facecolor=col, label=f"{name} ({len(splits.get(name, []))})") for name, col in colors.items()]
    ax.legend(handles=handles, fontsize=8)
    ax.set_title(title or f"{sum(counts)} training images, {len(counts)} classes")
    save_figure(fig, path)


def figure_format(path: Path) -> str:
    """The image format of a figure's file name (png without a suffix); one line for a suffix
    matplotlib cannot write, before any work is done."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    supported = pyplot().figure().canvas.get_supported_filetypes()
    pyplot().close("all")
    if fmt not in supported:
        raise LcregError(
            f"cannot write a figure as .{short(fmt, 12)} ({short(str(path))}): use one of {', '.join(sorted(supported))}"
        )
    return fmt


def save_figure(fig, path: Path) -> None:
    """Rendered in memory, then written atomically: matplotlib itself ignores a failed write
    (a full disk leaves a truncated PNG and no error)."""
    try:
        fmt = figure_format(path)
    except LcregError:
        pyplot().close(fig)
        raise
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=120, format=fmt)
    pyplot().close(fig)
    atomic_write(Path(path), lambda f: f.write(buffer.getvalue()))


def plot_reliability(bins: dict, ece: float, path: Path, title: str = "") -> None:
    """Reliability diagram: accuracy per confidence bin against the diagonal, with the share
    of samples per bin underneath."""
    plt = pyplot()
    edges, count = bins["edges"], bins["count"]
    centers, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    nonempty = count > 0
    fig, (ax, axn) = plt.subplots(2, 1, figsize=(4.6, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.bar(
        centers[nonempty], bins["accuracy"][nonempty], width=width, edgecolor="black", color="#1f77b4", label="accuracy"
    )
    ax.bar(
        centers[nonempty],
        (bins["confidence"] - bins["accuracy"])[nonempty],
        bottom=bins["accuracy"][nonempty],
        width=width,
        color="#d62728",
        alpha=0.35,
        label="gap to confidence",
    )
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or f"ECE {100 * ece:.2f}% ({len(centers)} bins)")
    axn.bar(centers, count / max(count.sum(), 1), width=width, color="gray")
    axn.set_xlabel("confidence (max softmax probability)")
    axn.set_ylabel("share")
    axn.set_xlim(0, 1)
    save_figure(fig, path)


def plot_per_class_accuracy(
    per_class: Sequence, counts: Sequence[int], class_names: Sequence[str], splits: dict, path: Path, title: str = ""
) -> None:
    """Test accuracy per class, classes sorted by training count (bars), with the training
    count on a log axis (line): where the tail fails."""
    plt = pyplot()
    colors = {"many": "#1f77b4", "medium": "#ff7f0e", "few": "#d62728"}
    color_of = {c: colors[name] for name, classes in splits.items() for c in classes}
    order = sorted(range(len(counts)), key=lambda c: -counts[c])
    acc = [per_class[c] if per_class[c] is not None else 0.0 for c in order]
    fig, ax = plt.subplots(figsize=(max(6.0, min(0.35 * len(counts), 16.0)), 3.8))
    ax.bar(range(len(order)), acc, color=[color_of.get(c, "gray") for c in order])
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy")
    if len(order) <= 40:
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels([class_names[c] for c in order], rotation=60, ha="right", fontsize=8)
    else:
        ax.set_xlabel("classes sorted by training count")
    ax2 = ax.twinx()
    ax2.plot(range(len(order)), [max(counts[c], 1) for c in order], "k.-", lw=1, ms=3)
    ax2.set_yscale("log")
    ax2.set_ylabel("training images (log)")
    for name, col in colors.items():
        ax.bar([], [], color=col, label=f"{name} ({len(splits.get(name, []))})")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title or "per-class accuracy, head to tail")
    save_figure(fig, path)


def plot_matrix(
    values,
    labels: Sequence[str],
    path: Path,
    title: str,
    cmap: str = "Blues",
    vmin=None,
    vmax=None,
    annotate_up_to: int = 20,
    colorbar_label: str = "",
    axis_labels: tuple[str, str] = ("", ""),
) -> None:
    """A labelled class-by-class heat map, values printed when there are few rows."""
    import numpy as np

    plt = pyplot()
    v = np.asarray(values, dtype=float)
    n = len(labels)
    size = min(max(3.5, 0.5 * n + 1.5), 14)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    im = ax.imshow(v, cmap=cmap, vmin=vmin, vmax=vmax)
    if n <= 40:
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
        ax.set_yticklabels(labels, fontsize=8)
    if n <= annotate_up_to:
        mid = (np.nanmin(v) + np.nanmax(v)) / 2 if vmin is None else (vmin + vmax) / 2
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    f"{v[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if (v[i, j] > mid) == (cmap == "Blues") else "black",
                )
    ax.set_ylabel(axis_labels[0])
    ax.set_xlabel(axis_labels[1])
    fig.colorbar(im, ax=ax, fraction=0.046, label=colorbar_label)
    ax.set_title(title)
    save_figure(fig, path)


def plot_confusion(matrix, labels: Sequence[str], path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix (rows: true, columns: predicted)."""
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    rows = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    plot_matrix(
        rows,
        labels,
        path,
        title or "confusion matrix (rows sum to 1)",
        "Blues",
        0,
        1,
        axis_labels=("true", "predicted"),
    )


def plot_training_curves(records: Sequence[dict], path: Path) -> None:
    """Loss terms per epoch (left) and test / val top-1 at the evaluated epochs (right),
    stage 2 drawn after stage 1 on one epoch axis."""
    plt = pyplot()
    fig, (axl, axa) = plt.subplots(1, 2, figsize=(10, 3.6))
    offset = {1: 0}
    offset[2] = max((r["epoch"] for r in records if r.get("stage") == 1), default=0)
    terms = list(dict.fromkeys(k for r in records for k in r.get("loss", {})))
    for stage in (1, 2):
        recs = [r for r in records if r.get("stage") == stage]
        if not recs:
            continue
        x = [offset[stage] + r["epoch"] for r in recs]
        for term in terms:
            ys = [r["loss"].get(term) for r in recs]
            if any(y is not None for y in ys):
                axl.plot(x, [float("nan") if y is None else y for y in ys], lw=1, label=f"{term} (stage {stage})")
        for split, style in (("test", "-o"), ("val", "--s")):
            pts = [(offset[stage] + r["epoch"], r[split]["top1"]) for r in recs if split in r]
            if pts:
                axa.plot(*zip(*pts), style, ms=3, lw=1, label=f"{split} top-1 (stage {stage})")
    axl.set_yscale("log")
    axl.set_xlabel("epoch")
    axl.set_ylabel("loss (log)")
    axl.legend(fontsize=7)
    axa.set_xlabel("epoch")
    axa.set_ylabel("top-1")
    axa.set_ylim(0, 1)
    axa.legend(fontsize=7)
    if offset[2]:
        for ax in (axl, axa):
            ax.axvline(offset[2] + 0.5, color="gray", lw=0.8, ls=":")
    save_figure(fig, path)
