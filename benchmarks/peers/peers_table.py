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

# peer run folder -> (method as the peer names it, our table1 variant, the paper's number)
RUNS = {
    "mislas_if100": [
        ("mixup (MiSLAS stage 1)", "stage1", "mixup", 73.1),
        ("MiSLAS (stage 2)", "stage2", "mislas", 82.1),
    ],
    "ldam_drw_if100": [("LDAM-DRW", "", "ldam_drw", 77.1)],
    "ce_if100": [("CE", "", "ce", 70.4)],
}
EPOCHS = {"stage1": 200, "stage2": 10, "": 200}
TRAIN_IMAGES = 12406  # CIFAR-10-LT IF 100 (checked: results/peers/split_check_if100.json)
HE_ET_AL = 92.49  # ResNet-32 on CIFAR-10, 7.51% error (He et al. 2016, Table 6)

_EPOCH = re.compile(r"Epoch: \[(\d+)\]")
_MISLAS_ACC = re.compile(r"\* Acc@1 ([\d.]+)%")
_MISLAS_ECE = re.compile(r"\* ECE\s+([\d.]+)%")
_LDAM_ACC = re.compile(r"val Results: Prec@1 ([\d.]+)")
_LDAM_CLS = re.compile(r"val Class Accuracy: (\[.*\])")


def mislas_epochs(stage_dir: Path) -> dict[int, dict]:
    """epoch -> {top1, ece} from the peer's logs; a later log (a resumed process) wins."""
    out: dict[int, dict] = {}
    # the peer's own log files, then what each launch printed (run.py keeps it: stdout-*.log)
    for log in [*sorted(stage_dir.glob("saved/*/logs/*.txt")), *sorted(stage_dir.glob("stdout-*.log"))]:
        epoch = None
        for line in log.read_text(errors="replace").splitlines():
            if m := _EPOCH.search(line):
                epoch = int(m.group(1))
            elif (m := _MISLAS_ACC.search(line)) and epoch is not None:
                out[epoch] = {"top1": float(m.group(1))}
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
            epochs = list(dict.fromkeys(int(m.group(1)) for m in _EPOCH.finditer(train.read_text())))
            results = []
            for line in test.read_text().splitlines():
                if m := _LDAM_ACC.search(line):
                    results.append({"top1": float(m.group(1))})
                elif (m := _LDAM_CLS.search(line)) and results:
                    results[-1]["per_class"] = [100 * x for x in ast.literal_eval(m.group(1))]
            for epoch, result in zip(epochs, results):
                out[epoch] = result
    return out


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
        for method, stage, variant, paper in methods:
            epochs = mislas_epochs(run / stage) if info["peer"] == "MiSLAS" else ldam_epochs(run)
            total = EPOCHS[stage]
            done = len(epochs)
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
                }
            )
    return rows


def anchor_row(results: Path) -> dict | None:
    run = results / "anchor" / "cifar10_balanced_he_seed0"
    final = run / "final_metrics.json"
    if not final.exists():
        return None
    metrics = json.loads(final.read_text())
    top1 = metrics.get("test", metrics).get("top1")
    return {"run": str(run.relative_to(results.parent)), "top1": top1, "he_et_al": HE_ET_AL}


def fmt(x: float | None, std: float | None = None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}" if std is None else f"{x:.2f} +- {std:.2f}"


def markdown(rows: list[dict], anchor: dict | None) -> str:
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
            f"{r['method']}: not finished; {r['epochs_done']} epochs logged, the last "
            f"(epoch {r['peer_last_epoch']}) at {fmt(r['peer_last_top1'])}."
        )
    lines += ["", "## Balanced anchor", ""]
    if anchor is None:
        lines.append("ResNet-32 on all 50,000 training images (He et al.'s recipe): not run yet.")
    else:
        lines.append(
            f"ResNet-32, balanced CIFAR-10 (JPEG copy), He et al.'s recipe, final epoch: "
            f"{fmt(anchor['top1'])} (`{anchor['run']}`); He et al. report {anchor['he_et_al']} on the original."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    a = ap.parse_args(argv)
    rows = peer_rows(a.results)
    anchor = anchor_row(a.results)
    (a.results / "peers.json").write_text(json.dumps({"rows": rows, "anchor": anchor}, indent=1) + "\n")
    (a.results / "peers.md").write_text(markdown(rows, anchor))
    print(markdown(rows, anchor))


if __name__ == "__main__":
    main()
