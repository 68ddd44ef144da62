"""Two loading paths.

1. ``DeviceLoader`` (CIFAR-scale images): the whole split lives on the training device as
   uint8 (CIFAR-10-LT IF 100: 12,406 x 3 x 32 x 32 = 38 MB). Random crop with zero
   padding and horizontal flip are one gather per batch, then normalisation; no worker
   processes, no host round trip.
2. ``worker_loader`` (large images): torchvision transforms (RandomResizedCrop, flip,
   optional colour jitter) in DataLoader workers with pinned memory.
"""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from lcreg.config import Config
from lcreg.data.datasets import uses_device_loader
from lcreg.data.images import ImageSet, load_rgb
from lcreg.data.transforms import eval_transform


class DeviceAugment:
    """Random crop (zero padding ``padding``) + horizontal flip + normalisation on the
    device, for a batch of uint8 NCHW images already padded by ``padding`` pixels."""

    def __init__(self, size: int, padding: int, mean: Sequence[float], std: Sequence[float], device: torch.device):
        self.size, self.padding = size, padding
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255.0
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255.0
        self.base = torch.arange(size, device=device)

    def crop_flip(self, padded: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """padded: (B, C, S + 2p, S + 2p) uint8 -> (B, C, S, S) uint8."""
        b, dev = padded.shape[0], padded.device
        top = torch.randint(0, 2 * self.padding + 1, (b,), device=dev, generator=generator)
        left = torch.randint(0, 2 * self.padding + 1, (b,), device=dev, generator=generator)
        flip = torch.rand(b, device=dev, generator=generator) < 0.5
        rows = top[:, None] + self.base  # (B, S)
        cols = torch.where(flip[:, None], left[:, None] + self.size - 1 - self.base, left[:, None] + self.base)
        batch = torch.arange(b, device=dev)[:, None, None]
        out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, S, S, C)
        return out.permute(0, 3, 1, 2)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() - self.mean) / self.std


class DeviceLoader:
    """Batches of (normalised float images, labels) from a split held on ``device``.

    ``train=True``: crop + flip per sample, batches follow ``sampler`` (one draw per epoch,
    incomplete last batch dropped, as the reference code does). ``train=False``: plain
    normalised images in order, every image once.
    """

    def __init__(
        self,
        split: ImageSet,
        batch_size: int,
        device: torch.device,
        mean: Sequence[float],
        std: Sequence[float],
        train: bool,
        sampler: Optional[Sampler] = None,
        padding: int = 4,
        seed: int = 0,
        drop_last: bool = True,
    ) -> None:
        assert split.images is not None, "DeviceLoader needs decoded images"
        images = torch.from_numpy(np.ascontiguousarray(split.images)).permute(0, 3, 1, 2)  # N, C, H, W
        size = images.shape[-1]
        self.padding = padding if train else 0
        if self.padding:
            images = F.pad(images, (padding,) * 4)
        self.images = images.contiguous().to(device)
        self.targets = torch.from_numpy(split.targets).to(device)
        self.augment = DeviceAugment(size, padding, mean, std, device)
        self.batch_size, self.train, self.sampler = batch_size, train, sampler
        self.drop_last = drop_last and train
        self.device = device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def set_epoch(self, epoch: int) -> None:
        if self.sampler is not None and hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def _order(self) -> torch.Tensor:
        if self.sampler is None:
            n = len(self.targets)
            if self.train:
                return torch.randperm(n, device=self.device, generator=self.generator)
            return torch.arange(n, device=self.device)
        return torch.as_tensor(np.fromiter(iter(self.sampler), dtype=np.int64), device=self.device)

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.targets)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self._order()
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            images = self.images[idx]
            if self.train:
                images = self.augment.crop_flip(images, self.generator)
            yield self.augment.normalize(images).contiguous(memory_format=torch.channels_last), self.targets[idx]


# --------------------------------------------------------------------------------------
# large images


class PathDataset(Dataset):
    def __init__(self, split: ImageSet, transform) -> None:
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        if self.split.images is not None:
            from PIL import Image

            image = Image.fromarray(self.split.images[i])
        else:
            image = load_rgb(self.split.paths[i])
        return self.transform(image), int(self.split.targets[i])


def build_transforms(
    image_size: int, mean: Sequence[float], std: Sequence[float], train: bool, color_jitter: float = 0.0
):
    from torchvision import transforms as T

    if train:
        ops = [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()]
        if color_jitter > 0:
            ops.append(T.ColorJitter(color_jitter, color_jitter, color_jitter, 0))
    else:
        ops = [eval_transform(image_size)]
    return T.Compose(ops + [T.ToTensor(), T.Normalize(mean, std)])


def worker_loader(
    split: ImageSet,
    batch_size: int,
    image_size: int,
    mean,
    std,
    train: bool,
    sampler: Optional[Sampler] = None,
    num_workers: int = 4,
    color_jitter: float = 0.0,
    pin_memory: bool = True,
    seed: int = 0,
) -> DataLoader:
    """``seed`` starts the loader's own generator (the workers' augmentation seeds come from
    it), so a checkpoint can save and restore it and a resumed run draws the same crops."""
    dataset = PathDataset(split, build_transforms(image_size, mean, std, train, color_jitter))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=train,
        persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )


def split_loader(
    cfg: Config,
    split: ImageSet,
    device: torch.device,
    batch_size: int,
    train: bool,
    sampler: Optional[Sampler] = None,
    seed: int = 0,
):
    """The loader of a split by ``cfg.data``: on the device (small images) or through
    DataLoader workers. ``train``: augmented batches in ``sampler``'s order (its seed starts
    the augmentation stream); else every image once, in order, with the evaluation transform."""
    d = cfg.data
    if uses_device_loader(d):
        kw = {"sampler": sampler, "padding": d.crop_padding, "seed": seed} if train else {}
        return DeviceLoader(split, batch_size, device, d.mean, d.std, train=train, **kw)
    kw = {"sampler": sampler, "color_jitter": d.color_jitter, "seed": seed} if train else {}
    return worker_loader(
        split,
        batch_size,
        d.image_size,
        d.mean,
        d.std,
        train=train,
        num_workers=d.num_workers,
        pin_memory=device.type == "cuda",
        **kw,
    )


def eval_loader(cfg: Config, split: ImageSet, device: torch.device, batch_size: int = 512):
    """Every image of a split once, in order, unaugmented."""
    return split_loader(cfg, split, device, batch_size, train=False)
