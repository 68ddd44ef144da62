"""The peers' own code beside ours, on the same data: results/peers.md and results/peers.json.

    python benchmarks/peers/peers_table.py [--results results]

Reads every peer run folder under ``results/peers/`` (``peer.json`` and the peer's own logs,
written by ``run.py``), the matching rows of our ``results/table1.json`` (mean and seed
spread of the same method, same split, same schedule) and the balanced anchor run
(``results/anchor/``). For each peer run: its final-epoch and best-test-epoch top-1 (the
best epoch is the papers' protocol, never ours), against our final-epoch mean.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from pathlib import Path

import numpy as np

from lcreg import run_folder as rf

# peer run folder -> (method as the peer names it, the peer's stage folder, our table1 variant,
# our run folders under results/table1/cifar10_if100/ and their stage, the paper's number)
RUNS = {
    "mislas_if100": [
        ("mixup (MiSLAS stage 1)", "stage1", "mixup", "mislas_seed*", 1, 73.1),
        ("MiSLAS (stage 2)", "stage2", "mislas", "mislas_seed*", 2, 82.1),
    ],
    "ldam_drw_if100": [("LDAM-DRW", "", "ldam_drw", "ldam_drw_seed*", 1, 77.1)],
    "ce_if100": [("CE", "", "ce", "ce_seed*", 1, 70.4)],
}
# our runs that test one recipe difference found in a peer's code (docs: Peers and anchors):
# (run folders under results/peers/, what they change, the table1 variant they change it in)
AB_RUNS = [
    ("ab/ldam_drw_lr_decay001_seed*", "lr x0.01 at epochs 160 and 180 (LDAM-DRW's code)", "ldam_drw"),
    ("ab/ldam_drw_fp32_seed*", "fp32 instead of bf16 autocast (the peer's precision)", "ldam_drw"),
]
EPOCHS = {"stage1": 200, "stage2": 10, "": 200}
TRAIN_IMAGES = 12406  # CIFAR-10-LT IF 100 (checked: results/peers/split_check_if100.json)
HE_ET_AL = 92.49  # ResNet-32 on CIFAR-10, 7.51% error (He et al. 2016, Table 6)

_EPOCH = re.compile(r"Epoch: \[(\d+)\]")
_MISLAS_ACC = re.compile(r"\* Acc@1 ([\d.]+)%")
_MISLAS_ECE = re.compile(r"\* ECE\s+([\d.]+)%")
_LDAM_ACC = re.compile(r"val Results: Prec@1 ([\d.]+)")
_LDAM_CLS = re.compile(r"val Class Accuracy: (\[.*\])")
_RUNNING_LOSS = re.compile(r"Loss\s+[\d.]+\s+\(\s*([\d.]+)\)")  # both peers print "Loss value (running mean)"


def mislas_epochs(stage_dir: Path) -> dict[int, dict]:
    """epoch -> {top1, ece} from the peer's logs; a later log (a resumed process) wins."""
    out: dict[int, dict] = {}
    # the peer's own log files, then what each launch printed (run.py keeps it: stdout-*.log)
    for log in [*sorted(stage_dir.glob("saved/*/logs/*.txt")), *sorted(stage_dir.glob("stdout-*.log"))]:
        epoch = None
        loss = None
        for line in log.read_text(errors="replace").splitlines():
            if m := _EPOCH.search(line):
                epoch = int(m.group(1))
                loss = float(r.group(1)) if (r := _RUNNING_LOSS.search(line)) else loss
            elif (m := _MISLAS_ACC.search(line)) and epoch is not None:
                out[epoch] = {"top1": float(m.group(1))}
                if loss is not None:
                    out[epoch]["train_loss"] = loss
                loss = None
            elif (m := _MISLAS_ECE.search(line)) and epoch in out:
                out[epoch]["ece"] = float(m.group(1))
    return out


