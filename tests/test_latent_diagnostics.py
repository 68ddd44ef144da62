"""The content measures of a latent head (eval/latent_diagnostics.py) against direct
computations and cases whose answer is known."""

import math

import numpy as np
import pytest
import torch

from lcreg.eval.latent_diagnostics import (
    LatentStats,
    PositionalVariance,
    class_kl_summary,
    effective_rank,
    histogram_entropy,
    image_histograms,
    nearest_class_mean_accuracy,
    shared_categories,
)


def direct_positional_share(x: np.ndarray) -> float:
    """x (B, C, N): per channel, SS of the per-position mean over images / total SS."""
    between, total = 0.0, 0.0
    for c in range(x.shape[1]):
        v = x[:, c, :]
        grand = v.mean()
        total += ((v - grand) ** 2).sum()
        between += x.shape[0] * ((v.mean(0) - grand) ** 2).sum()
    return between / total


def test_positional_share_matches_direct_sums_over_batches():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(23, 4, 9)) + rng.normal(size=(1, 4, 9)) * 3  # a shared pattern plus noise
    pv = PositionalVariance()
    for chunk in np.array_split(np.arange(23), 4):  # streamed in unequal batches
        pv.update(torch.tensor(x[chunk], dtype=torch.float32))
    assert pv.share() == pytest.approx(direct_positional_share(x), rel=1e-5)
    assert 0.5 < pv.share() < 1


def test_positional_share_is_one_for_a_position_code_and_zero_for_image_content():
    rng = np.random.default_rng(1)
    code = rng.normal(size=(1, 3, 16))
    pos = PositionalVariance()
    pos.update(torch.tensor(np.repeat(code, 10, axis=0)))  # every image the same map
    assert pos.share() == pytest.approx(1.0)
    content = PositionalVariance()
    content.update(torch.tensor(np.repeat(rng.normal(size=(10, 3, 1)), 16, axis=2)))  # flat maps, per image
    assert content.share() == pytest.approx(0.0, abs=1e-9)


def test_effective_rank_against_singular_values():
    assert effective_rank(torch.eye(6)) == pytest.approx(6.0)
    assert effective_rank(torch.outer(torch.arange(1.0, 5.0), torch.ones(3))) == pytest.approx(1.0)
    k = torch.randn(8, 5, generator=torch.Generator().manual_seed(2))
    s = np.linalg.svd(k.numpy().astype(np.float64), compute_uv=False)
    p = s / s.sum()
    assert effective_rank(k) == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-9)


def test_histogram_entropy_and_its_bounds():
    h = np.array([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]])
    want = np.mean([-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)), math.log(3)])
    assert histogram_entropy(h) == pytest.approx(want)
    assert histogram_entropy(np.array([[1.0, 0.0, 0.0]])) == pytest.approx(0.0, abs=1e-9)


def test_histograms_of_a_bf16_softmax_stay_within_the_entropy_bound():
    # a near-flat softmax over 40 categories rounded to bf16: 1/40 lands on 0.025024, so the
    # weights sum to 1.001 and the raw entropy exceeds ln M; renormalised it cannot
    torch.manual_seed(0)
    weights = torch.softmax(1e-4 * torch.randn(64, 40, 64), dim=1).bfloat16()
    raw = weights.float().mean(2).numpy()
    assert histogram_entropy(raw) > math.log(40)  # what the bf16 analysis reported
    h = image_histograms(weights)
    assert torch.allclose(h.sum(1), torch.ones(64))
    assert torch.allclose(h, torch.from_numpy(raw) / torch.from_numpy(raw).sum(1, keepdim=True))
    assert histogram_entropy(h.numpy()) <= math.log(40) + 1e-9


def test_nearest_class_mean_accuracy_against_a_loop():
    rng = np.random.default_rng(3)
    c, m = 4, 5
    centres = rng.dirichlet(np.ones(m), size=c)
    ytr = rng.integers(0, 3, 60)  # class 3 has no training images: never predicted
    tr = centres[ytr] + rng.normal(scale=0.05, size=(60, m))
    yte = rng.integers(0, 4, 40)
    te = centres[yte] + rng.normal(scale=0.05, size=(40, m))
    means = np.stack([tr[ytr == k].mean(0) for k in range(3)])
    pred = [int(np.argmin([((te[i] - means[k]) ** 2).sum() for k in range(3)])) for i in range(40)]
    assert nearest_class_mean_accuracy(tr, ytr, te, yte, c) == pytest.approx(np.mean(np.array(pred) == yte))


def test_shared_categories_on_a_known_case():
    ch = np.full((4, 4), 0.1)
    ch[0, 0], ch[1, 1], ch[2, 0], ch[3, 3] = 0.7, 0.7, 0.7, 0.7  # classes 0, 1 head; 2, 3 tail
    s = shared_categories(ch, {"many": [0, 1], "medium": [2], "few": [3]})
    assert s["classes_per_category"] == [2, 1, 0, 1]
    assert s["head_classes_per_category"] == [1, 1, 0, 0]
    assert s["tail_classes_per_category"] == [1, 0, 0, 1]
    assert s["categories_used"] == 3 and s["categories_shared_head_tail"] == 1


def test_class_kl_summary_is_symmetric_and_ignores_empty_classes():
    ch = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3], [np.nan] * 3])
    s = class_kl_summary(ch)
    plain, sym = np.array(s["plain"]), np.array(s["symmetric"])
    assert np.allclose(sym, sym.T) and np.allclose(sym, (plain + plain.T) / 2)
    kl01 = sum(ch[0, k] * math.log(ch[0, k] / ch[1, k]) for k in range(3))
    assert plain[0, 1] == pytest.approx(kl01, rel=1e-6)
    assert s["max_symmetric"] == pytest.approx(sym[:3, :3].max())


