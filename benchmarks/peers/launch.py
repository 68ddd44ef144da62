"""Run a peer's own training script, unchanged, on this machine: the shims it needs, and nothing else.

    python benchmarks/peers/launch.py --peer-dir CHECKOUT --workdir RUN [--resume-stage1 CKPT] \
        -- SCRIPT.py [the script's own arguments]

The peer's code stays in its own checkout (``--peer-dir``, outside this repository); the script
runs from ``--workdir`` (where it writes its logs and checkpoints) with the checkout first on
``sys.path``, exactly as ``cd CHECKOUT && python SCRIPT.py ...`` would, after these shims:

1. NumPy aliases removed in NumPy 1.24 (``np.float``, ``np.int``, ``np.bool``, ``np.object``):
   MiSLAS's ``utils/metric.py`` (its ECE) uses ``np.float`` and ``np.int``.
2. CPU instead of ``.cuda()``: where no GPU is present, ``Tensor.cuda`` and ``Module.cuda``
   return the object unchanged (both codes call ``.cuda()`` unconditionally in places), and
   the legacy type ``torch.cuda.FloatTensor`` is ``torch.FloatTensor`` (LDAM-DRW's ``LDAMLoss``
   builds its margins with it and casts its one-hot mask to it).
   ``torch.nn.DataParallel`` already runs the bare module when there is no GPU.
3. ``torch.load(weights_only=False, map_location="cpu")`` by default: the peers' own checkpoints
   hold Python objects (argparse namespaces, tensors of best accuracy) and LDAM-DRW maps them
   to ``cuda:0``. Only files the peer itself wrote in ``--workdir`` are loaded.
4. An offline dataset check: torchvision's CIFAR reader compares MD5 sums of the original
   pickles (``check_integrity`` in ``torchvision.datasets.cifar``), which the JPEG copy written
   by ``cifar_pickles.py`` cannot match, and then tries to download. Within that module it
   becomes "the file is there".
5. ``Tensor.view`` falls back to ``reshape`` where PyTorch refuses a view of a non-contiguous
   tensor (MiSLAS's top-k ``accuracy``, ``correct[:k].view(-1)`` of a transposed tensor, an
   error since PyTorch 1.5; the values are the same).
6. Resume of MiSLAS's stage 1 (``--resume-stage1 CKPT``): its ``resume`` option loads the
   weights and best accuracy but restarts at epoch 0 with fresh momentum. With this shim the
   epoch loop (``range(num_epochs)`` in the script) starts at the checkpoint's epoch, the SGD
   momentum buffers and the RNG states are restored from ``CKPT`` + ``.resume`` (written by
   this shim beside every ``current.pth.tar`` the peer saves). LDAM-DRW resumes by itself
   (``--resume``, epoch and optimizer included).

Measured here (2-core CPU, fp32 eager, CIFAR-10-LT IF 100): see results/peers.md for the
seconds per epoch each run logged.
"""

from __future__ import annotations

import argparse
import builtins
import os
import random
import runpy
import sys
from pathlib import Path

import numpy as np
import torch

_SIDE = ".resume"  # our sidecar beside the peer's checkpoint: optimizer, RNG states
_optimizers: list[torch.optim.Optimizer] = []


def shim_numpy_aliases() -> None:
    for name, value in {"float": float, "int": int, "bool": bool, "object": object}.items():
        if name not in np.__dict__:
            setattr(np, name, value)


def shim_cpu() -> None:
    if torch.cuda.is_available():
        return
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.cuda.FloatTensor = torch.FloatTensor  # type: ignore[attr-defined, misc]


def shim_torch_load() -> None:
    original = torch.load

    def load(f, *args, **kwargs):
        kwargs.setdefault("weights_only", False)
        kwargs["map_location"] = "cpu" if not torch.cuda.is_available() else kwargs.get("map_location")
        return original(f, *args, **kwargs)

    torch.load = load


def shim_view_fallback() -> None:
    original = torch.Tensor.view

    def view(self, *shape):
        try:
            return original(self, *shape)
        except RuntimeError as e:  # only where PyTorch >= 1.5 refuses a view: same values
            if "view size is not compatible" not in str(e):
                raise
            return self.reshape(*shape)

    torch.Tensor.view = view  # type: ignore[method-assign]


def shim_offline_cifar() -> None:
    import torchvision.datasets.cifar as cifar

    # used by CIFAR10/100 for the batches (then a download) and for the meta file
    cifar.check_integrity = lambda fpath, md5=None: os.path.isfile(fpath)


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def shim_stage1_resume(checkpoint: Path | None) -> dict:
    """Record optimizer + RNG beside each ``current.pth.tar``; on resume, restore them and
    start the epoch loop at the checkpoint's epoch. Returns init_globals for the script."""
    base_sgd = torch.optim.SGD
    side = torch.load(str(checkpoint) + _SIDE, weights_only=False) if checkpoint else None

    class SGD(base_sgd):  # the script builds exactly one optimizer
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            _optimizers.append(self)
            if side is not None:
                self.load_state_dict(side["optimizer"])
                torch.set_rng_state(side["rng"]["torch"])
                np.random.set_state(side["rng"]["numpy"])
                random.setstate(side["rng"]["python"])

    torch.optim.SGD = SGD
    save = torch.save

    def save_with_side(obj, f, *args, **kwargs):
        save(obj, f, *args, **kwargs)
        if isinstance(f, (str, os.PathLike)) and str(f).endswith("current.pth.tar") and _optimizers:
            save(
                {"epoch": obj["epoch"], "optimizer": _optimizers[-1].state_dict(), "rng": _rng_state()}, str(f) + _SIDE
            )

    torch.save = save_with_side
    if side is None:
        return {}
    start = int(side["epoch"])
    print(f"[launch] resuming stage 1 at epoch {start} from {checkpoint}", flush=True)
    # the script's one call range(config.num_epochs) becomes range(start, num_epochs)
    return {"range": lambda *a: builtins.range(start, *a) if len(a) == 1 else builtins.range(*a)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="run a peer's training script with the listed shims")
    ap.add_argument("--peer-dir", required=True, type=Path, help="the peer's checkout (outside this repository)")
    ap.add_argument("--workdir", required=True, type=Path, help="where the script runs and writes")
    ap.add_argument("--resume-stage1", type=Path, help="MiSLAS stage 1: the current.pth.tar to continue")
    ap.add_argument("script", help="the peer's script, relative to --peer-dir")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    a = ap.parse_args(argv)

    peer = a.peer_dir.resolve()
    shim_numpy_aliases()
    shim_cpu()
    shim_torch_load()
    shim_view_fallback()
    shim_offline_cifar()
    init = shim_stage1_resume(a.resume_stage1.resolve() if a.resume_stage1 else None)
    a.workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(a.workdir)
    sys.path.insert(0, str(peer))
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    sys.argv = [str(peer / a.script), *args]
    runpy.run_path(str(peer / a.script), init_globals=init, run_name="__main__")


if __name__ == "__main__":
    main()
