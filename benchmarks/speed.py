"""Training-step speed of the plain ResNet-32, MiSLAS stage 1 and LCReg stage 1 (eager and
compiled), and the time and memory of the latent covariance estimator.

    python benchmarks/speed.py                         # this device, eager and compiled
    python benchmarks/speed.py --compile off --out results/speed/cpu.json
    python benchmarks/speed.py --only covariance

Every step is the real one: ``train_one_epoch`` of the engine's stage-1 plan on the device-resident
loader (random crop + flip on the device) over CIFAR-shaped images, batch 128, the
cifar10_lt_if100 preset. Variants: ``plain`` (latent head off, no mixup, CE), ``mislas``
(latent head off, mixup), ``lcreg`` (latent head, mixup, eq. 10). Images/s is the median
of ``--repeats`` timed epochs of ``--steps`` steps after one warm-up epoch; the device is
synchronised at the end of each timed epoch only. Ratios are only taken between figures of
the same run (same machine).

Prints one JSON object (device, torch version, batch size, each figure) and a table.
Measured figures are committed under results/speed/ and quoted in the README.

Measured on the project's 2-core CPU, variants interleaved (results/speed/cpu_fp32.json,
cpu_bf16.json): LCReg 261 / 307 / 450 / 685 images/s in fp32 eager / fp32 compiled / bf16
eager / bf16 compiled, 1.13 / 1.14 / 1.13 / 1.06 x the plain ResNet-32 step time; a 9-repeat
rerun of bf16 compiled gave 1.16 (results/speed/cpu_bf16_compiled_r9.json; single interleaved
pairs ranged 0.76-1.60 on this shared host, so the ratio is known to about +-0.05 here).
Full covariance at 200 x 2048 (results/speed/cpu_eager.json): 3.2 GB state, 3.5 GB peak,
1.5 s per update; diagonal: 3.1 MB state. Not yet measured on a GPU. CPU peak memory is the
process's resident set with every variant of a mode loaded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lcreg.config import load_config
from lcreg.data.images import ImageSet
from lcreg.engine.stages import (
    FeaturesAndHead,
    Stage1Step,
    StagePlan,
    compile_for_training,
    stage1_optimizer,
    train_one_epoch,
)
from lcreg.engine.train import train_loader
from lcreg.losses import CovarianceEstimator
from lcreg.methods import create_model, get_method
from lcreg.runtime.environment import environment_info, select_device

VARIANTS = {
    "plain": ["method=ce"],
    "mislas": ["method=mislas"],
    "lcreg": [],
}
COVARIANCE_SIZES = ((40, 64), (100, 2048), (200, 2048))


# --------------------------------------------------------------------------------------
# memory


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:  # Linux: "5" resets the peak resident set size (VmHWM) of this process
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _peak_mb(device: torch.device) -> float:
    """Peak since the last reset: allocated CUDA memory, or the process's resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return _status_kb("VmHWM") / 1024


def _current_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    return _status_kb("VmRSS") / 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------------------
# training step


