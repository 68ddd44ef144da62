"""Config presets and overrides; every bad input is one line on stderr and exit code 2."""

import json

import pytest
import yaml

from lcreg.cli import main
from lcreg.config import load_config, preset_names
from lcreg.errors import LcregError


def test_every_preset_loads():
    names = preset_names()
    for required in [
        "demo",
        "cifar10_lt_if100",
        "cifar10_lt_if50",
        "cifar10_lt_if10",
        "cifar100_lt_if100",
        "cifar100_lt_if50",
        "cifar100_lt_if10",
        "imagenet_lt",
        "inat2018",
        "places_lt",
    ]:
        assert required in names
    for name in names:
        cfg = load_config(name)
        assert cfg.name == name


def test_overrides_are_typed():
    cfg = load_config(
        "cifar10_lt_if100", ["stage1.epochs=3", "loss.alpha=0.5", "stage1.milestones=[1,2]", "method=mislas"]
    )
    assert cfg.stage1.epochs == 3 and cfg.loss.alpha == 0.5 and cfg.stage1.milestones == [1, 2]
    assert cfg.method == "mislas" and cfg.model.latent.num_latents == 40
    # lcreg 0.1's switch still reads, as the method it meant
    assert load_config("demo", ["model.latent.enabled=false"]).method == "mislas"


def test_unknown_key_names_the_nearest():
    with pytest.raises(LcregError, match="stage1.epochs"):
        load_config("demo", ["stage1.epoch=3"])
    with pytest.raises(LcregError, match="expects int"):
        load_config("demo", ["stage1.epochs=many"])


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["data", "stats", "--dataset", "cifar10-lt", "--data-dir", "/nonexistent/dir"], "does not exist"),
        (["data", "stats", "--dataset", "imagenet"], "data.dataset"),
        (["data", "stats", "--imbalance-factor", "0.5"], "imbalance_factor"),
        (["data", "stats", "demo", "data.imbalanc_factor=3"], "data.imbalance_factor"),
        (["data", "stats", "no_such_preset"], "no config preset"),
        (["train", "--stage", "2"], "--from"),
        (["train", "--resume", "/nonexistent/run"], "not a run folder"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, no_download, argv, needle):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lcreg: error:") and needle in lines[0]
    assert "Traceback" not in err


def test_existing_run_folder_is_not_overwritten(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("precious")
    code, _, err = run_cli(capsys, "train", "--out", str(run), "stage1.epochs=1")
    assert code == 2 and "already exists" in err
    assert (run / "keep.txt").read_text() == "precious"


def test_existing_plot_is_not_overwritten(capsys, tmp_path):
    plot = tmp_path / "p.png"
    plot.write_bytes(b"old")
    code, _, err = run_cli(capsys, "data", "stats", "--plot", str(plot))
    assert code == 2 and plot.read_bytes() == b"old"


def test_data_stats_json_and_plot(capsys, tmp_path):
    plot = tmp_path / "dist.png"
    code, out, _ = run_cli(capsys, "data", "stats", "demo", "--json", "--plot", str(plot))
    assert code == 0
    stats = json.loads(out)
    assert stats["counts"][0] == 120 and stats["total"] == sum(stats["counts"])
    assert stats["imbalance_factor"] == pytest.approx(10.0)
    assert set(stats["splits"]) == {"many", "medium", "few"} and stats["class_names"][3] == "3"
    assert plot.stat().st_size > 1000


def test_data_stats_table(capsys):
    code, out, _ = run_cli(capsys, "data", "stats", "demo")
    assert code == 0 and "imbalance" in out and "many" in out


def test_floats_in_scientific_notation():
    """YAML 1.1 reads 1e-3 (no dot) as a string; float keys accept it."""
    cfg = load_config("demo", ["stage1.lr=1e-3", "stage1.weight_decay=5e-4", "loss.lambda0=7.5E0"])
    assert cfg.stage1.lr == 0.001 and cfg.stage1.weight_decay == 0.0005 and cfg.loss.lambda0 == 7.5
    with pytest.raises(LcregError, match="expects float"):
        load_config("demo", ["stage1.lr=fast"])


def test_configs_saved_before_the_readings_keep_the_as_written_ones():
    """A run folder of lcreg 0.1 has no config_version and none of the reading keys: it was
    trained with the equations as written, whatever today's defaults are."""
    from lcreg.config import AS_WRITTEN_READINGS, Config, from_dict, to_dict

    old = to_dict(Config())
    del old["config_version"]
    for section, keys in (("model", ("weights", "similarity", "temperature", "weight_temperature")),):
        for k in keys:
            del old[section]["latent"][k]
    for k in AS_WRITTEN_READINGS["loss"]:
        del old["loss"][k]
    old["model"]["latent"]["enabled"] = True
    cfg = from_dict(old)
    assert cfg.method == "lcreg" and cfg.config_version == 3  # read as today's format from here on
    assert cfg.model.latent.weights == "sigmoid" and cfg.model.latent.similarity == "dot"
    assert cfg.loss.detach_features is False and cfg.loss.recon_reduction == "mean"
    # today's saved configs read back as they were written
    assert to_dict(from_dict(to_dict(Config()))) == to_dict(Config())


def test_configs_of_version_2_move_the_methods_keys_to_their_parameters():
    """Before methods owned their parameters, their keys lived under ``loss``: a saved focal run
    reads back with method_params.gamma, a CE run drops keys it never read."""
    from lcreg.config import Config, from_dict, to_dict

    old = to_dict(Config())
    old.update(config_version=2, method="focal")
    del old["method_params"]
    old["loss"].update(focal_gamma=1.0, cb_beta=0.999, ldam_scale=30.0)
    cfg = from_dict(old)
    assert cfg.method_params == {"gamma": 1.0} and "focal_gamma" not in to_dict(cfg)["loss"]
    old["method"] = "ldam_drw"
    assert from_dict(old).method_params == {"drw_epoch": None, "cb_beta": 0.999, "max_margin": 0.5, "scale": 30.0}


def test_configs_prints_the_config_train_would_resolve(capsys):
    from lcreg.config import from_dict, to_dict

    assert main(["configs", "cifar10_lt_if100", "method=ldam_drw", "stage1.lr_decay=0.01", "--seed", "3"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    expected = to_dict(load_config("cifar10_lt_if100", ["method=ldam_drw", "stage1.lr_decay=0.01", "seed=3"]))
    assert printed == expected and printed["method_params"]["max_margin"] == 0.5
    assert to_dict(from_dict(printed)) == expected  # what it prints is a config that loads back
    assert main(["configs", "cifar10_lt_if100", "stage1.lr_decay=2"]) == 2
    assert "stage1.lr_decay" in capsys.readouterr().err


def test_every_config_key_is_documented():
    # docs/configuration.md is built from these comments: a key without one would be a blank row
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "hooks"))
    import config_reference

    page = config_reference.reference()
    assert "| `stage1.lr_decay` | `0.1` |" in page and "| `ldam_drw` | `method_params.max_margin` |" in page
    blank = [line for line in page.splitlines() if line.endswith("|  |")]
    assert not blank, blank
