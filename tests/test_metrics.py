"""Metrics against hand-computed values."""

import numpy as np
import pytest
import torch

from lcreg.eval import calibration_errors, classification_metrics, split_accuracy


def test_ece_on_a_constructed_example():
    # bins of width 1/15: 0.95 and 0.97 share the last bin, 0.5 sits in bin 7
    conf = np.array([0.95, 0.97, 0.5, 0.5])
    correct = np.array([1, 0, 1, 1])
    ece, mce = calibration_errors(conf, correct, 15)
    # last bin: acc 0.5, conf 0.96 -> gap 0.46, weight 2/4; bin 7: acc 1, conf 0.5 -> gap 0.5, weight 2/4
    assert ece == pytest.approx(0.5 * 0.46 + 0.5 * 0.5)
    assert mce == pytest.approx(0.5)


def test_perfect_calibration_is_zero():
    conf = np.full(10, 0.7)
    correct = np.array([1] * 7 + [0] * 3)
    assert calibration_errors(conf, correct)[0] == pytest.approx(0.0, abs=1e-12)


def test_split_accuracy_with_known_counts():
    class_acc = np.array([1.0, 0.5, 0.25, np.nan])
    splits = {"many": [0, 1], "medium": [2], "few": [3]}
    assert split_accuracy(class_acc, splits) == {"many": 0.75, "medium": 0.25, "few": None}


def test_classification_metrics_end_to_end():
    targets = torch.tensor([0, 0, 1, 1, 2, 2])
    logits = torch.full((6, 3), -10.0)
    for i, p in enumerate([0, 0, 1, 0, 2, 1]):  # class acc: 1.0, 0.5, 0.5
        logits[i, p] = 10.0
    m = classification_metrics(logits, targets, {"many": [0], "medium": [1], "few": [2]})
    assert m["top1"] == pytest.approx(4 / 6)
    assert m["per_class"] == [1.0, 0.5, 0.5]
    assert (m["many"], m["medium"], m["few"]) == (1.0, 0.5, 0.5)
    assert m["top5"] == 1.0  # three classes: top-k clipped to k = 3
    assert m["ece"] == pytest.approx(1 / 3, abs=1e-6)  # confidence ~1, accuracy 4/6
    assert m["nll"] > 0 and m["num_samples"] == 6


def test_class_distribution_legend_has_one_colour_per_split(tmp_path, monkeypatch):
    from lcreg.eval import plots

    seen = {}
    real = plots.save_figure

    def keep(fig, path):
        legend = fig.axes[0].get_legend()
        seen["colours"] = [tuple(h.get_facecolor()) for h in legend.legend_handles]
        seen["labels"] = [t.get_text() for t in legend.get_texts()]
        real(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    splits = {"many": [0, 1], "medium": [2], "few": [3]}
    plots.plot_class_distribution([500, 200, 50, 5], list("abcd"), splits, tmp_path / "d.png")
    assert len(set(seen["colours"])) == 3 and seen["labels"] == ["many (2)", "medium (1)", "few (1)"]
