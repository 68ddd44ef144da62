"""Model files and checkpoints, written atomically (``lcreg.files.atomic_write``), loaded safely.

- Model files (``stageN_model.safetensors``, an HF folder's ``model.safetensors``): weights
  as safetensors, the config and data summary as JSON in the header. Nothing is pickled.
- Checkpoints (``checkpoint.pt``, kept only while a run trains: optimizer, scheduler and RNG
  states) and the ``.pt`` model files of earlier versions: ``torch.load(weights_only=True)``,
  so only tensors, plain containers and numbers are unpickled and a crafted file cannot run
  code. Files of lcreg 0.1 pickled the config dataclasses themselves; those classes (and
  nothing else) are allow-listed for them.
"""

from __future__ import annotations

import json
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


# --------------------------------------------------------------------------------------
# model files: safetensors, nothing pickled

META_KEY = "lcreg"  # the safetensors header entry holding the model's JSON description


def save_model(path: Path, weights: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """A model file: its weights as safetensors, with ``meta`` (the resolved config, the
    summary of the training data, the stage) as JSON in the file's header. Nothing in it is
    pickled, so loading it can never run code. Written atomically."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in weights.items()}
    blob = save(tensors, metadata={META_KEY: json.dumps(meta)})
    atomic_write(path, lambda f: f.write(blob))


def load_model_file(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``{"model": weights, **meta}`` of a model file: safetensors (lcreg's own, or a bare one
    with ``meta`` from an HF folder's config.json) or a legacy ``.pt`` (loaded weights-only)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return load_checkpoint(path, map_location)
    if not path.is_file():
        raise LcregError(f"model file {path} does not exist")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            weights = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(header[META_KEY]) if META_KEY in header else {}
    except Exception as e:  # truncated, not safetensors, or a header that is not ours
        raise LcregError(f"cannot read model file {path}: {type(e).__name__}") from None
    if not isinstance(meta, dict):
        raise LcregError(f"cannot read model file {path}: its lcreg header is not an object")
    if map_location != "cpu":
        weights = {k: v.to(map_location) for k, v in weights.items()}
    return {**meta, "model": weights}
