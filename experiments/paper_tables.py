"""The tables ``experiments/reproduce.py`` writes, ``results/<table>.md``, ``.json`` and
``.png``, from the finished run folders of its queue (``run_queue.py``).

Per cell (dataset, imbalance factor, variant): the mean and standard deviation of the
final-epoch test top-1 over seeds, the number of seeds, Many / Medium / Few and ECE, the
latent diagnostics, the paper's number beside ours, the data source, the schedule, the
devices and commits. Every table but Table 6 ends with our order of its rows against the
paper's; the readings table ends with the rule that settles LCReg's default reading.
"""

from __future__ import annotations

import json
import math
import statistics
import textwrap
from pathlib import Path
from typing import Optional, Sequence

from lcreg import run_folder as rf
from lcreg.config import load_saved_config
from lcreg.engine.run_folders import run_state
from lcreg.eval.plots import pyplot, save_figure
from lcreg.files import atomic_write_text
from lcreg.runtime.environment import run_provenance
from paper_numbers import PAPER
from run_queue import FULL_EPOCHS, STAGE1_OF, TABLES, RunSpec, is_cell

PICKLE_FOLDERS = ("cifar-10-batches-py", "cifar-100-python")


def portable_source(source: str) -> str:
    """A data source as a table may print it: no machine's cache or home path. Runs written
    before their data_stats.json named the archive recorded the cache folder it was extracted
    into (``.../extracted/cifar10-jpeg-<hash>``): named by the archive."""
    path = Path(source.split(" (")[0])
    parts = path.parts
    if "extracted" in parts and parts.index("extracted") + 1 < len(parts):
        return f"{parts[parts.index('extracted') + 1].rsplit('-', 1)[0]} archive, extracted"
    return source


def data_label(layouts: set[str]) -> str:
    """What the runs trained on, from the layout each run recorded: the original pickles only
    when every run read the pickle layout."""
    if layouts == {"pickles"}:
        return "CIFAR (original pickles)"
    if layouts == {"folders"}:
        return "CIFAR (an ImageFolder copy such as the JPEG copy, not the original pickles)"
    return "CIFAR (mixed: some runs on the original pickles, some on an ImageFolder copy)" if layouts else "-"


def schedule_of(schedules: set[tuple[int, int]]) -> str:
    """The schedule the counted runs trained, read from their own configs."""
    if not schedules:
        return "no finished run"
    if schedules <= {(FULL_EPOCHS, 10), (FULL_EPOCHS, 0)}:
        return "full schedule (200 + 10 epochs)"
    listed = ", ".join(f"{a} + {b}" for a, b in sorted(schedules))
    return f"SHORTENED or mixed schedule ({listed} epochs), not the paper's 200 + 10"


def _mean_std(values: list[float]) -> tuple[Optional[float], Optional[float]]:
    if not values:
        return None, None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else None)


TEST_METRICS = ("top1", "many", "medium", "few", "ece")  # % of the last stage's test metrics
DIAGNOSTICS = ("positional_share", "effective_rank", "histogram_class_accuracy")  # from analysis/diagnostics.json


