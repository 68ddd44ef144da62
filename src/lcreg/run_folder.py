"""A run folder, owned in one place: the names of its files, its state, reading its files
with checks, its lock, and what may be deleted.

- Files: ``config.yaml``, ``environment.json``, ``data_stats.json``, ``metrics.jsonl`` /
  ``.csv``, ``tensorboard/``, ``checkpoint.pt`` (while it trains), ``stageN_model.safetensors``
  (``.pt`` before lcreg 0.2) and ``final_metrics.json`` (which names the stages the run plans:
  ``"stages": [1, 2]``).
- State: ``new`` (nothing trained yet), ``interrupted`` (a checkpoint to resume from) or
  ``finished`` (the last planned stage has its metrics, written after its model file).
  A ``final_metrics.json`` that exists but cannot be read is an error naming the file, never
  "new": the queue would otherwise train over a finished run.
- Reading: every JSON file must parse and have the shape lcreg writes, else one line names the
  file; the per-epoch log drops a half-written last line (a crash mid-write) and refuses a
  damaged line anywhere else.
- Lock: a process trains in a folder only while it holds an OS lock on ``.lcreg.lock``
  (``fcntl.flock``: it dies with the process, so a stale lock never blocks); a second process
  is refused with the holder's pid, command and start time.
- Deleting: only what a failed start leaves (``START_FILES``), never a folder holding more.

This module imports only the config, the file writer and the errors, so that every layer
(commands, engine, the reproduction queue) can use it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from lcreg.config import RUN_SETTINGS
from lcreg.errors import LcregError, short
from lcreg.files import read_text

CONFIG = "config.yaml"
ENVIRONMENT = "environment.json"
DATA_STATS = "data_stats.json"
METRICS = "metrics.jsonl"
METRICS_CSV = "metrics.csv"
FINAL = "final_metrics.json"
CHECKPOINT = "checkpoint.pt"
TENSORBOARD = "tensorboard"
LOCK = ".lcreg.lock"
# what a run writes before its first checkpoint: a folder holding only these is a failed
# start that a new run may take over
START_FILES = (CONFIG, ENVIRONMENT, DATA_STATS, METRICS, METRICS_CSV, TENSORBOARD, LOCK)


def model_file(stage: int) -> str:
    return f"stage{stage}_model.safetensors"


def legacy_model_file(stage: int) -> str:
    """Model files of lcreg before 0.2: pickled dicts, loaded weights-only."""
    return f"stage{stage}_model.pt"


# a run folder's most trained model first
MODEL_FILES = (model_file(2), legacy_model_file(2), model_file(1), legacy_model_file(1), CHECKPOINT)


def stage_model(folder: Path, stage: int) -> Optional[Path]:
    """The model file of ``stage`` in a run folder, in either format (None: none)."""
    for name in (model_file(stage), legacy_model_file(stage)):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


# --------------------------------------------------------------------------------------
# reading with checks


def read_json(path: Path, kind: type = dict) -> Any:
    """A JSON file lcreg wrote: it must parse and be a ``kind``; otherwise one line."""
    text = read_text(Path(path), "run file")
    try:
        data = json.loads(text)
    except ValueError as e:
        raise LcregError(f"{path} is not valid JSON ({str(e)[:60]}): a damaged run file?") from None
    if not isinstance(data, kind):
        raise LcregError(f"{path} holds a JSON {type(data).__name__}, not the {kind.__name__} lcreg writes")
    return data


def _check_metrics(path: Path, final: dict) -> dict:
    for key, stage in final.items():
        if key not in ("stage1", "stage2"):  # stage2_choice (tau-norm) and stages are not metrics
            continue
        test = stage.get("test") if isinstance(stage, dict) else None
        if not isinstance(test, dict) or not isinstance(test.get("top1"), (int, float)):
            raise LcregError(f"{path}: '{short(key)}' has no test metrics (test.top1): a damaged run file?")
    stages = final.get("stages")
    if stages is not None and not (isinstance(stages, list) and all(s in (1, 2) for s in stages) and stages):
        raise LcregError(f"{path}: 'stages' is {short(stages)}, not a list of stages 1 and 2")
    return final


def stage_metrics(final: dict) -> dict[str, dict]:
    """The per-stage entries of ``final_metrics.json`` (``stage1``, ``stage2``), in order."""
    return {k: final[k] for k in ("stage1", "stage2") if isinstance(final.get(k), dict)}


def read_final(folder: Path) -> Optional[dict]:
    """``final_metrics.json`` checked (None when the run has none yet)."""
    path = Path(folder) / FINAL
    if not path.exists():
        return None
    return _check_metrics(path, read_json(path))


def read_environment(folder: Path) -> dict:
    path = Path(folder) / ENVIRONMENT
    env = read_json(path)
    if not isinstance(env.get("resumes", []), list):
        raise LcregError(f"{path}: 'resumes' is not a list: a damaged run file?")
    return env


def read_records(folder: Path) -> list[dict]:
    """The per-epoch records of ``metrics.jsonl``, oldest first ([] without one). A last line
    cut short by a crash mid-write is dropped (the epoch is trained again on resume); a damaged
    line before it is an error."""
    path = Path(folder) / METRICS
    if not path.is_file():
        return []
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as e:
        raise LcregError(f"cannot read {path}: {e.strerror or type(e).__name__}") from None
    lines = text.split("\n")
    records = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            ok = (
                isinstance(record, dict)
                and isinstance(record.get("stage"), int)
                and isinstance(record.get("epoch"), int)
            )
        except ValueError:
            record, ok = None, False
        if not ok:
            if i == len(lines) and not text.endswith("\n"):  # the last line, never finished
                break
            raise LcregError(f"{path} line {i} is not an epoch record (a damaged run file?)")
        records.append(record)
    return records


def planned_stages(folder: Path, final: dict) -> tuple[int, ...]:
    """The stages the run plans: recorded in final_metrics.json; runs written before it was
    recorded ask the method registry (their saved config names the method)."""
    if final.get("stages"):
        return tuple(final["stages"])
    from lcreg.config import load_saved_config
    from lcreg.methods import get_method

    cfg = load_saved_config(Path(folder) / CONFIG)
    return get_method(cfg.method).stages(cfg)


def is_finished(folder: Path) -> bool:
    """The last planned stage has its metrics (a decoupled run trains stage 2 alone, on
    another run's stage 1). A stage's model file is written before its metrics, so metrics
    mean the model was complete; a run kept without its model files (results in git) is
    still finished. Raises (one line) when ``final_metrics.json`` exists but is damaged."""
    final = read_final(folder)
    if final is None:
        return False
    return f"stage{planned_stages(folder, final)[-1]}" in final


def state(folder: Path) -> str:
    """finished | interrupted (has a checkpoint) | new."""
    folder = Path(folder)
    if is_finished(folder):
        return "finished"
    return "interrupted" if (folder / CHECKPOINT).is_file() else "new"


def is_run_folder(folder: Path) -> bool:
    return (Path(folder) / CONFIG).is_file() and (Path(folder) / ENVIRONMENT).is_file()


# --------------------------------------------------------------------------------------
# what may be deleted


def only_start_files(folder: Path) -> bool:
    """The folder holds nothing but what a start writes before its first checkpoint."""
    return all(p.name in START_FILES or p.name.endswith(".tmp") for p in Path(folder).iterdir())


def clear_failed_start(folder: Path) -> None:
    """Remove what a start that failed before its first checkpoint left; refuse a folder that
    holds anything else (a finished or interrupted run, or files not lcreg's)."""
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise LcregError(f"{folder} is a file, not a run folder")
    if not only_start_files(folder):
        raise LcregError(
            f"run folder {folder} already exists and is not empty; pick another --out or continue it with --resume"
        )
    for p in folder.iterdir():
        if p.name == LOCK:
            continue  # another process may be about to lock it: the lock decides
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


# --------------------------------------------------------------------------------------
# the lock


def _holder(lock_path: Path) -> str:
    try:
        info = json.loads(lock_path.read_text())
        return f"process {info['pid']} on {info['host']} ({short(info['command'], 80)}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the run folder's lock for the duration; refuse at once (one line) when another
    process holds it. Where the OS has no ``fcntl`` (Windows) no lock is taken."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = Path(folder) / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise LcregError(f"cannot lock run folder {folder}: {e.strerror or type(e).__name__}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise LcregError(
                f"run folder {folder} is in use by {_holder(path)}; wait for it to end or pick another --out"
            ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(["lcreg", *sys.argv[1:]]),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------
# which experiment a run is


# how and where a run trained, and where its data lay, not what it trained: two runs that
# differ only in these are runs of the same experiment (a table names the numerics of each)
RUNTIME_KEYS = (
    *RUN_SETTINGS,
    "data.data_dir",
    "data.cache_dir",
    "data.loader",
    "data.num_workers",
    "data.download",
)


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


# keys that change nothing unless another key selects them: (key, whether it is inert in a flat config)
INERT_UNLESS = {"data.val_per_class": lambda flat: flat.get("data.val_source") != "unused"}


def experiment_differences(a: dict, b: dict, reads: Callable[[str], bool] = lambda key: True) -> list[str]:
    """The keys (dotted) on which two configs (as dicts) define different experiments, each
    as ``key: a-value != b-value``: keys the method ``reads``, runtime settings
    (``RUNTIME_KEYS``) and keys inert in both (``INERT_UNLESS``) aside."""
    fa, fb = flatten(a), flatten(b)
    keys = [k for k in dict.fromkeys([*fa, *fb]) if k not in RUNTIME_KEYS and reads(k)]
    keys = [k for k in keys if not (k in INERT_UNLESS and INERT_UNLESS[k](fa) and INERT_UNLESS[k](fb))]
    return [f"{k}: {short(fa.get(k), 30)} != {short(fb.get(k), 30)}" for k in keys if fa.get(k) != fb.get(k)]
