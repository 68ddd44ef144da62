"""A trained model back from its checkpoint, and its outputs on a split.

Every model file written by ``lcreg train`` (``stage1_model.pt``, ``stage2_model.pt``,
``checkpoint.pt``) carries the resolved config and a summary of the training data (class
names, training counts, Many / Medium / Few), so eval, analyze, predict and export need
nothing but the file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from lcreg.config import Config, from_dict
from lcreg.data import LongTailData, build_dataset, uses_device_loader
from lcreg.data.images import ImageSet
from lcreg.data.loaders import DeviceLoader, worker_loader
from lcreg.engine.checkpoint import load_checkpoint
from lcreg.engine.environment import autocast
from lcreg.errors import LcregError
from lcreg.eval.latent_diagnostics import LatentStats
from lcreg.methods import create_model
from lcreg.models import LongTailNet

MODEL_FILES = ("stage2_model.pt", "stage1_model.pt", "checkpoint.pt")


@dataclass
class TrainedModel:
    model: LongTailNet
    cfg: Config
    summary: dict  # class_names, counts, splits, thresholds, image_shape
    stage: int
    path: Path

    @property
    def run_dir(self) -> Optional[Path]:
        return self.path.parent if (self.path.parent / "config.yaml").is_file() else None

    @property
    def class_names(self) -> list[str]:
        return list(self.summary["class_names"])


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder means its most trained model: stage 2, else stage 1, else the last
    checkpoint."""
    path = Path(path).expanduser()
    if path.is_dir():
        for name in MODEL_FILES:
            if (path / name).is_file():
                return path / name
        raise LcregError(f"{path} holds no model file ({', '.join(MODEL_FILES)}); is it a run folder?")
    if not path.exists():
        raise LcregError(f"{path} does not exist (give a run folder or a .pt model file)")
    return path


def stored_fields(obj):
    """The fields a pickled config dataclass of lcreg 0.1 holds, as plain dicts: read from
    the object itself, not today's class (``model.latent.enabled`` is no field any more but
    names the method those files were trained with)."""
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return {k: stored_fields(v) for k, v in vars(obj).items()}
    return obj


def load_trained_model(path: str | Path, device: torch.device) -> TrainedModel:
    ckpt_path = resolve_checkpoint(path)
    state = load_checkpoint(ckpt_path)
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


def eval_loader(cfg: Config, split: ImageSet, device: torch.device, batch_size: int = 512):
    d = cfg.data
    if uses_device_loader(d):
        return DeviceLoader(split, batch_size, device, d.mean, d.std, train=False)
    return worker_loader(
        split,
        batch_size,
        d.image_size,
        d.mean,
        d.std,
        train=False,
        num_workers=d.num_workers,
        pin_memory=device.type == "cuda",
    )


@dataclass
class SplitOutputs:
    logits: torch.Tensor  # (N, C) float32, CPU
    targets: torch.Tensor  # (N,)
    histograms: Optional[np.ndarray] = None  # (N, M) latent histograms, LCReg models only


@torch.no_grad()
def collect_outputs(
    model: LongTailNet, loader, device: torch.device, amp: str = "auto", histograms: bool = False
) -> SplitOutputs:
    """Logits and labels of a whole split (model in eval mode); with ``histograms``, also
    each image's latent-category weights averaged over positions."""
    model.eval()
    logits, targets, hists = [], [], []
    for images, labels in loader:
        with autocast(device, amp):
            out = model(images.to(device, non_blocking=True))
        logits.append(out.logits.float().cpu())
        targets.append(labels.cpu())
        if histograms and out.weights is not None:
            hists.append(out.weights.float().mean(dim=2).cpu())
    return SplitOutputs(torch.cat(logits), torch.cat(targets), torch.cat(hists).numpy() if hists else None)


@torch.no_grad()
def collect_latent_stats(model: LongTailNet, loader, device: torch.device, amp: str = "auto"):
    """Eq. 1-3 over a whole split (model in eval mode) -> (``LatentStats``, targets). Without
    a latent head only the feature map is measured (``feature_positional_share``)."""
    model.eval()
    stats, targets = LatentStats(), []
    for images, labels in loader:
        with autocast(device, amp):
            features = model.forward_features(images.to(device, non_blocking=True))
            if model.has_latent_head:
                maps = model.head.latent_maps(features)
                stats.update(maps.logits, maps.sim, maps.weights, features)
            else:
                stats.feature_var.update(features.float())
        targets.append(labels.cpu())
    return stats, torch.cat(targets).numpy()


@torch.no_grad()
def similarity_maps(model: LongTailNet, images: torch.Tensor, device: torch.device) -> np.ndarray:
    """S of eq. 1 for a batch of normalised images: (B, M, H, W) on the CPU."""
    model.eval()
    features = model.forward_features(images.to(device))
    sim = model.head.latent_maps(features).sim
    b, _, h, w = features.shape
    return sim.float().reshape(b, -1, h, w).cpu().numpy()


def normalized_batch(cfg: Config, images: np.ndarray) -> torch.Tensor:
    """Decoded uint8 images (B, H, W, 3) -> the normalised NCHW batch the model expects."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(cfg.data.mean).view(1, -1, 1, 1)
    std = torch.tensor(cfg.data.std).view(1, -1, 1, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def preprocess_image(cfg: Config, image) -> np.ndarray:
    """A PIL image -> the uint8 (S, S, 3) array the model sees at test time: small-image
    models (device loader) resize to S x S as their data was decoded; large-image models
    resize the short side to S / 0.875 and centre-crop S, as their evaluation transform."""
    from PIL import Image
    from torchvision.transforms import functional as TF

    size = cfg.data.image_size
    if uses_device_loader(cfg.data):
        image = image.resize((size, size), Image.BILINEAR) if image.size != (size, size) else image
    else:
        image = TF.center_crop(TF.resize(image, int(round(size / 0.875))), size)
    return np.asarray(image, dtype=np.uint8)


def split_images(cfg: Config, split: ImageSet, indices) -> np.ndarray:
    """Chosen images of a split as the model sees them (uint8, (k, S, S, 3))."""
    from PIL import Image

    from lcreg.data.images import load_rgb

    if split.images is not None:
        return np.stack([preprocess_image(cfg, Image.fromarray(split.images[i])) for i in indices])
    return np.stack([preprocess_image(cfg, load_rgb(split.paths[i])) for i in indices])
