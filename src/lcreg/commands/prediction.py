"""``lcreg predict``: image files or folders in, top-k classes with probabilities out.

Preprocessing comes from the model's config (``preprocess_image``), so a CIFAR-size model
and a 224-px model both take any image. A file that cannot be read is reported by name and
skipped; the others are still predicted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from lcreg.commands.trained import TrainedModel
from lcreg.data.images import is_image_file, load_rgb
from lcreg.data.transforms import normalized_batch, preprocess_image
from lcreg.errors import LcregError
from lcreg.runtime.environment import autocast


@dataclass
class Prediction:
    path: str
    classes: list[str]  # top-k, most probable first
    indices: list[int]
    probabilities: list[float]


def gather_files(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given, folders searched recursively for image files (sorted)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file() and is_image_file(f)))
        elif p.is_file():
            files.append(p)
        else:
            raise LcregError(f"{p} does not exist")
    if not files:
        raise LcregError(f"no image files found in {', '.join(map(str, paths))}")
    return files


def _decoded(
    trained: TrainedModel, files: Sequence[Path], skipped: list[tuple[str, str]]
) -> Iterator[tuple[Path, np.ndarray]]:
    for f in files:
        try:
            yield f, preprocess_image(trained.cfg, load_rgb(f))
        except LcregError as e:
            skipped.append((str(f), str(e)))


@torch.no_grad()
def predict_files(
    trained: TrainedModel, files: Sequence[Path], device: torch.device, top_k: int = 5, batch_size: int = 256
) -> tuple[list[Prediction], list[tuple[str, str]]]:
    """Predictions for every readable file, in order, and (path, reason) of the skipped ones."""
    model, names = trained.model.eval(), trained.class_names
    k = min(top_k, len(names))
    skipped: list[tuple[str, str]] = []
    results: list[Prediction] = []
    batch: list[tuple[Path, np.ndarray]] = []

    def flush() -> None:
        x = normalized_batch(trained.cfg, np.stack([a for _, a in batch])).to(device)
        with autocast(device, trained.cfg.amp):
            logits = model(x).logits.float()
        probs, idx = torch.softmax(logits, dim=1).topk(k, dim=1)
        for (path, _), p, i in zip(batch, probs.cpu().tolist(), idx.cpu().tolist()):
            results.append(Prediction(str(path), [names[j] for j in i], i, p))
        batch.clear()

    for item in _decoded(trained, files, skipped):
        batch.append(item)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return results, skipped
