"""``build_dataset``: any accepted source -> a long-tailed train split, a test split, an
optional held-out validation split, class names, training counts and Many/Medium/Few."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from lcreg.config import DataConfig
from lcreg.data import sources
from lcreg.data.cache import default_cache_dir, extract_archive, is_archive
from lcreg.data.images import ImageSet
from lcreg.data.longtail import make_longtail_indices, shot_splits, stratified_split
from lcreg.errors import LcregError, LcregWarning
from lcreg.registry import DATASETS

DEMO_N_MAX = 120  # the demo keeps 120 .. 12 training digits per class (IF 10)


@dataclass
class LongTailData:
    name: str
    train: ImageSet
    test: ImageSet
    class_names: list[str]
    splits: dict[str, list[int]]
    thresholds: tuple[int, int]  # (many_threshold, few_threshold)
    val: Optional[ImageSet] = None
    source: str = ""
    layout: str = ""  # pickles | folders | list | demo
    val_source: str = ""  # train (carved from it) | unused (left out by the long-tailed selection) | list

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def counts(self) -> list[int]:
        return np.bincount(self.train.targets, minlength=self.num_classes).tolist()

    @property
    def image_shape(self) -> Optional[tuple[int, ...]]:
        return None if self.train.images is None else tuple(self.train.images.shape[1:])

    def stats(self) -> dict:
        counts = self.counts
        nonzero = [n for n in counts if n > 0]
        return {
            "dataset": self.name,
            "source": self.source,
            "layout": self.layout,
            "num_classes": self.num_classes,
            "counts": counts,
            "total": int(sum(counts)),
            "imbalance_factor": (max(nonzero) / min(nonzero)) if nonzero else None,
            "class_names": self.class_names,
            "splits": self.splits,
            "split_rule": f"many > {self.thresholds[0]} >= medium >= {self.thresholds[1]} > few (training counts)",
            "test_total": len(self.test),
            "test_counts": np.bincount(self.test.targets, minlength=self.num_classes).tolist(),
            "val_source": self.val_source,
            "val_total": 0 if self.val is None else len(self.val),
            "val_counts": None
            if self.val is None
            else np.bincount(self.val.targets, minlength=self.num_classes).tolist(),
        }


NEEDS_DATA_DIR = {
    "folder": "dataset 'folder' needs --data-dir (train/<class>/ and test/<class>/, or one <class>/ folder)",
    "list": "dataset 'list' needs --data-dir (image root) and data.train_list, data.test_list",
}


def _data_root(cfg: DataConfig, cache_dir: Path) -> Optional[Path]:
    if cfg.data_dir is None:
        return None
    root = Path(cfg.data_dir).expanduser()
    if not root.exists():
        raise LcregError(f"data dir {root} does not exist (check --data-dir)")
    if is_archive(root):
        return extract_archive(root, cache_dir)
    if root.is_file():
        raise LcregError(f"data dir {root} is a file, not a folder or an archive (.tar.gz, .tgz, .zip)")
    return root


def _is_empty(root: Path) -> bool:
    return not any(p for p in root.iterdir() if not p.name.startswith("."))


def _read_cifar(which: str, cfg: DataConfig, cache_dir: Path) -> tuple[ImageSet, ImageSet, list[str], str]:
    root = _data_root(cfg, cache_dir)
    if root is not None:
        folder = sources.find_cifar_pickles(root, which)
        if folder is not None:
            return (*sources.read_cifar_pickles(folder, which), str(folder))
        split_dirs = sources.find_split_folders(root)
        if split_dirs is not None:
            train, test, names = sources.read_split_folders(*split_dirs, image_size=32, cache_dir=cache_dir)
            return train, test, names, str(root)
        if not _is_empty(root) or not cfg.download:
            what = "is empty" if _is_empty(root) else "matches none of the accepted layouts"
            raise LcregError(f"data dir {root} {what}; expected {sources.CIFAR_LAYOUTS}")
    target = root if root is not None else cache_dir / "data"
    if not cfg.download:
        raise LcregError(f"no data dir given for {which.upper()}; pass --data-dir with {sources.CIFAR_LAYOUTS}")
    folder = sources.find_cifar_pickles(target, which) or sources.download_cifar(target, which)
    return (*sources.read_cifar_pickles(folder, which), str(folder))


def _read_folder(
    cfg: DataConfig, cache_dir: Path, decode_size: Optional[int]
) -> tuple[ImageSet, ImageSet, list[str], str]:
    root = _data_root(cfg, cache_dir)
    if root is None:
        raise LcregError(NEEDS_DATA_DIR["folder"])
    split_dirs = sources.find_split_folders(root)
    if split_dirs is not None:
        return (*sources.read_split_folders(*split_dirs, image_size=decode_size, cache_dir=cache_dir), str(root))
    full, names = sources.read_single_folder(root, decode_size, cache_dir)
    train_idx, test_idx = stratified_split(full.targets, cfg.test_fraction, seed=cfg.selection_seed)
    return (
        full.subset(train_idx),
        full.subset(test_idx),
        names,
        f"{root} (stratified test fraction {cfg.test_fraction})",
    )


def _read_lists(cfg: DataConfig, cache_dir: Path, decode_size: Optional[int]):
    """(train, test, class names, source, val or None)."""
    root = _data_root(cfg, cache_dir)
    if root is None or cfg.train_list is None or cfg.test_list is None:
        raise LcregError(NEEDS_DATA_DIR["list"])

    def resolve(p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() or path.exists() else root / path

    val_list = resolve(cfg.val_list) if cfg.val_list else None
    train, test, names, val = sources.read_list_files(
        root,
        resolve(cfg.train_list),
        resolve(cfg.test_list),
        cfg.reindex_by_frequency,
        decode_size,
        cache_dir,
        val_list,
    )
    lists = ", ".join(str(x) for x in (cfg.train_list, cfg.val_list, cfg.test_list) if x)
    return train, test, names, f"{root} ({lists})", val


def typical_image_side(cfg: DataConfig, sample: int = 32) -> int:
    """Median longer side (pixels) of up to ``sample`` training images of a folder or list
    dataset, read from the file headers only."""
    from PIL import Image

    root = _data_root(cfg, default_cache_dir(cfg.cache_dir))
    if root is None and cfg.dataset in ("folder", "list"):
        raise LcregError(NEEDS_DATA_DIR[cfg.dataset])
    if root is None or cfg.dataset not in ("folder", "list"):
        raise LcregError(
            f"data.image_size=0 (choose from the images) needs a folder or list dataset with --data-dir; "
            f"set data.image_size for {cfg.dataset}"
        )
    if cfg.dataset == "list":
        if cfg.train_list is None:
            raise LcregError("dataset 'list' needs data.train_list")
        train_list = Path(cfg.train_list).expanduser()
        paths, _ = sources.read_list_file(
            train_list if train_list.is_absolute() or train_list.exists() else root / train_list, root
        )
    else:
        split_dirs = sources.find_split_folders(root)
        _, paths, _ = sources.list_class_folder(split_dirs[0] if split_dirs else root)
    step = max(1, len(paths) // sample)
    sides = []
    for p in paths[::step][:sample]:
        try:
            with Image.open(p) as im:
                sides.append(max(im.size))
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
    if not sides:
        raise LcregError(f"none of the sampled images under {root} could be read")
    return int(np.median(sides))


def check_imbalance(targets: np.ndarray, num_classes: int, asked: float, source: str) -> None:
    """The imbalance a subsampled training split really has; a warning when the data could not
    give the one asked for (a class smaller than its share of the profile keeps all it has)."""
    counts = np.bincount(targets, minlength=num_classes)
    present = counts[counts > 0]
    if len(present) < num_classes:
        raise LcregError(
            f"imbalance factor {asked:g} leaves {num_classes - len(present)} class(es) of {source} "
            "without training images; ask for a smaller one"
        )
    observed = present.max() / present.min()
    if not 0.8 <= observed / asked <= 1.25:
        warnings.warn(
            f"asked for imbalance factor {asked:g}, the training split has {observed:.1f} "
            f"(largest {present.max()} / smallest {present.min()} images): some class holds fewer images "
            "than the profile gives it",
            LcregWarning,
            stacklevel=3,
        )


def uses_device_loader(cfg: DataConfig) -> bool:
    """Small images live decoded on the training device; large ones go through workers."""
    if cfg.loader == "auto":
        return cfg.dataset in ("cifar10-lt", "cifar100-lt", "demo") or cfg.image_size <= 64
    return cfg.loader == "device"


@dataclass
class RawData:
    """What a dataset reader returns: full (not yet long-tailed) splits."""

    train: ImageSet
    test: ImageSet
    class_names: list[str]
    source: str
    val: Optional[ImageSet] = None
    n_max: Optional[int] = None  # the profile's head count (None: the largest class present)
    # the profile runs over classes in label order for CIFAR and the demo (the published
    # recipe), from the largest class down for user data (the largest keeps its images)
    by_size: bool = False


@DATASETS.register("cifar10-lt")
def _cifar10(cfg: DataConfig, cache_dir: Path, decode_size: Optional[int]) -> RawData:
    return RawData(*_read_cifar("cifar10", cfg, cache_dir))


@DATASETS.register("cifar100-lt")
def _cifar100(cfg: DataConfig, cache_dir: Path, decode_size: Optional[int]) -> RawData:
    return RawData(*_read_cifar("cifar100", cfg, cache_dir))


@DATASETS.register("folder")
def _folder(cfg: DataConfig, cache_dir: Path, decode_size: Optional[int]) -> RawData:
    return RawData(*_read_folder(cfg, cache_dir, decode_size), by_size=True)


@DATASETS.register("list")
def _list(cfg: DataConfig, cache_dir: Path, decode_size: Optional[int]) -> RawData:
    train, test, names, source, val = _read_lists(cfg, cache_dir, decode_size)
    return RawData(train, test, names, source, val=val, by_size=True)


@DATASETS.register("demo")
def _demo(cfg: DataConfig, cache_dir: Path, decode_size: Optional[int]) -> RawData:
    train, test, names = sources.read_digits(seed=0, size=cfg.image_size)
    return RawData(train, test, names, "scikit-learn load_digits (8x8 handwritten digits)", n_max=DEMO_N_MAX)


def portable_source(source: str, cfg: DataConfig, cache_dir: Path) -> str:
    """The source as run files record it: an archive extracted into the cache is named by the
    archive as given (``data/cifar10-jpeg.tar.gz (extracted)``), the home folder as ``~``, so
    that no file written for a run carries this machine's cache path."""
    extracted = str(cache_dir / "extracted") + os.sep
    if source.startswith(extracted):
        inner = source[len(extracted) :].split(os.sep, 1)
        return f"{cfg.data_dir} (extracted)" + (f"/{inner[1]}" if len(inner) > 1 else "")
    home = str(Path.home())
    return "~" + source[len(home) :] if home != os.sep and source.startswith(home + os.sep) else source


