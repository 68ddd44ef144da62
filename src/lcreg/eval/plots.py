"""Figures (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_class_distribution(counts: Sequence[int], class_names: Sequence[str], splits: dict, path: Path,
                            title: str = "") -> None:
    """Bar chart of training images per class (head to tail), coloured by Many/Medium/Few."""
    plt = _pyplot()
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
    for name, col in colors.items():
        ax.bar([], [], color=col, label=f"{name} ({len(splits.get(name, []))})")
    ax.legend(fontsize=8)
    ax.set_title(title or f"{sum(counts)} training images, {len(counts)} classes")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
