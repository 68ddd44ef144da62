"""User folders, list files, archives, the demo, and the offline download message."""

import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from lcreg.config import DataConfig
from lcreg.data import build_dataset
from lcreg.data.cache import extract_archive
from lcreg.errors import LcregError

from conftest import SHARED_DATA, write_cifar10_pickles, write_image

RGB = np.full((12, 10, 3), 200, dtype=np.uint8)


def make_folder(root, classes, per_class, split_dirs=("train", "test"), gray_every=3):
    for split in split_dirs:
        for c, (name, n) in enumerate(zip(classes, per_class)):
            for i in range(n if split != "test" else 2):
                arr = np.full((12, 10, 3), 10 * c + i, dtype=np.uint8)
                if i % gray_every == 0:
                    write_image(root / split / name / f"img {i}.png", arr[..., 0])  # grayscale file
                else:
                    write_image(root / split / name / f"img {i}.jpg", arr)


ODD = ["Zebra crossing", "ärger", "a.b-c", "x_y z"]


def test_user_folder_with_odd_names_and_grayscale(tmp_path, no_download):
    make_folder(tmp_path, ODD, [9, 6, 4, 3])
    data = build_dataset(DataConfig(dataset="folder", data_dir=str(tmp_path), imbalance_factor=None, image_size=16))
    assert data.class_names == sorted(ODD)
    assert sorted(data.counts, reverse=True) == [9, 6, 4, 3]
    assert data.train.images.shape[1:] == (16, 16, 3)  # resized, grayscale made RGB
    assert len(data.test) == 8


def test_user_folder_subsampled_to_target_factor(tmp_path, no_download):
    make_folder(tmp_path, ["a", "b", "c"], [20, 20, 20])
    data = build_dataset(DataConfig(dataset="folder", data_dir=str(tmp_path), imbalance_factor=4, image_size=8))
    assert data.counts == [20, 10, 5]


def test_single_folder_split_by_fraction(tmp_path, no_download):
    make_folder(tmp_path, ["a", "b"], [10, 5], split_dirs=("all",))
    cfg = DataConfig(
        dataset="folder", data_dir=str(tmp_path / "all"), imbalance_factor=None, test_fraction=0.2, image_size=8
    )
    data = build_dataset(cfg)
    assert data.counts == [8, 4] and np.bincount(data.test.targets).tolist() == [2, 1]


def test_large_images_stay_paths(tmp_path, no_download):
    make_folder(tmp_path, ["a", "b"], [3, 3])
    data = build_dataset(DataConfig(dataset="folder", data_dir=str(tmp_path), imbalance_factor=None, image_size=224))
    assert data.train.images is None and len(data.train.paths) == 6


def test_val_split_carved_from_training(tmp_path, no_download):
    make_folder(tmp_path, ["a", "b"], [20, 10])
    cfg = DataConfig(dataset="folder", data_dir=str(tmp_path), imbalance_factor=None, val_fraction=0.2, image_size=8)
    data = build_dataset(cfg)
    assert len(data.val) == 6 and sum(data.counts) == 24


def test_list_files_reindexed_by_frequency(tmp_path, no_download):
    for i in range(6):
        write_image(tmp_path / "imgs" / f"{i}.jpg", RGB)
    (tmp_path / "train.txt").write_text(
        "imgs/0.jpg 2\nimgs/1.jpg 2\nimgs/2.jpg 2\nimgs/3.jpg 0\nimgs/4.jpg 1\nimgs/5.jpg 1\n"
    )
    (tmp_path / "test.txt").write_text("imgs/0.jpg 0\nimgs/1.jpg 1\nimgs/2.jpg 2\n")
    cfg = DataConfig(
        dataset="list",
        data_dir=str(tmp_path),
        train_list="train.txt",
        test_list="test.txt",
        imbalance_factor=None,
        image_size=224,
        reindex_by_frequency=True,
    )
    data = build_dataset(cfg)
    assert data.counts == [3, 2, 1]
    assert data.class_names == ["2", "1", "0"]  # original label of each new index
    assert data.train.paths[0].endswith("imgs/0.jpg")
    assert data.test.targets.tolist() == [2, 1, 0]


def test_list_file_bad_line_names_the_line(tmp_path, no_download):
    (tmp_path / "train.txt").write_text("a.jpg 0\nbroken-line\n")
    (tmp_path / "test.txt").write_text("a.jpg 0\n")
    cfg = DataConfig(
        dataset="list", data_dir=str(tmp_path), train_list="train.txt", test_list="test.txt", imbalance_factor=None
    )
    with pytest.raises(LcregError, match="train.txt:2"):
        build_dataset(cfg)


def test_archive_is_extracted_once(tmp_path, no_download):
    make_folder(tmp_path / "src" / "mydata", ["a", "b"], [4, 2])
    archive = tmp_path / "mydata.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(tmp_path / "src" / "mydata", arcname="mydata")
    cfg = DataConfig(dataset="folder", data_dir=str(archive), imbalance_factor=None, image_size=8)
    assert build_dataset(cfg).counts == [4, 2]
    assert build_dataset(cfg).counts == [4, 2]


def _tar(tmp_path):
    make_folder(tmp_path / "src" / "mydata", ["a", "b"], [4, 2])
    archive = tmp_path / "mydata.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(tmp_path / "src" / "mydata", arcname="mydata")
    return archive


