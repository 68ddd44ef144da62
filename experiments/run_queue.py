"""A paper table as a queue of runs (``python experiments/reproduce.py TABLE``).

Each cell of a table (dataset, imbalance factor, variant) is trained once per seed into its
own folder, ``results/<table>/<dataset>_if<IF>/<variant>_seed<S>[_e<E>]``. The queue can be
stopped and restarted on any machine: a finished run is skipped, an interrupted one resumed
from its checkpoint, one that died before its first epoch started again. Runs go one at a
time, each in a process of its own (``python -m lcreg train``), so one failure ends the
queue with that run's message and the finished runs stay. A finished folder is pruned to
config, environment, logs, final metrics, stage models and the analysis (no checkpoint, no
TensorBoard events), with ``lcreg analyze`` diagnostics for models with a latent head.

A shortened schedule (``--epochs E``) is in every folder name and every table heading,
never passed off as the full one. The table itself is written by
``paper_tables.py`` from the finished folders.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import yaml

from lcreg import run_folder as rf
from lcreg.config import Config, DataConfig, load_config, load_saved_config, to_dict
from lcreg.data.longtail import class_counts_profile, held_out_count
from lcreg.engine.run_folders import find_runs, run_state
from lcreg.errors import LcregError
from lcreg.runtime.environment import numerics

TABLES_YAML = Path(__file__).with_name("tables.yaml")


def _load_tables(path: Path = TABLES_YAML) -> dict:
    data = yaml.safe_load(path.read_text())
    variants = data["variants"]
    for name, t in data["tables"].items():
        if t.get("rows", "all") not in ("all", "trained"):
            raise LcregError(f"{path.name}: table '{name}' has rows: {t['rows']} (all or trained)")
    tables = {
        name: {
            "variants": variants[t["variants"]],
            "imbalance": tuple(t["imbalance"]),
            "what": t["what"],
            # "trained": only rows with a finished seed (a reading is trained only when a screen
            # sends it to full length); "all": every row, with 0 seeds and "-" until one finishes
            "rows": t.get("rows", "all"),
            "baseline": t.get("baseline"),  # the row each other row's change is measured from
        }
        for name, t in data["tables"].items()
    }
    return {**data, "variants": variants, "tables": tables}


_DEFS = _load_tables()
FULL_EPOCHS = _DEFS["full_epochs"]  # the CIFAR presets' stage 1 (stage 2: 10)
DATASETS = tuple(_DEFS["datasets"])
METHODS = _DEFS["variants"]["methods"]  # Table 1's methods (and the tools beside them) on the LCReg preset
TABLE7 = _DEFS["variants"]["table7"]
TABLE9 = _DEFS["variants"]["table9"]
TABLE5 = _DEFS["variants"]["table5"]
TABLE10 = _DEFS["variants"]["table10"]
READINGS = _DEFS["variants"]["readings"]  # the readings of the open equations at full length
# decoupled classifiers re-train the classifier of the cross-entropy run of the same seed
# (lcreg train --stage 2 --from), as Kang et al. do; tau-norm's CE run held its validation
# split out from the start
STAGE1_FROM = _DEFS["stage1_from"]
# a one-stage method that is another's stage 1 is read from that run, not trained again:
# mixup alone is MiSLAS's stage 1 (the same preset, seed and training; 200 epochs)
STAGE1_OF = _DEFS["stage1_of"]
TABLES = _DEFS["tables"]


@dataclass
class RunSpec:
    table: str
    dataset: str
    imbalance: int
    variant: str
    seed: int
    out: Path
    preset: str
    overrides: list[str] = field(default_factory=list)
    stage1_from: Optional[Path] = None  # decoupled methods: stage 2 only, on this run's stage 1
    read_stage: Optional[int] = None  # the stage whose test metrics the row reports (None: the last)

    @property
    def cell(self) -> tuple[str, int, str]:
        return self.dataset, self.imbalance, self.variant

    @property
    def method(self) -> str:
        """The method the run trains: its last ``method=`` override, else the presets' LCReg."""
        chosen = [o.split("=", 1)[1] for o in self.overrides if o.startswith("method=")]
        return chosen[-1] if chosen else "lcreg"


def schedule_overrides(epochs: Optional[int]) -> list[str]:
    """Stage 1 shortened to ``epochs`` with warm-up and learning-rate steps scaled in
    proportion (5 of 200; 160 and 180 of 200); stage 2 as in the preset."""
    if epochs is None or epochs == FULL_EPOCHS:
        return []
    scale = epochs / FULL_EPOCHS
    milestones = sorted({max(1, round(160 * scale)), max(1, round(180 * scale))})
    return [
        f"stage1.epochs={epochs}",
        f"stage1.warmup_epochs={max(0, round(5 * scale))}",
        f"stage1.milestones=[{','.join(map(str, milestones))}]",
    ]


