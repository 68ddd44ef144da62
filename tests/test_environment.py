"""What a run folder records about where it ran: the commit is -dirty only when code (a
tracked file outside results/) differs from it; amp/compile 'auto' resolve by device."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from lcreg.runtime.environment import git_commit, numerics


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