def source_layout(dataset: str, source: str) -> str:
    if dataset in ("list", "demo"):
        return dataset
    return "pickles" if Path(source.split(" (")[0]).name in ("cifar-10-batches-py", "cifar-100-python") else "folders"


def unused_validation(full: ImageSet, keep: Optional[np.ndarray], num_classes: int, cfg: DataConfig) -> ImageSet:
    """``data.val_source=unused``: up to ``data.val_per_class`` images per class drawn (seeded)
    from the training images the long-tailed selection left out, so the validation split is
    near balanced, large and costs the training set nothing. A class the selection keeps whole
    (CIFAR-10-LT's head class) has none: data_stats.json records the counts."""
    if keep is None:
        raise LcregError(
            "data.val_source=unused takes its images from those the long-tailed selection leaves out; "
            "set data.imbalance_factor (or use data.val_fraction)"
        )
    unused = np.setdiff1d(np.arange(len(full)), keep)
    rng = np.random.default_rng(cfg.selection_seed + 1)
    chosen = []
    for c in range(num_classes):
        idx = unused[full.targets[unused] == c]
        chosen.append(rng.permutation(idx)[: cfg.val_per_class])
    picked = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    if len(picked) == 0:
        raise LcregError("data.val_source=unused: the long-tailed selection leaves no image out")
    return full.subset(picked)


