"""Readers for every accepted data layout. Each returns full (not yet long-tailed) splits.

- CIFAR-10/100 in torchvision's pickle layout (``cifar-10-batches-py``, ``cifar-100-python``)
- CIFAR or any data in an ImageFolder layout (``train/<class>/*``, ``test/<class>/*``)
- one folder of class sub-folders, split by a stratified fraction
- list files of ``relative/path label`` lines (ImageNet-LT, Places-LT, iNaturalist 2018)
- the offline demo: scikit-learn's 8x8 handwritten digits
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Optional

import numpy as np

from lcreg.data.cache import cached_arrays, fingerprint
from lcreg.data.images import ImageSet, decode_images, is_image_file
from lcreg.errors import LcregError, short
from lcreg.files import read_text

CIFAR_LAYOUTS = (
    "torchvision's pickle folder (cifar-10-batches-py/ or cifar-100-python/), "
    "an ImageFolder layout (train/<class>/*.jpg and test/<class>/*.jpg), "
    "or a .tar.gz/.zip of either"
)

CIFAR_SPECS = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "label_key": "labels",
        "names_key": "label_names",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "label_key": "fine_labels",
        "names_key": "fine_label_names",
    },
}


# --------------------------------------------------------------------------------------
# CIFAR pickles


def find_cifar_pickles(root: Path, which: str) -> Optional[Path]:
    spec = CIFAR_SPECS[which]
    for d in (root / spec["folder"], root):
        if (d / spec["train"][0]).is_file():
            return d
    return None


class CifarUnpickler(pickle.Unpickler):
    """Unpickles only what the official CIFAR files hold: dicts, lists, strings, numbers and
    numpy arrays. Any other global (os.system, eval, ...) is refused, so a crafted
    ``batches.meta`` cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not part of a CIFAR file")


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            data = CifarUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise LcregError(f"missing CIFAR file {path}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise LcregError(f"corrupt or unsafe CIFAR file {path}: {str(e)[:120]}") from None
    if not isinstance(data, dict):
        raise LcregError(f"corrupt CIFAR file {path}: expected a dict, found a {type(data).__name__}")
    return data


def read_cifar_pickles(folder: Path, which: str) -> tuple[ImageSet, ImageSet, list[str]]:
    spec = CIFAR_SPECS[which]

    def split(names: list[str]) -> ImageSet:
        data, labels = [], []
        for name in names:
            entry = _unpickle(folder / name)
            data.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(entry[spec["label_key"]])
        images = np.ascontiguousarray(np.concatenate(data).transpose(0, 2, 3, 1))
        return ImageSet(np.asarray(labels), images=images)

    meta = _unpickle(folder / spec["meta"])
    return split(spec["train"]), split(spec["test"]), list(meta[spec["names_key"]])


def download_cifar(root: Path, which: str) -> Path:
    """torchvision's download (online users); offline it fails with a clear message."""
    import torchvision

    cls = torchvision.datasets.CIFAR10 if which == "cifar10" else torchvision.datasets.CIFAR100
    try:
        root.mkdir(parents=True, exist_ok=True)
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    except Exception as e:  # URLError, socket errors, checksum failures ...
        raise LcregError(
            f"could not download {which.upper()} into {root} ({type(e).__name__}: {str(e)[:80]}); "
            f"offline, pass --data-dir pointing at {CIFAR_LAYOUTS}"
        ) from None
    return root / CIFAR_SPECS[which]["folder"]


# --------------------------------------------------------------------------------------
# folders


def _image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted. os.walk reads each folder once
    (scandir's entry types): 60,000 CIFAR files list in a fraction of a second, where a
    stat per file took seconds."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath, f) for f in filenames if is_image_file(Path(f)))
    return sorted(found)


def list_class_folder(root: Path) -> tuple[list[str], list[str], list[int]]:
    """``root/<class>/<image>`` -> (class names sorted, file paths, labels)."""
    if not root.is_dir():
        raise LcregError(f"{root} is not a folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise LcregError(f"{root} holds no class sub-folders (expected {root}/<class>/<image>)")
    paths, labels = [], []
    for c, name in enumerate(classes):
        files = _image_files(root / name)
        if not files:
            raise LcregError(f"class folder {root / name} holds no images ({', '.join(('jpg', 'png', '...'))})")
        paths.extend(str(p) for p in files)
        labels.extend([c] * len(files))
    return classes, paths, labels


def find_split_folders(root: Path) -> Optional[tuple[Path, Path]]:
    """``root/train`` plus ``root/test`` (or ``root/val``), when both exist. A ``train/``
    alone is an error (it would otherwise read as one class named "train")."""
    train = root / "train"
    for name in ("test", "val"):
        if train.is_dir() and (root / name).is_dir():
            return train, root / name
    if train.is_dir():
        raise LcregError(
            f"{root} holds train/ but no test/ or val/ beside it: add test/<class>/ images, or put the "
            f"class folders directly in {root} to split them by data.test_fraction"
        )
    return None


def read_split_folders(
    train_dir: Path, test_dir: Path, image_size: Optional[int], cache_dir: Optional[Path]
) -> tuple[ImageSet, ImageSet, list[str]]:
    """Train and test class folders; decoded to arrays (cached) when ``image_size`` is set,
    otherwise kept as paths for the DataLoader path."""
    classes, train_paths, train_labels = list_class_folder(train_dir)
    test_classes, test_paths, test_labels = list_class_folder(test_dir)
    if classes != test_classes:
        only_train = sorted(set(classes) - set(test_classes))[:3]
        only_test = sorted(set(test_classes) - set(classes))[:3]
        raise LcregError(
            f"class folders differ between {train_dir} and {test_dir}: "
            f"only in train {only_train}, only in test {only_test}"
        )
    train = _maybe_decode(train_paths, train_labels, image_size, cache_dir, "train")
    test = _maybe_decode(test_paths, test_labels, image_size, cache_dir, "test")
    return train, test, classes


def read_single_folder(root: Path, image_size: Optional[int], cache_dir: Optional[Path]) -> tuple[ImageSet, list[str]]:
    classes, paths, labels = list_class_folder(root)
    return _maybe_decode(paths, labels, image_size, cache_dir, "all"), classes


def file_signatures(paths: list[str]) -> list[tuple[str, int, int]]:
    """(path, size, modification time in ns) of each file: the key of its decoded cache, so
    a file replaced by another of the same size is decoded again."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append((p, st.st_size, st.st_mtime_ns))
    return out


def _maybe_decode(
    paths: list[str], labels: list[int], image_size: Optional[int], cache_dir: Optional[Path], desc: str
) -> ImageSet:
    labels_arr = np.asarray(labels, dtype=np.int64)
    if image_size is None:
        return ImageSet(labels_arr, paths=paths)
    if cache_dir is None:
        return ImageSet(labels_arr, images=decode_images(paths, image_size, desc=f"decoding {desc}"))
    key = "images-" + fingerprint(file_signatures(paths), image_size)
    arrays = cached_arrays(
        cache_dir, key, lambda: {"images": decode_images(paths, image_size, desc=f"decoding {desc}")}
    )
    return ImageSet(labels_arr, images=arrays["images"])


# --------------------------------------------------------------------------------------
# list files


MAX_LABEL = 1_000_000  # iNaturalist 2018 has 8,142 classes; a larger label is a broken list


def read_list_file(list_file: Path, root: Path) -> tuple[list[str], list[int]]:
    if not list_file.is_file():
        raise LcregError(f"list file {list_file} does not exist")
    text = read_text(list_file, "list file")
    base = os.path.normpath(root)
    paths, labels = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        # ASCII digits only: '²' or '١' pass str.isdigit() but are no labels
        if len(parts) != 2 or not re.fullmatch(r"[0-9]{1,7}", parts[1]) or int(parts[1]) >= MAX_LABEL:
            raise LcregError(
                f"{list_file}:{lineno}: expected 'relative/path label' (label 0..{MAX_LABEL - 1}), got '{short(line, 80)}'"
            )
        # '/a/b.jpg' (the Places365 lists' style) is relative to the root as well, and no path
        # may leave the image root ('../'), whether or not its target exists
        path = os.path.normpath(os.path.join(base, parts[0].lstrip("/")))
        if not path.startswith(base + os.sep):
            raise LcregError(f"{list_file}:{lineno}: '{short(parts[0])}' leaves the image root {root}")
        paths.append(path)
        labels.append(int(parts[1]))
    if not paths:
        raise LcregError(f"list file {list_file} holds no entries")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise LcregError(f"{list_file} names {len(missing)} image(s) that do not exist under {root}: {shown}")
    return paths, labels


def read_list_files(
    root: Path,
    train_list: Path,
    test_list: Path,
    reindex_by_frequency: bool,
    image_size: Optional[int],
    cache_dir: Optional[Path],
    val_list: Optional[Path] = None,
) -> tuple[ImageSet, ImageSet, list[str], Optional[ImageSet]]:
    """Train, test, class names and (with ``val_list``) a validation split."""
    train_paths, train_labels = read_list_file(train_list, root)
    test_paths, test_labels = read_list_file(test_list, root)
    val_paths, val_labels = read_list_file(val_list, root) if val_list is not None else ([], [])
    num_classes = max(train_labels) + 1
    # labels 0..C-1 with a training image each, as class folders make them
    empty = sorted(set(range(num_classes)) - set(train_labels))
    if empty:
        raise LcregError(
            f"{train_list}: labels must be 0..{num_classes - 1} with a training image each; "
            f"{len(empty)} have none (e.g. {', '.join(map(str, empty[:3]))})"
        )
    for name, path, split in (("test", test_list, test_labels), ("validation", val_list, val_labels)):
        unseen = sorted(set(split) - set(train_labels))
        if unseen:
            raise LcregError(f"{path}: {name} label {unseen[0]} has no training image in {train_list}")
    mapping = np.arange(num_classes)
    if reindex_by_frequency:
        counts = np.bincount(train_labels, minlength=num_classes)
        order = np.argsort(-counts, kind="stable")  # most frequent class becomes 0
        mapping = np.empty(num_classes, dtype=np.int64)
        mapping[order] = np.arange(num_classes)
    names = [""] * num_classes
    for original in range(num_classes):
        names[mapping[original]] = str(original)
    train_labels = mapping[np.asarray(train_labels)].tolist()
    test_labels = mapping[np.asarray(test_labels)].tolist()
    train = _maybe_decode(train_paths, train_labels, image_size, cache_dir, "train")
    test = _maybe_decode(test_paths, test_labels, image_size, cache_dir, "test")
    val = None
    if val_list is not None:
        val = _maybe_decode(val_paths, mapping[np.asarray(val_labels)].tolist(), image_size, cache_dir, "val")
    return train, test, names, val


# --------------------------------------------------------------------------------------
# the offline demo


def read_digits(test_per_class: int = 50, seed: int = 0, size: int = 8) -> tuple[ImageSet, ImageSet, list[str]]:
    """scikit-learn's 1,797 real 8x8 handwritten digits as RGB uint8 of ``size`` x ``size``
    (bilinear upsampling), with a balanced test split of ``test_per_class`` images per class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    gray = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    if size != 8:
        gray = np.stack([np.asarray(Image.fromarray(g).resize((size, size), Image.BILINEAR)) for g in gray])
    images = np.repeat(gray[..., None], 3, axis=3)
    targets = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test_idx = []
    for c in range(10):
        idx = np.where(targets == c)[0]
        test_idx.append(rng.permutation(idx)[:test_per_class])
    test_idx = np.sort(np.concatenate(test_idx))
    train_mask = np.ones(len(targets), dtype=bool)
    train_mask[test_idx] = False
    return (
        ImageSet(targets[train_mask], images=images[train_mask]),
        ImageSet(targets[test_idx], images=images[test_idx]),
        [str(d) for d in range(10)],
    )