def ldam_epochs(run_dir: Path) -> dict[int, dict]:
    """epoch -> {top1, per_class} from LDAM-DRW's csv logs, part by part (run.py renames the
    logs of an interrupted process to ``*.partN.csv`` before it resumes)."""
    out: dict[int, dict] = {}
    for store in sorted(run_dir.glob("log/*")):
        tests = sorted(store.glob("log_test.part*.csv"), key=lambda p: int(p.suffixes[0][5:])) + [
            store / "log_test.csv"
        ]
        for test in tests:
            train = test.with_name(test.name.replace("log_test", "log_train"))
            if not test.exists() or not train.exists():
                continue
            losses: dict[int, float] = {}  # epoch -> the last running mean it printed
            for line in train.read_text().splitlines():
                if (m := _EPOCH.search(line)) and (r := _RUNNING_LOSS.search(line)):
                    losses[int(m.group(1))] = float(r.group(1))
            epochs = list(dict.fromkeys(int(m.group(1)) for m in _EPOCH.finditer(train.read_text())))
            results = []
            for line in test.read_text().splitlines():
                if m := _LDAM_ACC.search(line):
                    results.append({"top1": float(m.group(1))})
                elif (m := _LDAM_CLS.search(line)) and results:
                    results[-1]["per_class"] = [100 * x for x in ast.literal_eval(m.group(1))]
            for epoch, result in zip(epochs, results):
                out[epoch] = result | ({"train_loss": losses[epoch]} if epoch in losses else {})
    return out


def our_curves(results: Path, runs: str, stage: int) -> dict[int, dict[str, list[float]]]:
    """epoch (0-based, as the peers count) -> {"top1": [...], "train_loss": [...]} over our
    seeds' run folders: every epoch's training loss, test top-1 where the run evaluated."""
    out: dict[int, dict[str, list[float]]] = {}
    for metrics in sorted((results / "table1" / "cifar10_if100").glob(f"{runs}/metrics.jsonl")):
        for line in metrics.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a half-written last line of a running process
                continue
            if record.get("stage") != stage:
                continue
            at = out.setdefault(record["epoch"] - 1, {"top1": [], "train_loss": []})
            at["train_loss"].append(record["loss"]["total"])
            if "test" in record:
                at["top1"].append(100 * record["test"]["top1"])
    return out


def matched_epochs(peer: dict[int, dict], ours: dict[int, dict[str, list[float]]]) -> list[dict]:
    """The epochs both logged a test top-1: the peer's value beside our seeds' mean and spread,
    and the training losses of that epoch. Before the end of a run this is the only comparison
    there is; at lr 0.1 mixup's test accuracy swings by points from epoch to epoch, so one
    epoch says little and the mean over many says more."""
    rows = []
    for epoch in sorted(set(peer) & {e for e, v in ours.items() if v["top1"]}):
        top1, loss = ours[epoch]["top1"], ours[epoch]["train_loss"]
        rows.append(
            {
                "epoch": epoch + 1,
                "peer_top1": peer[epoch]["top1"],
                "ours_top1": float(np.mean(top1)),
                "ours_top1_std": float(np.std(top1, ddof=1)) if len(top1) > 1 else None,
                "ours_seeds": len(top1),
                "peer_train_loss": peer[epoch].get("train_loss"),
                "ours_train_loss": float(np.mean(loss)),
            }
        )
    return rows


def our_row(results: Path, variant: str) -> dict:
    table = json.loads((results / "table1.json").read_text())
    for row in table["rows"]:
        if row["dataset"] == "cifar10" and row["imbalance"] == 100 and row["variant"] == variant:
            return row
    return {}