def schedule_label(epochs: Optional[int]) -> str:
    if epochs is None or epochs == FULL_EPOCHS:
        return "full schedule (200 + 10 epochs)"
    return f"SHORTENED schedule ({epochs} + 10 epochs, lr steps scaled), not the paper's 200 + 10"


def read_by(overrides: Sequence[str], extra: Sequence[str]) -> list[str]:
    """Of the queue's ``key=value`` train args, those the method of ``overrides`` reads: the
    others would change nothing of its run (and ``lcreg train`` refuses them)."""
    from lcreg.methods import get_method

    chosen = [o.split("=", 1)[1] for o in overrides if o.startswith("method=")]
    method = get_method(chosen[-1] if chosen else "lcreg")
    return [e for e in extra if method.reads_key(e.split("=", 1)[0].strip())]


def _method_run(
    dataset: str, imbalance: int, method: str, seed: int, out: Path, epochs: Optional[int], extra: Sequence[str]
) -> RunSpec:
    """The Table 1 run that trains ``method``, planned ahead of a row that builds on it: the CE
    stage 1 of a decoupled method, the MiSLAS run whose stage 1 is the mixup row."""
    overrides = [*METHODS[method], *schedule_overrides(epochs), *read_by(METHODS[method], extra)]
    return RunSpec("table1", dataset, imbalance, method, seed, out, f"{dataset}_lt_if{imbalance}", overrides)


@functools.cache
def _identity(preset: str, overrides: tuple[str, ...]) -> str:
    """What a cell trains, as comparable text: its resolved config on the keys its method
    reads, runtime settings aside."""
    from lcreg.methods import get_method

    cfg = load_config(preset, list(overrides))
    method = get_method(cfg.method)
    flat = rf.flatten(to_dict(cfg))
    return repr(sorted((k, repr(v)) for k, v in flat.items() if k not in rf.RUNTIME_KEYS and method.reads_key(k)))


def home_of(preset: str, overrides: Sequence[str]) -> Optional[tuple[str, str]]:
    """The (table, variant) of Table 1 or Table 7 whose cell resolves to the same config as
    ``overrides`` on ``preset``, if any: that cell's folder holds the run."""
    mine = _identity(preset, tuple(overrides))
    for table, variants in (("table1", METHODS), ("table7", TABLE7)):
        for name, theirs in variants.items():
            if _identity(preset, tuple(theirs)) == mine:
                return table, name
    return None


def plan(
    table: str,
    results: Path,
    datasets: Sequence[str],
    imbalance: Optional[Sequence[int]],
    seeds: Sequence[int],
    variants: Optional[Sequence[str]],
    epochs: Optional[int],
    extra: Sequence[str] = (),
) -> list[RunSpec]:
    if table not in TABLES:
        raise LcregError(f"unknown table '{table}' ({', '.join(TABLES)})")
    spec = TABLES[table]
    known = spec["variants"]
    wanted = list(variants) if variants else list(known)
    for v in wanted:
        if v not in known:
            raise LcregError(f"'{v}' is not a variant of {table} ({', '.join(known)})")
    for d in datasets:
        if d not in DATASETS:
            raise LcregError(f"unknown dataset '{d}' ({', '.join(DATASETS)})")
    factors = list(imbalance) if imbalance else list(spec["imbalance"])
    suffix = "" if epochs is None or epochs == FULL_EPOCHS else f"_e{epochs}"
    runs = []
    for d in datasets:
        for imb in factors:
            for v in wanted:
                # a variant whose resolved config is a Table 1 method's or a Table 7 row's shares
                # that folder (trained once): Table 5's M = 40 and Table 9's (0.1, 0.1, 1) are LCReg
                home, name = home_of(f"{d}_lt_if{imb}", known[v]) or (table, v)
                trains, read_stage = (STAGE1_OF[name], 1) if home == "table1" and name in STAGE1_OF else (name, None)
                for s in seeds:
                    out = results / home / f"{d}_if{imb}" / f"{trains}_seed{s}{suffix}"
                    source = STAGE1_FROM.get(name) if home == "table1" else None
                    stage1 = results / "table1" / f"{d}_if{imb}" / f"{source}_seed{s}{suffix}" if source else None
                    if stage1 is not None and all(r.out != stage1 for r in runs):  # its CE run goes first
                        runs.append(_method_run(d, imb, source, s, stage1, epochs, extra))
                    if read_stage and all(r.out != out or r.read_stage for r in runs):  # the run it reads goes first
                        runs.append(_method_run(d, imb, trains, s, out, epochs, extra))
                    own = METHODS[trains] if read_stage else known[v]
                    mine = read_by(own, extra)
                    overrides = [*own, *mine] if stage1 else [*own, *schedule_overrides(epochs), *mine]
                    if all((r.out, r.variant) != (out, v) for r in runs):
                        runs.append(RunSpec(table, d, imb, v, s, out, f"{d}_lt_if{imb}", overrides, stage1, read_stage))
    return runs


