"""Reading run folders back: a folder's state, and what a finished run recorded.

One reader for every command that looks at finished runs (``lcreg runs`` for its tables,
``experiments/run_queue.py`` for its queue and its time estimates), so that "finished", "wall time"
and "numerics" mean the same thing everywhere. Works on committed results from any
machine: it reads only the files a run folder keeps (config.yaml, environment.json,
final_metrics.json, metrics.jsonl, the last stage's model file).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Optional

from lcreg import run_folder as rf
from lcreg.config import Config, load_saved_config, to_dict
from lcreg.runtime.environment import numerics, run_provenance

run_state = rf.state  # finished | interrupted | new (a damaged final_metrics.json: an error)


@dataclass
class FinishedRun:
    folder: Path
    config: Config
    env: dict
    final: dict
    epoch_seconds: float  # the logged epochs' own time (runs older than wall-time recording)
    epoch_stages: tuple = ()  # the stage of each logged epoch (no 1: stage 2 on another run's model)

    @cached_property
    def cfg(self) -> dict:
        """The resolved config as plain data (for tables and names)."""
        return to_dict(self.config)

    @property
    def test(self) -> dict:
        """Test metrics of the run's last stage (stage 1 for a one-stage method)."""
        return (self.final.get("stage2") or self.final["stage1"])["test"]

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def device(self) -> str:
        """The device the run started on (its numerics were resolved there)."""
        return self.env.get("device", "?")

    @property
    def devices(self) -> list[str]:
        """Every device it trained on: where it started, then each resume's."""
        return run_provenance(self.env, "device") or ["?"]

    @property
    def commits(self) -> list[str]:
        """Every commit it trained at (12 characters): where it started, then each resume's."""
        return [c[:12] for c in run_provenance(self.env, "commit")] or ["?"]

    @property
    def numerics(self) -> tuple[bool, bool]:
        """(bf16, compiled) the run trained with, ``auto`` resolved for its device."""
        cuda = not self.device.startswith("CPU")
        return numerics(self.config.amp, self.config.compile, cuda)

    def wall_seconds(self) -> tuple[Optional[float], bool]:
        """Seconds of the whole run (start-up, compilation, evaluation; summed over resumed
        processes) where it was recorded, else those of the logged epochs alone (runs older
        than ``wall_seconds``: a slight underestimate); and whether they are the wall time."""
        stages = [self.final[k] for k in ("stage1", "stage2") if k in self.final]
        wall = stages[-1].get("wall_seconds") if stages else None
        if wall is not None:
            return wall, True
        return (self.epoch_seconds or None), False


def read_finished_run(folder: Path) -> Optional[FinishedRun]:
    """The finished run in ``folder``; None for a folder that is not finished. A finished
    run whose files are damaged is an error (one line naming the file)."""
    if not rf.is_finished(folder):
        return None
    config = load_saved_config(folder / rf.CONFIG)  # older versions' configs migrated
    env = rf.read_environment(folder)
    final = rf.read_final(folder) or {}
    records = rf.read_records(folder)
    seconds = sum(r.get("seconds", 0.0) or 0.0 for r in records)
    return FinishedRun(folder, config, env, final, seconds, tuple(r.get("stage") for r in records))


def find_runs(root: Path) -> tuple[list[FinishedRun], list[Path]]:
    """The finished runs below ``root``, and the run folders below it not finished."""
    finished, unfinished = [], []
    for cfg_path in sorted(root.glob("**/config.yaml")):
        folder = cfg_path.parent
        if not rf.is_run_folder(folder):
            continue  # a config.yaml that is not a run folder's
        run = read_finished_run(folder)
        if run is None:
            unfinished.append(folder)
        else:
            finished.append(run)
    return finished, unfinished
