"""Train a peer's code on the CIFAR-10 JPEG copy, resuming where an earlier process stopped.

    python benchmarks/peers/run.py mislas --peer-dir ../peers/MiSLAS --out results/peers/mislas_if100
    python benchmarks/peers/run.py ldam_drw --peer-dir ../peers/LDAM-DRW --out results/peers/ldam_drw_if100
    python benchmarks/peers/run.py ce --peer-dir ../peers/LDAM-DRW --out results/peers/ce_if100

``--data`` is the folder holding ``cifar-10-batches-py/`` written by ``cifar_pickles.py``
(default ``data/peers/cifar10``, git-ignored; written on first use from ``--jpeg``).

Each peer runs from its own checkout through ``launch.py`` (its header lists the shims) with
the peer's own configuration file or flags; the only values given on its command line are
where the data is, ``workers 0`` / ``--workers 0`` (data loading in the training process: on
2 cores a worker only takes time from it) and the seed (MiSLAS's ``deterministic True``, which
seeds 0; LDAM-DRW's ``--seed 0``). The run folder ``--out`` is the peer's working folder: its
logs (committed) and its checkpoints (git-ignored).

- MiSLAS: stage 1 (``config/cifar10/cifar10_imb001_stage1_mixup.yaml``, 200 epochs), then
  stage 2 (``..._stage2_mislas.yaml``, 10 epochs) from stage 1's final checkpoint
  (``current.pth.tar``; the peer's README leaves which one open, the final epoch is our protocol).
- LDAM-DRW: ``cifar_train.py --loss_type LDAM --train_rule DRW`` and
  ``--loss_type CE --train_rule None``, imbalance ratio 0.01, its defaults otherwise.

Run ``peers_table.py`` afterwards to read the logs into results/peers.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
MISLAS_STAGE1 = "config/cifar10/cifar10_imb001_stage1_mixup.yaml"
MISLAS_STAGE2 = "config/cifar10/cifar10_imb001_stage2_mislas.yaml"
LDAM_FLAGS = {
    "ldam_drw": ["--loss_type", "LDAM", "--train_rule", "DRW"],
    "ce": ["--loss_type", "CE", "--train_rule", "None"],
}


REPOS = {"MiSLAS": "https://github.com/dvlab-research/MiSLAS", "LDAM-DRW": "https://github.com/kaidic/LDAM-DRW"}


def _git(peer: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(peer), *args], capture_output=True, text=True).stdout.strip()


def record_launch(out: Path, peer: Path, method: str, cmd: list[str], start_epoch: int) -> None:
    """``out/peer.json``: the peer's repository and commit, that its checkout is unchanged,
    and every launch (command, device, start epoch), so a table names what ran where."""
    changed = _git(peer, "diff", "--name-only", "HEAD")
    if changed:
        sys.exit(f"{peer} has local changes ({changed.split()[:3]}): the peer's code must run unchanged")
    path = out / "peer.json"
    info = json.loads(path.read_text()) if path.exists() else {}
    info.update(
        {
            "peer": peer.name,
            "repo": REPOS.get(peer.name, ""),
            "commit": _git(peer, "rev-parse", "HEAD"),
            "method": method,
            "shims": "benchmarks/peers/launch.py",
        }
    )
    cpu = f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else cpu
    info.setdefault("launches", []).append(
        {
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "device": device,
            "torch": torch.__version__,
            "start_epoch": start_epoch,
            # this repository's commit: the shims (launch.py) and data writer it ran with
            "lcreg_commit": _git(HERE, "rev-parse", "HEAD"),
            "command": " ".join(cmd[1:]).replace(str(peer), "PEER").replace(f"{Path.cwd()}/", ""),
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=1) + "\n")


def mark_finished(out: Path, note: str) -> None:
    """``finished`` in ``out/peer.json``: from here on the run is its logs alone, and its
    checkpoints may leave git (model files stay out of it); a later run.py returns at once."""
    path = out / "peer.json"
    info = json.loads(path.read_text())
    info["finished"] = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "note": note}
    path.write_text(json.dumps(info, indent=1) + "\n")
    print(f"[run] finished: {note}")


def finished(out: Path) -> bool:
    path = out / "peer.json"
    return path.exists() and "finished" in json.loads(path.read_text())


def launch(
    peer: Path,
    out: Path,
    method: str,
    workdir: Path,
    script: str,
    args: list[str],
    start_epoch: int = 0,
    resume_stage1: Path | None = None,
) -> None:
    cmd = [sys.executable, str(HERE / "launch.py"), "--peer-dir", str(peer), "--workdir", str(workdir)]
    if resume_stage1 is not None:
        cmd += ["--resume-stage1", str(resume_stage1)]
    cmd += [script, *args]
    record_launch(out, peer, method, cmd, start_epoch)
    print("[run]", " ".join(cmd).replace(str(peer), "PEER").replace(f"{Path.cwd()}/", ""), flush=True)
    # what the peer prints (its log lines, per-epoch test accuracy) also goes to a file of
    # its own in the run folder, one per launch: the table reads it beside the peer's logs
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / f"stdout-{time.strftime('%Y%m%d-%H%M%S')}.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)


def _epoch_of(side: Path) -> int:
    return int(torch.load(side, weights_only=False)["epoch"])


def latest_checkpoint(stage_dir: Path) -> tuple[Path | None, int]:
    """The newest ``current.pth.tar`` with our resume sidecar, and its epoch (0: none)."""
    best: tuple[Path | None, int] = (None, 0)
    for side in sorted(stage_dir.glob("saved/*/ckps/current.pth.tar.resume")):
        epoch = _epoch_of(side)
        if epoch >= best[1]:
            best = (side.with_suffix(""), epoch)
    return best


def rel(path: Path, workdir: Path) -> str:
    """``path`` as the peer, running in ``workdir``, reaches it: relative, so that what it
    prints and logs names no machine's folders."""
    return os.path.relpath(Path(path).resolve(), workdir.resolve())


