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


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image as RGB (grayscale, palette and RGBA files included)."""
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
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
