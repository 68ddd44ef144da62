"""The registered methods: each loss against a direct computation, the registry-wide
training contract, and the stage-2 recipes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lcreg.cli import main
from lcreg.config import load_config
from lcreg.losses import (
    ClassISDALoss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    SoftMixupCrossEntropy,
    WeightedCrossEntropy,
    effective_number_weights,
    remix_targets,
)
from lcreg.methods import get_method
from lcreg.methods.base import apply_drw
from lcreg.methods.decoupled import TAU_GRID, choose_tau, tau_normalize_
from lcreg.registry import METHODS

COUNTS = [100, 40, 10, 3]


def test_effective_number_weights_match_the_formula():
    beta = 0.99
    w = effective_number_weights(COUNTS, beta)
    raw = [(1 - beta) / (1 - beta**n) for n in COUNTS]
    expected = [r / sum(raw) * len(COUNTS) for r in raw]
    assert np.allclose(w.numpy(), expected, rtol=1e-6)
    assert w[3] > w[0]  # the tail weighs more


def test_ldam_loss_against_a_loop():
    torch.manual_seed(0)
    cosines, y = torch.randn(6, 4).clamp(-1, 1), torch.tensor([0, 1, 2, 3, 3, 2])
    logits = 30.0 * cosines  # the scaled cosine head's output
    loss = LDAMLoss(COUNTS, max_margin=0.5, scale=30.0)
    m = [n**-0.25 for n in COUNTS]
    margins = [0.5 * x / max(m) for x in m]
    total = 0.0
    for i in range(6):
        z = [30.0 * (cosines[i, j].item() - (margins[j] if j == y[i] else 0.0)) for j in range(4)]
        total += -(z[y[i]] - math.log(sum(math.exp(v) for v in z)))
    assert loss(logits, y).item() == pytest.approx(total / 6, rel=1e-5)
    assert max(margins) == pytest.approx(0.5) and margins[3] == pytest.approx(0.5)


def test_cosine_head_emits_scaled_cosines():
    from lcreg.models.classifiers import CosineHead

    head = CosineHead(8, 3, scale=30.0)
    feats = torch.randn(2, 8, 4, 4)
    pooled = feats.mean((2, 3))
    cos = F.normalize(pooled, dim=1) @ F.normalize(head.fc.weight, dim=1).t()
    assert torch.allclose(head(feats).logits, 30.0 * cos, atol=1e-5)


def test_focal_loss_against_a_loop_and_gamma_zero_is_ce():
    torch.manual_seed(1)
    logits, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 1])
    p = torch.softmax(logits, 1)
    direct = sum(-((1 - p[i, y[i]]) ** 2) * math.log(p[i, y[i]]) for i in range(5)) / 5
    assert FocalLoss(4, gamma=2.0)(logits, y).item() == pytest.approx(float(direct), rel=1e-5)
    assert FocalLoss(4, gamma=0.0)(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)


def test_logit_adjusted_loss_adds_the_log_prior():
    torch.manual_seed(2)
    logits, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 1])
    prior = torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS)
    want = F.cross_entropy(logits.double() + torch.log(prior), y).item()
    assert LogitAdjustedLoss(COUNTS, tau=1.0)(logits, y).item() == pytest.approx(want, rel=1e-5)


def test_remix_labels_follow_the_rule():
    counts = torch.tensor([100.0, 10.0, 90.0])
    y_a, y_b = torch.tensor([0, 1, 0, 0]), torch.tensor([1, 0, 2, 1])
    # pair 0: a majority (10x) with lam 0.3 < tau -> all to the minority b: weight 0
    # pair 1: b majority (10x), 1 - lam = 0.7 >= tau -> plain lam
    # pair 2: classes within kappa -> plain lam; pair 3 as pair 0
    w = remix_targets(y_a, y_b, 0.3, counts, kappa=3.0, tau=0.5)
    assert w.tolist() == pytest.approx([0.0, 0.3, 0.3, 0.0])
    w = remix_targets(y_a, y_b, 0.8, counts, kappa=3.0, tau=0.5)  # b majority, 1 - lam = 0.2 < tau -> a
    assert w.tolist() == pytest.approx([0.8, 1.0, 0.8, 0.8])
    logits = torch.randn(4, 3)
    loss = SoftMixupCrossEntropy(3)(logits, y_a, y_b, w)
    logp = torch.log_softmax(logits, 1)
    direct = sum(-(w[i] * logp[i, y_a[i]] + (1 - w[i]) * logp[i, y_b[i]]) for i in range(4)) / 4
    assert loss.item() == pytest.approx(float(direct), rel=1e-5)


def test_drw_switches_class_weights_at_its_epoch():
    cfg = load_config("demo", ["method=ldam_drw", "stage1.milestones=[8,9]"])
    ce = WeightedCrossEntropy(4)
    apply_drw(ce, 7, cfg, COUNTS)
    assert not ce.weighted
    apply_drw(ce, 8, cfg, COUNTS)
    assert ce.weighted and torch.allclose(ce.weight, effective_number_weights(COUNTS, cfg.method_params["cb_beta"]))


def test_class_isda_logits_match_the_formula():
    torch.manual_seed(3)
    c, d = 3, 4
    isda = ClassISDALoss(c, d, lambda0=0.5)
    isda.estimator.update(torch.randn(30, d), torch.arange(30) % c)
    w, b = torch.randn(c, d), torch.randn(c)
    x, y = torch.randn(5, d), torch.tensor([0, 1, 2, 0, 1])
    z = isda.augmented_logits(x, w, b, y, 0.4)
    for i in range(5):
        sigma = isda.estimator.cov[y[i]]
        for j in range(c):
            dw = w[j] - w[y[i]]
            assert z[i, j].item() == pytest.approx((w[j] @ x[i] + b[j] + 0.2 * dw @ sigma @ dw).item(), rel=1e-5)


def test_tau_normalisation_and_the_choice_on_validation():
    fc = nn.Linear(3, 2)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[3.0, 0.0, 4.0], [0.0, 1.0, 0.0]]))
    reference = fc.weight.detach().clone()
    tau_normalize_(fc, 1.0, reference)
    assert torch.allclose(fc.weight.norm(dim=1), torch.ones(2)) and torch.all(fc.bias == 0)
    tau_normalize_(fc, 0.5, reference)
    assert fc.weight.norm(dim=1).tolist() == pytest.approx([5**0.5, 1.0])
    # the score peaks at tau = 0.7: that tau is kept and applied
    fc.weight.data.copy_(reference)
    state = {}

    def score():
        state["last"] = fc.weight.norm(dim=1)[0].item()
        return -abs(state["last"] - 5**0.3)

    choice = choose_tau(fc, score)
    assert choice["tau"] == pytest.approx(0.7) and len(choice["validation_balanced_accuracy"]) == len(TAU_GRID)
    assert fc.weight.norm(dim=1)[0].item() == pytest.approx(5**0.3, rel=1e-5)


SHORT = [
    "--no-progress",
    "stage1.epochs=2",
    "stage1.warmup_epochs=0",
    "stage1.milestones=[1]",
    "stage2.epochs=1",
    "eval_every=0",
    "data.val_fraction=0.2",
]


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_trains_and_its_model_serves_every_command(name, tmp_path, capsys):
    """The registry-wide contract: a short demo run of each method finishes with finite
    losses and a model file that eval, predict and export take."""
    run = tmp_path / "run"
    # an override the method never reads is refused (test_overrides_a_method_does_not_read_are_refused)
    short = [a for a in SHORT if "=" not in a or get_method(name).reads_key(a.split("=")[0])]
    assert main(["train", "--out", str(run), f"method={name}", *short]) == 0
    final = json.loads((run / "final_metrics.json").read_text())
    stages = get_method(name).stages(load_config("demo"))
    assert f"stage{stages[-1]}" in final and 0 <= final[f"stage{stages[-1]}"]["test"]["top1"] <= 1
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(v) for r in records for v in r.get("loss", {}).values())
    assert main(["eval", str(run), "--out", str(tmp_path / "ev")]) == 0
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
    assert main(["predict", str(run), str(tmp_path / "x.png"), "--json"]) == 0
    assert main(["export", str(run), "--out", str(tmp_path / "m.ts")]) == 0
    if name == "tau_norm":
        assert "tau" in final["stage2_choice"]
    capsys.readouterr()


def test_overrides_a_method_does_not_read_are_refused(capsys):
    # cRT fixes its stage-2 sampler; MiSLAS has no latent head
    for argv, key in (
        (["method=crt", "stage2.sampler=instance"], "stage2.sampler"),
        (["method=mislas", "model.latent.num_latents=20"], "model.latent.num_latents"),
    ):
        assert main(["train", *argv]) == 2
        err = capsys.readouterr().err
        assert f"does not read {key}" in err and argv[0].split("=")[1] in err
    # a method's own parameters: only its own (CE has none), of their types, within bounds
    for argv, phrase in (
        (["method=ce", "method_params.gamma=3"], "method ce has no parameter 'gamma'"),
        (["method=focal", "method_params.gama=3"], "did you mean 'gamma'"),
        (["method=focal", "method_params.gamma=-1"], "must lie within min 0"),
        (["method=ldam_drw", "method_params.cb_beta=1"], "lt 1"),
        (["method=focal", "loss.focal_gamma=3"], "now method_params.gamma"),
    ):
        assert main(["train", *argv]) == 2
        assert phrase in capsys.readouterr().err
    # what each reads: its parameters with default, help and bounds; the stage-2 settings it fixes
    assert main(["methods", "ldam_drw"]) == 0
    out = capsys.readouterr().out
    assert "scale = 30.0  logit scale s of the cosine classifier (gt 0)" in out and "gamma" not in out
    assert main(["methods", "crt"]) == 0
    assert "stage2.sampler=class_balanced" in capsys.readouterr().out
    assert get_method("lcreg").reads_key("model.latent.temperature") and not get_method("ce").reads_key("stage2.lr")
    # one resolved stage-2 recipe, in the config: cRT's fixed settings are what the run saves
    crt = load_config("cifar10_lt_if100", ["method=crt"])
    assert (crt.stage2.sampler, crt.stage2.lr_factor, crt.stage2.shift_bn) == ("class_balanced", 1.0, False)
    focal = load_config("cifar10_lt_if100", ["method=focal", "method_params.gamma=1"])
    assert focal.method_params == {"gamma": 1.0} and load_config("demo", ["method=focal"]).method_params == {
        "gamma": 2.0
    }
    assert get_method("mixup").reads_key("stage1.mixup_alpha") and not get_method("ce").reads_key("stage1.mixup_alpha")


def test_methods_command_lists_the_registry(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("lcreg", "mislas", "ldam_drw", "crt", "tau_norm"))


def test_tau_norm_needs_a_validation_split(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r"), "--no-progress", "method=tau_norm"]) == 2
    assert "validation split" in capsys.readouterr().err
