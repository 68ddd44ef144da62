"""Device choice, seeding, determinism, mixed precision and the provenance of a run."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lcreg.errors import LcregError, short


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise LcregError(f"unknown device '{short(name, 30)}' (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise LcregError(f"device '{short(name, 30)}' is not supported by lcreg (auto, cpu, cuda, cuda:N)")
    if not torch.cuda.is_available():
        raise LcregError(f"device '{name}' requested but CUDA is not available (use device=cpu)")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise LcregError(f"device '{name}' does not exist: {torch.cuda.device_count()} CUDA device(s) here")
    return device


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def numerics(amp: str, compile_setting: str, cuda: bool) -> tuple[bool, bool]:
    """(bf16, compiled) that the ``amp`` and ``compile`` settings mean on a CUDA device or
    elsewhere: ``auto`` is bf16 and compiled on CUDA, fp32 and eager on a CPU."""
    return amp == "bf16" or (amp == "auto" and cuda), compile_setting == "on" or (compile_setting == "auto" and cuda)


def autocast(device: torch.device, amp: str):
    """bf16 autocast on GPU (amp=auto or bf16); fp32 on CPU unless bf16 is asked for."""
    use, _ = numerics(amp, "off", device.type == "cuda")
    if not use:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def git_commit(root: Path | None = None) -> str | None:
    """HEAD of the checkout the package runs from (or of ``root``), ``-dirty`` when a
    tracked file outside ``results/`` differs from it (a queue rewrites committed result
    tables while it runs; they do not change what trains)."""
    root = root if root is not None else Path(__file__).resolve().parents[3]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)results"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return (
        f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    )


def command_line(argv: list[str]) -> str:
    """The command as a user would type it, without this machine's paths: ``lcreg ...`` for
    the entry point or ``python -m lcreg``, paths below the working folder made relative."""
    cwd = os.getcwd() + os.sep
    first = os.path.basename(argv[0]) if argv else "lcreg"
    words = ["lcreg" if first in ("lcreg", "__main__.py") else first]
    words += [a.replace(cwd, "") for a in argv[1:]]
    return " ".join(words)


def environment_info(device: torch.device) -> dict:
    return {
        "commit": git_commit(),
        "device": device_name(device),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "command": command_line(sys.argv),
    }


def with_resume(env: dict, device: torch.device, stage: int, epoch: int) -> dict:
    """``env`` (a run's environment.json) with one more entry under ``resumes``: the
    commit, device and command of a process that continued the run from the checkpoint of
    ``stage`` after ``epoch`` epochs. A run started at one commit (or on a CPU) and finished
    at another (or on a GPU) says so, instead of naming only where it began."""
    entry = {
        **environment_info(device),
        "stage": stage,
        "epoch": epoch,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return {**env, "resumes": [*env.get("resumes", []), entry]}


def run_provenance(env: dict, key: str) -> list[str]:
    """Every value of ``key`` (``commit``, ``device``) a run was trained under, in order
    and once each: where it started, then where each resume continued it."""
    values = [env.get(key), *(r.get(key) for r in env.get("resumes", []))]
    return list(dict.fromkeys(v for v in values if v))
