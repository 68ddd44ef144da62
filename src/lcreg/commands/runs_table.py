"""``lcreg runs DIR``: every run folder below DIR in one table, then the mean and spread over
seeds of the runs that differ only in their seed.

Read from the files each run folder holds (resolved config, environment, final metrics,
per-epoch log), so it works on any machine's runs and on committed results alike. Numbers
are percentages of the final epoch of each stage on the test split (a one-stage method's
final stage is stage 1); a run not yet finished is named, not counted.

    lcreg runs results > results/README.md     # this project's results page
    lcreg runs runs --csv runs.csv             # your own runs, one row each, for a spreadsheet
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Optional

from lcreg.config import AS_WRITTEN_READINGS, Config, flat_keys, to_dict
from lcreg.engine.run_folders import FinishedRun, find_runs
from lcreg.errors import LcregError

METRICS = ("top1", "many", "medium", "few", "ece")


def load_runs(root: Path) -> tuple[list[FinishedRun], list[Path]]:
    """The finished runs below ``root`` and the folders of those not finished."""
    if not root.is_dir():
        raise LcregError(f"{root}: no such folder (lcreg runs DIR takes a folder of run folders, e.g. runs/)")
    return find_runs(root)


@functools.cache
def _default_keys() -> dict:
    """The config defaults as dotted keys (built once, not per run)."""
    return flat_keys(to_dict(Config()))


def _changed_keys(cfg: dict, sections: tuple[str, ...], skip: set[str]) -> list[str]:
    """``key=value`` for every key of ``sections`` that differs from the config defaults."""
    defaults = _default_keys()
    return [
        f"{key.rsplit('.', 1)[-1]}={value}"
        for key, value in flat_keys(cfg).items()
        if key.startswith(sections) and key not in skip and key in defaults and value != defaults[key]
    ]


def _changed_own_keys(cfg: dict) -> list[str]:
    """``key=value`` for what a method reads of its own and the run changed from the defaults:
    its parameters (method_params) and its loss keys; keys it never reads do not count."""
    from lcreg.methods import get_method

    method = get_method(cfg["method"])
    defaults, flat = _default_keys(), flat_keys({k: v for k, v in cfg.items() if k != "method_params"})
    own = [k for k in method.own_keys(list(flat)) if k.startswith("loss.")]
    parts = [f"{k.rsplit('.', 1)[-1]}={flat[k]}" for k in own if k in defaults and flat[k] != defaults[k]]
    params = dataclasses.asdict(method.Params()) if method.Params is not None else {}
    return parts + [f"{k}={v}" for k, v in cfg.get("method_params", {}).items() if params.get(k) != v]


def method_name(cfg: dict) -> str:
    """The method; for LCReg its M, alpha, beta, every reading that differs from the
    equations as written and every other latent-head or loss key changed from its default
    (decoder, covariance samples, ...); for another method its changed loss keys. A
    shortened schedule, a validation split and a backbone padding other than zeros are named
    too. Runs with different names are never averaged together."""
    extra = []
    if cfg["stage1"]["epochs"] != 200:
        extra.append(f"{cfg['stage1']['epochs']}-epoch stage 1")
    if cfg["data"].get("val_fraction"):
        extra.append(f"val {cfg['data']['val_fraction']:g} held out")
    if cfg["data"].get("val_source") == "unused":
        extra.append(f"val {cfg['data']['val_per_class']} a class from unused images")
    if cfg["model"].get("padding", "zeros") != "zeros":  # another backbone: never averaged with zero padding
        extra.append(f"{cfg['model']['padding']} padding")
    if cfg["method"] != "lcreg":
        parts = _changed_own_keys(cfg) + extra
        return {"mislas": "MiSLAS"}.get(cfg["method"], cfg["method"]) + (f" ({', '.join(parts)})" if parts else "")
    # an LCReg run is named by the readings of the open equations it changes (docs/method.md)
    flat = flat_keys(cfg)
    written = flat_keys(AS_WRITTEN_READINGS)
    readings = [f"{key.rsplit('.', 1)[-1]}={flat[key]}" for key, w in written.items() if key in flat and flat[key] != w]
    shown = {*written, "model.latent.num_latents", "loss.alpha", "loss.beta"}
    others = _changed_keys(cfg, ("model.latent.", "loss."), shown)
    latent, loss = cfg["model"]["latent"], cfg["loss"]
    return (
        f"LCReg (M={latent['num_latents']}, alpha={loss['alpha']}, beta={loss['beta']}; "
        f"{', '.join(readings) or 'as written'}{'; ' + ', '.join(others) if others else ''}"
        f"{'; ' + ', '.join(extra) if extra else ''})"
    )


def precision(run: FinishedRun) -> str:
    """bf16 or fp32, compiled or eager, ``auto`` resolved for the run's device."""
    bf16, compiled = run.numerics
    return f"{'bf16' if bf16 else 'fp32'} {'compiled' if compiled else 'eager'}"


def data_name(cfg: dict) -> str:
    imb = cfg["data"].get("imbalance_factor")
    return cfg["data"]["dataset"] + (f" IF {imb:g}" if imb else "")


