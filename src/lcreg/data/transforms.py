"""Test-time preprocessing, written once: the evaluation transform of large images (resize
the short side to S / 0.875, centre-crop S), and the arrays and batches the model sees."""

from __future__ import annotations

import numpy as np
import torch

from lcreg.config import Config
from lcreg.data.datasets import uses_device_loader
from lcreg.data.images import ImageSet, load_rgb

EVAL_CROP_FRACTION = 0.875  # the centre crop covers 87.5% of the resized short side (ImageNet practice)


def eval_resize(size: int) -> int:
    return int(round(size / EVAL_CROP_FRACTION))


def eval_transform(size: int):
    """PIL image -> PIL image of S x S: short side to S / 0.875, centre crop S."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(eval_resize(size)), T.CenterCrop(size)])


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

    size = cfg.data.image_size
    if uses_device_loader(cfg.data):
        image = image.resize((size, size), Image.BILINEAR) if image.size != (size, size) else image
    else:
        image = eval_transform(size)(image)
    return np.asarray(image, dtype=np.uint8)


def split_images(cfg: Config, split: ImageSet, indices) -> np.ndarray:
    """Chosen images of a split as the model sees them (uint8, (k, S, S, 3))."""
    from PIL import Image

    if split.images is not None:
        return np.stack([preprocess_image(cfg, Image.fromarray(split.images[i])) for i in indices])
    return np.stack([preprocess_image(cfg, load_rgb(split.paths[i])) for i in indices])
