"""Figures of the latent-category analysis: per-image histograms beside their images
(paper Fig. 4-5), per-category montages with the similarity map overlaid, and the
class-by-class KL heat map (Table 8)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from lcreg.eval.plots import plot_matrix, pyplot, save_figure


def _show(ax, image: np.ndarray) -> None:
    ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_image_histograms(
    images: np.ndarray, histograms: np.ndarray, captions: Sequence[str], path: Path, highlight: int = 3
) -> None:
    """One row per image: the image, then its latent histogram; the ``highlight`` heaviest
    categories are coloured and numbered."""
    plt = pyplot()
    n, m = histograms.shape
    fig, axes = plt.subplots(n, 2, figsize=(9, 1.6 * n + 0.4), gridspec_kw={"width_ratios": [1, 5]}, squeeze=False)
    palette = ["#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    for row in range(n):
        _show(axes[row, 0], images[row])
        axes[row, 0].set_ylabel(captions[row], fontsize=8, rotation=0, ha="right", va="center")
        top = np.argsort(-histograms[row])[:highlight]
        colors = ["#9aa5b1"] * m
        for rank, c in enumerate(top):
            colors[c] = palette[rank % len(palette)]
        ax = axes[row, 1]
        ax.bar(range(m), histograms[row], color=colors, width=0.9)
        for c in top:
            ax.text(c, histograms[row, c], str(c), ha="center", va="bottom", fontsize=7)
        ax.set_xlim(-0.5, m - 0.5)
        ax.set_ylabel("weight", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1, 1].set_xlabel("latent category")
    fig.suptitle("latent-category weights (eq. 2, averaged over positions)", fontsize=10)
    save_figure(fig, path)


def plot_shared_categories(
    images: np.ndarray,
    maps: np.ndarray,
    histograms: np.ndarray,
    latents: Sequence[int],
    captions: Sequence[str],
    path: Path,
) -> None:
    """Fig. 5: one row per shared latent category j: a head image and a tail image, each with
    the similarity map of j overlaid, beside both images' latent histograms (j marked).
    ``images``: (2L, H, W, 3), head and tail alternating; ``maps``: (2L, h, w), the map of
    each row's j; ``histograms``: (2L, M)."""
    plt = pyplot()
    rows, m = len(latents), histograms.shape[1]
    if not rows:  # no category used above uniform by both, or a side without images
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no latent category used above uniform by both a head and a tail class", ha="center")
        save_figure(fig, path)
        return
    fig, axes = plt.subplots(
        rows, 3, figsize=(10, 1.9 * rows + 0.5), gridspec_kw={"width_ratios": [1, 1, 4]}, squeeze=False
    )
    for r, j in enumerate(latents):
        for side in (0, 1):
            i = 2 * r + side
            axes[r, side].imshow(overlay(images[i], maps[i]))
            axes[r, side].set_xticks([])
            axes[r, side].set_yticks([])
            axes[r, side].set_title(captions[i], fontsize=8)
        ax = axes[r, 2]
        x = np.arange(m)
        ax.bar(x - 0.2, histograms[2 * r], width=0.4, color="#1f77b4", label="head image")
        ax.bar(x + 0.2, histograms[2 * r + 1], width=0.4, color="#ff7f0e", label="tail image")
        ax.axvspan(j - 0.5, j + 0.5, color="#d62728", alpha=0.15)
        ax.text(j, ax.get_ylim()[1] * 0.95, f"category {j}", ha="center", va="top", fontsize=8, color="#d62728")
        ax.set_xlim(-0.5, m - 0.5)
        ax.set_ylabel("weight", fontsize=8)
        ax.tick_params(labelsize=7)
        if r == 0:
            ax.legend(fontsize=7, loc="upper left")
    axes[-1, 2].set_xlabel("latent category")
    fig.suptitle(
        "latent categories shared by head and tail classes (similarity map of the marked category)", fontsize=10
    )
    save_figure(fig, path)


def overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """Blend a (h, w) map in [0, 1] (upsampled to the image) over an RGB uint8 image."""
    import matplotlib

    h, w = image.shape[:2]
    ys = (np.arange(h) * heat.shape[0] // h)[:, None]
    xs = (np.arange(w) * heat.shape[1] // w)[None, :]
    lo, hi = heat.min(), heat.max()
    norm = (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)
    colored = matplotlib.colormaps["jet"](norm[ys, xs])[..., :3]
    return (0.55 * image / 255.0 + 0.45 * colored).clip(0, 1)


def plot_latent_montage(
    images: np.ndarray, maps: np.ndarray, latents: Sequence[int], captions: Sequence[Sequence[str]], path: Path
) -> None:
    """One row per latent category: the images it weighs most on, each with that category's
    similarity map (eq. 1) overlaid. ``images``: (L, k, H, W, 3); ``maps``: (L, k, h, w)."""
    plt = pyplot()
    rows, k = maps.shape[:2]
    fig, axes = plt.subplots(rows, k, figsize=(1.25 * k + 0.8, 1.35 * rows + 0.4), squeeze=False)
    for r in range(rows):
        for j in range(k):
            ax = axes[r, j]
            _show(ax, overlay(images[r, j], maps[r, j]))
            ax.set_title(captions[r][j], fontsize=6)
        axes[r, 0].set_ylabel(f"latent {latents[r]}", fontsize=8)
    fig.suptitle("images weighing most on each latent category, similarity map overlaid", fontsize=10)
    save_figure(fig, path)


def plot_kl_heatmap(kl: np.ndarray, labels: Sequence[str], path: Path) -> None:
    """KL(row || column) of the classes' mean latent histograms, classes head to tail."""
    plot_matrix(
        kl,
        labels,
        path,
        "KL divergence of class latent histograms (classes head to tail)",
        "viridis",
        annotate_up_to=12,
        colorbar_label="KL(row || column)",
    )
