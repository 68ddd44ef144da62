"""Multi-process training under ``torchrun``: process group, device per rank, and the few
collectives the engine needs.

    torchrun --nproc_per_node 4 -m lcreg train cifar10_lt_if100 --data-dir PATH

One process per GPU (NCCL), or per CPU worker (gloo). ``stage1.batch_size`` and
``stage2.batch_size`` stay the GLOBAL batch (128 in the paper's recipe), split evenly over
the ranks, so a run reproduces the same recipe on any number of GPUs. Gradients are
averaged by ``DistributedDataParallel``; the latent covariance estimator gathers every
rank's samples before its update (losses/latent.py), so all ranks keep the statistics of
the global batch; rank 0 alone writes the run folder. Tested with 2 gloo processes on CPU
(tests/test_distributed.py): the ranks end with identical weights and estimator state.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from lcreg.errors import LcregError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device_name: str = "auto") -> DistInfo:
    """Join the process group that torchrun describes in the environment (a no-op for a
    single process). Returns this process's rank, world size and local rank."""
    if not launched_by_torchrun():
        return DistInfo()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise LcregError(
                f"local rank {local} but only {torch.cuda.device_count()} GPUs are visible; lower --nproc_per_node"
            )
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    return DistInfo(rank, world, local)


def rank_device(info: DistInfo, device: torch.device) -> torch.device:
    """cuda -> cuda:LOCAL_RANK under torchrun; other devices unchanged."""
    if info.enabled and device.type == "cuda":
        return torch.device("cuda", info.local_rank)
    return device


def split_batch(global_batch: int, info: DistInfo) -> int:
    if global_batch % info.world_size:
        raise LcregError(f"batch size {global_batch} does not split evenly over {info.world_size} processes")
    return global_batch // info.world_size


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. the run folder it chose)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def world_size() -> int:
    """Processes in the current group (1 when there is none)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@contextlib.contextmanager
def main_process_first(info: DistInfo):
    """Rank 0 runs the block first (extracting an archive, decoding images into the cache),
    the other ranks after it, so they read the finished cache instead of racing to write it."""
    if not info.is_main:
        barrier(info)
    yield
    if info.is_main:
        barrier(info)


def average_(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mean over ranks, in place (loss sums for the log)."""
    n = world_size()
    if n > 1:
        for v in values.values():
            dist.all_reduce(v, op=dist.ReduceOp.SUM)
            v.div_(n)
    return values


def average_buffers_(model: nn.Module) -> None:
    """Average floating-point buffers (BN running statistics) over ranks at the end of an
    epoch: DDP only broadcasts rank 0's buffers at the next forward, and the frozen trunk
    of stage 2 re-estimates them (shift-BN) outside DDP on each rank's own batches."""
    n = world_size()
    if n == 1:
        return
    for buf in model.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            buf.div_(n)


def wrap_ddp(module: nn.Module, info: DistInfo, device: torch.device, broadcast_buffers: bool = True) -> nn.Module:
    """DistributedDataParallel over ``module`` (itself when single-process). static_graph:
    the same parameters take part in every step (a latent bias unused when alpha = 0 is
    fine), which also lets DDP skip the search for unused parameters.
    ``broadcast_buffers=False`` lets each rank keep its own BN statistics until
    ``average_buffers_`` (stage 2's shift-BN: an average over all ranks' batches)."""
    if not info.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, static_graph=True, broadcast_buffers=broadcast_buffers)


def destroy(info: DistInfo) -> None:
    """Leave together: rank 0 ends later than the others (it evaluates and writes), and a
    rank that tears down its connections while a peer still holds them can fail the peer."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
