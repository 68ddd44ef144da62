"""What a run folder records about where it ran: the commit is -dirty only when code (a
tracked file outside results/) differs from it; amp/compile 'auto' resolve by device."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import torch

from lcreg.runtime.environment import git_commit, numerics, run_provenance, with_resume


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_commit_is_dirty_for_code_changes_not_for_rewritten_results(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "src").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    (tmp_path / "results" / "table.md").write_text("| a |\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    head = git_commit(tmp_path)
    assert head is not None and len(head) == 40
    (tmp_path / "results" / "table.md").write_text("| b |\n")  # a queue rewrote a table
    (tmp_path / "results" / "new_run").mkdir()  # and wrote a run folder (untracked)
    assert git_commit(tmp_path) == head
    (tmp_path / "src" / "a.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == head + "-dirty"
    assert git_commit(tmp_path / "results" / "new_run") == head + "-dirty"  # any folder inside the checkout


def test_numerics_resolve_auto_by_device():
    assert numerics("auto", "auto", cuda=True) == (True, True)
    assert numerics("auto", "auto", cuda=False) == (False, False)
    assert numerics("bf16", "on", cuda=False) == (True, True)
    assert numerics("off", "off", cuda=True) == (False, False)


def test_resumes_add_their_commit_and_device_once_each_in_order():
    env = {"commit": "a" * 40, "device": "CPU (x86_64, 2 cores, 2 threads)"}
    resumed = with_resume(env, torch.device("cpu"), stage=1, epoch=57)
    resumed = with_resume(resumed, torch.device("cpu"), stage=2, epoch=4)
    assert env == {"commit": "a" * 40, "device": "CPU (x86_64, 2 cores, 2 threads)"}  # not changed in place
    assert [(r["stage"], r["epoch"]) for r in resumed["resumes"]] == [(1, 57), (2, 4)]
    assert resumed["commit"] == env["commit"]  # where the run started stays the top-level entry
    resumed["resumes"][0]["commit"], resumed["resumes"][1]["commit"] = "b" * 40, "a" * 40
    resumed["resumes"][1]["device"] = "NVIDIA H200"
    assert run_provenance(resumed, "commit") == ["a" * 40, "b" * 40]
    assert run_provenance(resumed, "device")[-1] == "NVIDIA H200"
    assert run_provenance({}, "commit") == []