def table_runs(
    table: str,
    results: Path,
    datasets: Sequence[str],
    asked: list[RunSpec],
    epochs: Optional[int],
    extra: Sequence[str] = (),
) -> list[RunSpec]:
    """What ``results/<table>.md`` covers: the asked runs, and every other finished run of
    the table on disk (any variant, imbalance factor or seed), so that a call for a few
    cells does not drop the others from the table."""
    factors = sorted({*TABLES[table]["imbalance"], *(r.imbalance for r in asked)}, reverse=True)
    candidates = plan(table, results, datasets, factors, [0], None, epochs, extra)
    runs = list(asked)
    for c in candidates:
        pattern = re.compile(re.escape(c.out.name).replace("_seed0", r"_seed(\d+)", 1) + "$")
        for folder in sorted(c.out.parent.glob(c.out.name.replace("_seed0", "_seed*", 1))):
            m = pattern.match(folder.name)
            if m is None or run_state(folder) != "finished":
                continue
            seed = int(m.group(1))
            if all((r.out, r.variant) != (folder, c.variant) for r in runs):
                runs.append(plan(table, results, [c.dataset], [c.imbalance], [seed], [c.variant], epochs, extra)[-1])
    order = list(TABLES[table]["variants"])  # the table's own row order, whatever was asked first
    return sorted(runs, key=lambda r: (r.dataset, -r.imbalance, order.index(r.variant), r.seed))


def cell_config(r: RunSpec) -> Config:
    """What the cell trains: its preset and overrides (the ``key=value`` ones of the queue's
    ``--train-args`` among them: ``plan(extra=...)``), on its stage-1 run's saved config for a
    decoupled method, and its seed."""
    if r.stage1_from is not None and (r.stage1_from / rf.CONFIG).is_file():
        cfg = load_config(None, r.overrides, base=load_saved_config(r.stage1_from / rf.CONFIG))
    else:
        cfg = load_config(r.preset, r.overrides)
    cfg.seed = r.seed
    return cfg


def differences(r: RunSpec, saved: Config) -> list[str]:
    """How the run saved in the cell's folder differs from the cell, on the keys its method reads."""
    from lcreg.methods import get_method

    cell = cell_config(r)
    return rf.experiment_differences(to_dict(saved), to_dict(cell), get_method(cell.method).reads_key)


def is_cell(r: RunSpec) -> bool:
    """Whether the run in the cell's folder is that cell (its saved config is the cell's)."""
    return not differences(r, load_saved_config(r.out / rf.CONFIG))


def foreign_settings(r: RunSpec) -> list[str]:
    """How the run already in the cell's folder differs from the cell ([]: none there, or
    it is the cell)."""
    if not (r.out / rf.CONFIG).is_file():
        return []
    return differences(r, load_saved_config(r.out / rf.CONFIG))


def check_cell(r: RunSpec) -> None:
    """A run already in the cell's folder must be that cell: one trained with other settings
    (``--train-args stage1.epochs=1``) is never counted, resumed or replaced as it."""
    diff = foreign_settings(r)
    if diff:
        raise LcregError(
            f"{r.out} holds a run of another experiment than the cell {r.variant} ({'; '.join(diff[:2])}): "
            "it is not this cell; move it away (nothing was changed)"
        )


def missing_stage1_model(r: RunSpec) -> Optional[str]:
    """Why a decoupled cell cannot train now: its stage-1 run finished on another machine,
    and its model file is not here (model files stay out of git). None: it can."""
    if r.stage1_from is None or run_state(r.stage1_from) != "finished" or rf.stage_model(r.stage1_from, 1):
        return None
    return (
        f"{r.stage1_from} is finished but its stage-1 model is not here (model files stay out of git): "
        f"copy {rf.model_file(1)} into it, or move the folder away and the queue trains it again"
    )


