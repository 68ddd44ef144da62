"""The compile switch, its fall-back to eager, the profiler switch and the estimator's
memory bound (behaviour only; speed itself is measured by benchmarks/speed.py)."""

import warnings

import pytest
import torch

from lcreg.cli import main
from lcreg.config import load_config
from lcreg.engine.compilation import compile_or_fall_back, is_compiled, should_compile
from lcreg.losses import CovarianceEstimator
from lcreg.models import create_model


def test_compile_setting_per_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not should_compile("auto", cpu) and should_compile("auto", cuda)
    assert should_compile("on", cpu) and not should_compile("off", cuda)
    assert load_config("demo", ["compile=off"]).compile == "off"  # YAML reads off as False


def test_failed_compile_falls_back_to_eager_and_leaves_no_trace():
    model = create_model(load_config("demo").model, 10).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def probe():
        model(torch.randn(4, 3, 8, 8)).logits.sum()  # touches BN statistics, then fails
        raise RuntimeError("backend compiler failed")

    with pytest.warns(RuntimeWarning, match="training eagerly"):
        assert compile_or_fall_back(model, "default", probe) is False
    assert not is_compiled(model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())
    model(torch.randn(2, 3, 8, 8))  # eager again


def test_profile_writes_a_trace(tmp_path):
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (
            main(
                [
                    "train",
                    "--out",
                    str(run),
                    "--no-progress",
                    "--profile",
                    "2",
                    "stage1.epochs=1",
                    "stage1.warmup_epochs=0",
                    "stage1.milestones=[]",
                    "stage2.epochs=0",
                    "eval_every=0",
                ]
            )
            == 0
        )
    traces = list((run / "profile").glob("*.json"))
    assert traces and traces[0].stat().st_size > 0
    assert "ProfilerStep" in (run / "profile" / "top_ops.txt").read_text()


def test_full_covariance_update_stays_near_its_state_size():
    """The in-place low-rank update allocates one batch of samples, not M x D x D."""
    m, d, b = 8, 256, 16
    est = CovarianceEstimator(m, d, "full")
    x = torch.randn(b, m, d)
    est.update(x)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        est.update(x)
    peak_alloc = max(e.cpu_memory_usage for e in prof.key_averages())
    assert peak_alloc < m * d * d * 4 / 2, peak_alloc  # below half of one M x D x D fp32 tensor
