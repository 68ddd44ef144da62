"""User data end to end: the DataLoader-worker path (images > 64 px), the folder preset,
imbalance by class size, list-file paths, the decoded cache's key, predict on a bomb, and
quiet progress."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from lcreg.cli import main
from lcreg.config import DataConfig
from lcreg.data import build_dataset
from lcreg.data.images import decode_images
from lcreg.engine import train as train_mod
from lcreg.runtime.checkpoint import load_checkpoint

from conftest import kill_at_call, write_image


def photo_folder(root, sizes=(("cat", 10), ("dog", 6)), side=80, test=2):
    rng = np.random.default_rng(0)
    for split, per in (("train", None), ("test", test)):
        for name, n in sizes:
            for i in range(per or n):
                write_image(root / split / name / f"{i}.jpg", rng.integers(0, 255, (side, side, 3), dtype=np.uint8))
    return root


def test_worker_path_trains_and_resumes(tmp_path, no_download, monkeypatch):
    """data.image_size=72 goes through DataLoader workers: 2 + 1 epochs, killed after the
    first epoch's checkpoint, resumed to the end (this path crashed after one epoch)."""
    data = photo_folder(tmp_path / "photos")
    run = tmp_path / "run"
    args = [
        "train",
        "folder",
        "--data-dir",
        str(data),
        "--out",
        str(run),
        "--no-progress",
        "data.image_size=72",
        "model.backbone=resnet32",
        "data.num_workers=2",
        "stage1.epochs=2",
        "stage1.warmup_epochs=0",
        "stage1.milestones=[1]",
        "stage1.batch_size=4",
        "stage2.epochs=1",
        "stage2.batch_size=4",
        "eval_every=0",
    ]
    restore = kill_at_call(monkeypatch, train_mod.Trainer, "_checkpoint", 2)
    assert main(args) == 130
    restore()
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["epoch"] == 1 and state["loader_rng"] is not None  # the workers' seed stream is saved
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    epochs = [(r["stage"], r["epoch"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]
    assert epochs == [(1, 1), (1, 2), (2, 1)]
    final = json.loads((run / "final_metrics.json").read_text())
    assert 0 <= final["stage2"]["test"]["top1"] <= 1


def test_folder_preset_chooses_size_and_backbone_from_the_images(tmp_path, no_download, capsys):
    from lcreg.cli import build_parser
    from lcreg.commands.run_config import resolve_config

    small = photo_folder(tmp_path / "small", side=20)
    large = photo_folder(tmp_path / "large", side=150)
    args = build_parser().parse_args(["data", "stats", "--dataset", "folder", "--data-dir", str(small)])
    cfg = resolve_config(args)  # no preset named: the folder's own, not the 8x8 demo
    assert cfg.name == "folder" and cfg.data.image_size == 32 and cfg.model.backbone == "resnet32"
    assert cfg.data.imbalance_factor is None
    assert "typical image 20 px" in capsys.readouterr().err
    args = build_parser().parse_args(["data", "stats", "folder", "--data-dir", str(large)])
    cfg = resolve_config(args)
    assert cfg.data.image_size == 224 and cfg.model.backbone == "resnet50" and cfg.data.mean[0] == 0.485
    assert "DataLoader workers" in capsys.readouterr().err


def test_imbalance_factor_applies_from_the_largest_class_down(tmp_path, no_download):
    """Alphabetical order is not size order: 'a' is the smallest class. The largest keeps its
    images and the observed imbalance is the one asked for."""
    rng = np.random.default_rng(1)
    for name, n in (("a", 12), ("b", 60), ("c", 30)):
        for i in range(n):
            write_image(tmp_path / "d" / name / f"{i}.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    cfg = DataConfig(
        dataset="folder", data_dir=str(tmp_path / "d"), imbalance_factor=5, image_size=8, test_fraction=0.5
    )
    data = build_dataset(cfg)
    counts = dict(zip(data.class_names, data.counts))
    assert counts["b"] == 30  # the largest class keeps all its training images
    assert counts["b"] / min(counts.values()) == pytest.approx(5, rel=0.2)
    assert counts["c"] == int(30 * 5**-0.5)


def test_list_paths_stay_under_the_root_and_val_list(tmp_path, no_download):
    rng = np.random.default_rng(2)
    for i in range(6):
        write_image(tmp_path / "root" / "imgs" / f"{i}.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    (tmp_path / "root" / "train.txt").write_text("/imgs/0.png 0\n/imgs/1.png 1\nimgs/2.png 0\nimgs/3.png 1\n")
    (tmp_path / "root" / "val.txt").write_text("/imgs/4.png 0\n")
    (tmp_path / "root" / "test.txt").write_text("imgs/5.png 1\n")
    cfg = DataConfig(
        dataset="list",
        data_dir=str(tmp_path / "root"),
        train_list="train.txt",
        test_list="test.txt",
        val_list="val.txt",
        imbalance_factor=None,
        image_size=224,
    )
    data = build_dataset(cfg)
    assert data.train.paths[0] == str(tmp_path / "root" / "imgs" / "0.png")  # '/imgs/..' is under the root
    assert len(data.val) == 1 and data.val.paths[0].endswith("imgs/4.png")


def test_decoded_cache_sees_a_same_size_replacement(tmp_path, no_download):
    folder = tmp_path / "f"
    for c in ("a", "b"):
        for i in range(2):
            # BMP: files of one size whatever the pixels
            write_image(folder / c / f"{i}.bmp", np.full((8, 8, 3), 10 * i + (100 if c == "b" else 0), np.uint8))
    cfg = DataConfig(dataset="folder", data_dir=str(folder), imbalance_factor=None, image_size=8, test_fraction=0.5)
    first = build_dataset(cfg).train.images.copy()
    # swap the contents of two same-size files: same paths, same sizes, new pixels
    a, b = folder / "a" / "0.bmp", folder / "a" / "1.bmp"
    da, db = a.read_bytes(), b.read_bytes()
    assert len(da) == len(db)
    a.write_bytes(db)
    b.write_bytes(da)
    st = a.stat()
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a distinct mtime even on coarse clocks
    second = build_dataset(cfg).train.images
    assert not np.array_equal(first, second)


def test_predict_names_a_decompression_bomb_and_predicts_the_rest(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--out",
                str(run),
                "--no-progress",
                "stage1.epochs=1",
                "stage1.warmup_epochs=0",
                "stage1.milestones=[1]",
                "stage2.epochs=0",
                "eval_every=0",
            ]
        )
        == 0
    )
    write_image(tmp_path / "imgs" / "good.png", np.zeros((8, 8, 3), np.uint8))
    write_image(tmp_path / "imgs" / "bomb.png", np.zeros((300, 300, 3), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "imgs"), "--json"]) == 0
    out, err = capsys.readouterr()
    assert [r["path"] for r in json.loads(out)] == [str(tmp_path / "imgs" / "good.png")]
    assert "bomb.png" in err and "decompression-bomb" in err and len(err.strip().splitlines()) == 1


def test_no_progress_bars_off_a_terminal_or_when_disabled(tmp_path, capfd):
    from lcreg.progress import set_enabled

    paths = []
    for i in range(3):
        write_image(tmp_path / f"{i}.png", np.zeros((4, 4, 3), np.uint8))
        paths.append(str(tmp_path / f"{i}.png"))
    decode_images(paths, 4)  # stderr is not a terminal under pytest
    set_enabled(False)
    try:
        decode_images(paths, 4)
    finally:
        set_enabled(True)
    assert capfd.readouterr().err == ""
