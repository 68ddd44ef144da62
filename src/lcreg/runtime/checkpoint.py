"""Checkpoints, written atomically (``lcreg.files.atomic_write``) and loaded safely.

Loading: ``torch.load(weights_only=True)``: only tensors, plain containers and numbers are
unpickled, so a crafted ``.pt`` cannot run code. Our files hold the config as a plain dict.
Files written by lcreg 0.1 pickled the config dataclasses themselves; those classes (and
nothing else) are allow-listed for them.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from lcreg.errors import LcregError
from lcreg.files import atomic_write

# the dataclasses that lcreg 0.1 pickled into its model files (loaded as data, never called)
_LEGACY_CONFIG_CLASSES = (
    "Config",
    "DataConfig",
    "ModelConfig",
    "LatentConfig",
    "LossConfig",
    "Stage1Config",
    "Stage2Config",
)


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    atomic_write(path, lambda f: torch.save(state, f))


def _legacy_classes() -> list[type]:
    from lcreg import config

    return [getattr(config, name) for name in _LEGACY_CONFIG_CLASSES]


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise LcregError(f"checkpoint {path} does not exist")
    try:
        # torch warns (two lines) about some refused files before it raises: our one line says it
        with torch.serialization.safe_globals(_legacy_classes()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # weights_only refused a global: code, or a foreign object
        raise LcregError(
            f"refusing to load {path}: it holds objects other than tensors and plain data (it could "
            "run code); lcreg loads only its own model files"
        ) from None
    except Exception as e:  # truncated or foreign file
        raise LcregError(f"cannot read checkpoint {path}: {type(e).__name__}") from None
    if not isinstance(state, dict):
        raise LcregError(f"{path} is not an lcreg model file (it holds a {type(state).__name__}, not a dict)")
    return state
