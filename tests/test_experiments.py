"""``python experiments/reproduce.py``: the plan of a table, the restartable queue, and the
table it writes (the paper's reproduction, beside the package)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

import paper_tables  # noqa: E402  (experiments/, on sys.path through conftest)
import run_queue as rp  # noqa: E402
from lcreg.config import load_config
from lcreg.data.longtail import class_counts_profile, stratified_split
from lcreg.errors import LcregError
from lcreg.methods.decoupled import TAU_GRID

from conftest import cli as main
from conftest import write_cifar10_pickles


def test_plan_shares_folders_and_labels_shortened_schedules(tmp_path):
    runs = rp.plan("table7", tmp_path, ["cifar10"], [100], [0, 1], None, 40)
    outs = {(r.variant, r.seed): r.out.relative_to(tmp_path).as_posix() for r in runs}
    # the baseline and the full model are Table 1's MiSLAS and LCReg runs, trained once
    assert outs[("baseline", 0)] == "table1/cifar10_if100/mislas_seed0_e40"
    assert outs[("all", 1)] == "table1/cifar10_if100/lcreg_seed1_e40"
    assert outs[("latent_aug", 0)] == "table7/cifar10_if100/latent_aug_seed0_e40"
    latent = next(r for r in runs if r.variant == "latent")
    assert {"loss.alpha=0", "loss.beta=0", "stage1.epochs=40", "stage1.milestones=[32,36]"} <= set(latent.overrides)
    assert "SHORTENED" in rp.schedule_label(40) and rp.schedule_label(None).startswith("full")
    assert rp.schedule_overrides(200) == []
    with pytest.raises(LcregError, match="not a variant of table1"):
        rp.plan("table1", tmp_path, ["cifar10"], [100], [0], ["ldam"], None)
    # Table 10's latent-augmentation row is Table 7's, its baseline Table 1's MiSLAS
    t10 = {
        r.variant: r.out.relative_to(tmp_path).as_posix()
        for r in rp.plan("table10", tmp_path, ["cifar10"], [100], [0], None, None)
    }
    assert t10 == {
        "baseline": "table1/cifar10_if100/mislas_seed0",
        "isda": "table1/cifar10_if100/isda_seed0",
        "latent_aug": "table7/cifar10_if100/latent_aug_seed0",
    }
    # one run, one paper number: Table 1's isda row shows Table 10's "+ ISDA"
    from paper_numbers import PAPER

    assert PAPER["table1"][("cifar10", 100, "isda")] == PAPER["table10"][("cifar10", 100, "isda")] == 79.8
    with pytest.raises(LcregError, match="unknown table"):
        rp.plan("table42", tmp_path, ["cifar10"], None, [0], None, None)


def _fake_run(out, seed, top1, many=0.8, medium=0.6, overrides=()):
    from lcreg.config import load_config, save_config

    out.mkdir(parents=True)
    save_config(load_config("cifar10_lt_if100", [*overrides, f"seed={seed}"]), out / "config.yaml")
    test = {"top1": top1, "many": many, "medium": medium, "few": None, "ece": 0.02}
    (out / "final_metrics.json").write_text(json.dumps({"stage1": {"test": test}, "stage2": {"test": test}}))
    (out / "stage2_model.pt").write_bytes(b"x")
    (out / "environment.json").write_text(json.dumps({"device": "CPU (test)", "commit": "abc" * 5}))
    (out / "data_stats.json").write_text(json.dumps({"source": "/cache/extracted/cifar10-jpeg-1"}))


def test_table_has_mean_std_over_seeds_and_the_paper(tmp_path):
    runs = rp.plan("table1", tmp_path, ["cifar10"], [100], [0, 1, 2], ["lcreg"], None)
    for r, top1 in zip(runs, (0.77, 0.78, 0.79)):
        _fake_run(r.out, r.seed, top1)
    summary = paper_tables.summarize("table1", runs, None)
    row = summary["rows"][0]
    assert row["seeds"] == [0, 1, 2] and row["top1_mean"] == pytest.approx(78.0)
    assert row["top1_std"] == pytest.approx(1.0) and row["paper"] == 83.1
    assert "JPEG copy" in summary["data"] and summary["devices"] == ["CPU (test)"]
    md = paper_tables.write_table(summary, tmp_path).read_text()
    # Many / Medium / Few and ECE in every table; an empty split is '-', not 0
    assert "| cifar10 | 100 | `lcreg` | 3 | 78.00 | 1.00 | 83.1 | 80.00 | 60.00 | - | 2.00 |" in md
    assert "full schedule" in md


def test_mixup_row_is_read_from_the_mislas_runs_stage_1(tmp_path):
    # mixup alone is MiSLAS's stage 1: one training serves both rows, the mixup row reads stage 1
    runs = rp.plan("table1", tmp_path, ["cifar10"], [100], [0], ["mislas", "mixup"], None)
    mislas, mixup = runs
    assert mixup.out == mislas.out and mixup.read_stage == 1 and mislas.read_stage is None
    assert mixup.overrides == mislas.overrides == ["method=mislas"]
    lines = rp.dry_run_lines(runs, tmp_path, 200, [])
    assert "new, 210 epochs left" in lines[0] and "stage 1 of the run above: the `mixup` row" in lines[1]
    # asked alone (or first), mixup plans the MiSLAS run it reads before it
    alone = rp.plan("table1", tmp_path, ["cifar10"], [100], [0], ["mixup", "mislas"], None)
    assert [(r.variant, r.read_stage) for r in alone] == [("mislas", None), ("mixup", 1)]
    _fake_run(mislas.out, 0, 0.76, overrides=mislas.overrides)
    final = json.loads((mislas.out / "final_metrics.json").read_text())
    final["stage1"]["test"] = {**final["stage1"]["test"], "top1": 0.65}
    (mislas.out / "final_metrics.json").write_text(json.dumps(final))
    # the table finds the mixup row on disk though only mislas was asked for
    found = rp.table_runs("table1", tmp_path, ["cifar10"], [mislas], None)
    assert [(r.variant, r.read_stage) for r in found] == [("mixup", 1), ("mislas", None)]
    rows = {r["variant"]: r for r in paper_tables.summarize("table1", found, None)["rows"]}
    assert rows["mixup"]["top1_mean"] == pytest.approx(65.0) and rows["mislas"]["top1_mean"] == pytest.approx(76.0)
    assert "`mixup` is read from the `mislas` run's stage 1" in paper_tables.summarize("table1", found, None)["metric"]
    assert "`mixup` is read" not in paper_tables.summarize("table1", [mislas], None)["metric"]


def test_run_method_comes_from_its_overrides(tmp_path):
    # the time estimate groups runs by head: a variant without method= trains the presets' LCReg
    runs = [r for t in rp.TABLES for r in rp.plan(t, tmp_path, ["cifar10"], [100], [0], None, None)]
    methods = {(r.table, r.variant): r.method for r in runs}
    assert methods[("readings", "as_written")] == methods[("table7", "latent")] == "lcreg"
    assert methods[("table9", "a1_b0.1_g1")] == methods[("table5", "m20")] == "lcreg"
    assert methods[("table7", "baseline")] == methods[("readings", "mislas")] == "mislas"
    assert methods[("table1", "tau_norm")] == "tau_norm" and methods[("table10", "isda")] == "isda"
    # every method named is a registered one
    from lcreg.methods import METHODS

    assert {m for m in methods.values()} <= set(METHODS.names())


def test_dry_run_estimates_from_logged_epoch_times(tmp_path, capsys, monkeypatch):
    from lcreg.runtime import environment

    monkeypatch.setattr(environment, "environment_info", lambda device: {"device": "CPU (test)"})
    runs = rp.plan("table1", tmp_path, ["cifar10"], [100], [0, 1], ["mislas"], None)
    done, half = runs
    _fake_run(done.out, 0, 0.76, overrides=done.overrides)  # no wall_seconds (an older run): its logged epochs count
    records = [{"stage": 1 + (e >= 200), "epoch": e % 200 + 1, "seconds": 6.0} for e in range(210)]
    (done.out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    half.out.mkdir(parents=True)
    (half.out / "checkpoint.pt").write_bytes(b"x")
    (half.out / "metrics.jsonl").write_text(
        "".join(json.dumps({"stage": 1, "epoch": e + 1}) + "\n" for e in range(100))
    )
    # 6 s an epoch of CIFAR-10-LT IF 100's 12,406 images (its data_stats.json has no total: the profile's)
    assert rp.seconds_per_image(tmp_path, False) == pytest.approx(6.0 / 12406)
    # a classifier re-trained on that backbone (stage 2 alone, 0.1 s an epoch) does not count
    crt = tmp_path / "table1" / "cifar10_if100" / "crt_seed0"
    _fake_run(crt, 0, 0.70, overrides=["method=crt"])
    stage2 = [{"stage": 2, "epoch": e + 1, "seconds": 0.1} for e in range(10)]
    (crt / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stage2))
    assert rp.seconds_per_image(tmp_path, False) == pytest.approx(6.0 / 12406)
    shutil.rmtree(crt)
    assert rp.seconds_per_image(tmp_path, True) is None  # no finished LCReg run: unknown, not 0
    # an interrupted run's own data_stats.json counts; IF 10 holds 20,431 images (1.6x the time)
    assert rp.epoch_images(half.out, load_config("cifar10_lt_if100").data) == 12406
    assert rp.epoch_images(tmp_path / "new", load_config("cifar10_lt_if10").data) == 20431
    # before it starts, a run holding out 10% per class (tau-norm's ce_val) counts what stays
    # (what stratified_split keeps), and a step profile its own counts: 5 x 5000 + 5 x 50
    val = load_config("cifar10_lt_if100", ["data.val_fraction=0.1"]).data
    held = len(stratified_split(np.repeat(np.arange(10), class_counts_profile(5000, 10, 100)), 0.1)[1])
    assert rp.epoch_images(tmp_path / "new", val) == 12406 - held
    assert rp.epoch_images(tmp_path / "new", load_config("cifar10_lt_if100", ["data.profile=step"]).data) == 25250
    assert rp.epoch_images(tmp_path / "new", load_config("demo").data) is None  # not CIFAR-LT: unknown
    (half.out / "data_stats.json").write_text(json.dumps({"total": 11165}))  # its own count, once it has one
    assert rp.epoch_images(half.out, load_config("cifar10_lt_if100").data) == 11165
    (half.out / "data_stats.json").unlink()
    assert rp.epochs_left(half, 200) == 110
    args = ["--methods", "mislas,lcreg", "--seeds", "0,1", "--imbalance-factors", "100"]
    assert main(["reproduce", "table1", "--dry-run", "--results", str(tmp_path), *args]) == 0
    out = capsys.readouterr().out
    assert "mislas_seed0 [finished]" in out and "[interrupted, 110 epochs left, about 11 min here]" in out
    assert "lcreg_seed0 [new, 210 epochs left, time unknown here]" in out
    assert "estimated: 11 min" in out and "2 runs of unknown time not counted" in out
    if10 = [*args[:4], "--imbalance-factors", "10"]
    assert main(["reproduce", "table1", "--dry-run", "--results", str(tmp_path), *if10]) == 0
    assert "mislas_seed0 [new, 210 epochs left, about 35 min here]" in capsys.readouterr().out  # 21 x 20431 / 12406
    # the command shown is the one the queue runs: its flags, then the overrides
    assert (
        main(
            [
                "reproduce",
                "table1",
                "--dry-run",
                "--results",
                str(tmp_path),
                *if10,
                "--train-args",
                "--compile off amp=bf16",
            ]
        )
        == 0
    )
    assert "lcreg train cifar10_lt_if10 --seed 0 --compile off method=mislas amp=bf16" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["--methods", "ldam"], ["--datasets", "svhn"], ["--seeds", "a"]])
def test_bad_reproduce_arguments_are_one_line(tmp_path, capsys, args):
    assert main(["reproduce", "table1", "--dry-run", "--results", str(tmp_path), *args]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def _table7_at_if10(data, results, methods: str, train_args: str) -> list[str]:
    """``reproduce table7`` arguments: CIFAR-10-LT IF 10, a 1-epoch stage 1, eager."""
    return [
        *("reproduce", "table7", "--data-dir", str(data), "--results", str(results), "--epochs", "1"),
        *("--methods", methods, "--imbalance-factors", "10", "--train-args", f"{train_args} --compile off"),
    ]


def test_queue_trains_skips_finished_and_writes_the_table(tmp_path, no_download, capsys):
    """Two cells of Table 7 on tiny synthetic CIFAR pickles with a 1-epoch stage 1: trained,
    pruned, analysed, tabled; a second call trains nothing."""
    data = write_cifar10_pickles(tmp_path / "data", per_class=30).parent
    results = tmp_path / "results"
    args = _table7_at_if10(
        data, results, "baseline,latent", "stage2.epochs=1 stage1.batch_size=16 stage2.batch_size=16 eval_every=0"
    )
    assert main(args) == 0
    baseline = results / "table1" / "cifar10_if10" / "mislas_seed0_e1"
    latent = results / "table7" / "cifar10_if10" / "latent_seed0_e1"
    for run in (baseline, latent):
        assert rp.run_state(run) == "finished"
        assert not (run / "checkpoint.pt").exists() and not (run / "tensorboard").exists()
        assert (run / "analysis" / "diagnostics.json").is_file()
    table = json.loads((results / "table7.json").read_text())
    assert {r["variant"] for r in table["rows"]} == {"baseline", "latent"}
    assert "SHORTENED" in table["schedule"]
    assert table["rows"][0]["paper"] == 90.0  # Table 7, CIFAR-10-LT IF 10 baseline
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count(": finished") == 2 and "+ lcreg train" not in out
    # Table 1's mixup row is the trained MiSLAS run's stage 1: nothing to train, read from its folder
    mixup = [a if a not in ("table7", "baseline,latent") else {"table7": "table1"}.get(a, "mixup") for a in args]
    assert main(mixup) == 0
    assert "(stage 1: the mixup row): finished" in capsys.readouterr().out
    final = json.loads((baseline / "final_metrics.json").read_text())
    row = next(r for r in json.loads((results / "table1.json").read_text())["rows"] if r["variant"] == "mixup")
    assert row["top1_mean"] == pytest.approx(100 * final["stage1"]["test"]["top1"]) and row["paper"] == 87.1


def test_tau_norm_chooses_tau_on_images_no_stage_trained_on(tmp_path):
    # cRT, LWS and tau-norm share the CE run: tau-norm chooses tau on the images the long-tailed
    # selection leaves out; tau_norm_heldout on 10% its own CE run held out from the start
    runs = rp.plan("table1", tmp_path, ["cifar10"], [100], [0], ["crt", "lws", "tau_norm", "tau_norm_heldout"], None)
    by_variant = {r.variant: r for r in runs}
    assert [r.variant for r in runs] == ["ce", "crt", "lws", "tau_norm", "ce_val", "tau_norm_heldout"]
    assert by_variant["crt"].stage1_from == by_variant["lws"].stage1_from == by_variant["ce"].out
    assert by_variant["tau_norm"].stage1_from == by_variant["ce"].out
    assert "data.val_source=unused" in by_variant["tau_norm"].overrides
    assert by_variant["tau_norm_heldout"].stage1_from == by_variant["ce_val"].out
    assert "data.val_fraction=0.1" in by_variant["ce_val"].overrides
    assert "data.val_fraction=0.1" in by_variant["tau_norm_heldout"].overrides
    assert not any(o.startswith("data.val") for o in by_variant["ce"].overrides)
    # the time estimate counts no stage-2 epochs for tau-norm's post-hoc choice, none for a one-stage CE
    assert rp.epochs_left(by_variant["tau_norm"], 200) == 0 and rp.epochs_left(by_variant["ce"], 200) == 200
    assert rp.epochs_left(by_variant["crt"], 200) == 10


def test_a_decoupled_cell_whose_stage_1_model_is_elsewhere_says_so(tmp_path, capsys):
    # a CE run finished on another machine: its folder is here, its model file is not (out of git)
    runs = rp.plan("table1", tmp_path, ["cifar10"], [100], [0], ["crt"], None)
    ce, crt = runs
    _fake_run(ce.out, 0, 0.66, overrides=ce.overrides)
    why = rp.missing_stage1_model(crt)
    assert why is not None and str(ce.out) in why and "stage1_model.safetensors" in why
    line = next(x for x in rp.dry_run_lines(runs, tmp_path, 200, []) if str(crt.out) in x)
    assert "blocked" in line and why in line
    (ce.out / "stage1_model.safetensors").write_bytes(b"x")
    assert rp.missing_stage1_model(crt) is None


def test_dry_run_names_a_cell_folder_that_holds_another_experiment(tmp_path):
    (ce,) = rp.plan("table1", tmp_path, ["cifar10"], [100], [0], ["ce"], None)
    _fake_run(ce.out, 0, 0.66, overrides=[*ce.overrides, "data.val_fraction=0.1"])
    line = next(x for x in rp.dry_run_lines([ce], tmp_path, 200, []) if str(ce.out) in x)
    assert "another experiment than this cell" in line and "data.val_fraction" in line


def test_decoupled_methods_retrain_the_classifier_of_the_ce_run(tmp_path, no_download, capsys):
    """cRT comes from the cross-entropy run of its seed: the queue trains CE (one stage),
    then only the stage 2 of cRT on it."""
    data = write_cifar10_pickles(tmp_path / "data", per_class=30).parent
    results = tmp_path / "results"
    args = [
        "reproduce",
        "table1",
        "--data-dir",
        str(data),
        "--results",
        str(results),
        "--epochs",
        "1",
        "--methods",
        "crt",
        "--imbalance-factors",
        "10",
        "--train-args",
        "stage2.epochs=1 stage1.batch_size=16 stage2.batch_size=16 eval_every=0 --compile off",
    ]
    assert main(args) == 0
    ce, crt = (results / "table1" / "cifar10_if10" / f"{m}_seed0_e1" for m in ("ce", "crt"))
    assert rp.run_state(ce) == "finished" and rp.run_state(crt) == "finished"
    # each folder names the stages its method plans; the decoupled one trained stage 2 alone
    assert json.loads((ce / "final_metrics.json").read_text()).keys() == {"stages", "stage1"}
    assert json.loads((crt / "final_metrics.json").read_text()).keys() == {"stages", "stage2"}
    rows = {r["variant"]: r for r in json.loads((results / "table1.json").read_text())["rows"]}
    assert rows["ce"]["seeds"] == [0] and rows["crt"]["seeds"] == [0]
    capsys.readouterr()
    assert main(args) == 0 and "+ lcreg train" not in capsys.readouterr().out


@pytest.mark.parametrize("variant,stage1", [("tau_norm", "ce"), ("tau_norm_heldout", "ce_val")])
def test_tau_norm_trains_its_ce_run_and_picks_tau_on_its_validation_split(tmp_path, no_download, variant, stage1):
    data = write_cifar10_pickles(tmp_path / "data", per_class=40).parent
    results = tmp_path / "results"
    train_args = "stage2.epochs=1 stage1.batch_size=16 stage2.batch_size=16 eval_every=0 --compile off"
    args = ["reproduce", "table1", "--data-dir", str(data), "--results", str(results), "--epochs", "1"]
    assert main([*args, "--methods", variant, "--imbalance-factors", "10", "--train-args", train_args]) == 0
    ce, tau = (results / "table1" / "cifar10_if10" / f"{m}_seed0_e1" for m in (stage1, variant))
    assert rp.run_state(ce) == "finished" and rp.run_state(tau) == "finished"
    other = {"ce": "ce_val", "ce_val": "ce"}[stage1]
    assert not (results / "table1" / "cifar10_if10" / f"{other}_seed0_e1").exists()
    # stage 2 accepted the split: held out by stage 1 from the start, or never in its training set
    stats = json.loads((tau / "data_stats.json").read_text())
    if stage1 == "ce_val":
        assert "val_fraction: 0.1" in (ce / "config.yaml").read_text()
    else:
        assert stats["val_source"] == "unused" and "val_source: train" in (ce / "config.yaml").read_text()
    choice = json.loads((tau / "final_metrics.json").read_text())["stage2_choice"]
    assert choice["tau"] in TAU_GRID and len(choice["validation_balanced_accuracy"]) == len(TAU_GRID)


def test_a_tables_rows_setting_is_all_or_trained(tmp_path):
    # the readings list only what a screen sent to full length; the paper's tables every row
    assert rp.TABLES["readings"]["rows"] == "trained" and rp.TABLES["table5"]["rows"] == "all"
    text = rp.TABLES_YAML.read_text().replace("rows: trained", "rows: some")
    (tmp_path / "tables.yaml").write_text(text)
    with pytest.raises(LcregError, match="table 'readings' has rows: some"):
        rp._load_tables(tmp_path / "tables.yaml")


def test_a_failing_run_stops_the_queue_with_its_own_message(tmp_path, no_download, capsys):
    data = write_cifar10_pickles(tmp_path / "data", per_class=30).parent
    args = _table7_at_if10(data, tmp_path / "results", "latent", "stage1.lr=1e12 stage1.batch_size=16 eval_every=0")
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "non-finite loss in stage 1 epoch 1/1" in err[-1] and "the queue stops here" in err[-1]
    assert not (tmp_path / "results" / "table7" / "cifar10_if10" / "latent_seed0_e1").exists()


def test_a_call_for_some_cells_keeps_the_tables_other_finished_runs(tmp_path, capsys):
    results = tmp_path / "results"
    full = rp.plan("readings", results, ["cifar10"], [100], [0, 1], None, None)
    done = {("lcreg", 0): 0.76, ("lcreg", 1): 0.78, ("mislas", 0): 0.75}
    for r in full:
        if (r.variant, r.seed) in done:
            _fake_run(r.out, r.seed, done[(r.variant, r.seed)], overrides=r.overrides)
    args = ["reproduce", "readings", "--methods", "mislas", "--seeds", "0", "--table-only", "--results", str(results)]
    assert main(args) == 0
    rows = {r["variant"]: r for r in json.loads((results / "readings.json").read_text())["rows"]}
    # the asked cell, and the default's two seeds found on disk, in the table's row order
    assert list(rows) == ["mislas", "lcreg"]
    assert rows["lcreg"]["seeds"] == [0, 1] and rows["lcreg"]["top1_mean"] == pytest.approx(77.0)
    # and its figure beside the table: ours against the paper's, rows without a seed included
    assert (results / "readings.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "readings.png" in capsys.readouterr().out


def _reading(variant: str, seeds: int, top1: float, share=None, hist=None, std=None) -> dict:
    return {
        "top1_std": std,
        "dataset": "cifar10",
        "imbalance": 100,
        "variant": variant,
        "seeds": list(range(seeds)),
        "top1_mean": top1,
        "positional_share_mean": share,
        "histogram_class_accuracy_mean": hist,
        "histogram_class_accuracy_chance": 0.1,
    }


def test_readings_verdict_needs_content_accuracy_and_all_seeds():
    rows = [
        _reading("as_written", 3, 77.36, 0.996, 0.27),
        _reading("lcreg", 3, 76.67, 0.24, 0.50),  # content, less accurate
        _reading("attached", 3, 77.50, 0.79, 0.39),  # accurate, a position code
        _reading("logits_detach", 1, 78.0, 0.25, 0.48),  # one seed: waits
        _reading("mislas", 2, 76.06),
    ]
    lines = paper_tables.readings_verdict(rows)
    text = "\n".join(lines)
    assert "`lcreg`: content yes" in text and "(-0.69): does not meet the rule" in text
    assert "`attached`: content no" in text and "(+0.14): does not meet the rule" in text
    assert lines[-1] == (
        "- cifar10 IF 100: the rule is met by no reading with all its seeds; the most accurate reading that carries "
        "content is `lcreg` (76.67, -0.69 against as written): the default stays `lcreg`; still to finish: "
        "`logits_detach` (1 of 3 seeds)."
    )
    # a position code on the seeds run rules a reading out before its other seeds
    ruled_out = paper_tables.readings_verdict([*rows[:2], _reading("attached", 1, 76.58, 0.96, 0.41)])
    assert any("`attached`: ruled out without its other seeds" in line for line in ruled_out)
    assert "attached" not in ruled_out[-1]
    # more accurate than the default but within the noise of three seeds: the default stays
    rows[3] = _reading("logits_detach", 3, 76.80, 0.21, 0.51, std=0.08)
    rows[1]["top1_std"] = 0.42
    se = math.sqrt((0.08**2 + 0.42**2) / 3)  # 0.247
    assert paper_tables.readings_verdict(rows)[-1].endswith(
        f"`logits_detach` (76.80, -0.56 against as written), +0.13 over the default `lcreg`, within the standard "
        f"error of the difference ({se:.2f}): the default stays `lcreg`."
    )
    rows[3] = _reading("logits_detach", 3, 77.00, 0.21, 0.51, std=0.08)  # a lead of 0.33 > 0.247
    assert paper_tables.readings_verdict(rows)[-1].endswith(
        "+0.33 over the default `lcreg` (standard error 0.25): it replaces the default."
    )
    rows[3] = _reading("logits_detach", 3, 77.40, 0.25, 0.48)
    assert paper_tables.readings_verdict(rows)[-1] == "- cifar10 IF 100: the rule is met by `logits_detach`."
    # without the as-written reading's seeds there is nothing to compare with
    assert "has not 3 seeds yet" in paper_tables.readings_verdict([_reading("as_written", 2, 77.0, 0.99, 0.3)])[-1]


def test_ordering_lines_name_each_pair_ranked_against_the_paper():
    def row(variant, paper, ours):
        return {"dataset": "cifar10", "imbalance": 100, "variant": variant, "paper": paper, "top1_mean": ours}

    rows = [row("ce", 70.4, 70.0), row("mixup", 73.1, 72.0), row("ldam_drw", 77.1, 71.0), row("mislas", 82.1, 76.0)]
    rows.append(row("focal", None, 69.0))  # no paper number: named, not ranked
    rows.append(row("remix_drw", 79.8, None))  # not finished
    (line,) = paper_tables.ordering_lines(rows)[2:]
    assert "paper `ce` < `mixup` < `ldam_drw` < `mislas`; ours `ce` < `ldam_drw` < `mixup` < `mislas`" in line
    assert "1 pair ordered differently: `mixup` / `ldam_drw` (paper 73.1 < 77.1, ours 72.00 >= 71.00)" in line
    assert line.endswith("(no paper number: `focal`) (not finished yet: `remix_drw`).")
    same = paper_tables.ordering_lines(rows[:2])[-1]
    assert same.endswith("the same order.")  # no seed spread in the cell: no noise judged
    assert "fewer than two rows" in paper_tables.ordering_lines(rows[:1])[-1]
    # with a seed spread (3 seeds of mislas, std 0.9), a one-seed row borrows it: a gap within the
    # standard error of the difference is marked in either order
    rows[3].update(top1_std=0.9, seeds=[0, 1, 2])
    (line,) = paper_tables.ordering_lines(rows)[2:]
    se = math.sqrt(0.81 / 1 + 0.81 / 1)  # mixup / ldam_drw: both one seed, the cell's 0.9 for each
    assert f"ours 72.00 >= 71.00, within noise: standard error {se:.2f})" in line
    assert f"in the paper's order but within noise: `ce` / `mixup` (+2.00, standard error {se:.2f})" not in line
    assert "`ce` / `ldam_drw` (+1.00, standard error 1.27)" in line  # 1.00 <= 1.27
    assert "`mixup` / `mislas`" not in line  # +4.00 against se 1.04: beyond noise
    # a cell of one-seed rows borrows the nearest imbalance factor's spread, and says so
    at50 = [{**r, "imbalance": 50, "top1_std": None, "seeds": [0]} for r in rows[:2]]
    at50[1]["top1_mean"] = 70.5  # +0.50 over ce: within 1.27
    line = paper_tables.ordering_lines(rows + at50)[-1]
    assert line.startswith("- cifar10 IF 50:") and "`ce` / `mixup` (+0.50, standard error 1.27)" in line
    assert "(seed spread: IF 100's 0.90, no row here has more than one seed)" in line


def test_baseline_lines_compare_each_change_with_the_papers_direction():
    def row(variant, paper, ours, seeds=1, std=None):
        return {
            "dataset": "cifar10",
            "imbalance": 100,
            "variant": variant,
            "paper": paper,
            "top1_mean": ours,
            "top1_std": std,
            "seeds": list(range(seeds)),
        }

    rows = [
        row("baseline", 82.1, 75.92, 3, 0.25),
        row("latent", 82.2, 75.50),  # paper up, ours down, one seed
        row("latent_aug", 82.5, 76.40),  # both up
        row("all", 83.1, 76.00, 3, 0.42),  # +0.08 < SE 0.28: within noise
        row("latent_recon", 83.0, None),
    ]
    lines = paper_tables.baseline_lines(rows)[2:]
    # a one-seed row borrows the baseline's spread: SE = 0.25 * sqrt(1 / 1 + 1 / 3) = 0.289
    borrowed = "standard error of the difference 0.29, the baseline's seed spread standing in for this row's one seed"
    assert (
        lines[0]
        == f"- cifar10 IF 100, `latent`: ours -0.42 (1 vs 3 seeds), paper +0.1: contradicted, the opposite direction ({borrowed})."
    )
    assert lines[1].endswith(f"ours +0.48 (1 vs 3 seeds), paper +0.4: reproduced, the same direction ({borrowed}).")
    assert lines[2].endswith("paper +1.0: within noise (standard error of the difference 0.28).")
    assert lines[3].endswith("`latent_recon`: not finished yet.")
    rows[1] = row("latent", 82.2, 75.93)  # +0.01: within the borrowed spread
    assert paper_tables.baseline_lines(rows)[2].endswith(f"paper +0.1: within noise ({borrowed}).")
    # a one-seed baseline at IF 50 borrows the spread of the IF 100 baseline (the nearest factor with one)
    if50 = [{**row("baseline", 85.7, 80.05), "imbalance": 50}, {**row("all", 86.5, 80.48), "imbalance": 50}]
    line = paper_tables.baseline_lines(rows + if50)[-1]  # SE = 0.25 * sqrt(2) = 0.354 < +0.43
    assert line == (
        "- cifar10 IF 50, `all`: ours +0.43 (1 vs 1 seeds), paper +0.8: reproduced, the same direction (standard error of "
        "the difference 0.35, the IF 100 baseline's seed spread (0.25) standing in for this one-seed baseline)."
    )
    rows[0] = row("baseline", 82.1, 75.92)  # one baseline seed, no other factor: nothing to judge noise by
    assert paper_tables.baseline_lines(rows)[2].endswith(
        "reproduced, the same direction (no seed spread to judge noise by)."
    )
    assert "no finished seed" in paper_tables.baseline_lines([row("baseline", 82.1, None)])[-1]
    # Table 5 measures each M against the default's M = 40 (3 seeds), the paper's drop at 60 beside
    m = [row("m40", 83.1, 76.67, 3, 0.42), row("m60", 79.6, 76.50), row("m20", 81.9, 74.0)]
    lines = paper_tables.baseline_lines(m, "m40")
    assert lines[0] == "## Change against `m40` (the default), direction by direction"
    assert lines[2].startswith("- cifar10 IF 100, `m60`: ours -0.17 (1 vs 3 seeds), paper -3.5: within noise")
    assert lines[3].startswith("- cifar10 IF 100, `m20`: ours -2.67 (1 vs 3 seeds), paper -1.2: reproduced")
    assert rp.TABLES["table5"]["baseline"] == "m40" and rp.TABLES["table9"]["baseline"] == "a0.1_b0.1_g1"
    assert rp.TABLES["table1"]["baseline"] is None


def test_tables_and_paper_numbers_are_data_beside_the_package(tmp_path):
    from lcreg.config import as_written_overrides
    from paper_numbers import PAPER

    # the as-written reading in tables.yaml is the config's own
    assert rp.READINGS["as_written"] == as_written_overrides()
    # paper_numbers.csv: top-1 per cell, Table 6 as (Many, Medium, Few)
    assert PAPER["table1"][("cifar10", 100, "lcreg")] == 83.1 and PAPER["table5"][("cifar10", 100, "m60")] == 79.6
    assert PAPER["table6"][("cifar10", 100, "lcreg")] == (92.6, 81.5, 75.4)
    # no paper number, table definition or queue is left in the installed package
    import lcreg

    src = Path(lcreg.__file__).parent
    assert not (src / "engine" / "reproduce.py").exists() and not (src / "commands" / "paper_numbers.py").exists()
    assert "83.1" not in "".join(p.read_text() for p in src.rglob("*.py"))


def test_a_cell_whose_resolved_config_is_another_tables_run_is_that_run(tmp_path):
    # Table 5's M = 40 and Table 9's (0.1, 0.1, 1) resolve to LCReg's own config: no second training
    (m40,) = rp.plan("table5", tmp_path, ["cifar10"], [100], [0], ["m40"], None)
    (t9,) = rp.plan("table9", tmp_path, ["cifar10"], [100], [0], ["a0.1_b0.1_g1"], None)
    (lcreg,) = rp.plan("table1", tmp_path, ["cifar10"], [100], [0], ["lcreg"], None)
    assert m40.out == t9.out == lcreg.out == tmp_path / "table1" / "cifar10_if100" / "lcreg_seed0"
    (m60,) = rp.plan("table5", tmp_path, ["cifar10"], [100], [0], ["m60"], None)
    assert m60.out == tmp_path / "table5" / "cifar10_if100" / "m60_seed0"


def test_a_key_that_selects_nothing_does_not_make_another_experiment():
    # data.val_per_class counts only with data.val_source=unused: a run saved with another
    # default of it is still its cell, one that drew a validation split of another size is not
    from lcreg import run_folder as rf
    from lcreg.config import load_config, to_dict

    def cfg(*o):
        return to_dict(load_config("cifar10_lt_if100", list(o)))

    assert rf.experiment_differences(cfg("data.val_per_class=500"), cfg()) == []
    unused = "data.val_source=unused"
    assert rf.experiment_differences(cfg(unused, "data.val_per_class=500"), cfg(unused)) == [
        "data.val_per_class: 500 != 1000"
    ]
    assert rf.experiment_differences(cfg(unused), cfg())[0].startswith("data.val_source")


def _latent_screen():
    """benchmarks/latent_screen.py, a script beside the package (not on sys.path by default)."""
    import importlib
    import sys

    benchmarks = str(Path(__file__).resolve().parents[1] / "benchmarks")
    if benchmarks not in sys.path:
        sys.path.insert(0, benchmarks)
    return importlib.import_module("latent_screen")


def test_the_screens_runs_get_the_queues_key_value_train_args():
    # execute() passes only the flags of --train-args: amp=bf16 reaches a run through its
    # overrides, and a screen run without it would train in fp32 (another speed, other numbers)
    screen = _latent_screen()
    from lcreg.config import load_config

    runs = screen.specs(screen.SCREENS["position"], ["default", "mislas_reflect"], ["--compile", "on", "amp=bf16"])
    for r in runs:
        assert "amp=bf16" in r.overrides and "--compile" not in r.overrides
        cfg = load_config(r.preset, r.overrides)
        assert cfg.amp == "bf16" and cfg.data.val_source == "unused" and cfg.stage1.epochs == 40
    assert load_config(runs[1].preset, runs[1].overrides).model.padding == "reflect"


def test_the_position_screen_sends_content_readings_that_beat_the_default_to_three_seeds():
    screen = _latent_screen()

    def r(name, val, share=0.2, acc=0.5, rank=20.0):
        return {
            "reading": name,
            "stage2_val_balanced": val,
            "positional_share": share,
            "histogram_class_accuracy": acc,
            "histogram_chance": 0.1,
            "effective_rank": rank,
        }

    mislas = {**r("mislas", 0.70), "positional_share": None, "histogram_class_accuracy": None}
    twin = {**r("mislas_reflect", 0.74), "positional_share": None, "histogram_class_accuracy": None}
    rows = [
        r("default", 0.72),
        r("default_attached", 0.75, share=0.9),  # more accurate, but a position code
        r("attached_centre", 0.73),  # beats the default with content
        r("attached_reflect", 0.76, acc=0.15),  # no content: histograms barely above chance
        r("attached_reflect_centre", 0.71),  # content, below the default
        mislas,
        twin,
    ]
    assert screen.qualifying(rows, set()) == ["attached_centre"]
    lines = "\n".join(screen.verdict_lines(screen.SCREENS["position"], rows))
    assert (
        "`attached_centre`: val balanced 73.00 (+1.00 against the default); +3.00 against `mislas` on the same "
        "backbone; -2.00 against `default_attached` (uncentred)"
    ) in lines
    assert "`attached_reflect`: val balanced 76.00 (+4.00 against the default); +2.00 against `mislas_reflect`" in lines
    assert "here: `attached_centre` (7 of 11 readings finished so far)." in lines
    assert screen.qualifying([r("default", 0.72), r("attached_centre", 0.72)], set()) == []  # a tie does not beat it
    # the centred form of a reading that leads at full length qualifies within 1 point of it
    lead = [r("default", 0.72), r("as_written", 0.69, share=0.97), r("as_written_centre", 0.683)]
    assert screen.qualifying(lead, {"as_written"}) == ["as_written_centre"]
    assert screen.qualifying(lead, set()) == []
    assert screen.qualifying([*lead[:2], r("as_written_centre", 0.675)], {"as_written"}) == []  # 1.5 below
    assert screen.qualifying([*lead[:2], r("as_written_centre", 0.70, share=0.8)], {"as_written"}) == []


def test_full_length_leaders_are_readings_whose_three_seed_mean_leads_the_default(tmp_path):
    screen = _latent_screen()

    def row(variant, mean, seeds):
        return {"variant": variant, "imbalance": 100, "top1_mean": mean, "seeds": list(range(seeds))}

    rows = [row("lcreg", 76.67, 3), row("as_written", 77.36, 3), row("attached", 76.9, 1), row("x", 76.0, 3)]
    path = tmp_path / "readings.json"
    path.write_text(json.dumps({"rows": rows}))
    assert screen.full_length_leaders(path) == {"as_written"}  # one seed is not a lead yet
    assert screen.full_length_leaders(tmp_path / "none.json") == set()


def test_every_position_screen_reading_has_its_full_length_readings_variant():
    # --qualifying names screen readings; the queue trains them as readings variants, which must
    # be the same overrides (the screen adds only its schedule and validation split)
    screen = _latent_screen()
    full = {"default": "lcreg", "default_attached": "attached"}
    for name, (_, overrides, _) in screen.POSITION.items():
        assert rp.READINGS[full.get(name, name)] == overrides, name
    assert set(screen.TWIN.values()) <= set(screen.POSITION)
