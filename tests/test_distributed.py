"""Multi-process training with 2 gloo processes on CPU: the covariance estimator keeps the
statistics of the global batch on every rank, DDP keeps the ranks' weights identical,
rank 0 alone writes the run folder, and ``torchrun ... -m lcreg train`` works end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lcreg.config import load_config
from lcreg.engine.train import Trainer
from lcreg.losses import CovarianceEstimator
from lcreg.runtime.distributed import DistInfo

WORLD = 2


def _join(rank: int, store_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store_file}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)


def _estimator_worker(rank: int, store_file: str, out_dir: str) -> None:
    _join(rank, store_file)
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(2 * 6, 5, 4, generator=gen) for _ in range(3)]  # global batches (B, M, D)
    flat = [torch.randn(2 * 7, 4, generator=gen) for _ in range(3)]
    labels = [torch.randint(0, 5, (2 * 7,), generator=gen) for _ in range(3)]
    states = {}
    for mode in ("full", "diagonal"):
        est, est_labelled = CovarianceEstimator(5, 4, mode), CovarianceEstimator(5, 4, mode)
        for x, f, y in zip(batches, flat, labels):
            est.update(x.chunk(WORLD)[rank])  # this rank's half of the global batch
            est_labelled.update(f.chunk(WORLD)[rank], y.chunk(WORLD)[rank])
        states[mode] = (est.state_dict(), est_labelled.state_dict())
    torch.save(
        {"states": states, "batches": batches, "flat": flat, "labels": labels},
        os.path.join(out_dir, f"estimator{rank}.pt"),
    )
    dist.barrier()
    dist.destroy_process_group()


def test_estimator_holds_global_batch_statistics_on_every_rank(tmp_path):
    mp.spawn(_estimator_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD)
    ranks = [torch.load(tmp_path / f"estimator{r}.pt") for r in range(WORLD)]
    for mode in ("full", "diagonal"):
        single, single_labelled = CovarianceEstimator(5, 4, mode), CovarianceEstimator(5, 4, mode)
        for x, f, y in zip(ranks[0]["batches"], ranks[0]["flat"], ranks[0]["labels"]):
            single.update(x)
            single_labelled.update(f, y)
        for r in ranks:
            structured, labelled = r["states"][mode]
            for name, ref in single.state_dict().items():
                torch.testing.assert_close(structured[name], ref, rtol=1e-5, atol=1e-6)
            for name, ref in single_labelled.state_dict().items():
                torch.testing.assert_close(labelled[name], ref, rtol=1e-5, atol=1e-6)


def _trainer_worker(rank: int, store_file: str, run_dir: str, out_dir: str) -> None:
    _join(rank, store_file)
    cfg = load_config(
        "demo",
        [
            "device=cpu",
            "stage1.epochs=2",
            "stage1.warmup_epochs=1",
            "stage1.milestones=[1]",
            "stage2.epochs=1",
            "eval_every=0",
            "data.imbalance_factor=10",
        ],
    )
    trainer = Trainer(cfg, run_dir, show_progress=False, dist_info=DistInfo(rank, WORLD, rank))
    if rank == 0:
        trainer.write_run_files()
    trainer.run()
    torch.save(
        {"model": trainer.model.state_dict(), "objective": trainer.objective.state_dict()},
        os.path.join(out_dir, f"trained{rank}.pt"),
    )
    dist.barrier()
    dist.destroy_process_group()


def test_ddp_ranks_stay_identical_and_rank0_writes(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    mp.spawn(_trainer_worker, args=(str(tmp_path / "store"), str(run), str(tmp_path)), nprocs=WORLD)
    a, b = (torch.load(tmp_path / f"trained{r}.pt") for r in range(WORLD))
    for part in ("model", "objective"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            torch.testing.assert_close(a[part][k], b[part][k], msg=f"{part}.{k} differs between ranks")
    assert a["objective"]["latent_aug.estimator.count"].min() > 0  # the estimator did update
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [(json.loads(x)["stage"], json.loads(x)["epoch"]) for x in lines] == [(1, 1), (1, 2), (2, 1)]
    final = json.loads((run / "final_metrics.json").read_text())
    assert final["stage2"]["test"]["num_samples"] == 500  # the full test split, evaluated once
    # each rank takes its half of every epoch in local batches of 64 / 2 (incomplete dropped);
    # the log counts the images of both ranks
    total = json.loads((run / "data_stats.json").read_text())["total"]
    per_rank = -(-total // WORLD) // 32 * 32
    first = json.loads(lines[0])
    assert round(first["images_per_s"] * first["seconds"]) == WORLD * per_rank


@pytest.mark.slow  # 15 s; failed once in ~12 runs (inside a full suite, output not kept), not reproduced since
def test_torchrun_launches_lcreg_train(tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(WORLD),
        "-m",
        "lcreg",
        "train",
        "demo",
        "device=cpu",
        "stage1.epochs=2",
        "stage1.warmup_epochs=1",
        "stage1.milestones=[1]",
        "stage2.epochs=1",
        "eval_every=0",
        "--out",
        str(run),
        "--no-progress",
        "--json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count('"run_dir"') == 1, done.stdout[-3000:]  # printed once, by rank 0
    summary = json.loads(done.stdout[done.stdout.index('{\n  "run_dir"') :])
    assert summary["final"]["stage2"]["top1"] > 0
    assert (run / "stage2_model.safetensors").is_file() and (run / "checkpoint.pt").is_file()
