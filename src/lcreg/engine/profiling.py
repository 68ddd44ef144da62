"""``lcreg train --profile N``: a PyTorch profiler trace of N training steps of the first
epoch (after 2 skipped and 2 warm-up steps), written as a Chrome / TensorBoard trace into
RUN/profile/, with the operator table in RUN/profile/top_ops.txt."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator

import torch

from lcreg.files import atomic_write_text


@contextlib.contextmanager
def step_profiler(out_dir: Path, active_steps: int, device: torch.device) -> Iterator[Callable[[], None]]:
    """Yields ``step()`` to call after every training step; a no-op when active_steps = 0."""
    if active_steps <= 0:
        yield lambda: None
        return
    from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

    out_dir.mkdir(parents=True, exist_ok=True)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(
        activities=activities,
        schedule=schedule(wait=2, warmup=2, active=active_steps, repeat=1),
        on_trace_ready=tensorboard_trace_handler(str(out_dir)),
        record_shapes=True,
    ) as prof:
        yield prof.step
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    try:
        table = prof.key_averages().table(sort_by=sort, row_limit=30)
    except (AssertionError, RuntimeError):  # fewer steps ran than the schedule needs
        table = "the epoch ended before the profiled steps\n"
    atomic_write_text(out_dir / "top_ops.txt", table)