def build_dataset(cfg: DataConfig) -> LongTailData:
    cache_dir = default_cache_dir(cfg.cache_dir)
    decode_size = cfg.image_size if uses_device_loader(cfg) else None
    raw = DATASETS.get(cfg.dataset)(cfg, cache_dir, decode_size)
    train, test, names, source, n_max, by_size = (
        raw.train,
        raw.test,
        raw.class_names,
        raw.source,
        raw.n_max,
        raw.by_size,
    )
    given_val = raw.val

    full = train
    keep = None
    if cfg.imbalance_factor is not None:
        keep = make_longtail_indices(
            train.targets,
            len(names),
            cfg.imbalance_factor,
            cfg.profile,
            cfg.selection_seed,
            n_max=n_max,
            by_size=by_size,
        )
        train = train.subset(keep)
        check_imbalance(train.targets, len(names), cfg.imbalance_factor, source)
    val = given_val
    if cfg.val_source == "unused":
        val = unused_validation(full, keep, len(names), cfg)
    elif val is None and cfg.val_fraction > 0:
        train_idx, val_idx = stratified_split(train.targets, cfg.val_fraction, seed=cfg.selection_seed)
        train, val = train.subset(train_idx), train.subset(val_idx)
    counts = np.bincount(train.targets, minlength=len(names)).tolist()
    if len(train) == 0:
        raise LcregError(f"the training split of {source} is empty")
    if len(test) == 0:
        raise LcregError(
            f"the test split of {source} is empty: with one folder of classes, each class needs two images "
            f"or more for data.test_fraction={cfg.test_fraction} to hold one out"
        )
    return LongTailData(
        name=cfg.dataset,
        train=train,
        test=test,
        val=val,
        class_names=list(names),
        splits=shot_splits(counts, cfg.many_threshold, cfg.few_threshold),
        thresholds=(cfg.many_threshold, cfg.few_threshold),
        source=portable_source(source, cfg, cache_dir),
        layout=source_layout(cfg.dataset, source),
        val_source=""
        if val is None
        else ("list" if given_val is not None and cfg.val_source == "train" else cfg.val_source),
    )
