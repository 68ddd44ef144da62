"""Every bad input a user can type ends the same way: exit code 2, exactly one line on
stderr that names the problem, no traceback, and no existing file changed.

The table below drives the real command line (``lcreg.cli.main``) with each input; files in
the shared folder are checksummed before and after every command.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lcreg.cli import main
from lcreg.runtime.checkpoint import load_model_file

from conftest import write_cifar10_pickles, write_image

SHORT = ["stage1.epochs=2", "stage1.warmup_epochs=0", "stage1.milestones=[1]", "stage2.epochs=1", "eval_every=0"]


class Evil:
    """Unpickling this runs code: it creates the marker folder."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def read_only_dir() -> Path:
    """A folder no one can write into, even root: /sys refuses new entries."""
    path = Path("/sys/lcreg-read-only-test")
    try:
        path.mkdir()
    except OSError:
        return path
    path.rmdir()
    pytest.skip("no read-only folder on this machine")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A finished demo run, data folders in every broken shape, crafted model files."""
    root = tmp_path_factory.mktemp("bad")
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    yield _build_world(root)
    mp.undo()


def _build_world(root: Path) -> Path:
    run = root / "run"
    assert main(["train", "--out", str(run), "--no-progress", *SHORT]) == 0
    rng = np.random.default_rng(0)

    def img(path: Path, size: int = 12) -> None:
        write_image(path, rng.integers(0, 255, (size, size, 3), dtype=np.uint8))

    (root / "empty").mkdir()
    for c in ("a", "b"):  # train/ without test/
        for i in range(3):
            img(root / "train_only" / "train" / c / f"{i}.png")
    for c in ("a", "b"):  # a folder with one corrupt image
        for i in range(4):
            img(root / "corrupt" / c / f"{i}.png")
    (root / "corrupt" / "b" / "broken.png").write_bytes(b"not a png at all")
    (root / "broken.tar.gz").write_bytes(b"not an archive")
    (root / "broken.zip").write_bytes(b"PK\x03\x04 cut short")
    for c in ("a", "b"):  # a folder with a decompression bomb (beyond the limit the tests set)
        for i in range(4):
            img(root / "bomb" / c / f"{i}.png")
    img(root / "bomb" / "a" / "huge.png", size=200)
    (root / "lists").mkdir()
    img(root / "lists" / "x" / "0.png")
    (root / "lists" / "train.txt").write_text("x/0.png 0\nx/missing1.png 1\nx/missing2.png 1\n")
    (root / "lists" / "test.txt").write_text("x/0.png 0\n")
    (root / "a_file.txt").write_text("I am a file\n")
    (root / "existing_export.ts").write_text("keep me\n")
    (root / "no_stage1").mkdir()
    (root / "no_stage1" / "config.yaml").write_text("name: x\n")
    img(root / "picture.png")
    # crafted files: pickles that would run code, a dict with missing parts, a truncated file
    marker = root / "PWNED"
    torch.save({"model": {}, "config": Evil(marker), "summary": {}}, root / "evil.pt")
    for name in ("evil_resume", "evil_from"):
        (root / name).mkdir()
        (root / name / "config.yaml").write_text((run / "config.yaml").read_text())
    torch.save({"stage": 1, "epoch": 1, "model": Evil(marker)}, root / "evil_resume" / "checkpoint.pt")
    torch.save({"model": Evil(marker), "config": {}, "summary": {}}, root / "evil_from" / "stage1_model.pt")
    torch.save({"model": {}, "stage": 2}, root / "partial.pt")
    good = load_model_file(run / "stage2_model.safetensors")
    good["model"] = {k: v for k, v in list(good["model"].items())[:-3]}  # some weights missing
    torch.save(good, root / "wrong_weights.pt")
    torch.save(load_model_file(run / "stage2_model.safetensors"), root / "legacy.pt")  # a model file before 0.2
    (root / "truncated.pt").write_bytes((root / "legacy.pt").read_bytes()[:1000])
    (root / "truncated.safetensors").write_bytes((run / "stage2_model.safetensors").read_bytes()[:1000])
    cifar = write_cifar10_pickles(root / "cifar_evil", per_class=2)
    with open(cifar / "batches.meta", "wb") as f:
        pickle.dump({"label_names": Evil(marker)}, f, protocol=2)
    return root


def snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha1(p.read_bytes()).hexdigest()
    return out


# (id, argv with {root} and {run} placeholders, a phrase the message must hold)
CASES = [
    ("missing data dir", ["train", "cifar10_lt_if100", "--data-dir", "{root}/nope"], "does not exist"),
    ("empty data dir", ["train", "cifar10_lt_if100", "--data-dir", "{root}/empty", "data.download=false"], "is empty"),
    (
        "data dir is a file",
        ["train", "--dataset", "folder", "--data-dir", "{root}/a_file.txt", "--no-progress"],
        "is a file",
    ),
    (
        "train/ without test/",
        ["train", "--dataset", "folder", "--data-dir", "{root}/train_only", "data.image_size=32", "--no-progress"],
        "no test/ or val/",
    ),
    (
        "corrupt image in training",
        ["train", "folder", "--data-dir", "{root}/corrupt", "data.image_size=32", "--no-progress"],
        "broken.png",
    ),
    (
        "decompression bomb in training",
        ["train", "folder", "--data-dir", "{root}/bomb", "data.image_size=32", "--no-progress"],
        "huge.png",
    ),
    (
        "corrupt image in data stats",
        ["data", "stats", "folder", "--data-dir", "{root}/corrupt", "data.image_size=32", "--no-progress"],
        "broken.png",
    ),
    (
        "list names missing images",
        [
            "train",
            "--dataset",
            "list",
            "--data-dir",
            "{root}/lists",
            "data.image_size=32",
            "data.train_list=train.txt",
            "data.test_list=test.txt",
            "--no-progress",
        ],
        "2 image(s)",
    ),
    (
        "data stats checks list entries",
        [
            "data",
            "stats",
            "--dataset",
            "list",
            "--data-dir",
            "{root}/lists",
            "data.image_size=32",
            "data.train_list=train.txt",
            "data.test_list=test.txt",
            "--no-progress",
        ],
        "missing1.png",
    ),
    ("--data-dir for the built-in demo", ["train", "--data-dir", "{root}/corrupt"], "lcreg train folder"),
    ("folder preset without --data-dir", ["train", "folder"], "needs --data-dir"),
    ("corrupt .tar.gz", ["train", "cifar10_lt_if100", "--data-dir", "{root}/broken.tar.gz"], "corrupt or not"),
    ("corrupt .zip", ["train", "cifar10_lt_if100", "--data-dir", "{root}/broken.zip"], "corrupt or not"),
    ("negative epochs", ["train", "stage1.epochs=-1"], "stage1.epochs"),
    ("zero stage-1 epochs", ["train", "stage1.epochs=0"], "--stage 2 --from"),
    ("infinite imbalance", ["train", "data.imbalance_factor=.inf"], "imbalance_factor"),
    ("NaN imbalance", ["train", "data.imbalance_factor=.nan"], "imbalance_factor"),
    ("imbalance below 1", ["train", "--imbalance-factor", "0.5"], "imbalance_factor"),
    ("batch size 0", ["train", "stage1.batch_size=0"], "stage1.batch_size"),
    ("batch larger than the data", ["train", "stage1.batch_size=100000", "--no-progress"], "fewer than one batch"),
    ("negative learning rate", ["train", "stage1.lr=-0.1"], "stage1.lr"),
    ("zero temperature", ["train", "model.latent.temperature=0"], "temperature"),
    ("bad choice", ["train", "loss.recon_reduction=median"], "recon_reduction"),
    ("milestones not epochs", ["train", "stage1.milestones=[a]"], "milestones"),
    ("unknown key", ["train", "stage1.epoch=3"], "did you mean 'stage1.epochs'"),
    ("unknown preset", ["train", "cifar10_lt_if1000"], "did you mean"),
    ("override without =", ["data", "stats", "demo", "seed"], "unexpected argument"),
    ("unknown dataset", ["train", "--dataset", "imagenet"], "data.dataset"),
    ("--out is a file", ["train", "--out", "{root}/a_file.txt"], "is a file"),
    ("--out is read-only", ["train", "--out", "{ro}/run"], "cannot create run folder"),
    ("--out is a finished run", ["train", "--out", "{run}"], "not empty"),
    ("resume a finished run", ["train", "--resume", "{run}"], "finished"),
    ("resume a non-run", ["train", "--resume", "{root}/empty"], "not a run folder"),
    ("resume a crafted checkpoint", ["train", "--resume", "{root}/evil_resume"], "refusing to load"),
    ("stage 2 without --from", ["train", "--stage", "2"], "--from"),
    ("stage 2 from no stage 1", ["train", "--stage", "2", "--from", "{root}/no_stage1"], "does not exist"),
    ("stage 2 from a crafted model", ["train", "--stage", "2", "--from", "{root}/evil_from"], "refusing to load"),
    ("crafted CIFAR pickle", ["data", "stats", "cifar10_lt_if100", "--data-dir", "{root}/cifar_evil"], "unsafe"),
    ("eval a crafted model", ["eval", "{root}/evil.pt"], "refusing to load"),
    ("predict with a crafted model", ["predict", "{root}/evil.pt", "{root}/picture.png"], "refusing to load"),
    ("export a crafted model", ["export", "{root}/evil.pt", "--out", "{root}/x.ts"], "refusing to load"),
    ("analyze a crafted model", ["analyze", "{root}/evil.pt"], "refusing to load"),
    ("eval a missing model", ["eval", "{root}/nope.pt"], "does not exist"),
    ("eval a dict with missing parts", ["eval", "{root}/partial.pt"], "missing: config, summary"),
    ("eval weights that do not fit", ["eval", "{root}/wrong_weights.pt"], "do not fit"),
    ("eval a truncated file", ["eval", "{root}/truncated.pt"], "cannot read"),
    ("eval a truncated safetensors file", ["eval", "{root}/truncated.safetensors"], "cannot read"),
    ("eval a demo model on other data", ["eval", "{run}", "--data-dir", "{root}/corrupt"], "demo"),
    ("eval batch size 0", ["eval", "{run}", "--batch-size", "0"], ">= 1"),
    ("predict top-k 0", ["predict", "{run}", "{root}/picture.png", "--top-k", "0"], ">= 1"),
    ("predict top-k negative", ["predict", "{run}", "{root}/picture.png", "--top-k", "-3"], ">= 1"),
    ("predict a missing image", ["predict", "{run}", "{root}/nope.png"], "does not exist"),
    ("predict only unreadable files", ["predict", "{run}", "{root}/a_file.txt"], "could be read"),
    (
        "export over the run's model",
        ["export", "{run}", "--out", "{run}/stage2_model.safetensors", "--force"],
        "belongs to a run folder",
    ),
    (
        "export over the run's checkpoint",
        ["export", "{run}", "--out", "{run}/checkpoint.pt"],
        "belongs to a run folder",
    ),
    ("export over an existing file", ["export", "{run}", "--out", "{root}/existing_export.ts"], "--force"),
    ("analyze a latent out of range", ["analyze", "{run}", "--latents", "99"], "out of range"),
    ("plot into a read-only folder", ["data", "stats", "--plot", "{ro}/dist.png"], "lcreg-read-only-test"),
    ("plot onto a device file", ["data", "stats", "--plot", "/dev/full", "--force"], "not a regular file"),
    ("unknown compile setting", ["train", "--compile", "maybe"], "invalid choice"),
    ("unknown command", ["fly"], "invalid choice"),
]


@pytest.mark.parametrize("argv,phrase", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(world, argv, phrase, capsys, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # the 200 x 200 'bomb' is beyond twice this
    ro = read_only_dir() if any("{ro}" in a for a in argv) else ""
    argv = [a.format(root=world, run=world / "run", ro=ro) for a in argv]
    monkeypatch.chdir(world.parent)  # a default run folder (runs/...) would go here, never into the repo
    before = snapshot(world)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("lcreg")
    assert phrase in lines[0], lines[0]
    assert snapshot(world) == before
    assert not (world / "PWNED").exists()


def test_the_table_covers_at_least_forty_inputs():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.fixture
def full_disk(tmp_path):
    """A 256 kB file system filled up: a real 'no space left on device' (needs mount rights)."""
    mount = tmp_path / "full"
    mount.mkdir()
    if os.system(f"mount -t tmpfs -o size=256k tmpfs {mount} 2>/dev/null") != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        with open(mount / "filler", "wb") as f:
            try:
                f.write(b"\0" * (1 << 20))
            except OSError:
                pass
        yield mount
    finally:
        os.system(f"umount {mount}")


def test_a_full_disk_is_named_and_leaves_no_partial_file(full_disk, capsys):
    code = main(["data", "stats", "--plot", str(full_disk / "dist.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no space left on device" in err[0], err
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_a_failed_checkpoint_write_keeps_the_last_good_one(tmp_path, monkeypatch):
    """torch.save on a full disk raises 'enforce fail ... unexpected pos'; we name the disk."""
    from lcreg.errors import LcregError
    from lcreg.runtime.checkpoint import load_checkpoint, save_checkpoint

    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"epoch": 1}, path)

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(LcregError, match="no space left on device"):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_nan_loss_mid_run_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    """A loss that turns NaN in epoch 2: one line naming the terms and the epoch, exit 2, the
    epoch-1 checkpoint kept, and the run resumable from it."""
    from lcreg.engine import train as train_mod
    from lcreg.runtime.checkpoint import load_checkpoint

    real = train_mod.train_one_epoch
    calls = {"n": 0}

    def nan_in_second_epoch(plan, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            monkeypatch.setattr(plan.step.objective, "gamma", float("nan"))
        return real(plan, *args, **kwargs)

    monkeypatch.setattr(train_mod, "train_one_epoch", nan_in_second_epoch)
    run = tmp_path / "run"
    code = main(
        [
            "train",
            "--out",
            str(run),
            "--no-progress",
            "stage1.epochs=3",
            "stage1.warmup_epochs=0",
            "stage1.milestones=[2]",
            "stage2.epochs=1",
            "eval_every=0",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "non-finite loss in stage 1 epoch 2/3" in err[0] and "cls" in err[0]
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1
    monkeypatch.setattr(train_mod, "train_one_epoch", real)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0


def test_model_files_of_lcreg_0_1_still_load(tmp_path, capsys):
    """lcreg 0.1 pickled the config dataclass itself, and chose the method with
    model.latent.enabled; such a file (here a MiSLAS model) loads and is read as that method."""
    from lcreg.config import load_saved_config

    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--no-progress", "method=mislas", *SHORT]) == 0
    state = load_model_file(run / "stage2_model.safetensors")
    assert isinstance(state["config"], dict)  # today's files: plain data (JSON in a safetensors header)
    old_cfg = load_saved_config(run / "config.yaml")
    del old_cfg.__dict__["method"]  # as 0.1 wrote it: no method field ...
    old_cfg.model.latent.__dict__["enabled"] = False  # ... but the latent switch
    state["config"] = old_cfg
    old = tmp_path / "old_model.pt"
    torch.save(state, old)
    capsys.readouterr()
    assert main(["eval", str(old), "--out", str(tmp_path / "ev")]) == 0
    assert "top-1" in capsys.readouterr().out