def summarize(table: str, runs: list[RunSpec], epochs: Optional[int]) -> dict:
    cells: dict[tuple, dict] = {}
    devices, commits, sources, schedules, layouts = set(), set(), set(), set(), set()
    excluded = []
    for r in runs:
        cell = cells.setdefault(
            r.cell,
            {
                "dataset": r.dataset,
                "imbalance": r.imbalance,
                "variant": r.variant,
                "seeds": [],
                **{k: [] for k in (*TEST_METRICS, *DIAGNOSTICS)},
                "histogram_class_accuracy_chance": None,  # 1 / classes, as the diagnostics record it
            },
        )
        if run_state(r.out) != "finished":
            continue
        if not is_cell(r):  # trained with other settings than the cell's: not this cell
            excluded.append(str(r.out))
            continue
        saved = load_saved_config(r.out / rf.CONFIG)
        schedules.add((saved.stage1.epochs, saved.stage2.epochs if r.read_stage != 1 and not r.stage1_from else 10))
        final = rf.read_final(r.out) or {}
        # one-stage methods end after stage 1; a row read from another run's stage 1 (mixup) stops there
        test = final["stage1" if r.read_stage == 1 or not final.get("stage2") else "stage2"]["test"]
        cell["seeds"].append(r.seed)
        for k in TEST_METRICS:
            if test.get(k) is not None:
                cell[k].append(100 * test[k])
        diag_path = r.out / "analysis" / "diagnostics.json"
        if diag_path.is_file() and r.read_stage is None:  # the analysis is of the final model
            diag = json.loads(diag_path.read_text())
            for k in DIAGNOSTICS:
                if diag.get(k) is not None:
                    cell[k].append(diag[k])
            cell["histogram_class_accuracy_chance"] = diag.get("histogram_class_accuracy_chance")
        env = rf.read_environment(r.out)
        devices.update(run_provenance(env, "device"))  # a resumed run: every device and commit
        commits.update(c[:12] for c in run_provenance(env, "commit") or ["?"])
        stats = rf.read_json(r.out / rf.DATA_STATS)
        sources.add(str(stats.get("source", "?")))
        source = str(stats.get("source", "?"))  # runs older than "layout": from the source's folder name
        layouts.add(
            stats.get("layout") or ("pickles" if Path(source.split(" (")[0]).name in PICKLE_FOLDERS else "folders")
        )
    rows = []
    for key, c in cells.items():
        if TABLES[table]["rows"] == "trained" and not c["seeds"]:
            continue
        row = {k: c[k] for k in ("dataset", "imbalance", "variant", "seeds", "histogram_class_accuracy_chance")}
        for k in (*TEST_METRICS, *DIAGNOSTICS):
            row[f"{k}_mean"], row[f"{k}_std"] = _mean_std(c[k])
        row["paper"] = PAPER.get(table, {}).get(key)
        dataset, imbalance, variant = key
        shortened = f" --epochs {epochs}" if epochs is not None and epochs != FULL_EPOCHS else ""
        row["command"] = (
            f"python experiments/reproduce.py {table} --data-dir PATH --datasets {dataset} --imbalance-factors {imbalance} "
            f"--methods {variant} --seeds {','.join(map(str, sorted(c['seeds']))) or '0'}{shortened}"
        )
        rows.append(row)
    read = sorted({r.variant for r in runs if r.read_stage == 1})
    read_note = "".join(f"; `{v}` is read from the `{STAGE1_OF[v]}` run's stage 1, the same training" for v in read)
    return {
        "table": table,
        "what": TABLES[table]["what"],
        "schedule": schedule_of(schedules),
        "rows": rows,
        "excluded": excluded,
        "data": data_label(layouts),
        "data_sources": sorted({portable_source(s) for s in sources}),
        "devices": sorted(d for d in devices if d),
        "commits": sorted(commits),
        "metric": f"final-epoch test top-1 (%) of stage 2 (of stage 1 for one-stage methods{read_note}); "
        "mean and standard deviation over seeds; Many / Medium / Few accuracy (%) and ECE (%, 15 bins) as means over the same seeds",
    }


def table_cells(rows: list[dict]) -> list[tuple[str, int, list[dict]]]:
    """The rows of each dataset and imbalance factor, in the tables' order (largest factor first)."""
    keys = sorted({(r["dataset"], r["imbalance"]) for r in rows}, key=lambda k: (k[0], -k[1]))
    return [(d, imb, [r for r in rows if (r["dataset"], r["imbalance"]) == (d, imb)]) for d, imb in keys]


