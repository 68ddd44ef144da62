import numpy as np
import pytest

from lcreg.config import DataConfig
from lcreg.data import build_dataset, class_counts_profile, make_longtail_indices, select_longtail, shot_splits
from lcreg.data.longtail import stratified_split
from lcreg.errors import LcregError

from conftest import write_cifar10_pickles, write_cifar100_pickles

CIFAR10_TOTALS = {100: 12406, 50: 13996, 10: 20431}
CIFAR100_TOTALS = {100: 10847, 50: 12608, 10: 19573}


@pytest.mark.parametrize("imb,total", CIFAR10_TOTALS.items())
def test_cifar10_profile_totals(imb, total):
    counts = class_counts_profile(5000, 10, imb)
    assert counts[0] == 5000 and counts[-1] == 5000 // imb
    assert sum(counts) == total


@pytest.mark.parametrize("imb,total", CIFAR100_TOTALS.items())
def test_cifar100_profile_totals(imb, total):
    assert sum(class_counts_profile(500, 100, imb)) == total


def test_step_profile_and_bad_factor():
    assert class_counts_profile(100, 4, 10, "step") == [100, 100, 10, 10]
    with pytest.raises(LcregError):
        class_counts_profile(100, 4, 0.5)


def test_selection_matches_ldam_recipe_and_keeps_global_rng():
    targets = np.random.default_rng(1).permutation(np.repeat(np.arange(5), 40))
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    keep = select_longtail(targets, [40, 20, 10, 5, 2], seed=0)
    assert np.array_equal(np.random.get_state()[1], before)
    # the recipe written out: one seed, per-class shuffle in label order, first n_c
    np.random.seed(0)
    expected = []
    for c, n in enumerate([40, 20, 10, 5, 2]):
        idx = np.where(targets == c)[0]
        np.random.shuffle(idx)
        expected.append(idx[:n])
    assert np.array_equal(keep, np.concatenate(expected))
    other = select_longtail(targets, [40, 20, 10, 5, 2], seed=7)
    assert not np.array_equal(np.sort(keep), np.sort(other))


@pytest.mark.parametrize("imb", [100, 50, 10])
def test_cifar10_pickle_layout_totals(tmp_path, no_download, imb):
    write_cifar10_pickles(tmp_path)
    data = build_dataset(DataConfig(dataset="cifar10-lt", data_dir=str(tmp_path), imbalance_factor=imb))
    assert len(data.train) == CIFAR10_TOTALS[imb]
    assert data.counts == class_counts_profile(5000, 10, imb)
    assert data.class_names[0] == "airplane" and data.train.images.shape[1:] == (32, 32, 3)
    assert len(data.test) == 100


@pytest.mark.parametrize("imb", [100, 50, 10])
def test_cifar100_pickle_layout_totals(tmp_path, no_download, imb):
    write_cifar100_pickles(tmp_path)
    data = build_dataset(
        DataConfig(dataset="cifar100-lt", data_dir=str(tmp_path / "cifar-100-python"), imbalance_factor=imb)
    )
    assert len(data.train) == CIFAR100_TOTALS[imb]
    assert data.num_classes == 100 and data.class_names[5] == "class_005"
    splits = data.splits
    assert sorted(splits["many"] + splits["medium"] + splits["few"]) == list(range(100))
    assert all(data.counts[c] > 100 for c in splits["many"])
    assert all(data.counts[c] < 20 for c in splits["few"])


def test_imagefolder_layout_selects_the_same_images_as_pickles(tmp_path, no_download):
    """The same images written both ways give the same long-tailed subset."""
    from PIL import Image

    pickles = tmp_path / "pickles"
    write_cifar10_pickles(pickles, per_class=30)
    a = build_dataset(DataConfig(dataset="cifar10-lt", data_dir=str(pickles), imbalance_factor=10))
    full = build_dataset(DataConfig(dataset="cifar10-lt", data_dir=str(pickles), imbalance_factor=None))
    # ImageFolder files numbered in the pickle order within each class (PNG: lossless)
    folder = tmp_path / "folder"
    for split, part in (("train", full.train), ("test", full.test)):
        seen = {}
        for img, y in zip(part.images, part.targets):
            k = seen.get(int(y), 0)
            seen[int(y)] = k + 1
            path = folder / split / full.class_names[y] / f"{k:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(path)
    b = build_dataset(DataConfig(dataset="cifar10-lt", data_dir=str(folder), imbalance_factor=10))
    assert b.class_names == a.class_names
    assert np.array_equal(a.train.targets, b.train.targets)
    assert np.array_equal(a.train.images, b.train.images)


def test_shot_splits_thresholds():
    splits = shot_splits([500, 101, 100, 20, 19, 1])
    assert splits == {"many": [0, 1], "medium": [2, 3], "few": [4, 5]}
    assert shot_splits([50, 10], many_threshold=40, few_threshold=15) == {"many": [0], "medium": [], "few": [1]}


def test_stratified_split_keeps_every_class():
    targets = np.repeat(np.arange(4), [50, 10, 3, 2])
    first, second = stratified_split(targets, 0.2, seed=0)
    assert len(np.intersect1d(first, second)) == 0 and len(first) + len(second) == len(targets)
    assert set(targets[second]) == {0, 1, 2, 3} and set(targets[first]) == {0, 1, 2, 3}


def test_make_longtail_any_factor_and_seed():
    targets = np.repeat(np.arange(3), 100)
    keep = make_longtail_indices(targets, 3, 4.0, seed=3)
    assert np.bincount(targets[keep]).tolist() == [100, 50, 25]