def run_mislas(peer: Path, out: Path, data: Path) -> None:
    (out / "stage1").mkdir(parents=True, exist_ok=True)
    (out / "stage2").mkdir(parents=True, exist_ok=True)
    common1 = ["data_path", rel(data, out / "stage1"), "workers", "0", "deterministic", "True"]
    common2 = ["data_path", rel(data, out / "stage2"), "workers", "0", "deterministic", "True"]
    stage1 = out / "stage1"
    ckpt, epoch = latest_checkpoint(stage1)
    if epoch < 200:
        resume = ["resume", rel(ckpt, stage1)] if ckpt is not None else []  # the peer loads the weights
        args = ["--cfg", rel(peer / MISLAS_STAGE1, stage1), *common1, *resume]
        launch(peer, out, "mislas", stage1, "train_stage1.py", args, epoch, ckpt)
        ckpt, epoch = latest_checkpoint(stage1)
    if epoch != 200 or ckpt is None:
        sys.exit(f"stage 1 ended at epoch {epoch}, not 200")
    stage2 = out / "stage2"
    if list(stage2.glob("saved/*/ckps/current.pth.tar")):  # 10 epochs: a partial stage 2 starts over
        done = [
            p
            for p in stage2.glob("saved/*/ckps/current.pth.tar")
            if int(torch.load(p, weights_only=False)["epoch"]) == 10
        ]
        if done:
            mark_finished(out, f"stage 2 at epoch 10 ({done[0].parent.parent.name})")
            return
    args = ["--cfg", rel(peer / MISLAS_STAGE2, stage2), *common2, "resume", rel(ckpt, stage2)]
    launch(peer, out, "mislas", stage2, "train_stage2.py", args, 200)
    mark_finished(out, "stage 2's 10 epochs after stage 1's 200")


def run_ldam(peer: Path, out: Path, data: Path, method: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    link = out / "data"  # the script reads ./data/cifar-10-batches-py
    if not link.exists():
        link.symlink_to(data.resolve())
    store = f"cifar10_resnet32_{LDAM_FLAGS[method][1]}_{LDAM_FLAGS[method][3]}_exp_0.01_0"
    ckpt = out / "checkpoint" / store / "ckpt.pth.tar"
    args = [
        "--dataset",
        "cifar10",
        "--imb_type",
        "exp",
        "--imb_factor",
        "0.01",
        *LDAM_FLAGS[method],
        "--workers",
        "0",
        "--seed",
        "0",
    ]
    epoch = 0
    if ckpt.exists():
        epoch = int(torch.load(ckpt, weights_only=False)["epoch"])
        if epoch >= 200:
            mark_finished(out, f"epoch {epoch}")
            return
        # the script opens its csv logs with "w" on every start: keep the earlier part
        logs = out / "log" / store
        part = 1 + len(list(logs.glob("log_test.part*.csv")))
        for name in ("log_train", "log_test"):
            if (logs / f"{name}.csv").exists():
                (logs / f"{name}.csv").rename(logs / f"{name}.part{part}.csv")
        args += ["--resume", str(ckpt.relative_to(out))]
    launch(peer, out, method, out, "cifar_train.py", args, epoch)
    if int(torch.load(ckpt, weights_only=False)["epoch"]) >= 200:
        mark_finished(out, "200 epochs")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("method", choices=["mislas", *LDAM_FLAGS])
    ap.add_argument("--peer-dir", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--data", type=Path, default=Path("data/peers/cifar10"))
    ap.add_argument("--jpeg", default="data/cifar10-jpeg.tar.gz", help="the JPEG copy, if --data must be written")
    a = ap.parse_args(argv)
    if not (a.data / "cifar-10-batches-py" / "test_batch").exists():
        subprocess.run(
            [sys.executable, str(HERE / "cifar_pickles.py"), "--data-dir", a.jpeg, "--out", str(a.data)], check=True
        )
    if finished(a.out):
        print(f"[run] {a.out} finished (peer.json); its logs are its record")
        return
    if a.method == "mislas":
        run_mislas(a.peer_dir.resolve(), a.out, a.data)
    else:
        run_ldam(a.peer_dir.resolve(), a.out, a.data, a.method)


if __name__ == "__main__":
    main()
