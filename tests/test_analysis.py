"""Latent-category analysis and the extra metrics, against direct computations."""

import numpy as np
import pytest

from lcreg.eval.analysis import (
    class_histograms,
    kl_table,
    latent_histograms,
    sample_per_split,
    shared_pairs,
    sharing_summary,
    top_images_per_latent,
)
from lcreg.eval.metrics import confusion_matrix, group_confusion


def _random_hist(rng, n, m):
    x = rng.random((n, m)) ** 3
    return x / x.sum(axis=1, keepdims=True)


def test_latent_histograms_average_positions():
    w = np.random.default_rng(0).random((4, 5, 9))
    w /= w.sum(axis=1, keepdims=True)  # softmax over categories at each position
    h = latent_histograms(w)
    assert h.shape == (4, 5)
    np.testing.assert_allclose(h.sum(axis=1), 1.0)
    np.testing.assert_allclose(h[2, 3], np.mean([w[2, 3, n] for n in range(9)]))


def test_class_histograms_and_kl_against_loops():
    rng = np.random.default_rng(1)
    hist = _random_hist(rng, 30, 6)
    targets = rng.integers(0, 4, 30)
    targets[targets == 3] = 2  # class 3 has no images
    ch = class_histograms(hist, targets, 4)
    for c in range(3):
        np.testing.assert_allclose(ch[c], hist[targets == c].mean(axis=0))
    assert np.isnan(ch[3]).all()
    ch = ch[:3]
    kl = kl_table(ch, eps=0.0)
    for i in range(3):
        for j in range(3):
            direct = sum(ch[i, m] * np.log(ch[i, m] / ch[j, m]) for m in range(6))
            assert kl[i, j] == pytest.approx(direct, rel=1e-9, abs=1e-12)
    assert np.allclose(np.diag(kl), 0.0, atol=1e-12) and (kl >= -1e-12).all()
    # an empty bin stays finite thanks to eps
    assert np.isfinite(kl_table(np.array([[1.0, 0.0], [0.5, 0.5]]))).all()


def test_shared_pairs_pick_categories_both_sides_use_and_their_strongest_images():
    # 4 latents; head class 0 uses latents 0 and 1, tail class 1 uses 1 and 2; latent 3 unused
    hist = np.array(
        [
            [0.5, 0.4, 0.05, 0.05],  # image 0: head
            [0.3, 0.6, 0.05, 0.05],  # image 1: head, strongest on latent 1
            [0.05, 0.5, 0.4, 0.05],  # image 2: tail
            [0.05, 0.7, 0.2, 0.05],  # image 3: tail, strongest on latent 1
        ]
    )
    targets = np.array([0, 0, 1, 1])
    chist = class_histograms(hist, targets, 2)
    pairs = shared_pairs(hist, targets, chist, {"many": [0], "medium": [1], "few": []}, k=3)
    # latent 1 is used by both (min of class means 0.5 / 0.6 -> 0.5); latents 0 and 2 by one
    # side only (their min is 0.05, below uniform 0.25), so only latent 1 is returned
    assert [p["latent"] for p in pairs] == [1]
    assert pairs[0]["head_image"] == 1 and pairs[0]["tail_image"] == 3
    assert pairs[0]["score"] == pytest.approx(min(np.mean([0.4, 0.6]), np.mean([0.5, 0.7])))
    assert shared_pairs(hist, targets, chist, {"many": [0, 1], "medium": [], "few": []}) == []


def test_sharing_summary_on_a_known_case():
    # head classes 0, 1 use latents {0, 1} and {2, 3}; tail class 2 copies class 0; tail 3 uses {5, 4}
    ch = np.full((4, 6), 0.01)
    ch[0, [0, 1]] = 0.45
    ch[1, [2, 3]] = 0.45
    ch[2] = ch[0]
    ch[3, 5], ch[3, 4] = 0.6, 0.3
    ch /= ch.sum(axis=1, keepdims=True)
    s = sharing_summary(ch, {"many": [0, 1], "medium": [2], "few": [3]}, ["a", "b", "c", "d"], k=2)
    by = {t["class"]: t for t in s["tail"]}
    assert by["c"]["nearest_head_class"] == "a" and by["c"]["kl_to_nearest_head"] == pytest.approx(0, abs=1e-9)
    assert by["c"]["shared_with_head"] == 1.0
    assert by["d"]["top_latents"] == [5, 4] and by["d"]["shared_with_head"] == 0.0
    assert s["mean_shared_with_head"] == 0.5
    assert s["mean_kl_between_head_classes"] > 1.0


def test_top_images_and_sampling():
    hist = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    np.testing.assert_array_equal(top_images_per_latent(hist, 2), [[0, 2], [1, 2]])
    targets = np.array([0, 0, 0, 1, 2, 2])
    picked = sample_per_split(targets, {"many": [0], "medium": [1, 2], "few": []}, 3, seed=0)
    assert len(picked["many"]) == 3 and set(picked["many"]) == {0, 1, 2}  # one class: distinct images
    assert set(targets[picked["medium"]]) == {1, 2} and picked["few"] == []
    assert picked == sample_per_split(targets, {"many": [0], "medium": [1, 2], "few": []}, 3, seed=0)


def test_confusion_and_grouped_confusion():
    pred = np.array([0, 1, 1, 2, 0])
    true = np.array([0, 1, 2, 2, 2])
    m = confusion_matrix(pred, true, 3)
    direct = np.zeros((3, 3), int)
    for t, p in zip(true, pred):
        direct[t, p] += 1
    np.testing.assert_array_equal(m, direct)
    g, names = group_confusion(m, {"many": [0, 1], "medium": [], "few": [2]})
    assert names == ["many", "few"]
    np.testing.assert_array_equal(g, [[2, 0], [2, 1]])
