"""A run killed at any point resumes into the run an uninterrupted process would have
written: complete stage files, one log line per epoch, no stray temporary files."""

from __future__ import annotations

import csv
import json
import os

from lcreg.cli import main
from lcreg.engine import train as train_mod
from lcreg.runtime.checkpoint import load_checkpoint, load_model_file

from conftest import kill_at_call

SHORT = [
    "--no-progress",
    "stage1.epochs=3",
    "stage1.warmup_epochs=0",
    "stage1.milestones=[2]",
    "stage2.epochs=2",
    "eval_every=0",
    "--deterministic",
]


def epochs_logged(run):
    return [(r["stage"], r["epoch"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]


def test_killed_while_writing_the_stage1_model(tmp_path, monkeypatch):
    """The process dies inside the write of stage1_model.safetensors, after the last stage-1
    checkpoint: the resumed run writes that file (complete) before it trains stage 2."""
    run = tmp_path / "run"
    real = train_mod.save_model

    def die_in_stage1_model(path, weights, meta):
        if path.name == "stage1_model.safetensors":
            with open(path.with_name(f".{path.name}.{os.getpid()}.tmp"), "wb") as f:
                f.write(b"half a file")  # what kill -9 leaves behind
            raise KeyboardInterrupt
        real(path, weights, meta)

    monkeypatch.setattr(train_mod, "save_model", die_in_stage1_model)
    assert main(["train", "--out", str(run), *SHORT]) == 130  # what Ctrl-C (or a kill) ends with
    monkeypatch.setattr(train_mod, "save_model", real)
    assert not (run / "stage1_model.safetensors").exists() and load_checkpoint(run / "checkpoint.pt")["epoch"] == 3
    started = json.loads((run / "environment.json").read_text())
    assert "resumes" not in started
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert load_model_file(run / "stage1_model.safetensors")["stage"] == 1
    # environment.json keeps where the run started and adds where it was continued
    env = json.loads((run / "environment.json").read_text())
    assert {k: env[k] for k in started} == started
    assert [(r["stage"], r["epoch"]) for r in env["resumes"]] == [(1, 3)]
    assert env["resumes"][0]["device"] == started["device"] and env["resumes"][0]["commit"] == started["commit"]
    final = json.loads((run / "final_metrics.json").read_text())
    assert {"stage1", "stage2"} <= set(final)
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))
    assert epochs_logged(run) == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)]
    # the folder now serves --stage 2 --from
    assert (
        main(
            [
                "train",
                "--stage",
                "2",
                "--from",
                str(run),
                "--out",
                str(tmp_path / "s2"),
                "--no-progress",
                "stage2.epochs=1",
            ]
        )
        == 0
    )
    # a validation split stage 1 did not hold out is refused (its images were trained on)
    assert (
        main(["train", "--stage", "2", "--from", str(run), "--out", str(tmp_path / "v"), "data.val_fraction=0.1"]) == 2
    )
    assert not (tmp_path / "v").exists()
    # and a second resume says it is finished, touching nothing
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before


def test_killed_between_the_log_line_and_the_checkpoint(tmp_path, monkeypatch):
    """Epoch 2 is logged, then the process dies before its checkpoint: the resumed process
    runs epoch 2 again, and the logs hold it once."""
    run = tmp_path / "run"
    restore = kill_at_call(monkeypatch, train_mod.Trainer, "_checkpoint", 2)
    assert main(["train", "--out", str(run), *SHORT]) == 130  # what Ctrl-C (or a kill) ends with
    restore()
    assert epochs_logged(run) == [(1, 1), (1, 2)]
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert epochs_logged(run) == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)]
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["stage"]), int(r["epoch"])) for r in rows] == epochs_logged(run)


def test_a_run_that_fails_before_its_first_epoch_leaves_no_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--no-progress", "stage1.batch_size=100000"]) == 2
    assert not run.exists()
    # a folder an older version left half-written (config and logs, no checkpoint) is taken over
    run.mkdir()
    (run / "config.yaml").write_text("name: demo\n")
    (run / "metrics.jsonl").write_text("")
    assert main(["train", "--out", str(run), *SHORT[:1], "stage1.epochs=1", "stage2.epochs=0", "eval_every=0"]) == 0
    assert load_model_file(run / "stage1_model.safetensors")["stage"] == 1


def test_sigterm_ends_a_run_as_ctrl_c_does_keeping_its_checkpoint(tmp_path):
    """A scheduler's SIGTERM mid-run: exit 143, one line that says how to resume, the last
    checkpoint kept and matching the log."""
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    long = ["stage1.epochs=400", "stage1.warmup_epochs=0", "stage1.milestones=[300]", "eval_every=0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lcreg", "train", "--out", str(run), "--no-progress", *long],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not (run / "checkpoint.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1] == "lcreg: terminated (resume with: lcreg train --resume RUN_FOLDER)"
    assert "Traceback" not in err
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["stage"] == 1 and 1 <= state["epoch"] < 400
    assert epochs_logged(run)[-1][1] >= state["epoch"]  # resume truncates the log to the checkpoint


def test_terminated_before_the_first_checkpoint_leaves_no_folder(tmp_path, monkeypatch):
    from lcreg import cli

    def terminated(self, resume=None):
        raise cli.Terminated()  # what the SIGTERM handler raises, wherever training is

    monkeypatch.setattr(train_mod.Trainer, "stage1", terminated)
    assert main(["train", "--out", str(tmp_path / "run"), *SHORT]) == 143
    assert not (tmp_path / "run").exists()