def _pct(x: Optional[float]) -> Optional[float]:
    return None if x is None else round(100 * x, 4)


def stage_epochs(final: dict) -> str:
    """The epochs of the stages the run trained: ``200+10``, ``200`` (a one-stage method),
    ``+10`` (a stage 2 on another run's stage 1: cRT, LWS; ``+0``: tau-norm's post-hoc one)."""
    s1, s2 = (final.get(f"stage{i}", {}).get("epoch") for i in (1, 2))
    return ("" if s1 is None else str(s1)) + ("" if s2 is None else f"+{s2}")


def run_rows(runs: list[FinishedRun], root: Path) -> list[dict]:
    """One dict per run: the columns of the per-run table (metrics in %)."""
    rows = []
    for r in runs:
        s1 = r.final.get("stage1", {}).get("test", {})
        wall, is_wall = r.wall_seconds()
        rows.append(
            {
                "run": r.folder.relative_to(root).as_posix(),
                "data": data_name(r.cfg),
                "method": method_name(r.cfg),
                "seed": r.seed,
                "stage1_top1": _pct(s1.get("top1")),
                **{k: _pct(r.test.get(k)) for k in METRICS},
                "epochs": stage_epochs(r.final),
                "precision": precision(r),
                "device": " then ".join(r.devices),
                "minutes": None if wall is None else round(wall / 60, 2),
                "wall_time": is_wall,
                "commit": " then ".join(r.commits),
            }
        )
    return rows


def seed_rows(runs: list[FinishedRun]) -> list[dict]:
    """Runs that differ only in the seed (same data, method and readings, schedule,
    precision), one row per group. Repeated runs of one seed are averaged first, so the
    spread is over seeds, not repeats; Many / Medium / Few and ECE are means over seeds."""
    groups: dict[tuple, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        groups[(data_name(r.cfg), method_name(r.cfg), precision(r))][r.seed].append(r.test)
    rows = []
    for (data, method, prec), by_seed in sorted(groups.items()):
        per_seed = {k: [] for k in METRICS}
        for tests in by_seed.values():
            for k in METRICS:
                vals = [100 * t[k] for t in tests if t.get(k) is not None]
                if vals:
                    per_seed[k].append(statistics.mean(vals))
        top1 = per_seed["top1"]
        rows.append(
            {
                "data": data,
                "method": method,
                "precision": prec,
                "seeds": len(by_seed),
                "runs": sum(len(v) for v in by_seed.values()),
                "top1_mean": statistics.mean(top1),
                "top1_std": statistics.stdev(top1) if len(top1) > 1 else None,
                **{f"{k}_mean": statistics.mean(per_seed[k]) if per_seed[k] else None for k in METRICS[1:]},
            }
        )
    return rows


# column titles of the markdown tables
TITLES = {
    "stage1_top1": "stage-1 top-1",
    "top1": "top-1",
    "many": "Many",
    "medium": "Medium",
    "few": "Few",
    "ece": "ECE",
    "top1_mean": "top-1 mean",
    "top1_std": "std over seeds",
    "many_mean": "Many",
    "medium_mean": "Medium",
    "few_mean": "Few",
    "ece_mean": "ECE",
}


def _cell(key: str, value, row: dict) -> str:
    if key in ("run", "commit"):
        return f"`{value}`"
    if key == "minutes":
        return "-" if value is None else f"{value:.1f}" + ("" if row["wall_time"] else " (epochs only)")
    if key == "top1_std" and value is None:
        return "- (one seed)"
    if isinstance(value, float):
        return f"{value:.2f}"
    return "-" if value is None else str(value)


def _markdown(rows: list[dict]) -> list[str]:
    if not rows:
        return ["(none)"]
    keys = [k for k in rows[0] if k != "wall_time"]  # told in the minutes cell
    lines = ["| " + " | ".join(TITLES.get(k, k) for k in keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(k, row[k], row) for k in keys) + " |" for row in rows]
    return lines


def markdown(runs: list[FinishedRun], unfinished: list[Path], root: Path) -> str:
    lines = [
        "# Runs",
        "",
        f"Written by `lcreg runs {root}` from the run folders below it; each holds the resolved config, seed,",
        "commit, device, per-epoch log (`metrics.jsonl`) and final metrics. Top-1, Many / Medium / Few and ECE",
        "(15 bins) in %, final epoch of the last stage (stage 2, or stage 1 for a one-stage method) on the test",
        "split; stage-1 top-1 is the final epoch of stage 1. Minutes: wall time of the whole run where it was",
        "recorded, else of its logged epochs alone.",
        "",
        *_markdown(run_rows(runs, root)),
        "",
        "## Mean and spread over seeds",
        "",
        *_markdown(seed_rows(runs)),
    ]
    if unfinished:
        names = ", ".join(f"`{p.relative_to(root).as_posix()}`" for p in unfinished)
        lines += ["", f"Not finished, not counted ({len(unfinished)}): {names} (`lcreg train --resume RUN`)."]
    return "\n".join(lines) + "\n"


def csv_text(runs: list[FinishedRun], root: Path) -> str:
    rows = run_rows(runs, root)
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()