def peer_rows(results: Path) -> list[dict]:
    rows = []
    for folder, methods in RUNS.items():
        run = results / "peers" / folder
        if not (run / "peer.json").exists():
            continue
        info = json.loads((run / "peer.json").read_text())
        for method, stage, variant, our_runs, our_stage, paper in methods:
            epochs = mislas_epochs(run / stage) if info["peer"] == "MiSLAS" else ldam_epochs(run)
            matched = matched_epochs(epochs, our_curves(results, our_runs, our_stage))
            total = EPOCHS[stage]
            done = max(epochs) + 1 if epochs else 0  # an epoch whose log lines were lost still ran
            final = epochs.get(total - 1) if done else None
            ours = our_row(results, variant)
            rows.append(
                {
                    "peer": info["peer"],
                    "repo": info["repo"],
                    "commit": info["commit"],
                    "method": method,
                    "our_variant": variant,
                    "train_images": TRAIN_IMAGES,
                    "epochs": total,
                    "epochs_done": done,
                    "epochs_logged": len(epochs),
                    "peer_final_top1": final["top1"] if final else None,
                    "peer_final_ece": final.get("ece") if final else None,
                    "peer_best_top1": max(e["top1"] for e in epochs.values()) if done else None,
                    "peer_last_epoch": max(epochs) + 1 if done else 0,
                    "peer_last_top1": epochs[max(epochs)]["top1"] if done else None,
                    "ours_top1": ours.get("top1_mean"),
                    "ours_top1_std": ours.get("top1_std"),
                    "ours_seeds": ours.get("seeds"),
                    "paper": paper,
                    "devices": sorted({launch["device"] for launch in info["launches"]}),
                    "run": f"results/peers/{folder}",
                    "explained": info.get("explained", {}).get(variant),
                    "gap": gap_split(paper, epochs, final, ours.get("top1_mean"), ours.get("top1_std")),
                    "matched_epochs": matched,
                    "peer_curve": {e + 1: v["top1"] for e, v in sorted(epochs.items())},
                }
            )
    return rows


def final_top1(run: Path) -> float | None:
    """Test top-1 (%) of an lcreg run folder's last stage (its final epoch); None before
    final_metrics.json is written."""
    final = rf.read_final(run)
    if final is None:
        return None
    return 100 * list(rf.stage_metrics(final).values())[-1]["test"]["top1"]


def ab_rows(results: Path) -> list[dict]:
    """Each recipe A/B: its finished seeds' final-epoch top-1 (mean, spread) beside our
    table1 row of the same method, which differs from it in that one setting, and beside
    our runs of that row on the A/B's own seeds (the paired comparison: a seed moves
    LDAM-DRW by about a point)."""
    rows = []
    for pattern, change, variant in AB_RUNS:
        top1, runs, paired = [], [], []
        for run in sorted((results / "peers").glob(pattern)):
            if (x := final_top1(run)) is not None:
                top1.append(x)
                runs.append(str(run.relative_to(results.parent)))
                seed = run.name.rsplit("_seed", 1)[1]
                paired.append(final_top1(results / "table1" / "cifar10_if100" / f"{variant}_seed{seed}"))
        ours = our_row(results, variant)
        rows.append(
            {
                "variant": variant,
                "change": change,
                "runs": runs,
                "top1": float(np.mean(top1)) if top1 else None,
                "top1_std": float(np.std(top1, ddof=1)) if len(top1) > 1 else None,
                "default_top1": ours.get("top1_mean"),
                "default_top1_std": ours.get("top1_std"),
                "default_seeds": ours.get("seeds"),
                # our default on the same seeds (None where one of them has not run)
                "paired_top1": float(np.mean(paired)) if paired and None not in paired else None,
            }
        )
    return rows


