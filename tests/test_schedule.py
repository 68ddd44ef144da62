"""The stage-1 learning-rate schedule against the reference codes' per-epoch rules, written out."""

from __future__ import annotations

import json

import pytest

from lcreg.cli import main
from lcreg.engine.schedule import lr_factor


def reference_factor(epoch: int, decay: float) -> float:
    """MiSLAS's and LDAM-DRW's ``adjust_learning_rate`` (0-based epoch, after warm-up): x decay
    after epoch 160, x decay^2 after 180 (MiSLAS: decay 0.1; LDAM-DRW: 0.01)."""
    epoch += 1
    if epoch > 180:
        return decay**2
    if epoch > 160:
        return decay
    return 1.0


@pytest.mark.parametrize("decay", [0.1, 0.01])
def test_step_schedule_matches_the_reference_rule_after_warm_up(decay):
    steps = 97
    for epoch in range(5, 200):
        for step in (epoch * steps, epoch * steps + steps - 1):
            got = lr_factor(step, steps, 200, 5, "step", [160, 180], decay)
            assert got == pytest.approx(reference_factor(epoch, decay)), (epoch, step)


def test_warm_up_ends_where_the_reference_reaches_the_full_rate():
    # the reference rises per epoch ((e + 1) / 5), ours per iteration: equal at each epoch's end
    for epoch in range(5):
        assert lr_factor(epoch * 10 + 9, 10, 200, 5, "step", [160, 180], 0.01) == pytest.approx((epoch + 1) / 5)


def test_a_run_logs_the_decayed_rate(tmp_path):
    # metrics.jsonl's lr is the rate after each epoch's last step (the next step's rate)
    run = tmp_path / "run"
    args = ["stage1.epochs=3", "stage1.warmup_epochs=0", "stage1.milestones=[2]", "stage1.lr_decay=0.01"]
    assert main(["train", "--out", str(run), "--no-progress", "--stage", "1", "eval_every=0", *args]) == 0
    lrs = [json.loads(line)["lr"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lrs == pytest.approx([0.1, 0.001, 0.001])


def test_lr_decay_outside_its_range_is_one_line(capsys):
    assert main(["train", "stage1.lr_decay=0"]) == 2
    assert "stage1.lr_decay" in capsys.readouterr().err
