"""Plug-ins: a method defined outside the package, made known by LCREG_PLUGINS or by an
installed package's entry point, trains and its model evaluates like a built-in one; a
plug-in that fails to import, or a model whose plug-in is not loaded, is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = '''
"""A plug-in method: cross-entropy with label smoothing, no mixup, one stage."""
from dataclasses import dataclass

import torch.nn as nn

from lcreg.methods.base import ClassificationObjective, Method, param
from lcreg.registry import METHODS


@METHODS.register()
class SmoothCE(Method):
    name = "smooth_ce"
    paper = "a test plug-in"
    summary = "cross-entropy with label smoothing"
    mixup = False

    @dataclass
    class Params:
        smoothing: float = param(0.1, "label smoothing", min=0, lt=1)

    def create_objective(self, cfg, model, counts):
        return ClassificationObjective(nn.CrossEntropyLoss(label_smoothing=self.params(cfg).smoothing))
'''


def _lcreg(args: list[str], path: Path, plugins: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(path), "LCREG_PLUGINS": plugins}
    return subprocess.run([sys.executable, "-m", "lcreg", *args], env=env, capture_output=True, text=True)


@pytest.fixture()
def plugin_dir(tmp_path) -> Path:
    (tmp_path / "smooth_plugin.py").write_text(PLUGIN)
    return tmp_path


def test_plugin_method_trains_and_evaluates(plugin_dir, tmp_path):
    listed = _lcreg(["methods"], plugin_dir, "smooth_plugin")
    assert listed.returncode == 0 and "smooth_ce" in listed.stdout and "label smoothing" in listed.stdout
    run = tmp_path / "run"
    train = ["train", "--out", str(run), "--no-progress", "method=smooth_ce", "stage1.epochs=1"]
    done = _lcreg(
        [*train, "stage1.warmup_epochs=0", "stage1.milestones=[1]", "eval_every=0"], plugin_dir, "smooth_plugin"
    )
    assert done.returncode == 0, done.stderr
    assert "stage1" in json.loads((run / "final_metrics.json").read_text())
    # its own parameter: listed with its help, checked against its bounds, saved with the run
    own = _lcreg(["methods", "smooth_ce"], plugin_dir, "smooth_plugin")
    assert "smoothing = 0.1  label smoothing (min 0, lt 1)" in own.stdout
    bad = _lcreg(["train", "method=smooth_ce", "method_params.smoothing=1.5"], plugin_dir, "smooth_plugin")
    assert bad.returncode == 2 and "method_params.smoothing of smooth_ce must lie within" in bad.stderr
    assert "method_params:\n  smoothing: 0.1" in (run / "config.yaml").read_text()
    assert _lcreg(["eval", str(run)], plugin_dir, "smooth_plugin").returncode == 0
    # the model names its method; without the plug-in loaded that is one line that says how
    bare = _lcreg(["eval", str(run)], plugin_dir)
    assert bare.returncode == 2 and bare.stderr.count("\n") == 1
    assert "method='smooth_ce' is not one of" in bare.stderr and "LCREG_PLUGINS" in bare.stderr


def test_plugin_from_an_entry_point(plugin_dir):
    dist = plugin_dir / "smooth_plugin-0.1.dist-info"  # what pip install writes for a package that declares
    dist.mkdir()  # [project.entry-points."lcreg.methods"] smooth_ce = "smooth_plugin"
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: smooth-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[lcreg.methods]\nsmooth_ce = smooth_plugin\n")
    listed = _lcreg(["methods"], plugin_dir)
    assert listed.returncode == 0 and "smooth_ce" in listed.stdout


def test_broken_plugin_is_one_line(plugin_dir):
    (plugin_dir / "broken_plugin.py").write_text("import not_a_module_anywhere\n")
    out = _lcreg(["methods"], plugin_dir, "broken_plugin")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert out.stderr.startswith("lcreg: error: plug-in 'broken_plugin' (LCREG_PLUGINS) failed to import")
