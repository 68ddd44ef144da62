"""Model files in the field's formats: safetensors with a JSON header (nothing pickled), a
Hugging Face-style folder (``lcreg export --format hf``) that every command takes as it takes
a run folder, and ``hf-hub:ORG/NAME`` through huggingface_hub (offline: a pre-filled cache)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lcreg.cli import main
from lcreg.commands.trained import load_trained_model
from lcreg.runtime.checkpoint import META_KEY, load_model_file

SHORT = ["--no-progress", "stage1.epochs=2", "stage1.warmup_epochs=0", "stage1.milestones=[1]", "stage2.epochs=1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    folder = tmp_path_factory.mktemp("m") / "run"
    assert main(["train", "--out", str(folder), *SHORT, "eval_every=0"]) == 0
    yield folder
    mp.undo()


def test_training_writes_safetensors_with_the_config_in_its_header(run):
    from safetensors import safe_open

    assert sorted(p.name for p in run.glob("stage*_model.*")) == [
        "stage1_model.safetensors",
        "stage2_model.safetensors",
    ]
    with safe_open(str(run / "stage2_model.safetensors"), framework="pt") as f:
        meta = json.loads(f.metadata()[META_KEY])
    assert meta["stage"] == 2 and meta["config"]["method"] == "lcreg" and len(meta["summary"]["class_names"]) == 10
    # the bytes hold no pickle: safetensors is a JSON header and raw tensors
    assert b"\x80\x04" not in (run / "stage2_model.safetensors").read_bytes()[:64]
    state = load_model_file(run / "stage2_model.safetensors")
    assert all(isinstance(v, torch.Tensor) for v in state["model"].values())


def test_the_hf_folder_serves_every_command_as_the_run_does(run, tmp_path, capsys):
    hf = tmp_path / "lcreg-demo"
    assert main(["export", str(run), "--format", "hf", "--out", str(hf)]) == 0
    assert sorted(p.name for p in hf.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((hf / "config.json").read_text())
    assert config["num_classes"] == 10 and config["input_size"] == [3, 16, 16] and config["label_names"][0] == "0"
    card = (hf / "README.md").read_text()
    assert card.startswith("---\nlicense: mit\nlibrary_name: lcreg") and "| test (final epoch) |" in card
    assert "- command: `" in card and "sha256" in card
    final = json.loads((run / "final_metrics.json").read_text())["stage2"]["test"]
    assert f"{100 * final['top1']:.2f}" in card
    # the same model: identical logits from the run folder and the HF folder
    a, b = load_trained_model(run, torch.device("cpu")), load_trained_model(hf, torch.device("cpu"))
    x = torch.randn(4, 3, 16, 16)
    assert torch.equal(a.model(x).logits, b.model(x).logits) and b.class_names == a.class_names
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "x.png")
    capsys.readouterr()
    for argv in (
        ["eval", str(hf), "--out", str(tmp_path / "ev")],
        ["predict", str(hf), str(tmp_path / "x.png"), "--json"],
        ["analyze", str(hf), "--out", str(tmp_path / "an")],
        ["export", str(hf), "--out", str(tmp_path / "m.ts")],
        ["report", str(hf), "--out", str(tmp_path / "rep")],
    ):
        assert main(argv) == 0, argv
    assert (tmp_path / "rep" / "report.md").is_file()
    # an existing folder is replaced only with --force, and only if it is an HF folder of ours
    assert main(["export", str(run), "--format", "hf", "--out", str(hf)]) == 2
    assert main(["export", str(run), "--format", "hf", "--out", str(hf), "--force"]) == 0
    assert main(["export", str(run), "--format", "hf", "--out", str(tmp_path / "ev"), "--force"]) == 2
    assert "not an lcreg HF folder" in capsys.readouterr().err


def _prefill_hub_cache(cache, repo: str, folder) -> None:
    """What huggingface_hub's snapshot_download leaves in its cache."""
    revision = "0" * 40
    base = cache / f"models--{repo.replace('/', '--')}"
    snap = base / "snapshots" / revision
    snap.mkdir(parents=True)
    for p in folder.iterdir():
        shutil.copy(p, snap / p.name)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(revision)


def test_hf_hub_names_load_from_a_prefilled_cache_offline(run, tmp_path, monkeypatch, capsys):
    pytest.importorskip("huggingface_hub")
    hf = tmp_path / "hf"
    assert main(["export", str(run), "--format", "hf", "--out", str(hf)]) == 0
    cache = tmp_path / "hub"
    _prefill_hub_cache(cache, "lcreg/demo", hf)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "x.png")
    capsys.readouterr()
    assert main(["predict", "hf-hub:lcreg/demo", str(tmp_path / "x.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["top"][0]["class"] in [str(d) for d in range(10)]
    assert main(["eval", "hf-hub:lcreg/missing"]) == 2
    err = capsys.readouterr().err
    assert "cannot fetch hf-hub:lcreg/missing" in err and len(err.strip().splitlines()) == 1
    assert main(["eval", "hf-hub:nonsense"]) == 2 and "hf-hub:ORG/NAME" in capsys.readouterr().err


def test_a_safetensors_file_of_someone_else_is_refused_in_one_line(tmp_path, capsys):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    assert main(["eval", str(tmp_path / "foreign.safetensors")]) == 2
    assert "not a complete lcreg model file" in capsys.readouterr().err


def test_load_model_is_one_line_from_a_zoo_folder_to_predictions(tmp_path):
    """``lcreg.load_model(name)`` + ``.preprocess(pil)`` give the probabilities ``lcreg predict``
    gives for the same files (one RGBA image of another size among them)."""
    import lcreg
    from lcreg.commands.prediction import predict_files
    from lcreg.runtime.environment import autocast

    zoo = Path(__file__).resolve().parents[1] / "zoo" / "lcreg-resnet32-cifar10lt-if100-seed0"
    rng = np.random.default_rng(0)
    files = [tmp_path / "a.png", tmp_path / "b.png"]
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(files[0])
    Image.fromarray(rng.integers(0, 256, (30, 40, 4), dtype=np.uint8), "RGBA").save(files[1])
    m = lcreg.load_model(str(zoo))
    assert m.class_names[:2] == ["airplane", "automobile"] and not m.model.training
    x = m.preprocess([Image.open(f) for f in files])
    assert x.shape == (2, 3, 32, 32)
    with torch.no_grad(), autocast(torch.device("cpu"), m.cfg.amp):  # predict runs in the model's precision
        probs = m.model(x).logits.float().softmax(1)
    predicted, skipped = predict_files(m, files, torch.device("cpu"), top_k=1)
    assert not skipped
    for p, row in zip(predicted, probs):
        assert p.indices[0] == int(row.argmax()) and p.probabilities[0] == pytest.approx(float(row.max()), abs=1e-5)
    assert m.preprocess(Image.open(files[0])).shape == (1, 3, 32, 32)