def test_extraction_renamed_into_place_and_stale_folder_replaced(tmp_path):
    archive, cache = _tar(tmp_path), tmp_path / "cache"
    root = extract_archive(archive, cache)
    assert sorted(p.name for p in root.iterdir()) == ["test", "train"]
    (dest,) = list((cache / "extracted").iterdir())  # no temporary folder left beside it
    assert (dest / ".complete").exists()
    # an interrupted extraction of an older version (no marker, files missing) is redone
    shutil.rmtree(root / "test")
    (dest / ".complete").unlink()
    assert sorted(p.name for p in extract_archive(archive, cache).iterdir()) == ["test", "train"]


def test_extraction_yields_to_a_process_that_finished_first(tmp_path, monkeypatch):
    archive, cache = _tar(tmp_path), tmp_path / "cache"
    real_rename = os.rename

    def other_process_wins(src, dst):  # the other process renames its copy in just before us
        shutil.copytree(src, dst)
        (Path(dst) / "mydata" / "from_other").touch()
        real_rename(src, dst)  # fails: the destination exists and is not empty

    monkeypatch.setattr("lcreg.data.cache.os.rename", other_process_wins)
    root = extract_archive(archive, cache)
    assert len(os.listdir(cache / "extracted")) == 1  # our temporary copy removed
    assert sorted(p.name for p in root.iterdir()) == ["from_other", "test", "train"]


def test_demo_is_long_tailed_real_digits():
    data = build_dataset(DataConfig(dataset="demo", imbalance_factor=10, image_size=16))
    assert data.num_classes == 10 and data.counts[0] == 120 and data.counts[-1] == 12
    assert np.bincount(data.test.targets).tolist() == [50] * 10
    # the 8x8 digits upsampled to the configured size (the demo preset: 16 px, a 4 x 4 feature map)
    assert data.train.images.shape[1:] == (16, 16, 3) and data.train.images.max() == 255
    small = build_dataset(DataConfig(dataset="demo", imbalance_factor=10, image_size=8))
    assert small.train.images.shape[1:] == (8, 8, 3) and np.array_equal(small.train.targets, data.train.targets)


def test_offline_download_names_data_dir(tmp_path, no_download, monkeypatch):
    import torchvision

    def refuse(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "__init__", refuse)
    with pytest.raises(LcregError, match="--data-dir") as e:
        build_dataset(DataConfig(dataset="cifar10-lt"))
    assert "cifar-10-batches-py" in str(e.value) or "pickle" in str(e.value)


@pytest.mark.parametrize(
    "setup,match",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "is empty"),
        (lambda p: (p.mkdir(), (p / "notes.txt").write_text("x")), "none of the accepted layouts"),
    ],
)
def test_bad_cifar_dirs(tmp_path, no_download, setup, match):
    d = tmp_path / "d"
    setup(d)
    with pytest.raises(LcregError, match=match):
        build_dataset(DataConfig(dataset="cifar10-lt", data_dir=str(d), download=False))


def test_corrupt_image_is_named(tmp_path, no_download):
    make_folder(tmp_path, ["a", "b"], [3, 3])
    bad = tmp_path / "train" / "b" / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(LcregError, match="broken.jpg"):
        build_dataset(DataConfig(dataset="folder", data_dir=str(tmp_path), imbalance_factor=None, image_size=8))


def test_class_folders_must_match(tmp_path, no_download):
    make_folder(tmp_path, ["a", "b"], [3, 3])
    write_image(tmp_path / "test" / "c" / "x.png", RGB)
    with pytest.raises(LcregError, match="differ"):
        build_dataset(DataConfig(dataset="folder", data_dir=str(tmp_path), imbalance_factor=None, image_size=8))


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data/cifar10-jpeg.tar.gz not present")
def test_data_stats_on_the_real_jpeg_copy(capsys, no_download):
    import json

    from lcreg.cli import main

    assert main(["data", "stats", "cifar10_lt_if100", "--data-dir", str(SHARED_DATA), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["total"] == 12406 and stats["counts"][0] == 5000 and stats["counts"][-1] == 50
    assert stats["class_names"][0] == "airplane" and stats["class_names"][-1] == "truck"
    assert stats["test_total"] == 10000


def test_validation_from_the_images_the_long_tailed_selection_leaves_out(tmp_path, no_download):
    """data.val_source=unused: a near-balanced validation split that costs the training set
    nothing and never touches the test split (CIFAR-10-LT IF 100 keeps 12,406 of 50,000)."""
    from lcreg.config import load_config

    folder = write_cifar10_pickles(tmp_path / "c10", per_class=60)
    base = ["data.data_dir=" + str(folder.parent), "data.imbalance_factor=10"]
    plain = build_dataset(load_config("cifar10_lt_if100", base).data)
    data = build_dataset(
        load_config("cifar10_lt_if100", [*base, "data.val_source=unused", "data.val_per_class=20"]).data
    )
    assert data.counts == plain.counts  # the training set is the same
    stats = data.stats()
    # class 0 keeps all 60 images; the others leave 60 - n_c out, 20 of them at most taken
    left_out = [60 - n for n in plain.counts]
    assert stats["val_counts"] == [min(20, n) for n in left_out] and stats["val_source"] == "unused"
    train_pixels = {x.tobytes() for x in data.train.images}
    assert not any(x.tobytes() in train_pixels for x in data.val.images)
    with pytest.raises(LcregError, match="data.imbalance_factor"):
        build_dataset(
            load_config("cifar10_lt_if100", [base[0], "data.imbalance_factor=null", "data.val_source=unused"]).data
        )
    # tau-norm may choose its tau there (no held-out fraction of the training set needed)
    from lcreg.methods import get_method

    get_method("tau_norm").check(load_config("cifar10_lt_if100", ["method=tau_norm", "data.val_source=unused"]))
