"""``lcreg runs DIR``: one row per finished run, its numerics and minutes named; the seed
summary counts seeds, not runs (two runs of one seed are no spread); one-stage methods are
read from stage 1; unfinished runs are named, not counted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lcreg.cli import main
from lcreg.commands import runs_table as rt
from lcreg.config import load_config, save_config
from lcreg.methods import get_method


def _fake_run(folder: Path, seed: int, top1: float, overrides: list[str], device="CPU (x86_64, 2 cores)", wall=None):
    folder.mkdir(parents=True)
    cfg = load_config("cifar10_lt_if100", [f"seed={seed}", *overrides])
    save_config(cfg, folder / "config.yaml")
    (folder / "environment.json").write_text(json.dumps({"device": device, "commit": "abc"}))
    test = {"top1": top1, "many": top1, "medium": top1 - 0.1, "few": None, "ece": 0.02}
    last = f"stage{get_method(cfg.method).stages(cfg)[-1]}"  # a one-stage method ends after stage 1
    final = {"stage1": {"test": {**test, "top1": top1 - 0.1}}}
    final[last] = {"test": test, **({"wall_seconds": wall} if wall is not None else {})}
    (folder / "final_metrics.json").write_text(json.dumps(final))
    (folder / f"{last}_model.safetensors").write_bytes(b"x")
    (folder / "metrics.jsonl").write_text(
        "".join(json.dumps({"stage": 1, "epoch": e, "seconds": 30.0}) + "\n" for e in (1, 2))
    )


def test_rows_numerics_minutes_and_seed_summary(tmp_path):
    _fake_run(tmp_path / "a", 0, 0.70, [], wall=150.0)
    _fake_run(tmp_path / "b", 1, 0.74, [])
    _fake_run(tmp_path / "c", 0, 0.90, ["amp=bf16", "compile=on"])  # same seed as a, other numerics
    _fake_run(tmp_path / "d", 0, 0.60, [], device="NVIDIA H100 80GB HBM3")  # auto: bf16 compiled on CUDA
    _fake_run(tmp_path / "e", 0, 0.50, ["method=ce"])  # one stage: its numbers are stage 1's
    (tmp_path / "f").mkdir()  # a run that died in stage 1: named, not counted
    save_config(load_config("cifar10_lt_if100", []), tmp_path / "f" / "config.yaml")
    (tmp_path / "f" / "environment.json").write_text("{}")
    runs, unfinished = rt.load_runs(tmp_path)
    assert [r.folder.name for r in runs] == ["a", "b", "c", "d", "e"] and unfinished == [tmp_path / "f"]
    rows = {r["run"]: r for r in rt.run_rows(runs, tmp_path)}
    # minutes: the recorded wall time, else the logged epochs, marked as such
    assert (rows["a"]["minutes"], rows["a"]["wall_time"]) == (2.5, True)
    assert (rows["b"]["minutes"], rows["b"]["wall_time"]) == (1.0, False)
    assert [rows[k]["precision"] for k in "abcd"] == ["fp32 eager", "fp32 eager", "bf16 compiled", "bf16 compiled"]
    assert rows["e"]["top1"] == pytest.approx(50.0) and rows["e"]["method"] == "ce"
    groups = {(g["method"].split(" ")[0], g["precision"]): g for g in rt.seed_rows(runs)}
    fp32 = groups[("LCReg", "fp32 eager")]
    assert (fp32["seeds"], fp32["runs"]) == (2, 2) and fp32["top1_mean"] == pytest.approx(72.0)
    assert fp32["top1_std"] == pytest.approx(2.828, abs=1e-3) and fp32["medium_mean"] == pytest.approx(62.0)
    # c and d: the same seed with the same numerics -> one seed, two runs, averaged, no spread
    bf16 = groups[("LCReg", "bf16 compiled")]
    assert (bf16["seeds"], bf16["runs"], bf16["top1_std"]) == (1, 2, None)
    assert bf16["top1_mean"] == pytest.approx(75.0) and bf16["few_mean"] is None
    md = rt.markdown(runs, unfinished, tmp_path)
    assert "| 72.00 | 2.83 | 72.00 | 62.00 | - | 2.00 |" in md and "- (one seed)" in md
    assert "1.0 (epochs only)" in md and "Not finished, not counted (1): `f`" in md
    assert (rows["a"]["commit"], rows["a"]["device"]) == ("abc", "CPU (x86_64, 2 cores)")


def test_a_resumed_run_names_every_commit_and_device(tmp_path):
    _fake_run(tmp_path / "a", 0, 0.70, [])
    env_path = tmp_path / "a" / "environment.json"
    env = json.loads(env_path.read_text())
    env["resumes"] = [{"commit": "def", "device": "NVIDIA H200", "stage": 1, "epoch": 101}]
    env_path.write_text(json.dumps(env))
    runs, _ = rt.load_runs(tmp_path)
    row = rt.run_rows(runs, tmp_path)[0]
    assert (row["commit"], row["device"]) == ("abc then def", "CPU (x86_64, 2 cores) then NVIDIA H200")
    assert runs[0].numerics == (False, False)  # resolved on the device it started on


def test_runs_command_formats(tmp_path, capsys):
    _fake_run(tmp_path / "runs" / "a", 0, 0.70, [], wall=60.0)
    assert main(["runs", str(tmp_path / "runs"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runs"][0]["top1"] == pytest.approx(70.0) and out["unfinished"] == []
    assert main(["runs", str(tmp_path / "runs"), "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("run,data,method,seed,stage1_top1,top1") and lines[1].startswith("a,")
    assert main(["runs", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith("lcreg: error: ")


def test_closed_stdout_ends_quietly(tmp_path):
    _fake_run(tmp_path / "a", 0, 0.70, [])
    proc = subprocess.Popen(
        [sys.executable, "-m", "lcreg", "runs", str(tmp_path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # as `| head` does once it has its lines
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and err == ""


def test_runs_differing_in_any_method_key_are_not_averaged_together(tmp_path):
    # two LCReg runs apart only in the decoder, a third in the covariance samples: three groups
    _fake_run(tmp_path / "a", 0, 0.70, [])
    _fake_run(tmp_path / "b", 0, 0.72, ["model.latent.decoder=sum_recon"])
    _fake_run(tmp_path / "c", 0, 0.74, ["loss.latent_samples=positions"])
    # MiSLAS runs apart only in a key its objective never reads: one group; focal's gamma: two
    _fake_run(tmp_path / "d", 0, 0.60, ["method=mislas"])
    _fake_run(tmp_path / "e", 1, 0.62, ["method=mislas", "loss.detach_features=false"])
    _fake_run(tmp_path / "f", 0, 0.50, ["method=focal"])
    _fake_run(tmp_path / "g", 0, 0.52, ["method=focal", "method_params.gamma=1"])
    runs, _ = rt.load_runs(tmp_path)
    groups = {g["method"]: g for g in rt.seed_rows(runs)}
    lcreg = [m for m in groups if m.startswith("LCReg")]
    assert len(lcreg) == 3 and all(groups[m]["runs"] == 1 for m in lcreg)
    assert any("decoder=sum_recon" in m for m in lcreg) and any("latent_samples=positions" in m for m in lcreg)
    assert groups["MiSLAS"]["seeds"] == 2
    assert {"focal", "focal (gamma=1.0)"} <= set(groups)


def test_runs_on_another_backbone_padding_or_validation_split_are_their_own_group(tmp_path):
    _fake_run(tmp_path / "a", 0, 0.70, ["method=mislas"])
    _fake_run(tmp_path / "b", 1, 0.72, ["method=mislas", "model.padding=reflect"])
    _fake_run(tmp_path / "c", 2, 0.74, ["method=mislas", "data.val_source=unused"])
    runs, _ = rt.load_runs(tmp_path)
    groups = {g["method"]: g for g in rt.seed_rows(runs)}
    assert set(groups) == {"MiSLAS", "MiSLAS (reflect padding)", "MiSLAS (val 1000 a class from unused images)"}


def test_the_epochs_column_counts_the_stages_a_run_trained():
    from lcreg.commands.runs_table import stage_epochs

    assert stage_epochs({"stage1": {"epoch": 200}, "stage2": {"epoch": 10}}) == "200+10"
    assert stage_epochs({"stage1": {"epoch": 200}}) == "200"  # one-stage method: no stage 2 trained
    assert stage_epochs({"stage2": {"epoch": 10}}) == "+10"  # cRT on another run's stage 1
