"""Collect every committed run under results/ into one markdown table (and mean +- std
over seeds of the same preset), from the files each run folder holds.

    python benchmarks/collect_results.py [results] > results/README.md

Numbers are percentages of the FINAL epoch of each stage on the test split.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import yaml


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def load_runs(root: Path) -> list[dict]:
    runs = []
    for final_path in sorted(root.glob("**/final_metrics.json")):
        run = final_path.parent
        final = json.loads(final_path.read_text())
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        env = json.loads((run / "environment.json").read_text())
        log = run / "metrics.jsonl"
        epochs = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        runs.append(
            {
                "dir": run,
                "final": final,
                "cfg": cfg,
                "env": env,
                "epoch_seconds": sum(e.get("seconds", 0.0) for e in epochs),
            }
        )
    return runs


# the readings of the paper's open equations (docs/method.md) and their as-written values
READINGS = {
    ("model", "latent", "weights"): "sigmoid",
    ("model", "latent", "similarity"): "dot",
    ("model", "latent", "temperature"): 1.0,
    ("model", "latent", "weight_temperature"): 1.0,
    ("loss", "detach_features"): False,
    ("loss", "recon_reduction"): "mean",
    ("loss", "recon_similarity"): "dot",
    ("loss", "recon_temperature"): 1.0,
}


def method_of(cfg: dict) -> str:
    """``method``, or lcreg 0.1's ``model.latent.enabled``."""
    return cfg.get("method") or ("lcreg" if cfg["model"]["latent"].get("enabled", True) else "mislas")


def method_name(cfg: dict) -> str:
    """The method, and for LCReg its settings and every reading that differs from the
    equations as written; a shortened schedule and a held-out split are named too."""
    method = method_of(cfg)
    extra = []
    if cfg["stage1"]["epochs"] != 200:
        extra.append(f"{cfg['stage1']['epochs']}-epoch stage 1")
    if cfg["data"].get("val_fraction"):
        extra.append(f"val {cfg['data']['val_fraction']:g} held out")
    if method != "lcreg":
        return {"mislas": "MiSLAS"}.get(method, method) + (f" ({', '.join(extra)})" if extra else "")
    latent, loss = cfg["model"]["latent"], cfg["loss"]
    readings = []
    for path, written in READINGS.items():
        node = cfg
        for key in path:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if node not in ({}, written):
            readings.append(f"{path[-1]}={node}")
    return (
        f"LCReg (M={latent['num_latents']}, alpha={loss['alpha']}, beta={loss['beta']}; "
        f"{', '.join(readings) or 'as written'}{'; ' + ', '.join(extra) if extra else ''})"
    )


def precision(r: dict) -> str:
    """Numerics of a run: bf16 or fp32, compiled or eager (``auto`` resolved as the engine
    does: bf16 and compiled on CUDA, fp32 and eager elsewhere)."""
    cuda = not r["env"]["device"].startswith("CPU")
    amp, comp = r["cfg"].get("amp", "auto"), r["cfg"].get("compile", "auto")
    bf16 = amp == "bf16" or (amp == "auto" and cuda)
    compiled = comp == "on" or (comp == "auto" and cuda)
    return f"{'bf16' if bf16 else 'fp32'} {'compiled' if compiled else 'eager'}"


def minutes(r: dict) -> str:
    """Wall minutes of the whole run (start-up, compilation, evaluation included; summed over
    resumed processes) where the run recorded it, else the logged epochs alone, marked so."""
    stages = [r["final"][k] for k in ("stage1", "stage2") if k in r["final"]]
    wall = stages[-1].get("wall_seconds") if stages else None
    if wall is not None:
        return f"{wall / 60:.1f}"
    return f"{r['epoch_seconds'] / 60:.1f} (epochs only)" if r["epoch_seconds"] else "-"


def table(runs: list[dict], root: Path) -> str:
    lines = [
        "| run | method | seed | stage-1 top-1 | top-1 | Many | Medium | Few | ECE | epochs | precision | device | minutes | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        s1 = r["final"].get("stage1", {}).get("test", {})
        s2 = r["final"].get("stage2", {}).get("test", {})
        cfg = r["cfg"]
        epochs = f"{cfg['stage1']['epochs']}+{cfg['stage2']['epochs']}"
        lines.append(
            f"| `{r['dir'].relative_to(root)}` | {method_name(cfg)} | {cfg['seed']} | {pct(s1.get('top1'))} | "
            f"{pct(s2.get('top1'))} | {pct(s2.get('many'))} | {pct(s2.get('medium'))} | {pct(s2.get('few'))} | "
            f"{pct(s2.get('ece'))} | {epochs} | {precision(r)} | {r['env']['device']} | {minutes(r)} | `{(r['env']['commit'] or '?')[:12]}` |"
        )
    return "\n".join(lines)


def seed_summary(runs: list[dict]) -> str:
    """Runs that differ only in the seed (same data, method and readings, schedule, precision). Repeated runs
    of one seed are averaged first, so the spread is over seeds, not over repeats."""
    groups: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        top1 = r["final"].get("stage2", {}).get("test", {}).get("top1")
        if top1 is not None:
            data = f"{r['cfg']['data']['dataset']} IF {r['cfg']['data']['imbalance_factor']:g}"
            groups[(data, method_name(r["cfg"]), precision(r))][r["cfg"]["seed"]].append(100 * top1)
    lines = [
        "| data | method | precision | seeds | runs | top-1 mean | std over seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for (name, method, prec), by_seed in sorted(groups.items()):
        vals = [statistics.mean(v) for v in by_seed.values()]
        n_runs = sum(len(v) for v in by_seed.values())
        std = f"{statistics.stdev(vals):.2f}" if len(vals) > 1 else "- (one seed)"
        lines.append(f"| {name} | {method} | {prec} | {len(vals)} | {n_runs} | {statistics.mean(vals):.2f} | {std} |")
    return "\n".join(lines)


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "results")
    runs = load_runs(root)
    print("# Results\n")
    print("Written by `python benchmarks/collect_results.py` from the run folders below; each folder holds")
    print("the resolved config, seed, commit, device, per-epoch log (`metrics.jsonl`) and final metrics.")
    print("Top-1, Many/Medium/Few and ECE (15 bins) in %, final epoch of stage 2 on the test split.\n")
    print(table(runs, root))
    print("\n## Mean and spread over seeds\n")
    print(seed_summary(runs))


if __name__ == "__main__":
    main()
