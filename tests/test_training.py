"""End-to-end training on the embedded demo (real 8x8 digits), CPU."""

import json

import pytest
import torch

from lcreg.cli import main
from lcreg.config import load_config
from lcreg.engine import train as train_mod
from lcreg.engine.train import Trainer
from lcreg.runtime.checkpoint import load_checkpoint, load_model_file


def test_a_run_ends_with_a_table_for_people(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["stage1.epochs=2", "stage1.warmup_epochs=0", "stage1.milestones=[1]", "stage2.epochs=1", "eval_every=0"]
    assert main(["train", "--out", str(run), "--no-progress", *args]) == 0
    out = capsys.readouterr().out
    final = json.loads((run / "final_metrics.json").read_text())
    top1 = f"{100 * final['stage2']['test']['top1']:.2f}"
    row = next(ln for ln in out.splitlines() if ln.startswith("stage 2"))
    assert row.split()[2] == top1 and "top-1" in out and "effective rank" in out
    assert "{" not in out  # JSON only with --json


def test_demo_learns_and_writes_a_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--no-progress", "--deterministic", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    final = json.loads((run / "final_metrics.json").read_text())
    top1 = final["stage2"]["test"]["top1"]
    assert top1 > 0.6, top1  # 10 balanced test classes: chance is 0.1
    assert out["final"]["stage2"]["top1"] == top1
    for name in [
        "config.yaml",
        "environment.json",
        "data_stats.json",
        "metrics.jsonl",
        "metrics.csv",
        "checkpoint.pt",
        "stage1_model.safetensors",
        "stage2_model.safetensors",
    ]:
        assert (run / name).stat().st_size > 0, name
    assert any((run / "tensorboard").iterdir())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    cfg = load_config("demo")
    assert len(records) == cfg.stage1.epochs + cfg.stage2.epochs
    assert {"many", "medium", "few", "ece"} <= set(final["stage1"]["test"])
    assert set(records[0]["loss"]) == {"total", "cls", "recon", "latent_aug"}
    # stage 2 re-run from the stage-1 folder, into a new folder
    run2 = tmp_path / "run2"
    assert (
        main(["train", "--stage", "2", "--from", str(run), "--out", str(run2), "--no-progress", "stage2.epochs=1"]) == 0
    )
    assert json.loads((run2 / "final_metrics.json").read_text())["stage2"]["test"]["top1"] > 0.5


def _short(tmp_path, name):
    cfg = load_config(
        "demo",
        [
            "stage1.epochs=4",
            "stage1.warmup_epochs=1",
            "stage1.milestones=[3]",
            "stage2.epochs=2",
            "deterministic=true",
            "eval_every=0",
        ],
    )
    return cfg, tmp_path / name


def test_resume_after_a_crash_repeats_the_uninterrupted_run(tmp_path, monkeypatch):
    cfg, run_a = _short(tmp_path, "a")
    Trainer(cfg, run_a, show_progress=False).run()
    reference = load_model_file(run_a / "stage2_model.safetensors")["model"]

    cfg, run_b = _short(tmp_path, "b")
    real = train_mod.train_one_epoch
    calls = {"n": 0}

    def crash_on_third(plan, *args, **kwargs):
        calls["n"] += plan.stage == 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(plan, *args, **kwargs)

    monkeypatch.setattr(train_mod, "train_one_epoch", crash_on_third)
    trainer = Trainer(cfg, run_b, show_progress=False)
    trainer.write_run_files()
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    monkeypatch.setattr(train_mod, "train_one_epoch", real)
    assert load_checkpoint(run_b / "checkpoint.pt")["epoch"] == 2
    assert main(["train", "--resume", str(run_b), "--no-progress"]) == 0
    resumed = load_model_file(run_b / "stage2_model.safetensors")["model"]
    for k in reference:
        assert torch.equal(reference[k], resumed[k]), k
    lines = (run_b / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3, 4, 1, 2]
    # wall time carries over the resume: it covers the epochs of both processes
    records = [json.loads(x) for x in lines]
    elapsed = [r["elapsed_s"] for r in records]
    assert elapsed == sorted(elapsed)
    wall = json.loads((run_b / "final_metrics.json").read_text())["stage2"]["wall_seconds"]
    assert wall >= elapsed[-1] >= sum(r["seconds"] for r in records)


def test_baseline_has_no_latent_terms(tmp_path):
    cfg = load_config("demo", ["method=mislas", "stage1.epochs=1", "stage2.epochs=1", "eval_every=0"])
    final = Trainer(cfg, tmp_path, show_progress=False).run()
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert set(record["loss"]) == {"total", "cls"}
    assert 0 <= final["stage2"]["test"]["top1"] <= 1