def _f(x: Optional[float], spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


SETTLING_SEEDS = 3  # seeds a reading needs before it can settle the default
DEFAULT_READING = "lcreg"  # the readings table's row of the config's default reading


def _difference_se(a_std: float, a_seeds: int, b_std: float, b_seeds: int) -> float:
    """Standard error of the difference of two seed means."""
    return math.sqrt(a_std**2 / a_seeds + b_std**2 / b_seeds)


def _against_default(challenger: dict, default: dict) -> str:
    """Whether a more accurate content reading should replace the default: only when its
    lead exceeds the standard error of the difference of the two seed means; within it the
    default stays (it was chosen on the validation split of the screen, and a lead inside
    the seeds' spread is one test-set number in disguise)."""
    lead = challenger["top1_mean"] - default["top1_mean"]
    se = _difference_se(
        challenger["top1_std"] or 0.0, len(challenger["seeds"]), default["top1_std"] or 0.0, len(default["seeds"])
    )
    if lead > se:
        return f", {lead:+.2f} over the default `{DEFAULT_READING}` (standard error {se:.2f}): it replaces the default"
    return (
        f", {lead:+.2f} over the default `{DEFAULT_READING}`, within the standard error of the difference "
        f"({se:.2f}): the default stays `{DEFAULT_READING}`"
    )


def readings_verdict(rows: list[dict]) -> list[str]:
    """The rule that settles LCReg's default reading: among the LCReg readings with
    ``SETTLING_SEEDS`` finished seeds, those whose categories carry content
    (``carries_content``) and whose mean top-1 reaches the as-written reading's."""
    from lcreg.eval.latent_diagnostics import (
        CONTENT_ACCURACY_OVER_CHANCE,
        CONTENT_SHARE,
        ONE_CATEGORY_RANK,
        carries_content,
    )

    lines = [
        "## Settling the default",
        "",
        f"Rule: the default is a reading whose latent categories carry image content (positional share "
        f"< {CONTENT_SHARE}, histogram-class accuracy >= {CONTENT_ACCURACY_OVER_CHANCE:g} x chance, effective rank "
        f"of K >= {ONE_CATEGORY_RANK:g}) and whose "
        f"{SETTLING_SEEDS}-seed mean top-1 is at least the as-written reading's. If none is, the default is the "
        "most accurate reading whose categories carry content, the as-written reading's accuracy and diagnostics "
        "beside it: a reading that meets every equation while its categories are a position code is not a faithful "
        "LCReg (docs/method.md, 'Readings'). A reading replaces the current default only when its mean leads the "
        "default's by more than the standard error of the difference; within it the default (chosen on the screen's "
        "validation split) stays.",
        "",
    ]
    for dataset, imbalance, cell_rows in table_cells(rows):
        cell = {r["variant"]: r for r in cell_rows}
        written = cell.get("as_written")
        if written is None or len(written["seeds"]) < SETTLING_SEEDS:
            lines.append(f"- {dataset} IF {imbalance}: the as-written reading has not {SETTLING_SEEDS} seeds yet.")
            continue
        passing, pending, with_content = [], [], []
        for variant, r in cell.items():
            if r["positional_share_mean"] is None:  # not an LCReg reading (MiSLAS), or none finished yet
                if not r["seeds"] and variant != "as_written":
                    pending.append(f"`{variant}` (no seed)")
                continue
            if variant == "as_written":
                continue
            content = carries_content(
                r["positional_share_mean"],
                r["histogram_class_accuracy_mean"],
                r["histogram_class_accuracy_chance"],
                r.get("effective_rank_mean"),
            )
            if len(r["seeds"]) < SETTLING_SEEDS:
                n = len(r["seeds"])
                if content:
                    pending.append(f"`{variant}` ({n} of {SETTLING_SEEDS} seeds)")
                else:  # accuracy needs every seed; a position code on the seeds run already rules it out
                    lines.append(
                        f"- {dataset} IF {imbalance}, `{variant}`: ruled out without its other seeds: no content on "
                        f"the {n} seed{'s' if n > 1 else ''} run (positional share {r['positional_share_mean']:.3f}, histogram-class acc. "
                        f"{r['histogram_class_accuracy_mean']:.3f}; top-1 {r['top1_mean']:.2f})"
                    )
                continue
            gap = r["top1_mean"] - written["top1_mean"]
            ok = content and gap >= 0
            lines.append(
                f"- {dataset} IF {imbalance}, `{variant}`: content {'yes' if content else 'no'} (positional share "
                f"{r['positional_share_mean']:.3f}, histogram-class acc. {r['histogram_class_accuracy_mean']:.3f}); "
                f"top-1 {r['top1_mean']:.2f} vs as written {written['top1_mean']:.2f} ({gap:+.2f}): "
                f"{'meets the rule' if ok else 'does not meet the rule'}"
            )
            if ok:
                passing.append(variant)
            if content:
                with_content.append((r["top1_mean"], variant))
        if passing:
            verdict = f"met by {', '.join(f'`{v}`' for v in passing)}"
        else:
            verdict = "met by no reading with all its seeds"
            if with_content:
                top1, best = max(with_content)
                verdict += (
                    f"; the most accurate reading that carries content is `{best}` ({top1:.2f}, "
                    f"{top1 - written['top1_mean']:+.2f} against as written)"
                )
                if best == DEFAULT_READING:
                    verdict += f": the default stays `{DEFAULT_READING}`"
                elif any(v == DEFAULT_READING for _, v in with_content):
                    verdict += _against_default(cell[best], cell[DEFAULT_READING])
        waiting = f"; still to finish: {', '.join(pending)}" if pending else ""
        lines.append(f"- {dataset} IF {imbalance}: the rule is {verdict}{waiting}.")
    return lines


def _nearest_spread(spreads: dict[tuple, float], dataset: str, imbalance: int) -> Optional[tuple[int, float]]:
    """(imbalance factor, seed spread) of the dataset's entry in ``spreads`` whose factor is
    nearest to ``imbalance`` on a log scale (its own when it has one); None when the dataset
    has none."""
    nearest = min(((abs(math.log(i / imbalance)), i) for d, i in spreads if d == dataset), default=None)
    return None if nearest is None else (nearest[1], spreads[(dataset, nearest[1])])


def _pair_se(a: dict, b: dict, stand_in: Optional[float]) -> Optional[float]:
    """Standard error of the difference of two rows' means; a one-seed row borrows
    ``stand_in`` (the largest seed spread of its cell) for its own. None: no spread at all."""
    stds = [r.get("top1_std") if r.get("top1_std") is not None else stand_in for r in (a, b)]
    if None in stds:
        return None
    return _difference_se(stds[0], len(a.get("seeds") or [0]), stds[1], len(b.get("seeds") or [0]))


def ordering_lines(rows: list[dict]) -> list[str]:
    """Whether our means rank the table's rows as the paper's numbers do: per dataset and
    imbalance factor, the paper's order, ours over the same rows, and every pair the two
    order differently (pairs the paper ties are not counted). A pair whose difference is no
    larger than the standard error of the difference is marked within noise, in either order;
    a one-seed row borrows the largest seed spread of its cell, or where no row of the cell
    has one, that of the nearest imbalance factor of the dataset (and the line says so).
    Rows without a finished seed or a paper number are named, not ranked."""
    lines = ["## Order against the paper's", ""]
    spreads: dict[tuple, float] = {}
    for r in rows:
        if r.get("top1_std") is not None:
            key = (r["dataset"], r["imbalance"])
            spreads[key] = max(spreads.get(key, 0.0), r["top1_std"])
    for dataset, imbalance, cell in table_cells(rows):
        ranked = [r for r in cell if isinstance(r["paper"], (int, float)) and r["top1_mean"] is not None]
        unfinished = [f"`{r['variant']}`" for r in cell if r["top1_mean"] is None]
        no_paper = [f"`{r['variant']}`" for r in cell if r not in ranked and r["top1_mean"] is not None]
        head = f"- {dataset} IF {imbalance}:"
        if len(ranked) < 2:
            lines.append(f"{head} fewer than two rows with both a finished seed and a paper number yet.")
            continue
        found = _nearest_spread(spreads, dataset, imbalance)
        stand_in = found[1] if found else None
        borrowed = ""
        if found and found[0] != imbalance:
            borrowed = f" (seed spread: IF {found[0]}'s {stand_in:.2f}, no row here has more than one seed)"
        paper = sorted(ranked, key=lambda r: r["paper"])
        ours = sorted(ranked, key=lambda r: r["top1_mean"])
        flips, close = [], []
        for i, a in enumerate(paper):
            for b in paper[i + 1 :]:
                if a["paper"] >= b["paper"]:  # the paper ties them
                    continue
                gap, se = b["top1_mean"] - a["top1_mean"], _pair_se(a, b, stand_in)
                noise = se is not None and abs(gap) <= se
                if gap <= 0:
                    flips.append(
                        f"`{a['variant']}` / `{b['variant']}` (paper {a['paper']:.1f} < {b['paper']:.1f}, ours "
                        f"{a['top1_mean']:.2f} >= {b['top1_mean']:.2f}{f', within noise: standard error {se:.2f}' if noise else ''})"
                    )
                elif noise:
                    close.append(f"`{a['variant']}` / `{b['variant']}` ({gap:+.2f}, standard error {se:.2f})")
        paper_order = " < ".join(f"`{r['variant']}`" for r in paper)
        our_order = " < ".join(f"`{r['variant']}`" for r in ours)
        pairs = "1 pair" if len(flips) == 1 else f"{len(flips)} pairs"
        verdict = f"{pairs} ordered differently: {'; '.join(flips)}" if flips else "the same order"
        if close:
            verdict += f"; in the paper's order but within noise: {'; '.join(close)}"
        not_ranked = "".join(
            f" ({label}: {', '.join(names)})"
            for label, names in (("no paper number", no_paper), ("not finished yet", unfinished))
            if names
        )
        lines.append(
            f"{head} paper {paper_order}; ours {our_order}; {verdict}{borrowed if flips or close else ''}{not_ranked}."
        )
    return lines


def _against_baseline_se(row: dict, base: dict, stand_in: Optional[tuple[int, float]]) -> tuple[Optional[float], str]:
    """Standard error of a row's difference from the baseline, and what stood in for a seed
    spread that a one-seed row or baseline lacks: the baseline's own spread for the row; for
    a one-seed baseline, ``stand_in`` (imbalance factor, std), the baseline's spread at another
    imbalance factor of the dataset, for both. None, "" when there is no spread to borrow."""
    if base["top1_std"] is not None:
        base_std, note = base["top1_std"], ""
    elif stand_in is not None:
        imbalance, base_std = stand_in
        note = f", the IF {imbalance} baseline's seed spread ({base_std:.2f}) standing in for this one-seed baseline"
    else:
        return None, ""
    if row["top1_std"] is None and not note:
        note = ", the baseline's seed spread standing in for this row's one seed"
    row_std = base_std if row["top1_std"] is None else row["top1_std"]
    return _difference_se(row_std, len(row["seeds"]), base_std, len(base["seeds"])), note


def baseline_lines(rows: list[dict], baseline: str = "baseline") -> list[str]:
    """Each row's change against the ``baseline`` row of its dataset and imbalance factor, ours
    beside the paper's, direction by direction: the paper's claim reproduced (the same
    direction), contradicted (the opposite) or within noise (Table 7's components and Table 10's
    augmentations against MiSLAS; Tables 5 and 9 against the default, M = 40 and (0.1, 0.1, 1)).
    A change no larger than the standard error of the difference is called within noise; a row
    of one seed borrows the baseline's seed spread for it, a one-seed baseline the spread of
    the dataset's baseline at the nearest imbalance factor that has one, and the line says so."""
    spreads = {
        (r["dataset"], r["imbalance"]): r["top1_std"]
        for r in rows
        if r["variant"] == baseline and r["top1_std"] is not None
    }
    title = "the baseline" if baseline == "baseline" else f"`{baseline}` (the default)"
    lines = [f"## Change against {title}, direction by direction", ""]
    for dataset, imbalance, cell_rows in table_cells(rows):
        cell = {r["variant"]: r for r in cell_rows}
        base = cell.get(baseline)
        if base is None or base["top1_mean"] is None:
            lines.append(f"- {dataset} IF {imbalance}: `{baseline}` has no finished seed yet.")
            continue
        stand_in = _nearest_spread(spreads, dataset, imbalance)
        for variant, r in cell.items():
            if variant == baseline:
                continue
            head = f"- {dataset} IF {imbalance}, `{variant}`:"
            if r["top1_mean"] is None:
                lines.append(f"{head} not finished yet.")
                continue
            ours = r["top1_mean"] - base["top1_mean"]
            seeds = f"{len(r['seeds'])} vs {len(base['seeds'])} seeds"
            if not isinstance(r["paper"], (int, float)) or not isinstance(base["paper"], (int, float)):
                lines.append(f"{head} ours {ours:+.2f} ({seeds}); the paper has no number for it.")
                continue
            paper = r["paper"] - base["paper"]
            se, borrowed = _against_baseline_se(r, base, stand_in)
            spread = f"standard error of the difference {se:.2f}{borrowed}" if se is not None else ""
            if se is not None and abs(ours) <= se:
                verdict = f"within noise ({spread})"
            elif paper == 0:
                verdict = "the paper's is no change"
            else:
                verdict = (
                    "reproduced, the same direction"
                    if (ours > 0) == (paper > 0)
                    else "contradicted, the opposite direction"
                )
                verdict += f" ({spread})" if se is not None else " (no seed spread to judge noise by)"
            lines.append(f"{head} ours {ours:+.2f} ({seeds}), paper {paper:+.1f}: {verdict}.")
    return lines


def write_table(summary: dict, results: Path) -> Path:
    table = summary["table"]
    head = ["dataset", "IF", "variant", "seeds", "top-1 mean", "std", "paper", "Many", "Medium", "Few", "ECE"]
    head += ["positional share", "effective rank of K", "histogram-class acc."]
    lines = [
        f"# {summary['what']}: {summary['schedule']}",
        "",
        f"Written by `python experiments/reproduce.py {table}`. {summary['metric']}; the paper's number beside (original "
        f"CIFAR, its own seeds{'; Table 6 gives Many / Medium / Few' if table == 'table6' else ''}). Data: "
        f"{summary['data']}. Devices: {', '.join(summary['devices']) or '-'}. "
        f"Commits: {', '.join(summary['commits']) or '-'}. Positional share, effective rank of K (of M "
        "latent categories; 1 = one category in M copies) and histogram-class accuracy: `lcreg analyze` "
        "diagnostics of the latent head (docs/method.md).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in summary["rows"]:
        paper = r["paper"]
        paper_text = "/".join(_f(p, ".1f") for p in paper) if isinstance(paper, tuple) else _f(paper, ".1f")
        cells = [r["dataset"], str(r["imbalance"]), f"`{r['variant']}`", str(len(r["seeds"]))]
        cells += [_f(r["top1_mean"]), _f(r["top1_std"]), paper_text]
        cells += [_f(r[f"{k}_mean"]) for k in ("many", "medium", "few", "ece")]
        cells += [_f(r["positional_share_mean"], ".3f"), _f(r.get("effective_rank_mean"), ".1f")]
        cells += [_f(r["histogram_class_accuracy_mean"], ".3f")]
        lines.append("| " + " | ".join(cells) + " |")
    if summary.get("excluded"):
        lines += ["", f"Not counted, their configs differ from their cells': {', '.join(summary['excluded'])}."]
    lines += [
        "",
        "Many / Medium / Few by training count (> 100, 20-100, < 20 images); '-' where a split holds no class "
        "(CIFAR-10-LT IF 100 has none under 50 images, so its Few is empty, while the paper's Table 6 reports one).",
        "",
        "Each row with one command (its finished seeds are skipped, so it trains only what is missing; add "
        "`--train-args '--compile on amp=bf16'` for the CPU fast path):",
        "",
        *(f"- `{r['variant']}` (IF {r['imbalance']}): `{r['command']}`" for r in summary["rows"]),
    ]
    if table == "readings":
        lines += ["", *readings_verdict(summary["rows"])]
    elif table != "table6":  # Table 6 ranks Many / Medium / Few, not one number
        lines += ["", *ordering_lines(summary["rows"])]
    baseline = TABLES[table]["baseline"]
    if baseline and any(r["variant"] == baseline for r in summary["rows"]):
        lines += ["", *baseline_lines(summary["rows"], baseline)]
    md = results / f"{table}.md"
    atomic_write_text(md, "\n".join(lines) + "\n")
    atomic_write_text(results / f"{table}.json", json.dumps(summary, indent=2))
    return md


def plot_paper_table(cells: Sequence[tuple[str, int, list[dict]]], path: Path, title: str = "") -> None:
    """A paper table's rows beside the paper: one panel per cell (dataset, imbalance factor,
    its rows: ``paper_tables.table_cells``), per row our mean top-1 as a dot with its seed
    spread (none for one seed) and the paper's number as a cross, on an axis that does not
    start at 0 (so points, not bars). A row with no finished seed shows the paper's cross alone."""
    plt = pyplot()
    height = max(len(panel) for _, _, panel in cells)
    fig, axes = plt.subplots(1, len(cells), figsize=(4.2 * len(cells), 1.0 + 0.32 * height), squeeze=False)
    for ax, (dataset, imbalance, panel) in zip(axes[0], cells):
        y = range(len(panel))
        ours = [r["top1_mean"] if r["top1_mean"] is not None else float("nan") for r in panel]
        spread = [r["top1_std"] or 0.0 for r in panel]
        ax.errorbar(ours, y, xerr=spread, fmt="o", color="#1f77b4", capsize=3)
        paper = [r["paper"] if isinstance(r["paper"], (int, float)) else float("nan") for r in panel]
        ax.plot(paper, y, "x", color="#d62728")
        ax.set_yticks(list(y))
        ax.set_yticklabels([f"{r['variant']} ({len(r['seeds'])})" for r in panel], fontsize=8)
        ax.set_ylim(height - 0.5, -0.5)  # the table's order, top to bottom; the same row spacing in every panel
        ax.grid(axis="x", lw=0.5, alpha=0.5)
        shown = [v for v in (*ours, *paper) if v == v]
        if shown:
            ax.set_xlim(max(0.0, min(shown) - 5), min(100.0, max(shown) + 3))
        ax.set_xlabel("top-1 (%)")
        ax.set_title(f"{dataset} IF {imbalance}", fontsize=9)
    key = "dots: ours (mean, bar: std over seeds; seeds in brackets); crosses: the paper's"
    width = 24 * len(cells) + 40  # characters a line holds across the panels
    fig.suptitle("\n".join(textwrap.fill(part, width) for part in (title, key) if part), fontsize=8)
    save_figure(fig, path)