def numerics_of_args(train_args: Sequence[str], cuda: bool) -> tuple[bool, bool]:
    """(bf16, compiled) that ``lcreg train`` arguments ask for on this kind of device."""
    amp = next((a.split("=", 1)[1] for a in train_args if a.startswith("amp=")), "auto")
    comp = next((train_args[i + 1] for i, a in enumerate(train_args[:-1]) if a == "--compile"), "auto")
    return numerics(amp, comp, cuda)


def epochs_left(spec: RunSpec, epochs: int) -> int:
    """Epochs a run still has to train: stage 1's ``epochs`` (none for a decoupled run) and
    the stage 2 its method trains (none for a one-stage method or tau-norm's post-hoc
    choice), less those an interrupted run has logged."""
    from lcreg.methods import get_method

    cfg = cell_config(spec)
    total = (0 if spec.stage1_from else epochs) + get_method(cfg.method).stage2_epochs(cfg)
    try:
        done = len(rf.read_records(spec.out))
    except LcregError:
        done = 0
    return max(total - done, 0)


CIFAR_HEAD = {"cifar10": (5000, 10), "cifar100": (500, 100)}  # images of the head class, classes


def epoch_images(folder: Path, data: DataConfig) -> Optional[int]:
    """Training images a run sees per epoch: the total its ``data_stats.json`` recorded, else
    what its data config selects from CIFAR-LT (its profile, less the validation share held
    out per class; None for other data). Epoch times scale with it: at IF 10 CIFAR-10-LT holds
    20,431 images, 1.6x the 12,406 of IF 100."""
    try:
        return int(json.loads((folder / "data_stats.json").read_text())["total"])
    except (OSError, ValueError, KeyError, TypeError):
        dataset = data.dataset.removesuffix("-lt")
        if dataset not in CIFAR_HEAD:
            return None
        n_max, classes = CIFAR_HEAD[dataset]
        counts = class_counts_profile(n_max, classes, data.imbalance_factor or 1.0, data.profile)
        return sum(n - (held_out_count(n, data.val_fraction) if data.val_fraction > 0 else 0) for n in counts)


def seconds_per_image(results: Path, variant_has_latent: bool, train_args: Sequence[str] = ()) -> Optional[float]:
    """The median wall time per training image seen (epochs logged x images per epoch) of
    the finished runs under ``results`` on this kind of device with the same head and
    numerics (None: no such run). A run that trained no stage 1 (cRT, LWS, tau-norm on an
    earlier run's backbone) is left out: its epochs cost a fraction of a training epoch
    (cRT: 1 min for 10 epochs here), and counting them made the median low."""
    from lcreg.runtime.environment import environment_info, select_device

    device = environment_info(select_device("auto"))["device"]
    asked = numerics_of_args(train_args, cuda=not device.startswith("CPU"))
    rates = []
    for run in find_runs(results)[0]:
        if run.device != device or (run.config.method == "lcreg") != variant_has_latent or run.numerics != asked:
            continue
        if 1 not in run.epoch_stages:
            continue
        seconds, _ = run.wall_seconds()
        epochs = len(run.epoch_stages)
        images = epoch_images(run.folder, run.config.data)
        if seconds and epochs and images:
            rates.append(seconds / (epochs * images))
    return statistics.median(rates) if rates else None


def dry_run_lines(runs: list[RunSpec], results: Path, epochs: int, train_args: Sequence[str]) -> list[str]:
    """``--dry-run``: each run's state, epochs left, estimated minutes on this device and its
    ``lcreg train`` command; then the total for the runs not finished."""
    lines, total, unknown = [], 0.0, 0
    flags = " ".join(train_flags(train_args))
    rates: dict[bool, Optional[float]] = {}  # seconds per image per head kind: one scan of results each
    listed: set[Path] = set()
    for r in runs:
        state, when = run_state(r.out), ""
        if diff := foreign_settings(r):
            state = f"{state}, but another experiment than this cell ({'; '.join(diff[:2])}): move it away"
        if state != "finished" and (why := missing_stage1_model(r)):
            state = f"{state}, blocked: {why}"
        if r.out in listed:  # a row read from a run listed above (mixup: MiSLAS's stage 1)
            lines.append(f"  {r.out} [{state}, stage {r.read_stage} of the run above: the `{r.variant}` row]")
            continue
        listed.add(r.out)
        if state != "finished":
            left = epochs_left(r, epochs)
            latent = r.method == "lcreg"
            if latent not in rates:
                rates[latent] = seconds_per_image(results, latent, train_args)
            images = epoch_images(r.out, load_config(r.preset, r.overrides).data)
            est = None if rates[latent] is None or images is None else rates[latent] * left * images / 60
            total += est or 0.0
            unknown += est is None
            when = f", {left} epochs left, " + (f"about {est:.0f} min here" if est is not None else "time unknown here")
        how = f"--stage 2 --from {r.stage1_from}" if r.stage1_from else f"{r.preset} --seed {r.seed}"
        lines.append(f"  {r.out} [{state}{when}]: lcreg train {' '.join(filter(None, (how, flags, *r.overrides)))}")
    note = f"; {unknown} runs of unknown time not counted" if unknown else ""
    lines.append(
        f"estimated: {total:.0f} min for the runs not finished, from the time per training image of finished "
        f"runs on this device with the same head and numerics{note}"
    )
    return lines


