"""A trained model back from where it is kept, and the data to evaluate it on.

Every model file written by ``lcreg train`` (``stageN_model.safetensors``; ``.pt`` before
lcreg 0.2; the resume ``checkpoint.pt``) carries the resolved config and a summary of the
training data (class names, training counts, Many / Medium / Few), so eval, analyze,
predict, report and export need nothing but the file. They accept:

- a run folder (its most trained model) or a model file;
- a Hugging Face-style folder (``config.json`` + ``model.safetensors``, what
  ``lcreg export --format hf`` writes);
- ``hf-hub:ORG/NAME``: such a folder on the Hugging Face Hub, fetched (or read from the
  local cache, offline too) by ``huggingface_hub``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import torch

from lcreg import run_folder as rf
from lcreg.config import Config, from_dict
from lcreg.data import LongTailData, build_dataset
from lcreg.errors import LcregError
from lcreg.methods import create_model
from lcreg.models import LongTailNet
from lcreg.runtime.checkpoint import load_model_file

MODEL_FILES = rf.MODEL_FILES
HF_CONFIG, HF_WEIGHTS = "config.json", "model.safetensors"
HF_PREFIX = "hf-hub:"


@dataclass
class TrainedModel:
    model: LongTailNet
    cfg: Config
    summary: dict  # class_names, counts, splits, thresholds, image_shape
    stage: int
    path: Path

    @property
    def run_dir(self) -> Optional[Path]:
        return self.path.parent if (self.path.parent / rf.CONFIG).is_file() else None

    @property
    def class_names(self) -> list[str]:
        return list(self.summary["class_names"])

    def preprocess(self, images) -> torch.Tensor:
        """A PIL image, or a list of them, -> the normalised batch this model takes at test
        time (resized or centre-cropped as its evaluation was), on the model's device."""
        import numpy as np

        from lcreg.data.transforms import normalized_batch, preprocess_image

        images = images if isinstance(images, (list, tuple)) else [images]
        arrays = np.stack([preprocess_image(self.cfg, im.convert("RGB")) for im in images])
        return normalized_batch(self.cfg, arrays).to(next(self.model.parameters()).device)


def from_hub(name: str) -> Path:
    """``hf-hub:ORG/NAME[@REVISION]`` -> the local folder of that Hub repository (downloaded
    once, then read from huggingface_hub's cache; with ``HF_HUB_OFFLINE=1`` from the cache only)."""
    repo, _, revision = name[len(HF_PREFIX) :].partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise LcregError(f"'{name}' is not hf-hub:ORG/NAME")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise LcregError("hf-hub: models need huggingface_hub: pip install huggingface_hub") from None
    try:
        folder = snapshot_download(
            repo_id=repo, revision=revision or None, allow_patterns=[HF_CONFIG, HF_WEIGHTS, "README.md"]
        )
    except Exception as e:  # offline without a cached copy, no such repository, no access
        raise LcregError(
            f"cannot fetch {name} from the Hugging Face Hub ({type(e).__name__}); offline, it "
            "must be in the local cache (HF_HUB_CACHE)"
        ) from None
    return Path(folder)


def resolve_checkpoint(path: str | Path) -> Path:
    """The model file a name means: a run folder's most trained model (stage 2, else stage 1,
    else the last checkpoint), an HF folder's ``model.safetensors``, or the file itself."""
    if str(path).startswith(HF_PREFIX):
        path = from_hub(str(path))
    path = Path(path).expanduser()
    if path.is_dir():
        if (path / HF_CONFIG).is_file() and (path / HF_WEIGHTS).is_file():
            return path / HF_WEIGHTS
        for name in MODEL_FILES:
            if (path / name).is_file():
                return path / name
        raise LcregError(
            f"{path} holds no model file ({', '.join(MODEL_FILES)}, or {HF_CONFIG} + {HF_WEIGHTS}); "
            "is it a run folder? (run folders in git keep no models: see the model zoo)"
        )
    if not path.exists():
        raise LcregError(f"{path} does not exist (give a run folder, a model file, an HF folder or hf-hub:ORG/NAME)")
    return path


def read_model(path: Path) -> dict:
    """The model file's weights and description; an HF folder's ``config.json`` describes its
    ``model.safetensors``."""
    state = load_model_file(path)
    hf_config = path.parent / HF_CONFIG
    if path.name == HF_WEIGHTS and hf_config.is_file():
        described = rf.read_json(hf_config)
        lcreg = described.get("lcreg")
        if not isinstance(lcreg, dict):
            raise LcregError(f"{hf_config} is not an lcreg model description (no 'lcreg' entry)")
        state = {**lcreg, "model": state["model"]}
    return state


def stored_fields(obj):
    """The fields a pickled config dataclass of lcreg 0.1 holds, as plain dicts: read from
    the object itself, not today's class (``model.latent.enabled`` is no field any more but
    names the method those files were trained with)."""
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return {k: stored_fields(v) for k, v in vars(obj).items()}
    return obj


def load_trained_model(path: str | Path, device: torch.device) -> TrainedModel:
    ckpt_path = resolve_checkpoint(path)
    state = read_model(ckpt_path)
    missing = sorted({"model", "config", "summary"} - set(state))
    summary = state.get("summary")
    if not missing and isinstance(summary, dict):
        missing = sorted({"class_names", "counts", "splits", "thresholds"} - set(summary))
    if missing or not isinstance(state["model"], dict):
        raise LcregError(f"{ckpt_path} is not a complete lcreg model file (missing: {', '.join(missing) or 'weights'})")
    # a plain dict (a config dataclass in files of lcreg 0.1); either gains today's defaults
    saved = state["config"]
    cfg = from_dict(saved if isinstance(saved, dict) else stored_fields(saved))
    model = create_model(cfg, len(summary["class_names"]))
    if any(k.startswith("logit_scale.") for k in state["model"]):
        model.add_logit_scale()
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as e:
        first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise LcregError(f"{ckpt_path}: its weights do not fit the model its config describes ({first})") from None
    model.to(device, memory_format=torch.channels_last).eval()
    return TrainedModel(model, cfg, summary, int(state.get("stage", 1)), ckpt_path)


def evaluation_data(trained: TrainedModel, data_dir: Optional[str] = None) -> LongTailData:
    """The data the model was trained on (or the same kind of data under ``data_dir``);
    Many / Medium / Few always come from the model's own training counts."""
    if data_dir is not None and trained.cfg.data.dataset == "demo":
        raise LcregError(
            f"{trained.path} was trained on the built-in demo data, which --data-dir cannot replace; "
            "leave --data-dir out"
        )
    d = trained.cfg.data if data_dir is None else replace(trained.cfg.data, data_dir=str(data_dir))
    data = build_dataset(d)
    if data.class_names != trained.class_names:
        raise LcregError(
            f"the classes of {d.data_dir} ({len(data.class_names)}) differ from the model's "
            f"({len(trained.class_names)}); evaluate on data with the same class folders"
        )
    data.splits = {k: list(v) for k, v in trained.summary["splits"].items()}
    data.thresholds = tuple(trained.summary["thresholds"])
    return data
