"""Shared fixtures: small synthetic datasets written in the exact on-disk layouts."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


def write_cifar10_pickles(root: Path, per_class: int = 5000, seed: int = 0) -> Path:
    """torchvision's cifar-10-batches-py layout: 5 train batches, test_batch, batches.meta.
    Labels are shuffled so classes interleave across batches, as in the real files."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    labels = rng.permutation(np.repeat(np.arange(10), per_class))
    # random pixels only for small sets (the folder test compares images); zeros otherwise
    data = (
        rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        if per_class <= 100
        else np.zeros((len(labels), 3072), dtype=np.uint8)
    )
    for i, chunk in enumerate(np.array_split(np.arange(len(labels)), 5), 1):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({"data": data[chunk], "labels": labels[chunk].tolist(), "batch_label": f"batch {i}"}, f)
    test_labels = np.repeat(np.arange(10), 10)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": rng.integers(0, 256, (100, 3072), dtype=np.uint8), "labels": test_labels.tolist()}, f)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": 10000}, f)
    return folder


def write_cifar100_pickles(root: Path, per_class: int = 500, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    labels = rng.permutation(np.repeat(np.arange(100), per_class))
    with open(folder / "train", "wb") as f:
        pickle.dump(
            {
                "data": np.zeros((len(labels), 3072), dtype=np.uint8),
                "fine_labels": labels.tolist(),
                "coarse_labels": (labels // 5).tolist(),
            },
            f,
        )
    test_labels = np.repeat(np.arange(100), 2)
    with open(folder / "test", "wb") as f:
        pickle.dump(
            {
                "data": np.zeros((len(test_labels), 3072), dtype=np.uint8),
                "fine_labels": test_labels.tolist(),
                "coarse_labels": (test_labels // 5).tolist(),
            },
            f,
        )
    with open(folder / "meta", "wb") as f:
        pickle.dump(
            {
                "fine_label_names": [f"class_{i:03d}" for i in range(100)],
                "coarse_label_names": [f"super_{i}" for i in range(20)],
            },
            f,
        )
    return folder


def write_image(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def no_download(monkeypatch, tmp_path):
    """Keep caches inside the test's tmp folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def kill_at_call(monkeypatch, owner, name: str, n: int):
    """Make the n-th call of ``owner.name`` raise KeyboardInterrupt, as a kill there would
    end the process; the calls before it run as usual. Returns a function that restores it."""
    real = getattr(owner, name)
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return lambda: monkeypatch.setattr(owner, name, real)


# the paper's reproduction lives beside the package, in experiments/ (scripts, not installed)
EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
if str(EXPERIMENTS) not in sys.path:
    sys.path.insert(0, str(EXPERIMENTS))


def cli(argv: list[str]) -> int:
    """``lcreg ARGS``, or ``python experiments/reproduce.py ARGS`` when ARGS start with
    ``reproduce``: the tests drive both command lines the same way."""
    if argv and argv[0] == "reproduce":
        from reproduce import main as reproduce_main

        return reproduce_main(list(argv[1:]))
    from lcreg.cli import main

    return main(argv)