def _prune(out: Path) -> None:
    """A finished run keeps config, logs, metrics, models and analysis: its checkpoint and
    TensorBoard events go (they only serve a resume)."""
    if rf.state(out) != "finished":
        return
    (out / rf.CHECKPOINT).unlink(missing_ok=True)
    shutil.rmtree(out / rf.TENSORBOARD, ignore_errors=True)


class RunFailed(LcregError):
    """A queued command ended with an error; ``reason`` is its own one-line message."""

    def __init__(self, command: str, reason: str) -> None:
        super().__init__(
            f"the run '{command}' failed ({reason}); the queue stops here, finished runs are kept: run the "
            "same command again to continue"
        )
        self.command, self.reason = command, reason


def _lcreg(*args: str) -> None:
    cmd = [sys.executable, "-m", "lcreg", *args]
    print("+ lcreg " + " ".join(args), flush=True)
    errors, traceback = [], []
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, errors="replace") as proc:
        try:
            for line in proc.stderr:  # passed on as it comes (warnings mid-run), errors kept for the reason
                if traceback or line.startswith("Traceback (most recent call last)"):
                    traceback.append(line.rstrip("\n"))  # a crash: kept for the one-line reason, not echoed
                    continue
                sys.stderr.write(line)
                sys.stderr.flush()
                if line.startswith("lcreg: error:"):
                    errors.append(line.rstrip("\n").removeprefix("lcreg: error: "))
        except BaseException:  # the queue is stopped (Ctrl-C, SIGTERM): so is its run, which keeps its checkpoint
            proc.terminate()
            raise
    if proc.returncode != 0:
        if errors:
            reason = errors[-1]
        elif traceback:
            last = next((t for t in reversed(traceback) if t.strip()), "")
            reason = f"it crashed: {rf.short(last.strip(), 160)}; run that command alone to see its traceback"
        else:
            reason = f"exit code {proc.returncode}"
        raise RunFailed("lcreg " + " ".join(args), reason)


def is_override(arg: str) -> bool:
    """A ``key=value`` item of ``--train-args`` (a config override), as opposed to a flag or
    its value: overrides reach a run through its planned overrides (``plan(extra=...)``,
    ``read_by``), flags through ``execute``."""
    return "=" in arg and not arg.startswith("-")


def train_flags(train_args: Sequence[str]) -> list[str]:
    """The flags of ``--train-args`` (and their values), which ``execute`` passes to each run."""
    return [a for a in train_args if not is_override(a)]


def execute(runs: list[RunSpec], data_dir: str, train_args: Sequence[str]) -> None:
    """Train what is not finished, in order. Nothing is deleted here: a folder holding only a
    failed start's files is taken over by ``lcreg train`` itself (under the folder's lock),
    any other folder is refused by it; a run that is not its cell's stops the queue."""
    # key=value train args reach each run through its overrides (those its method reads)
    flags = train_flags(train_args)
    for i, r in enumerate(runs, 1):
        state = run_state(r.out)
        check_cell(r)
        read = f" (stage {r.read_stage}: the {r.variant} row)" if r.read_stage else ""
        print(f"[{i}/{len(runs)}] {r.out}{read}: {state}", flush=True)
        if state == "finished":
            continue
        if state == "interrupted":
            _lcreg("train", "--resume", str(r.out), "--no-progress")
        elif r.stage1_from is not None:
            if why := missing_stage1_model(r):
                raise LcregError(why)
            _lcreg(
                "train",
                "--stage",
                "2",
                "--from",
                str(r.stage1_from),
                "--out",
                str(r.out),
                "--no-progress",
                *flags,
                *r.overrides,
            )
        else:
            _lcreg(
                "train",
                r.preset,
                "--data-dir",
                data_dir,
                "--seed",
                str(r.seed),
                "--out",
                str(r.out),
                "--no-progress",
                *flags,
                *r.overrides,
            )
        if not (r.out / "analysis" / "diagnostics.json").is_file():
            _lcreg("analyze", str(r.out), "--per-split", "2")
        _prune(r.out)
