"""eval / analyze / predict / report / export end to end on a short demo run (CPU)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lcreg.cli import main
from lcreg.commands.analysis import ANALYSIS_FILES
from lcreg.commands.evaluation import EVAL_FILES
from lcreg.commands.trained import load_trained_model


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cmds") / "run"
    assert (
        main(
            [
                "train",
                "--out",
                str(run),
                "--no-progress",
                "--deterministic",
                "stage1.epochs=30",
                "stage1.warmup_epochs=2",
                "stage1.milestones=[25]",
                "stage2.epochs=3",
                "eval_every=0",
            ]
        )
        == 0
    )
    return run


def _nonempty(folder, names):
    for name in names:
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, name


def test_eval_writes_every_file_and_matches_training(demo_run, capsys):
    assert main(["eval", str(demo_run)]) == 0
    assert "top-1" in capsys.readouterr().out
    _nonempty(demo_run / "eval", EVAL_FILES)
    result = json.loads((demo_run / "eval" / "metrics.json").read_text())
    final = json.loads((demo_run / "final_metrics.json").read_text())["stage2"]["test"]
    assert result["metrics"]["top1"] == pytest.approx(final["top1"])  # same model, same split
    assert result["metrics"]["top1"] > 0.3  # 10 balanced classes: chance is 0.1
    assert result["split_rule"].startswith("many > 100")
    confusion = np.loadtxt(demo_run / "eval" / "confusion.csv", delimiter=",", skiprows=1, usecols=range(1, 11))
    assert confusion.sum() == result["metrics"]["num_samples"] == 500
    # a checkpoint file works as well as its run folder, into a folder of our choice
    assert main(["eval", str(demo_run / "stage1_model.safetensors"), "--out", str(demo_run / "ev1")]) == 0
    _nonempty(demo_run / "ev1", EVAL_FILES)
    # a bf16 forward pass of the fp32-trained model: its own result, the precision recorded
    assert main(["eval", str(demo_run), "--amp", "bf16", "--out", str(demo_run / "ev_bf16")]) == 0
    assert "amp=bf16" in capsys.readouterr().out
    bf16 = json.loads((demo_run / "ev_bf16" / "metrics.json").read_text())
    assert bf16["amp"] == "bf16" and result["amp"] == "auto"
    logits_differ = bf16["metrics"]["nll"] != result["metrics"]["nll"]
    assert logits_differ and abs(bf16["metrics"]["top1"] - result["metrics"]["top1"]) < 0.05


def test_analyze_writes_every_file(demo_run, capsys):
    assert main(["analyze", str(demo_run), "--latents", "0,3", "--images-per-latent", "4"]) == 0
    _nonempty(demo_run / "analysis", ANALYSIS_FILES)
    result = json.loads((demo_run / "analysis" / "sharing.json").read_text())
    assert result["montage_latents"] == [0, 3] and result["num_latents"] == 10
    np.testing.assert_allclose(sum(result["latent_usage"]), 1.0, rtol=1e-5)
    kl = np.loadtxt(demo_run / "analysis" / "kl_table.csv", delimiter=",", skiprows=1, usecols=range(1, 11))
    assert kl.shape == (10, 10) and np.allclose(np.diag(kl), 0, atol=1e-6) and (kl >= -1e-6).all()
    assert main(["analyze", str(demo_run), "--latents", "99"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["analyze", str(demo_run), "--images", "0,7,499", "--out", str(demo_run / "an2")]) == 0
    chosen = json.loads((demo_run / "an2" / "sharing.json").read_text())["histogram_images"]
    assert chosen == {"chosen": [0, 7, 499]}
    assert main(["analyze", str(demo_run), "--images", "5,x"]) == 2


DIAGNOSTIC_KEYS = (
    "positional_share",
    "feature_positional_share",
    "effective_rank",
    "category_cosine_max",
    "saturation",
    "histogram_entropy",
    "histogram_class_accuracy",
    "class_kl",
    "shared_categories",
)


def test_analyze_json_holds_the_content_diagnostics(demo_run, capsys):
    capsys.readouterr()
    assert main(["analyze", str(demo_run), "--json", "--out", str(demo_run / "an3")]) == 0
    d = json.loads(capsys.readouterr().out)["diagnostics"]
    assert set(DIAGNOSTIC_KEYS) <= set(d)
    assert d == json.loads((demo_run / "an3" / "diagnostics.json").read_text())
    assert d["held_out_split"] == "test" and d["held_out_images"] == 500 and d["training_images"] > 0
    assert 0 <= d["positional_share"] <= 1 and 0 <= d["feature_positional_share"] <= 1
    assert 1 <= d["effective_rank"] <= 10 and 0 <= d["saturation"] <= 1 and -1 <= d["category_cosine_max"] <= 1
    assert 0 < d["histogram_entropy"] <= d["histogram_entropy_max"] + 1e-6
    assert 0 <= d["histogram_class_accuracy"] <= 1 and d["histogram_class_accuracy_chance"] == pytest.approx(0.1)
    kl = np.array(d["class_kl"]["symmetric"])
    assert kl.shape == (10, 10) and np.allclose(kl, kl.T)
    assert len(d["shared_categories"]["classes_per_category"]) == 10
    # the per-epoch log carries the cheap ones for every stage-1 epoch
    records = [json.loads(line) for line in (demo_run / "metrics.jsonl").read_text().splitlines()]
    stage1 = [r for r in records if r["stage"] == 1]
    assert all({"positional_share", "effective_rank", "saturation"} <= set(r["diagnostics"]) for r in stage1)


def test_predict_skips_a_corrupt_image_and_predicts_the_rest(demo_run, tmp_path, capsys):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, size in enumerate([8, 40, 300]):  # the demo model is 8 px: any size is resized
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"ok{i}.png")
    Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(folder / "sub" / "gray.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    assert main(["predict", str(demo_run), str(folder), "--json", "--top-k", "3"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in rows) == ["gray.jpg", "ok0.png", "ok1.png", "ok2.png"]
    assert "broken.jpg" in captured.err and len(captured.err.strip().splitlines()) == 1
    for r in rows:
        probs = [t["probability"] for t in r["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    # table and CSV forms; a missing path is a one-line error
    assert main(["predict", str(demo_run / "stage2_model.safetensors"), str(folder / "ok0.png"), "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "path,rank,class,index,probability"
    assert main(["predict", str(demo_run), str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_predict_agrees_with_the_model_on_test_images(demo_run, tmp_path, capsys):
    from lcreg.data import build_dataset

    trained = load_trained_model(demo_run, torch.device("cpu"))
    test = build_dataset(trained.cfg.data).test
    for i in range(20):
        Image.fromarray(test.images[i]).save(tmp_path / f"{i:02d}.png")
    assert main(["predict", str(demo_run), str(tmp_path), "--json", "--top-k", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    mean = torch.tensor(trained.cfg.data.mean).view(1, 3, 1, 1)
    std = torch.tensor(trained.cfg.data.std).view(1, 3, 1, 1)
    x = (torch.from_numpy(test.images[:20]).permute(0, 3, 1, 2).float() / 255 - mean) / std
    with torch.no_grad():
        expected = trained.model(x).logits.argmax(1).tolist()
    assert [r["top"][0]["index"] for r in rows] == expected


def test_report_is_self_contained(demo_run, capsys):
    assert main(["report", str(demo_run)]) == 0
    out = demo_run / "report"
    _nonempty(out, ["report.md", "report.html", "class_distribution.png", "training_curves.png"])
    _nonempty(out / "eval", EVAL_FILES)
    _nonempty(out / "analysis", ANALYSIS_FILES)
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    for figure in ["class_distribution.png", "training_curves.png", "eval/reliability.png", "analysis/kl_heatmap.png"]:
        assert f"({figure})" in md
    assert page.count("data:image/png;base64,") >= 8 and '<img src="eval/' not in page
    assert "stage2 done after" in md  # the run's recorded wall time
    assert main(["report", str(demo_run / "eval")]) == 2


def test_export_torchscript_matches(demo_run, tmp_path, capsys):
    out = tmp_path / "model.ts"
    assert main(["export", str(demo_run), "--format", "torchscript", "--out", str(out)]) == 0
    assert "max |logit difference|" in capsys.readouterr().out
    trained = load_trained_model(demo_run, torch.device("cpu"))
    x = torch.randn(5, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(out))(x), trained.model(x).logits, atol=1e-5, rtol=1e-5)


def test_export_onnx_matches_or_says_what_to_install(demo_run, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        assert main(["export", str(demo_run), "--format", "onnx", "--out", str(out)]) == 2
        assert "pip install" in capsys.readouterr().err and not out.exists()
        return
    assert main(["export", str(demo_run), "--format", "onnx", "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_baseline_model_gets_backbone_diagnostics_and_evaluates(tmp_path, capsys):
    run = tmp_path / "base"
    assert (
        main(
            [
                "train",
                "--out",
                str(run),
                "--no-progress",
                "method=mislas",
                "stage1.epochs=2",
                "stage1.warmup_epochs=1",
                "stage1.milestones=[1]",
                "stage2.epochs=1",
                "eval_every=0",
            ]
        )
        == 0
    )
    assert main(["eval", str(run)]) == 0
    assert main(["analyze", str(run)]) == 0
    assert "no latent head" in capsys.readouterr().out
    d = json.loads((run / "analysis" / "diagnostics.json").read_text())
    assert d["latent_head"] is False and 0 <= d["feature_positional_share"] <= 1
    assert not (run / "analysis" / "kl_table.csv").exists()


def test_a_centred_head_trains_reloads_and_reports_its_uncentred_share(tmp_path, capsys):
    """model.latent.centre end to end: the running mean per position is saved with the model,
    reloaded at its size, and analyze / report give the share before the centring beside."""
    run = tmp_path / "centred"
    args = ["train", "--out", str(run), "--no-progress", "stage1.epochs=2", "stage1.warmup_epochs=1"]
    args += ["stage1.milestones=[1]", "stage2.epochs=1", "eval_every=0", "model.latent.centre=true"]
    assert main(args) == 0
    trained = load_trained_model(run, torch.device("cpu"))
    mean = trained.model.head.position_mean
    assert mean.shape[0] == trained.model.head.num_latents and mean.abs().sum() > 0  # learnt, not reset
    assert main(["analyze", str(run)]) == 0
    assert "uncentred_positional_share" in capsys.readouterr().out
    diag = json.loads((run / "analysis" / "diagnostics.json").read_text())
    assert 0 <= diag["uncentred_positional_share"] <= 1
    assert main(["report", str(run)]) == 0
    assert "before the centring" in (run / "report" / "report.md").read_text()
