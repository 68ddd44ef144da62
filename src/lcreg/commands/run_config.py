"""The config a command line asks for: a preset and ``key=value`` overrides, the shorthand
flags (``--data-dir``, ``--seed``, ...) turned into overrides, and the choices the folder
preset leaves to the images (``data.image_size=0``, ``model.backbone=auto``)."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from lcreg.errors import LcregError


def split_config_args(items: Sequence[str]) -> tuple[Optional[str], list[str]]:
    preset, overrides = None, []
    for item in items:
        if "=" in item:
            overrides.append(item)
        elif preset is None:
            preset = item
        else:
            raise LcregError(f"unexpected argument '{item}' (one preset, then key=value overrides)")
    return preset, overrides


def data_overrides(args: argparse.Namespace) -> list[str]:
    """Shorthand flags become ordinary dotted overrides, so there is one code path."""
    out = []
    for flag, key in (
        ("dataset", "data.dataset"),
        ("data_dir", "data.data_dir"),
        ("imbalance_factor", "data.imbalance_factor"),
        ("seed", "seed"),
        ("device", "device"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            out.append(f"{key}={value}")
    if getattr(args, "deterministic", False):
        out.append("deterministic=true")
    if getattr(args, "compile", None):
        out.append(f"compile={args.compile}")
    return out


# the preset a bare --dataset starts from (no preset named): its own, never the 8x8 demo's
DATASET_PRESETS = {
    "cifar10-lt": "cifar10_lt_if100",
    "cifar100-lt": "cifar100_lt_if100",
    "folder": "folder",
    "list": "folder",
}
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def check_overrides_read(cfg, overrides: Sequence[str]) -> None:
    """Refuse an override the chosen method never reads (``method=ce loss.focal_gamma=3``
    would train plain CE): one line naming the method and the keys it does read."""
    from lcreg.methods import get_method

    method = get_method(cfg.method)
    unread = [o.split("=", 1)[0].strip() for o in overrides if not method.reads_key(o.split("=", 1)[0].strip())]
    if unread:
        own = ", ".join(method.reads) or "none beyond data, model.backbone and stage1"
        raise LcregError(
            f"method {cfg.method} does not read {', '.join(unread[:3])}: the override would change nothing "
            f"(its own keys: {own}; `lcreg methods {cfg.method}`)"
        )


def resolve_config(args: argparse.Namespace):
    """The checked config of ``lcreg train`` / ``data`` arguments: preset (or the one a bare
    ``--dataset`` implies), overrides, flags, then the image-driven choices."""
    from lcreg.config import load_config

    preset, overrides = split_config_args(args.config)
    preset = preset or DATASET_PRESETS.get(getattr(args, "dataset", None) or "", "demo")
    cfg = load_config(preset, overrides + data_overrides(args))
    check_overrides_read(cfg, overrides)
    return resolve_auto(cfg, quiet=getattr(args, "no_progress", False))


def resolve_auto(cfg, quiet: bool = False):
    """``data.image_size=0`` and ``model.backbone=auto`` (the folder preset) chosen from the
    images: small ones (<= 64 px) at 32 px on ResNet-32, photos at 224 px on ResNet-50 with
    ImageNet normalisation and DataLoader workers. Says what it chose."""
    from lcreg.config import DataConfig
    from lcreg.data.datasets import typical_image_side

    d, chosen = cfg.data, []
    if d.image_size == 0:
        side = typical_image_side(d)
        d.image_size = 32 if side <= 64 else 224
        chosen.append(f"data.image_size={d.image_size}")
        if d.image_size > 64 and d.mean == DataConfig().mean and d.std == DataConfig().std:
            d.mean, d.std = list(IMAGENET_MEAN), list(IMAGENET_STD)
            chosen.append("ImageNet mean/std")
        reason = f"typical image {side} px"
    else:
        reason = f"data.image_size={d.image_size}"
    if cfg.model.backbone == "auto":
        cfg.model.backbone = "resnet32" if d.image_size <= 64 else "resnet50"
        chosen.append(f"model.backbone={cfg.model.backbone}")
    if chosen and not quiet:
        from lcreg.data import uses_device_loader

        path = "images held on the device" if uses_device_loader(d) else "DataLoader workers"
        print(f"lcreg: {reason} -> {', '.join(chosen)} ({path}); set them to choose otherwise", file=sys.stderr)
    return cfg
