"""Atomic checkpoints: written to a temporary file and renamed, so a crash mid-write
never leaves a truncated file where the last good one was."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from lcreg.errors import LcregError


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise LcregError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # truncated or foreign file
        raise LcregError(f"cannot read checkpoint {path}: {type(e).__name__}") from None
