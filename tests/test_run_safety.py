"""Run folders that cannot be clobbered, lost or mislabelled; outputs that never replace what
is not a regular file; bounded inputs. A second table beside test_bad_input.py: each input
ends with exit code 2, one stderr line, no traceback, and every existing file unchanged
(checksums); then the behaviours a table cannot show (two processes, a queue that must not
delete, a resume that must check before it writes, pixels that must be scaled)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lcreg import run_folder as rf
from lcreg.data.images import load_rgb
from lcreg.runtime.checkpoint import load_model_file

from conftest import cli as main
from conftest import write_image

SHORT = ["--no-progress", "stage1.epochs=2", "stage1.warmup_epochs=0", "stage1.milestones=[1]", "stage2.epochs=1"]
SHORT += ["eval_every=0"]


def checksums(root: Path) -> dict[str, str]:
    """Every entry below ``root``: a file's sha1, or its kind (folder, FIFO, device)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        mode = p.lstat().st_mode
        if stat.S_ISREG(mode):
            out[rel] = hashlib.sha1(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir" if stat.S_ISDIR(mode) else f"special {stat.S_IFMT(mode)}"
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("safety")
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    run = root / "run"
    assert main(["train", "--out", str(run), *SHORT]) == 0
    os.mkfifo(root / "fifo")
    try:  # a device node of the test's own (never /dev/null itself); needs root
        os.mknod(root / "device", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        pass
    # run folders whose files are valid JSON of the wrong shape, or not JSON at all
    for name, file, text in (
        ("final_list", rf.FINAL, "[1, 2]"),
        ("final_garbage", rf.FINAL, "{not json"),
        ("final_no_test", rf.FINAL, '{"stage1": {"epoch": 3}}'),
        ("env_list", rf.ENVIRONMENT, "[]"),
        ("env_garbage", rf.ENVIRONMENT, "\x00\x01"),
        ("log_middle", rf.METRICS, '{"stage": 1, "epoch": 1}\nnot json\n{"stage": 1, "epoch": 2}\n'),
    ):
        folder = root / name
        subprocess.run(["cp", "-r", str(run), str(folder)], check=True)
        (folder / file).write_text(text)
    # a checkpoint of another run (another seed) in an interrupted folder
    other = root / "other_ckpt"
    subprocess.run(["cp", "-r", str(run), str(other)], check=True)
    (other / rf.FINAL).unlink()
    ckpt = load_model_file(run / "stage1_model.safetensors")
    ckpt.update(stage=1, epoch=1, config={**ckpt["config"], "seed": 7})
    torch.save(ckpt, other / rf.CHECKPOINT)
    # an interrupted run (its own checkpoint) whose log is damaged before its last line
    broken = root / "log_middle_interrupted"
    subprocess.run(["cp", "-r", str(other), str(broken)], check=True)
    ckpt["config"]["seed"] = load_model_file(run / "stage1_model.safetensors")["config"]["seed"]
    torch.save(ckpt, broken / rf.CHECKPOINT)
    (broken / rf.METRICS).write_text('{"stage": 1, "epoch": 1}\nnot json\n{"stage": 1, "epoch": 2}\n')
    # text files that are not UTF-8, list files with labels that only look like integers
    (root / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    lists = root / "lists"
    for c in (0, 1):
        write_image(lists / "img" / f"{c}.png", np.full((8, 8, 3), 60 * c, np.uint8))
    write_image(root / "outside.png", np.zeros((8, 8, 3), np.uint8))
    (lists / "latin1.txt").write_bytes("img/0.png 0\nimg/caf\xe9.png 1\n".encode("latin-1"))
    (lists / "superscript.txt").write_text("img/0.png 0\nimg/1.png \u00b2\n")
    (lists / "float.txt").write_text("img/0.png 0\nimg/1.png 1.0\n")
    (lists / "escape.txt").write_text("img/0.png 0\n../outside.png 1\n")
    (lists / "gap.txt").write_text("img/0.png 0\nimg/1.png 2\n")
    (lists / "train.txt").write_text("img/0.png 0\nimg/1.png 1\n")
    (lists / "test_unseen.txt").write_text("img/0.png 0\nimg/1.png 5\n")
    (lists / "huge.txt").write_text("img/0.png 0\nimg/1.png 99999999999\n")
    # one folder of classes with one image each: no test image can be held out
    for c in ("a", "b"):
        write_image(root / "single" / c / "0.png", np.zeros((8, 8, 3), np.uint8))
    yield root
    mp.undo()


L = ["train", "--dataset", "list", "--data-dir", "{root}/lists", "--no-progress"]
CASES = [
    # outputs: never over what is not a regular file, even with --force
    ("export over a FIFO", ["export", "{run}", "--out", "{root}/fifo", "--force"], "not a regular file"),
    ("export over a device", ["export", "{run}", "--out", "{root}/device", "--force"], "not a regular file"),
    ("plot over a FIFO", ["data", "stats", "--plot", "{root}/fifo", "--force"], "not a regular file"),
    ("plot with an unknown extension", ["data", "stats", "--plot", "{root}/dist.xyz"], "cannot write a figure"),
    ("eval into a file", ["eval", "{run}", "--out", "{root}/latin1.yaml"], "not a folder"),
    ("report into a FIFO", ["report", "{run}", "--out", "{root}/fifo"], "not a folder"),
    # run files of the wrong shape, in every command that reads them
    ("runs: final metrics a list", ["runs", "{root}/final_list"], "JSON list"),
    ("runs: final metrics not JSON", ["runs", "{root}/final_garbage"], "not valid JSON"),
    ("runs: final metrics without test", ["runs", "{root}/final_no_test"], "no test metrics"),
    ("runs: environment a list", ["runs", "{root}/env_list"], "JSON list"),
    ("report: environment not text", ["report", "{root}/env_garbage"], "not valid JSON"),
    ("report: damaged log line", ["report", "{root}/log_middle"], "line 2"),
    ("resume: damaged final metrics", ["train", "--resume", "{root}/final_garbage"], "not valid JSON"),
    ("resume: damaged log line", ["train", "--resume", "{root}/log_middle_interrupted"], "line 2"),
    ("resume: another run's checkpoint", ["train", "--resume", "{root}/other_ckpt"], "another run"),
    # seeds, devices, text encodings
    ("negative seed", ["train", "--seed", "-1"], "seed"),
    ("seed beyond numpy", ["train", "seed=4294967296"], "4294967295"),
    ("data: negative seed", ["data", "stats", "--seed", "-3"], "seed"),
    ("analyze: seed beyond numpy", ["analyze", "{run}", "--seed", "4294967296"], "--seed"),
    ("unknown device", ["train", "--device", "banana"], "unknown device"),
    ("device this build lacks", ["train", "--device", "mps"], "mps"),
    ("config not UTF-8", ["train", "{root}/latin1.yaml"], "not UTF-8"),
    ("list not UTF-8", [*L, "data.train_list=latin1.txt", "data.test_list=train.txt"], "not UTF-8"),
    ("label a superscript", [*L, "data.train_list=superscript.txt", "data.test_list=train.txt"], "label"),
    ("label a float", [*L, "data.train_list=float.txt", "data.test_list=train.txt"], "label"),
    ("label beyond bounds", [*L, "data.train_list=huge.txt", "data.test_list=train.txt"], "label"),
    ("path leaves the root", [*L, "data.train_list=escape.txt", "data.test_list=train.txt"], "leaves the image root"),
    ("class without images", [*L, "data.train_list=gap.txt", "data.test_list=train.txt"], "have none"),
    ("test label unseen", [*L, "data.train_list=train.txt", "data.test_list=test_unseen.txt"], "no training image"),
    (
        "empty test split",
        ["train", "--dataset", "folder", "--data-dir", "{root}/single", "--no-progress"],
        "test split",
    ),
    # bounds, before anything is allocated; messages of bounded size
    ("a billion latent categories", ["train", "model.latent.num_latents=1000000000"], "num_latents"),
    ("padding beyond the image", ["train", "data.crop_padding=100000"], "crop_padding"),
    ("a long milestone list", ["train", f"stage1.milestones=[{','.join(['1'] * 5000)}]"], "at most"),
    ("an endless schedule", ["train", "stage1.epochs=1000000000"], "stage1.epochs"),
    ("a huge value for a number", ["train", f"stage1.lr=[{','.join(['1'] * 5000)}]"], "expects float"),
    ("a huge key", ["train", "x" * 5000 + "=1"], "unknown config key"),
    ("a huge method name", ["train", "method=" + "y" * 5000], "is not one of"),
    ("a method that reads no such key", ["train", "method=mislas", "model.latent.num_latents=9"], "does not read"),
    ("a method parameter of another method", ["train", "method=ce", "method_params.gamma=3"], "no parameter"),
]


@pytest.mark.parametrize("argv,phrase", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(world, argv, phrase, capsys):
    if "{root}/device" in argv and not (world / "device").exists():
        pytest.skip("mknod needs root")
    argv = [a.replace("{root}", str(world)).replace("{run}", str(world / "run")) for a in argv]
    before = checksums(world)
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert phrase in lines[0], lines[0]
    assert len(lines[0]) < 400  # no value of unbounded size in a message
    assert checksums(world) == before


def test_the_second_table_covers_thirty_inputs():
    assert len(CASES) >= 30


# --------------------------------------------------------------------------------------
# two processes, one folder


def _lcreg(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lcreg", *args], stderr=subprocess.PIPE, text=True, env=env)


def test_a_second_training_into_a_live_run_folder_is_refused(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    run = tmp_path / "run"
    long = ["--no-progress", "stage1.epochs=30", "stage1.warmup_epochs=0", "stage1.milestones=[20]"]
    first = _lcreg("train", "--out", str(run), *long, "stage2.epochs=1", "eval_every=0", env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / rf.LOCK).is_file() or not (run / rf.LOCK).read_text():
        time.sleep(0.2)
    # a second start during the first's epoch 1, and a resume: both refused, naming the holder
    for args in (["train", "--out", str(run), *SHORT], ["train", "--resume", str(run), "--no-progress"]):
        second = _lcreg(*args, env=env)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        assert "in use by process" in err and str(first.pid) in err and len(err.strip().splitlines()) == 1
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    records = rf.read_records(run)
    assert [(r["stage"], r["epoch"]) for r in records] == [(1, e) for e in range(1, 31)] + [(2, 1)]
    assert rf.state(run) == "finished"


def test_a_stale_lock_never_blocks(tmp_path, no_download):
    run = tmp_path / "run"
    run.mkdir()
    (run / rf.LOCK).write_text(json.dumps({"pid": 999999, "host": "gone", "command": "lcreg train", "since": "-"}))
    assert main(["train", "--out", str(run), *SHORT]) == 0  # the process that held it is gone
    assert rf.state(run) == "finished"


# --------------------------------------------------------------------------------------
# the queue never deletes what it did not create, and never mislabels


def _finished_cell(results: Path, overrides=(), top1=0.7) -> Path:
    import run_queue as rp
    from lcreg.config import load_config, save_config

    (r,) = rp.plan("table7", results, ["cifar10"], [100], [0], ["baseline"], None)
    r.out.mkdir(parents=True)
    save_config(load_config(r.preset, [*r.overrides, *overrides, "seed=0"]), r.out / rf.CONFIG)
    test = {"top1": top1, "many": 0.8, "medium": 0.5, "few": None, "ece": 0.02}
    (r.out / rf.FINAL).write_text(json.dumps({"stages": [1, 2], "stage1": {"test": test}, "stage2": {"test": test}}))
    (r.out / rf.ENVIRONMENT).write_text(json.dumps({"device": "CPU (test)", "commit": "abc"}))
    (r.out / rf.DATA_STATS).write_text(json.dumps({"source": "data/x.tar.gz (extracted)", "layout": "folders"}))
    (r.out / rf.model_file(2)).write_bytes(b"model")
    (r.out / "analysis").mkdir()
    (r.out / "analysis" / "diagnostics.json").write_text("{}")
    return r.out


def test_reproduce_never_deletes_a_finished_run_whose_metrics_became_unreadable(tmp_path, capsys):
    results = tmp_path / "results"
    out = _finished_cell(results)
    (out / rf.FINAL).write_text("{truncated")
    before = checksums(results)
    args = ["reproduce", "table7", "--methods", "baseline", "--imbalance-factors", "100"]
    assert main([*args, "--data-dir", str(tmp_path), "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert "final_metrics.json" in err and "not valid JSON" in err and len(err.splitlines()) == 1
    assert checksums(results) == before


def test_reproduce_never_trains_over_a_folder_it_did_not_create(tmp_path, capsys, no_download):
    from conftest import write_cifar10_pickles

    data = write_cifar10_pickles(tmp_path / "data", per_class=10).parent
    results = tmp_path / "results"
    out = results / "table1" / "cifar10_if100" / "mislas_seed0_e1"  # where the cell's run goes
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("my own notes\n")  # not a run's file: never removed
    args = ["reproduce", "table7", "--methods", "baseline", "--imbalance-factors", "100", "--epochs", "1"]
    before = checksums(results)
    assert main([*args, "--data-dir", str(data), "--results", str(results), "--train-args", "--compile off"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "not empty" in err[-1] and "the queue stops here" in err[-1]
    assert checksums(results) == before


def test_a_run_trained_with_other_settings_is_not_its_cell(tmp_path, capsys):
    results = tmp_path / "results"
    _finished_cell(results, overrides=["stage1.epochs=1"])
    before = checksums(results)
    table = ["reproduce", "table7", "--methods", "baseline", "--imbalance-factors", "100", "--results", str(results)]
    # the table does not count it as the full-schedule cell, and says why
    assert main([*table, "--table-only"]) == 0
    summary = json.loads((results / "table7.json").read_text())
    row = next(r for r in summary["rows"] if r["variant"] == "baseline")
    assert row["seeds"] == [] and summary["excluded"] and "Not counted" in (results / "table7.md").read_text()
    # the queue neither skips it as finished nor replaces it
    assert main([*table, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "another experiment" in err and "stage1.epochs: 1 != 200" in err
    assert {k: v for k, v in checksums(results).items() if k in before} == before
    # asked with the same settings, it is the cell: the schedule in the heading is the runs' own
    assert main([*table, "--table-only", "--train-args", "stage1.epochs=1"]) == 0
    summary = json.loads((results / "table7.json").read_text())
    assert "1 + 10" in summary["schedule"] and "full schedule" not in summary["schedule"]


def test_tables_take_the_data_layout_from_each_run(tmp_path):
    from paper_tables import data_label, portable_source

    assert data_label({"pickles"}) == "CIFAR (original pickles)"
    assert "not the original pickles" in data_label({"folders"}) and "mixed" in data_label({"pickles", "folders"})
    assert portable_source("/home/me/.cache/lcreg/extracted/cifar10-jpeg-0123456789abcdef") == (
        "cifar10-jpeg archive, extracted"
    )


# --------------------------------------------------------------------------------------
# resume: check everything, then touch the folder


def test_a_half_written_last_log_line_is_dropped_on_resume(tmp_path, monkeypatch, no_download):
    from lcreg.engine import train as train_mod

    from conftest import kill_at_call

    run = tmp_path / "run"
    restore = kill_at_call(monkeypatch, train_mod.Trainer, "_checkpoint", 2)
    assert main(["train", "--out", str(run), *SHORT]) == 130
    restore()
    with open(run / rf.METRICS, "a") as f:
        f.write('{"stage": 1, "epo')  # a crash mid-write
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert [(r["stage"], r["epoch"]) for r in rf.read_records(run)] == [(1, 1), (1, 2), (2, 1)]
    assert (run / rf.METRICS).read_text().endswith("}\n")


def test_a_refused_resume_leaves_the_folder_as_it_was(world, capsys):
    folder = world / "other_ckpt"
    before = {p.name: p.stat().st_mtime_ns for p in folder.rglob("*")}
    assert main(["train", "--resume", str(folder), "--no-progress"]) == 2
    assert {p.name: p.stat().st_mtime_ns for p in folder.rglob("*")} == before  # no new TensorBoard file either
    capsys.readouterr()


# --------------------------------------------------------------------------------------
# pixels, cache, report


def test_16_bit_and_float_images_are_scaled_not_clipped(tmp_path):
    gray16 = (np.arange(256, dtype=np.uint32).reshape(16, 16) * 257).astype(np.uint16)  # 0 .. 65535
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "g16.png"))[..., 0], np.arange(256).reshape(16, 16))
    unit = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    Image.fromarray(unit, "F").save(tmp_path / "f.tif")
    rgb = np.asarray(load_rgb(tmp_path / "f.tif"))
    assert rgb.shape == (16, 16, 3) and rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255 and rgb[8, 0, 1] == 128
    Image.fromarray(np.full((4, 4), -1.0, np.float32), "F").save(tmp_path / "neg.tif")
    from lcreg.errors import LcregError

    with pytest.raises(LcregError, match="neg.tif"):
        load_rgb(tmp_path / "neg.tif")


def test_a_truncated_image_cache_is_rebuilt(tmp_path):
    from lcreg.data.cache import cached_arrays

    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(1000)}

    cached_arrays(tmp_path, "k", build)
    path = tmp_path / "k.npz"
    path.write_bytes(path.read_bytes()[:100])
    assert np.array_equal(cached_arrays(tmp_path, "k", build)["x"], np.arange(1000)) and len(calls) == 2
    assert np.array_equal(cached_arrays(tmp_path, "k", build)["x"], np.arange(1000)) and len(calls) == 2


def test_a_report_on_a_truncated_model_leaves_no_half_report(world, tmp_path, capsys):
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(world / "run"), str(run)], check=True)
    (run / "stage2_model.safetensors").write_bytes((run / "stage2_model.safetensors").read_bytes()[:1000])
    assert main(["report", str(run)]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert not (run / "report").exists() and not list(run.glob(".report*"))


def test_a_pickle_protocol_4_model_file_is_refused_in_one_line(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("unpickled",))

    path = tmp_path / "crafted.pt"
    with open(path, "wb") as f:
        torch.save({"model": Payload()}, f, pickle_protocol=4)
    assert main(["eval", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "refusing to load" in err