def ab_section(rows: list[dict]) -> list[str]:
    lines = [
        "## Recipe A/B runs",
        "",
        "Our code with one setting changed to the peer's (final epoch, test split).",
        "",
        "| method | change | runs | top-1 | ours, the same seeds | A/B - ours | ours as in table 1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        runs = ", ".join(f"`{x}`" for x in r["runs"]) or "not run yet"
        seeds = ",".join(str(s) for s in r["default_seeds"] or [])
        default = fmt(r["default_top1"], r["default_top1_std"]) + (f" (seeds {seeds})" if seeds else "")
        paired, diff = r["paired_top1"], "-"
        if paired is not None and r["top1"] is not None:
            diff = f"{r['top1'] - paired:+.2f}"
        lines.append(
            f"| {r['variant']} | {r['change']} | {runs} | {fmt(r['top1'], r['top1_std'])} | {fmt(paired, None)} "
            f"| {diff} | {default} |"
        )
    return lines


def gap_split(
    paper: float, epochs: dict, final: dict | None, ours: float | None, ours_std: float | None = None
) -> dict | None:
    """The gap from the paper's number to ours in three parts, each a difference of two
    measured numbers: the data copy and seed (paper - peer's best epoch on our data), the
    protocol (peer's best epoch - its final epoch) and the implementation (peer's final epoch
    - our final-epoch mean). None until the peer's run is finished. ``tolerance``: how far
    ours may trail the peer's code before a recipe difference must be found (issue 24:
    max(1.0, 2 x our seed std))."""
    if final is None or ours is None:
        return None
    best = max(e["top1"] for e in epochs.values())
    tolerance = max(1.0, 2 * (ours_std or 0.0))
    return {
        "total": paper - ours,
        "data_copy_and_seed": paper - best,
        "protocol": best - final["top1"],
        "implementation": final["top1"] - ours,
        "tolerance": tolerance,
        "ours_trails": final["top1"] - ours > tolerance,
    }


def gap_section(rows: list[dict]) -> list[str]:
    done = [r for r in rows if r["gap"]]
    if not done:
        return []
    lines = [
        "## Where the gap to the paper goes",
        "",
        "Paper - ours, split into measured differences (points of top-1): data copy and seed =",
        "paper - peer's best epoch on our data; protocol = peer's best epoch - its final epoch;",
        "implementation = peer's final epoch - our final-epoch mean, against the tolerance",
        "max(1.0, 2 x our seed std) beyond which ours trails the peer's code.",
        "",
        "| method | paper - ours | data copy and seed | protocol | implementation | tolerance | ours |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in done:
        g = r["gap"]
        lines.append(
            f"| {r['method']} | {g['total']:+.2f} | {g['data_copy_and_seed']:+.2f} | "
            f"{g['protocol']:+.2f} | {g['implementation']:+.2f} | {g['tolerance']:.2f} | "
            f"{'trails the peer' if g['ours_trails'] else 'within'} |"
        )
    return lines


def anchor_row(results: Path) -> dict | None:
    run = results / "anchor" / "cifar10_balanced_he_seed0"
    top1 = final_top1(run)
    if top1 is None:
        return None
    return {"run": str(run.relative_to(results.parent)), "top1": top1, "he_et_al": HE_ET_AL}


def fmt(x: float | None, std: float | None = None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}" if std is None else f"{x:.2f} +- {std:.2f}"


def markdown(rows: list[dict], anchor: dict | None, ab: list[dict] | None = None) -> str:
    lines = [
        "# The peers' own code beside ours (CIFAR-10-LT IF 100, CIFAR-10 JPEG copy)",
        "",
        "Written by `python benchmarks/peers/peers_table.py`. Each peer ran from its own checkout,",
        "unchanged but for the shims `benchmarks/peers/launch.py` lists, on the same 12,406 training",
        "images as ours (`results/peers/split_check_if100.json`). Peer: one seed; ours: mean +- std",
        "over the seeds named. Final = last epoch (our protocol); best = best test epoch (the",
        "papers' protocol).",
        "",
        "| method | peer | epochs run | peer final | peer best | ours (final) | seeds | paper | explained |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        done = f"{r['epochs_done']} / {r['epochs']}"
        if r.get("epochs_logged", r["epochs_done"]) != r["epochs_done"]:
            done += f" ({r['epochs_logged']} logged)"
        seeds = ",".join(str(s) for s in r["ours_seeds"] or []) or "-"
        lines.append(
            f"| {r['method']} | [{r['peer']}]({r['repo']}) `{r['commit'][:7]}` | {done} | "
            f"{fmt(r['peer_final_top1'])} | {fmt(r['peer_best_top1'])} | "
            f"{fmt(r['ours_top1'], r['ours_top1_std'])} | {seeds} | {r['paper']} | {r['explained'] or '-'} |"
        )
    partial = [r for r in rows if r["peer_final_top1"] is None and r["epochs_done"]]
    for r in partial:
        lines.append("")
        lines.append(
            f"{r['method']}: not finished; {r['epochs_done']} epochs run, the last "
            f"(epoch {r['peer_last_epoch']}) at {fmt(r['peer_last_top1'])}."
        )
    if gap := gap_section(rows):
        lines += ["", *gap]
    for r in rows:
        if len(r["matched_epochs"]) >= 3:  # fewer (stage 2: its last epoch) are the table above
            lines += ["", *matched_section(r)]
    if ab:
        lines += ["", *ab_section(ab)]
    lines += ["", "## Balanced anchor", ""]
    if anchor is None:
        lines.append("ResNet-32 on all 50,000 training images (He et al.'s recipe): not run yet.")
    else:
        lines.append(
            f"ResNet-32, balanced CIFAR-10 (JPEG copy), He et al.'s recipe, final epoch: "
            f"{fmt(anchor['top1'])} (`{anchor['run']}`); He et al. report {anchor['he_et_al']} on the original."
        )
    return "\n".join(lines) + "\n"


def matched_section(row: dict) -> list[str]:
    m = row["matched_epochs"]
    diff = [x["peer_top1"] - x["ours_top1"] for x in m]
    lines = [
        f"### {row['method']}: epoch by epoch",
        "",
        "The epochs both logged a test top-1 (ours every 10 epochs). Training loss: the peer's",
        "running mean at its last print of the epoch (about 5/6 of the epoch), ours the epoch's",
        "mean; the peer's first epochs start from a larger initial loss (its classifier is",
        "Kaiming-normal initialised, ours PyTorch's default).",
        "",
        "| epoch | peer test top-1 | ours test top-1 | peer - ours | peer train loss | ours train loss |",
        "|---|---|---|---|---|---|",
    ]
    for x, d in zip(m, diff):
        ours = fmt(x["ours_top1"], x["ours_top1_std"]) + f" (n={x['ours_seeds']})"
        lines.append(
            f"| {x['epoch']} | {fmt(x['peer_top1'])} | {ours} | {d:+.2f} | "
            f"{fmt(x['peer_train_loss'])} | {fmt(x['ours_train_loss'])} |"
        )
    lines += [
        "",
        f"Mean of peer - ours over these {len(m)} epochs: {np.mean(diff):+.2f} points "
        f"(spread of the differences {np.std(diff, ddof=1) if len(diff) > 1 else 0.0:.2f}).",
    ]
    return lines


def plot_curves(rows: list[dict], path: Path) -> None:
    """Test top-1 per epoch: the peer's every epoch, ours at the epochs we evaluated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r["peer_curve"]]
    if not shown:
        return
    fig, axes = plt.subplots(1, len(shown), figsize=(5.5 * len(shown), 3.8), squeeze=False)
    for ax, r in zip(axes[0], shown):
        epochs = sorted(int(e) for e in r["peer_curve"])
        ax.plot(epochs, [r["peer_curve"][e] for e in epochs], lw=1, label=f"{r['peer']}'s code (1 seed)")
        m = r["matched_epochs"]
        if m:
            err = [x["ours_top1_std"] or 0.0 for x in m]
            ax.errorbar(
                [x["epoch"] for x in m],
                [x["ours_top1"] for x in m],
                yerr=err,
                fmt="o",
                ms=3,
                capsize=2,
                label="lcreg (mean +- std over seeds)",
            )
        ax.set_title(r["method"], fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test top-1 (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    a = ap.parse_args(argv)
    rows = peer_rows(a.results)
    anchor = anchor_row(a.results)
    ab = ab_rows(a.results)
    (a.results / "peers.json").write_text(json.dumps({"rows": rows, "ab": ab, "anchor": anchor}, indent=1) + "\n")
    text = markdown(rows, anchor, ab)
    (a.results / "peers.md").write_text(text)
    plot_curves(rows, a.results / "peers.png")
    print(text)


if __name__ == "__main__":
    main()
