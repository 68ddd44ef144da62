"""Write the CIFAR-10 JPEG copy in torchvision's pickle layout, for the peers' own code.

    python benchmarks/peers/cifar_pickles.py --data-dir data/cifar10-jpeg.tar.gz --out PEERDATA

writes ``PEERDATA/cifar-10-batches-py/`` (``data_batch_1..5``, ``test_batch``, ``batches.meta``)
exactly as torchvision's ``CIFAR10`` reads it. Images are written in lcreg's own order
(class by class, files sorted within a class), so that the LDAM/MiSLAS selection the peer
runs (``np.random.seed(0)``, then one shuffle per class) picks the very images lcreg picks.
It then builds the long-tailed subset both ways and prints the per-class counts and a
digest of the chosen pixels: the two must agree, or the script exits 1. With ``--peer-dir
CHECKOUT`` (repeatable) it also builds the subset with each peer's own ``IMBALANCECIFAR10``
(LDAM-DRW's ``imbalance_cifar.py``, MiSLAS's ``datasets/cifar10.py``), as its training script
calls it, from its checkout, in a fresh interpreter with launch.py's offline dataset shim:

    python benchmarks/peers/cifar_pickles.py --data-dir data/cifar10-jpeg.tar.gz --out data/peers/cifar10 \
        --peer-dir ../peers/MiSLAS --peer-dir ../peers/LDAM-DRW --json results/peers/split_check_if100.json

Measured on the 2-core CPU: about 20 s (decoding 60,000 JPEGs once, then cached).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np

from lcreg.config import DataConfig
from lcreg.data.cache import default_cache_dir, extract_archive, is_archive
from lcreg.data.datasets import build_dataset
from lcreg.data.longtail import make_longtail_indices
from lcreg.data.sources import find_split_folders, read_split_folders

TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_pickles(
    images: np.ndarray,
    labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    names: list[str],
    out: Path,
) -> Path:
    folder = out / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    flat = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # (N, 3*32*32), channel planes
    for i, chunk in enumerate(np.array_split(np.arange(len(images)), len(TRAIN_FILES))):
        _dump(
            folder / TRAIN_FILES[i],
            {
                "batch_label": f"training batch {i + 1} of 5 (JPEG copy)",
                "labels": labels[chunk].tolist(),
                "data": flat[chunk],
            },
        )
    test_flat = test_images.transpose(0, 3, 1, 2).reshape(len(test_images), -1)
    _dump(
        folder / "test_batch",
        {"batch_label": "testing batch 1 of 1 (JPEG copy)", "labels": test_labels.tolist(), "data": test_flat},
    )
    _dump(folder / "batches.meta", {"label_names": names, "num_cases_per_batch": 10000, "num_vis": 3072})
    return folder


def peer_selection(folder: Path, imbalance_factor: float) -> tuple[list[int], str]:
    """The subset as the peers build it: torchvision's reader, then their selection steps
    (np.random.seed(0); per class in label order, shuffle its indices, keep the first n_c)."""
    import torchvision

    ds = torchvision.datasets.CIFAR10.__new__(torchvision.datasets.CIFAR10)
    data, targets = [], []
    for name in TRAIN_FILES:
        with open(folder / name, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data.append(entry["data"])
        targets.extend(entry["labels"])
    ds.data = np.vstack(data).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    targets_np = np.array(targets, dtype=np.int64)
    img_max = len(ds.data) / 10
    counts = [int(img_max * ((1 / imbalance_factor) ** (c / 9.0))) for c in range(10)]
    np.random.seed(0)
    chosen = []
    for c, n in zip(np.unique(targets_np), counts):
        idx = np.where(targets_np == c)[0]
        np.random.shuffle(idx)
        chosen.append(ds.data[idx[:n]])
    pixels = np.vstack(chosen)
    return counts, hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()


# where each peer's own long-tailed CIFAR-10 class lives (module, importable from its checkout)
PEER_MODULES = {"LDAM-DRW": "imbalance_cifar", "MiSLAS": "datasets.cifar10"}
_PEER_CHECK = """
import hashlib, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from launch import shim_offline_cifar
shim_offline_cifar()  # the JPEG copy cannot match the original pickles' MD5 sums
import numpy as np
module = __import__(sys.argv[3], fromlist=["IMBALANCECIFAR10"])
ds = module.IMBALANCECIFAR10(root=sys.argv[4], imb_type="exp", imb_factor=float(sys.argv[5]), rand_number=0,
                             train=True, download=True)