def test_latent_stats_summary_counts_saturation():
    stats = LatentStats()
    sim = torch.tensor([[[0.001, 0.5], [0.995, 0.3]]])  # (1, 2 categories, 2 positions)
    weights = torch.softmax(sim, 1)
    stats.update(torch.logit(sim), sim, weights, torch.randn(1, 3, 2))
    s = stats.summary(torch.eye(3, 2))
    assert s["saturation"] == pytest.approx(0.5)
    assert s["histogram_entropy_max"] == pytest.approx(math.log(2))
    assert s["effective_rank"] == pytest.approx(2.0)


def test_collapse_warning_for_a_position_code_or_one_category_only():
    from lcreg.eval.latent_diagnostics import ONE_CATEGORY_RANK, POSITION_CODE_SHARE, collapse_warning

    assert collapse_warning({"positional_share": 0.997}).startswith("the latent categories encode position")
    assert "99.7%" in collapse_warning({"positional_share": 0.997})
    assert collapse_warning({"positional_share": POSITION_CODE_SHARE - 0.01}) is None
    assert collapse_warning({"feature_positional_share": 0.99}) is None  # no latent head: nothing to say
    assert collapse_warning({"positional_share": float("nan")}) is None
    # Table 7's 'latent' run: content-like positional share, but 40 copies of one category
    one = collapse_warning({"positional_share": 0.14, "effective_rank": 1.09, "num_latents": 40})
    assert one.startswith("the latent categories collapsed into one: K has effective rank 1.09 of 40")
    assert collapse_warning({"positional_share": 0.24, "effective_rank": ONE_CATEGORY_RANK + 0.1}) is None
    assert (
        collapse_warning({"positional_share": 0.2, "effective_rank": 1.0, "num_latents": 1}) is None
    )  # M = 1 asked for


def test_one_category_in_m_copies_carries_no_content():
    from lcreg.eval.latent_diagnostics import carries_content

    assert carries_content(0.14, 0.475, 0.1)  # what the positional share and histograms alone would say
    assert not carries_content(0.14, 0.475, 0.1, effective_rank=1.09)
    assert carries_content(0.24, 0.49, 0.1, effective_rank=21.5)
    assert not carries_content(0.996, 0.28, 0.1, effective_rank=5.8)


def test_category_cosine_max_and_the_keys_eq_1_compares():
    from lcreg.eval.latent_diagnostics import category_cosine_max
    from lcreg.models.latent import LatentCategoryHead

    k = torch.tensor([[1.0, 0.0, 3.0], [0.0, 1.0, 4.0]])  # columns e1, e2, (3, 4): best pair e2 / (3, 4), 0.8
    assert category_cosine_max(k) == pytest.approx(0.8)
    assert category_cosine_max(torch.cat([k, 5 * k[:, :1]], dim=1)) == pytest.approx(1.0)  # a scaled copy
    head = LatentCategoryHead(6, 3, num_latents=4, similarity="cosine", temperature=0.1)
    with torch.no_grad():
        head.latents.mul_(torch.tensor([1.0, 10.0, 100.0, 0.1]))  # encoded norms differ; eq. 1 never sees them
    compared = head.compared_latents()
    assert torch.allclose(compared.norm(dim=0), torch.ones(4), atol=1e-6)
    assert torch.allclose(compared, torch.nn.functional.normalize(head.encoded_latents(), dim=0))
    dot = LatentCategoryHead(6, 3, num_latents=4)
    assert torch.equal(dot.compared_latents(), dot.encoded_latents())


def test_training_warns_once_of_a_position_code_and_reports_the_diagnostics(tmp_path, capsys, monkeypatch):
    import json

    from lcreg.cli import main
    from lcreg.eval import latent_diagnostics

    monkeypatch.setattr(latent_diagnostics, "POSITION_CODE_SHARE", 0.0)  # every latent head counts as collapsed
    run = tmp_path / "run"
    args = ["train", "--out", str(run), "--no-progress", "--json", "stage1.epochs=12", "stage1.warmup_epochs=1"]
    assert main([*args, "stage1.milestones=[10]", "stage2.epochs=1", "eval_every=0"]) == 0
    out, err = capsys.readouterr()
    warned = [ln for ln in err.splitlines() if "encode position" in ln or "collapsed into one" in ln]
    # one line, from epoch 10 on, in the CLI's own format (no Python warning header or source line)
    assert len(warned) == 1 and warned[0].startswith("lcreg: warning: stage 1 epoch 10: the latent categories")
    assert "Warning:" not in err and "warnings.warn" not in err
    diagnostics = json.loads(out)["diagnostics"]
    assert 0.0 <= diagnostics["positional_share"] <= 1.0 and diagnostics["effective_rank"] > 0
    final = json.loads((run / "final_metrics.json").read_text())
    assert final["stage1"]["diagnostics"] == diagnostics


def test_cli_prints_other_libraries_warnings_as_python_does(capsys):
    import warnings

    from lcreg.cli import _show_warning
    from lcreg.errors import LcregWarning

    _show_warning(LcregWarning("first line\nsecond"), LcregWarning, "x.py", 3)
    _show_warning(UserWarning("from a library"), UserWarning, "lib.py", 7)
    err = capsys.readouterr().err
    assert err.startswith("lcreg: warning: first line")
    assert "lib.py:7: UserWarning: from a library" in err
    assert warnings.showwarning is not _show_warning  # the hook lives only while a command runs
