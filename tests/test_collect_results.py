"""benchmarks/collect_results.py: the results table names each run's numerics, and the
seed summary counts seeds, not runs (two runs of one seed are no spread)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import yaml

from lcreg.config import load_config, save_config

ROOT = Path(__file__).resolve().parents[1]


def _collect_module():
    spec = importlib.util.spec_from_file_location("collect_results", ROOT / "benchmarks" / "collect_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_run(
    folder: Path,
    seed: int,
    top1: float,
    overrides: list[str],
    device: str = "CPU (x86_64, 2 cores)",
    wall: float | None = None,
):
    folder.mkdir(parents=True)
    save_config(load_config("cifar10_lt_if100", [f"seed={seed}", *overrides]), folder / "config.yaml")
    (folder / "environment.json").write_text(json.dumps({"device": device, "commit": "abc"}))
    test = {"top1": top1, "many": top1, "medium": top1, "few": None, "ece": 0.02}
    final = {"stage1": {"test": test}, "stage2": {"test": test}}
    if wall is not None:
        final["stage2"]["wall_seconds"] = wall
    (folder / "final_metrics.json").write_text(json.dumps(final))
    (folder / "metrics.jsonl").write_text(
        "".join(json.dumps({"stage": 1, "epoch": e, "seconds": 30.0}) + "\n" for e in (1, 2))
    )


def test_precision_column_and_seed_summary(tmp_path):
    collect = _collect_module()
    _fake_run(tmp_path / "a", 0, 0.70, [], wall=150.0)
    _fake_run(tmp_path / "b", 1, 0.74, [])
    _fake_run(tmp_path / "c", 0, 0.90, ["amp=bf16", "compile=on"])  # same seed as a, other numerics
    _fake_run(tmp_path / "d", 0, 0.60, [], device="NVIDIA H100 80GB HBM3")  # auto: bf16 compiled on CUDA
    runs = collect.load_runs(tmp_path)
    # minutes: the recorded wall time, else the logged epochs, marked as such
    assert [collect.minutes(r) for r in runs[:2]] == ["2.5", "1.0 (epochs only)"]
    assert [collect.precision(r) for r in runs] == ["fp32 eager", "fp32 eager", "bf16 compiled", "bf16 compiled"]
    rows = {line.split(" | ")[2]: line.split(" | ") for line in collect.seed_summary(runs).splitlines()[2:]}
    assert rows["fp32 eager"][3:6] == ["2", "2", "72.00"]  # seeds 0 and 1: mean 72, std 2.83
    assert rows["fp32 eager"][6].startswith("2.83")
    # c and d: the same seed with the same numerics -> one seed, two runs, averaged, no spread
    assert rows["bf16 compiled"][3:6] == ["1", "2", "75.00"]
    assert rows["bf16 compiled"][6].startswith("- (one seed)")
    assert yaml.safe_load((tmp_path / "c" / "config.yaml").read_text())["amp"] == "bf16"