print(json.dumps({"counts": [int(n) for n in ds.get_cls_num_list()],
                  "sha256": hashlib.sha256(np.ascontiguousarray(ds.data).tobytes()).hexdigest()}))
"""


def peer_code_selection(peer: Path, folder: Path, imbalance_factor: float) -> dict:
    """The subset as the peer's own ``IMBALANCECIFAR10`` builds it (as its training script
    calls it), run from its checkout in a fresh interpreter: per-class counts and a digest
    of the chosen pixels, with the peer's commit."""
    name = next((n for n in PEER_MODULES if (peer / (PEER_MODULES[n].replace(".", "/") + ".py")).is_file()), None)
    if name is None:
        sys.exit(f"{peer}: neither {' nor '.join(PEER_MODULES.values())} is there: not a MiSLAS or LDAM-DRW checkout")
    out = subprocess.run(
        [sys.executable, "-c", _PEER_CHECK, str(peer), str(Path(__file__).parent), PEER_MODULES[name],
         str(folder.parent.resolve()), str(1 / imbalance_factor)],
        capture_output=True, text=True, cwd=peer,
    )  # fmt: skip
    if out.returncode != 0:
        sys.exit(f"{peer}: its IMBALANCECIFAR10 failed: {out.stderr.strip().splitlines()[-1:]}")
    from run import _git  # beside this script: the peer's commit as run.py records it

    return {
        "peer": name,
        "commit": _git(peer, "rev-parse", "HEAD"),
        "module": PEER_MODULES[name],
        **json.loads(out.stdout),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, help="the CIFAR-10 JPEG copy (.tar.gz or train/ test/ folder)")
    ap.add_argument("--out", required=True, type=Path, help="folder to write cifar-10-batches-py/ into")
    ap.add_argument("--imbalance-factor", type=float, default=100)
    ap.add_argument("--json", type=Path, help="also write the check as JSON here")
    ap.add_argument(
        "--peer-dir",
        type=Path,
        action="append",
        default=[],
        help="a MiSLAS or LDAM-DRW checkout: also build the subset with its own IMBALANCECIFAR10 (repeatable)",
    )
    args = ap.parse_args(argv)

    root = Path(args.data_dir)
    cache = default_cache_dir()
    if is_archive(root):
        root = extract_archive(root, cache)
    split = find_split_folders(root)
    if split is None:
        sys.exit(f"{args.data_dir}: expected train/<class>/ and test/<class>/ folders")
    train, test, names = read_split_folders(*split, image_size=32, cache_dir=cache)
    folder = write_pickles(train.images, train.targets, test.images, test.targets, names, args.out)

    ours = build_dataset(
        DataConfig(dataset="cifar10-lt", data_dir=str(args.out), imbalance_factor=args.imbalance_factor)
    )
    # the subset lcreg trains on, read back from the pickles and from the JPEG folders
    from_pickles = hashlib.sha256(np.ascontiguousarray(ours.train.images).tobytes()).hexdigest()
    idx = make_longtail_indices(train.targets, 10, args.imbalance_factor)
    our_digest = hashlib.sha256(np.ascontiguousarray(train.images[idx]).tobytes()).hexdigest()
    peer_counts, peer_digest = peer_selection(folder, args.imbalance_factor)
    check = {
        "imbalance_factor": args.imbalance_factor,
        "ours_counts": ours.counts,
        "peer_counts": peer_counts,
        "ours_total": int(sum(ours.counts)),
        "peer_total": int(sum(peer_counts)),
        "ours_pixels_sha256": our_digest,
        "peer_pixels_sha256": peer_digest,
        "same_images": our_digest == peer_digest == from_pickles and ours.counts == peer_counts,
    }
    if args.peer_dir:
        check["peer_code"] = [peer_code_selection(p.resolve(), folder, args.imbalance_factor) for p in args.peer_dir]
        for c in check["peer_code"]:
            c["same_images"] = c["counts"] == ours.counts and c["sha256"] == our_digest
        check["same_images"] = check["same_images"] and all(c["same_images"] for c in check["peer_code"])
    print(json.dumps(check, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(check, indent=1) + "\n")
    return 0 if check["same_images"] else 1


if __name__ == "__main__":
    sys.exit(main())
