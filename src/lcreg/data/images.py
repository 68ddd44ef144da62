"""Image sets (decoded arrays or file paths) and decoding with errors that name the file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from lcreg.errors import LcregError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


@dataclass
class ImageSet:
    """One split: labels plus either decoded uint8 images (N, H, W, 3) or file paths."""

    targets: np.ndarray
    images: Optional[np.ndarray] = None
    paths: Optional[list[str]] = None

    def __post_init__(self) -> None:
        self.targets = np.asarray(self.targets, dtype=np.int64)
        if (self.images is None) == (self.paths is None):
            raise ValueError("an ImageSet holds either images or paths")

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, idx: np.ndarray) -> ImageSet:
        idx = np.asarray(idx, dtype=np.int64)
        if self.images is not None:
            return ImageSet(self.targets[idx], images=self.images[idx])
        return ImageSet(self.targets[idx], paths=[self.paths[i] for i in idx])


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def to_rgb8(im: Image.Image, path: str | Path = "") -> Image.Image:
    """Any image Pillow opens as 8-bit RGB, its values scaled, never clipped: 16-bit
    grayscale (``I;16*``, or ``I`` holding 16-bit values) is divided by 257, float images
    (``F``) in [0, 1] are multiplied by 255 and those in [0, 255] kept. Pillow's own
    ``convert("RGB")`` clips these to 255 (a 16-bit PNG reads as white) or truncates them (a
    float TIFF in [0, 1] reads as black). Values no scale maps to 0..255 are refused."""
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if not np.isfinite(a).all() or lo < 0:
            raise LcregError(f"cannot read image {path}: {mode} pixels outside 0..max (negative or not finite)")
        if mode == "F" and hi <= 1.0:
            a = a * 255.0
        elif mode.startswith("I;16") or (mode == "I" and hi > 255):
            if hi > 65535:
                raise LcregError(f"cannot read image {path}: 32-bit integer pixels beyond 16 bits")
            a = a / 257.0
        elif hi > 255:
            raise LcregError(f"cannot read image {path}: float pixels above 255 (neither 0..1 nor 0..255)")
        gray = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return Image.fromarray(np.stack([gray] * 3, axis=-1), "RGB")
    if mode == "RGB":
        return im.copy()
    if mode in ("P", "PA") and "transparency" in im.info:
        im = im.convert("RGBA")
    return im.convert("RGB")


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image as 8-bit RGB (``to_rgb8``: grayscale, palette, RGBA, CMYK, 16-bit and
    float files included)."""
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb8(im, path)
    except Image.DecompressionBombError:
        raise LcregError(
            f"cannot read image {path}: it has more pixels than Pillow's decompression-bomb limit "
            f"({Image.MAX_IMAGE_PIXELS} x 2); refusing to decode it"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise LcregError(f"cannot read image {path}: {type(e).__name__}") from None


def _decode_one(path: str, size: Optional[int]) -> np.ndarray:
    im = load_rgb(path)
    if size is not None and im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def decode_images(paths: Sequence[str], size: Optional[int], desc: str = "decoding") -> np.ndarray:
    """Decode files into one (N, size, size, 3) uint8 array; Pillow releases the GIL, so
    a few threads decode faster. All images must share a size when ``size`` is None."""
    from lcreg.progress import progress

    if len(paths) == 0:
        return np.zeros((0, size or 1, size or 1, 3), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=4) as pool:
        arrays = list(
            progress(pool.map(lambda p: _decode_one(p, size), paths), total=len(paths), desc=desc, leave=False)
        )
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise LcregError(f"images differ in size {sorted(shapes)[:3]}...; set data.image_size to resize them")
    return np.stack(arrays)
