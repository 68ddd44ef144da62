"""``torch.compile`` for training, with a clean fall-back to eager.

The backbone and the head are compiled in place (``nn.Module.compile``), so parameter
names, checkpoints and ``load_state_dict`` are unchanged. The losses stay eager: they take
host floats that change every step (mixup's lambda, the ISDA ramp t / T), which would
otherwise recompile. Before training, one forward + backward on a real batch triggers the
compilation; if it fails (no C++ compiler, an unsupported op, a backend error) the model
goes back to eager with a one-line warning, and the batch leaves no trace (BN statistics
and gradients restored).

``compile = auto`` compiles on CUDA only. On the 2-core CPU here compiling pays on long runs
(stage-1 step 261 -> 307 images/s in fp32, 450 -> 685 in bf16; results/speed/cpu_*.json)
but costs about a minute of compile time and needs a C++ toolchain, which the demo, the
tests and short runs would not earn back; ``--compile on`` asks for it.
"""

from __future__ import annotations

import warnings
from typing import Callable

import torch
import torch.nn as nn

from lcreg.errors import LcregWarning
from lcreg.runtime.environment import numerics

COMPILE_SETTINGS = ("auto", "on", "off")
COMPILE_MODES = ("auto", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def should_compile(setting: str, device: torch.device) -> bool:
    if setting not in COMPILE_SETTINGS:
        raise ValueError(f"compile must be one of {COMPILE_SETTINGS}, got {setting!r}")
    return numerics("off", setting, device.type == "cuda")[1]


def resolve_mode(mode: str) -> str:
    """``auto``: Inductor's default mode (no CUDA graphs) until CUDA graphs are measured
    to be safe and faster for this step."""
    return "default" if mode == "auto" else mode


def _compiled_parts(model: nn.Module) -> list[nn.Module]:
    return [m for m in (getattr(model, "backbone", None), getattr(model, "head", None)) if m is not None] or [model]


def compile_model(model: nn.Module, mode: str = "default") -> None:
    for part in _compiled_parts(model):
        part.compile(mode=mode)


def uncompile_model(model: nn.Module) -> None:
    for part in _compiled_parts(model):
        part._compiled_call_impl = None  # what nn.Module.compile sets; None restores eager calls


def is_compiled(model: nn.Module) -> bool:
    return any(getattr(p, "_compiled_call_impl", None) is not None for p in _compiled_parts(model))


def compile_or_fall_back(model: nn.Module, mode: str, probe: Callable[[], torch.Tensor]) -> bool:
    """Compile, run ``probe`` (returns a scalar to backpropagate) to trigger compilation,
    undo its side effects; on any error return to eager. Returns whether compiled."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    compile_model(model, mode)
    try:
        probe().backward()
        ok = True
    except Exception as e:  # noqa: BLE001 - any compiler failure means: train eagerly
        uncompile_model(model)
        warnings.warn(
            f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0][:160]}); training eagerly",
            LcregWarning,
            stacklevel=2,
        )
        ok = False
    model.load_state_dict(state)
    for p in model.parameters():
        p.grad = None
    return ok