def prepare_step(
    variant: str,
    compiled: bool,
    device: torch.device,
    batch_size: int,
    steps: int,
    total_epochs: int,
    amp: str = "auto",
    compile_mode: str = "auto",
) -> dict:
    """Model, objective, optimizer and loader of one variant, compiled if asked, after one
    warm-up epoch (allocator, autotuning, graphs). ``run(epoch)`` times one more epoch."""
    overrides = VARIANTS[variant] + [
        f"compile={'on' if compiled else 'off'}",
        f"stage1.batch_size={batch_size}",
        f"amp={amp}",
        f"compile_mode={compile_mode}",
    ]
    cfg = load_config("cifar10_lt_if100", overrides)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = batch_size * steps
    split = ImageSet(rng.integers(0, 10, n), images=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8))
    method = get_method(cfg.method)
    model = create_model(cfg, 10, method).to(device, memory_format=torch.channels_last)
    objective = method.create_objective(cfg, model, [n // 10] * 10).to(device)
    optimizer = stage1_optimizer(cfg, model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1.0)
    loader = train_loader(cfg, split, device, batch_size, "instance", 1, seed=0)
    start = time.perf_counter()
    is_compiled = compile_for_training(model, cfg, device, batch_size)
    compile_s = time.perf_counter() - start if compiled else 0.0

    step = Stage1Step(
        FeaturesAndHead(model),
        objective,
        optimizer,
        scheduler,
        cfg,
        device,
        cfg.stage1.mixup_alpha if method.mixup else 0.0,
        rng,
        loader.generator,
        total_epochs * steps,
    )
    plan = StagePlan(1, total_epochs, loader, optimizer, scheduler, step, lambda: (model.train(), objective.train()))

    def run(epoch: int) -> float:
        res = train_one_epoch(plan, epoch, device, cfg.log_every, show=False)
        return res.images / res.seconds

    run(0)
    return {
        "variant": variant,
        "compiled": is_compiled,
        "compile_requested": compiled,
        "amp": amp,
        "compile_s": compile_s,
        "run": run,
    }


def bench_steps(
    variants: list[str],
    compiled: bool,
    device: torch.device,
    batch_size: int,
    steps: int,
    repeats: int,
    amp: str = "auto",
    compile_mode: str = "auto",
) -> list[dict]:
    """Images/s of each variant, median of ``repeats`` timed epochs. The variants take turns
    epoch by epoch, so a slow drift of a shared machine hits all of them alike (measured on
    the 2-core CPU: the same step, timed in separate blocks minutes apart, varied by 15%)."""
    benches = [prepare_step(v, compiled, device, batch_size, steps, repeats + 1, amp, compile_mode) for v in variants]
    rates: dict[str, list[float]] = {v: [] for v in variants}
    peaks = {v: 0.0 for v in variants}
    for r in range(1, repeats + 1):
        for b in benches:
            _reset_peak(device)
            rates[b["variant"]].append(b["run"](r))
            peaks[b["variant"]] = max(peaks[b["variant"]], _peak_mb(device))
    return [
        {
            **{k: v for k, v in b.items() if k != "run"},
            "images_per_s": statistics.median(rates[b["variant"]]),
            "images_per_s_all": rates[b["variant"]],
            "peak_mb": peaks[b["variant"]],
            "steps": steps,
            "repeats": repeats,
        }
        for b in benches
    ]


# --------------------------------------------------------------------------------------
# covariance estimator


def bench_covariance(m: int, d: int, mode: str, device: torch.device, batch_size: int, updates: int) -> dict:
    torch.manual_seed(0)
    samples = torch.randn(batch_size, m, d, device=device)
    keys = torch.randn(d, m, device=device) * d**-0.5
    base = _current_mb(device)
    _reset_peak(device)
    est = CovarianceEstimator(m, d, mode).to(device)
    state_mb = sum(b.numel() * b.element_size() for b in est.buffers()) / 2**20
    est.update(samples)  # warm-up (first touch of the buffers)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(updates):
        est.update(samples)
    _sync(device)
    update_ms = (time.perf_counter() - t0) / updates * 1e3
    t0 = time.perf_counter()
    q = est.quadratic(keys)
    _sync(device)
    quadratic_ms = (time.perf_counter() - t0) * 1e3
    assert torch.isfinite(q).all()
    peak = _peak_mb(device) - base
    del est, q
    return {
        "num_latents": m,
        "dim": d,
        "mode": mode,
        "samples_per_update": batch_size * m,
        "state_mb": state_mb,
        "peak_mb_over_baseline": peak,
        "update_ms": update_ms,
        "quadratic_ms": quadratic_ms,
    }


# --------------------------------------------------------------------------------------


def print_table(result: dict) -> None:
    print(
        f"\n{result['device']} | torch {result['torch']} | batch {result['batch_size']} | amp {result.get('amp', 'auto')}"
    )
    if result["steps"]:
        print(f"{'variant':<8} {'compiled':>8} {'images/s':>10} {'compile s':>10} {'peak MB':>9}")
        for r in result["steps"]:
            print(
                f"{r['variant']:<8} {str(r['compiled']):>8} {r['images_per_s']:>10.0f} {r['compile_s']:>10.1f} "
                f"{r['peak_mb']:>9.0f}"
            )
        for k, v in result["ratios"].items():
            print(f"  {k}: {v:.3f}")
    if result["covariance"]:
        print(f"{'M x D':>11} {'mode':>9} {'state MB':>9} {'peak MB':>9} {'update ms':>10} {'W^T S W ms':>11}")
        for c in result["covariance"]:
            print(
                f"{c['num_latents']:>5} x {c['dim']:<4} {c['mode']:>9} {c['state_mb']:>9.1f} "
                f"{c['peak_mb_over_baseline']:>9.1f} {c['update_ms']:>10.2f} {c['quadratic_ms']:>11.2f}"
            )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=0, help="steps per timed epoch (default: 20 CPU, 200 GPU)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile", choices=["both", "on", "off"], default="both")
    p.add_argument("--only", choices=["steps", "covariance"], help="run one part only")
    p.add_argument("--variants", default="plain,mislas,lcreg")
    p.add_argument(
        "--amp",
        choices=["auto", "bf16", "off"],
        default="auto",
        help="auto: bf16 on GPU, fp32 on CPU; bf16 on CPU uses AMX/AVX512-BF16 where present",
    )
    p.add_argument(
        "--compile-mode",
        default="auto",
        help="torch.compile mode of the compiled variants (config's "
        "compile_mode: auto, default, reduce-overhead, max-autotune, ...)",
    )
    p.add_argument("--cov-updates", type=int, default=3)
    p.add_argument("--out", help="also write the JSON object here")
    args = p.parse_args(argv)

    device = select_device(args.device)
    steps = args.steps or (200 if device.type == "cuda" else 20)
    # commit, device, torch, python, platform, command: the same record a run folder keeps
    result = {
        **environment_info(device),
        "device_type": device.type,
        "batch_size": args.batch_size,
        "amp": args.amp,
        "compile_mode": args.compile_mode,
        "timing": "variants interleaved epoch by epoch",
        "threads": torch.get_num_threads(),
        "steps": [],
        "ratios": {},
        "covariance": [],
    }
    if args.only != "covariance":
        modes = {"both": [False, True], "on": [True], "off": [False]}[args.compile]
        for compiled in modes:
            for r in bench_steps(
                args.variants.split(","),
                compiled,
                device,
                args.batch_size,
                steps,
                args.repeats,
                args.amp,
                args.compile_mode,
            ):
                result["steps"].append(r)
                print(json.dumps(r), file=sys.stderr)
        by = {(r["variant"], r["compile_requested"]): r["images_per_s"] for r in result["steps"]}
        for compiled in modes:
            tag = "compiled" if compiled else "eager"
            if ("lcreg", compiled) in by and ("plain", compiled) in by:
                # step time ratio: LCReg step / plain step (1.0 = as fast as the plain network)
                result["ratios"][f"lcreg_step_time_over_plain_{tag}"] = (
                    by[("plain", compiled)] / by[("lcreg", compiled)]
                )
            if ("lcreg", compiled) in by and ("mislas", compiled) in by:
                result["ratios"][f"lcreg_step_time_over_mislas_{tag}"] = (
                    by[("mislas", compiled)] / by[("lcreg", compiled)]
                )
        if ("lcreg", True) in by and ("lcreg", False) in by:
            result["ratios"]["lcreg_compiled_speedup"] = by[("lcreg", True)] / by[("lcreg", False)]
    if args.only != "steps":
        for m, d in COVARIANCE_SIZES:
            for mode in ("diagonal", "full"):
                c = bench_covariance(m, d, mode, device, args.batch_size, args.cov_updates)
                result["covariance"].append(c)
                print(json.dumps(c), file=sys.stderr)
    print(json.dumps(result))
    print_table(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
