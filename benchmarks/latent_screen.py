"""Screens of LCReg's readings on CIFAR-10-LT IF 100 with a shortened schedule.

    python benchmarks/latent_screen.py [--screen readings|position] --data-dir data/cifar10-jpeg.tar.gz
        [--only a,b] [--table-only]

``readings`` (done): the readings of the open equations (latent categories that carry image
content), below. ``position``: with the latent losses reaching the backbone, readings that
remove the position shortcut rather than the gradient (``model.padding=reflect|circular``,
``model.latent.centre=true``) beside the default, its attached twin and MiSLAS on the same
backbones, and the as-written reading (a position code at full length) with and without
centring, compared on the validation split of the images the long-tailed selection leaves
out (``data.val_source=unused``: 1,000 per class but the head class), results in
``results/position_screen/`` and ``results/position_screen.md``.

Every reading trains once (seed 0) into results/latent_screen/<reading>/ with the same
shortened, proportionally scaled schedule: stage 1 for 40 of 200 epochs (warm-up 1 of 5,
learning-rate steps at 32 and 36 of 160 and 180), stage 2 unchanged (10 epochs). A
stratified tenth of the training data is held out (``data.val_fraction=0.1``): the readings
are compared on that validation split, never on the test split (whose numbers are written
beside, for reference only). The as-written reading and the MiSLAS baseline run as
controls under the same schedule. After training, ``lcreg analyze --json`` records the
content diagnostics. The queue is ``experiments/run_queue.py``'s (a finished reading skipped, an
interrupted one resumed, finished folders pruned and analysed); after each reading
``results/latent_screen.md`` and ``.json`` are rewritten.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from lcreg.engine.run_folders import run_state
from lcreg.files import atomic_write_json, atomic_write_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from run_queue import READINGS as FULL_LENGTH_READINGS  # noqa: E402
from run_queue import RunFailed, RunSpec, execute, is_override, read_by  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["stage1.epochs=40", "stage1.warmup_epochs=1", "stage1.milestones=[32,36]"]
SCHEDULE_TEXT = "stage 1: 40 epochs (warm-up 1, lr x0.1 at 32 and 36), stage 2: 10 epochs; seed 0"

COSINE = ["model.latent.similarity=cosine", "model.latent.temperature=0.1"]
LOGITS = ["model.latent.weights=logits"]
DETACH = ["loss.detach_features=true"]
DEFAULT = COSINE + DETACH + ["model.latent.weight_temperature=0.1"]  # the default chosen from this screen

# name -> (preset, overrides, what the reading is); in the order they run. Overrides apply on
# top of the as-written reading (AS_WRITTEN, spelt out: the presets' default has changed since
# the first ten readings ran, when it was the as-written one)
READINGS: dict[str, tuple[str, list[str], str]] = {
    "as_written": ("cifar10_lt_if100", [], "eq. 1-4 as written: dot product, eq. 2 over sigmoid maps"),
    "mislas": ("cifar10_lt_if100_mislas", [], "MiSLAS baseline (no latent head)"),
    "logits_detach": ("cifar10_lt_if100", LOGITS + DETACH, "eq. 2 over K^T f; latent losses do not reach the backbone"),
    "cosine_logits_detach": (
        "cifar10_lt_if100",
        COSINE + LOGITS + DETACH,
        "cosine / 0.1 in eq. 1, eq. 2 over its logits, detached latent losses",
    ),
    "logits": ("cifar10_lt_if100", LOGITS, "eq. 2 over K^T f"),
    "detach": ("cifar10_lt_if100", DETACH, "latent losses do not reach the backbone"),
    "cosine_logits": ("cifar10_lt_if100", COSINE + LOGITS, "cosine / 0.1 in eq. 1, eq. 2 over its logits"),
    "logits_detach_recon_sum": (
        "cifar10_lt_if100",
        LOGITS + DETACH + ["loss.recon_reduction=sum"],
        "logits + detach, eq. 4 summed over positions (as written)",
    ),
    "logits_detach_recon_cosine": (
        "cifar10_lt_if100",
        LOGITS + DETACH + ["loss.recon_similarity=cosine", "loss.recon_temperature=0.1"],
        "logits + detach, eq. 4 over cosine C_f / 0.1",
    ),
    "cosine_sigmoid_wtemp_detach": (
        "cifar10_lt_if100",
        DEFAULT,
        "cosine / 0.1 in eq. 1, eq. 2 over S / 0.1 (softmax of the sigmoid maps "
        "kept, its factor-e bound lifted), detached latent losses",
    ),
    # the default's open parts that are not about content: the decoder (Fig. 3 gives no
    # layer) and the samples the latent covariances are estimated from (eq. 5-6)
    "default_decoder_sum_recon": (
        "cifar10_lt_if100",
        DEFAULT + ["model.latent.decoder=sum_recon"],
        "the default, decoder f + f_hat (no parameters) instead of concat(f, S) -> 1x1 conv",
    ),
    "default_decoder_concat_recon": (
        "cifar10_lt_if100",
        DEFAULT + ["model.latent.decoder=concat_recon"],
        "the default, decoder concat(f, f_hat) -> 1x1 conv instead of concat(f, S)",
    ),
    "default_samples_positions": (
        "cifar10_lt_if100",
        DEFAULT + ["loss.latent_samples=positions"],
        "the default, covariances from each position's feature with its argmax category (not pooled per category)",
    ),
    # the default with eq. 4 and eq. 8-9 reaching the backbone (at full length the default
    # trails the as-written reading, whose latent losses reach it)
    "default_attached": (
        "cifar10_lt_if100",
        COSINE + ["model.latent.weight_temperature=0.1"],
        "the default with the latent losses reaching the backbone (not detached)",
    ),
    # which of the two, reaching the backbone, brings the position code back (default_attached)
    "default_attach_aug": (
        "cifar10_lt_if100",
        DEFAULT + ["loss.detach_terms=recon"],
        "the default with eq. 8-9 (latent augmentation) reaching the backbone, eq. 4 detached",
    ),
    "default_attach_recon": (
        "cifar10_lt_if100",
        DEFAULT + ["loss.detach_terms=latent_aug"],
        "the default with eq. 4 (reconstruction) reaching the backbone, eq. 8-9 detached",
    ),
}
AS_WRITTEN = FULL_LENGTH_READINGS["as_written"]

ATTACHED = ["loss.detach_features=false"]
# issue 25: remove the position shortcut, not the gradient; overrides on today's default. In the
# order they run: the readings that keep the zero-padded backbone first, circular padding last (the
# issue's quick check found it costs about 4 points, MiSLAS as much as LCReg)
POSITION: dict[str, tuple[str, list[str], str]] = {
    "default": ("cifar10_lt_if100", [], "the default reading (latent losses detached)"),
    "default_attached": ("cifar10_lt_if100", ATTACHED, "the default with the latent losses reaching the backbone"),
    "attached_centre": (
        "cifar10_lt_if100",
        ATTACHED + ["model.latent.centre=true"],
        "attached, K^T f centred over the batch at each position (no code the same for every image)",
    ),
    "attached_reflect": (
        "cifar10_lt_if100",
        ATTACHED + ["model.padding=reflect"],
        "attached, reflect padding (borders keep their content, no zero border to locate them)",
    ),
    "attached_reflect_centre": (
        "cifar10_lt_if100",
        ATTACHED + ["model.padding=reflect", "model.latent.centre=true"],
        "attached, reflect padding and centring",
    ),
    # the most accurate reading at full length (77.36 over three seeds) is a position code: does
    # its lead survive when the code is taken out of its similarity logits?
    "as_written": (
        "cifar10_lt_if100",
        AS_WRITTEN,
        "the equations as written (attached; a position code at full length, positional share 0.996)",
    ),
    "as_written_centre": (
        "cifar10_lt_if100",
        AS_WRITTEN + ["model.latent.centre=true"],
        "as written, K^T f centred over the batch at each position",
    ),
    "mislas": ("cifar10_lt_if100", ["method=mislas"], "MiSLAS, zero padding (the baseline of the zero-padded rows)"),
    "mislas_reflect": ("cifar10_lt_if100", ["method=mislas", "model.padding=reflect"], "MiSLAS, reflect padding"),
    "attached_circular": (
        "cifar10_lt_if100",
        ATTACHED + ["model.padding=circular"],
        "attached, circular padding (shift-equivariant backbone: no position to code)",
    ),
    "mislas_circular": ("cifar10_lt_if100", ["method=mislas", "model.padding=circular"], "MiSLAS, circular padding"),
}


@dataclass(frozen=True)
class Screen:
    name: str
    readings: dict
    schedule: list  # overrides every reading gets: the shortened schedule and the validation split
    base: list  # overrides under each reading's own
    validation: str  # what the validation split is, for the table

    @property
    def out(self) -> Path:
        return (
            ROOT / "results" / f"{self.name}_screen" if self.name != "readings" else ROOT / "results" / "latent_screen"
        )

    @property
    def stem(self) -> Path:
        return self.out.parent / self.out.name


SCREENS = {
    "readings": Screen(
        "readings",
        READINGS,
        [*SHORT, "data.val_fraction=0.1"],
        AS_WRITTEN,
        "a stratified 10% of the training data held out",
    ),
    "position": Screen(
        "position",
        POSITION,
        [*SHORT, "data.val_source=unused"],
        [],
        "1,000 images per class (none of the head class) from those the long-tailed selection leaves out",
    ),
}

DIAGNOSTICS = (
    "positional_share",
    "feature_positional_share",
    "uncentred_positional_share",  # a centred head's K^T f before centring (its positional share is ~0 by construction)
    "effective_rank",
    "saturation",
    "histogram_entropy",
    "histogram_class_accuracy",
)


def specs(screen: Screen, names: list[str], train_args: list[str] = ()) -> list[RunSpec]:
    """One run per reading; the ``key=value`` items of ``train_args`` (e.g. ``amp=bf16``) join
    each reading's overrides where its method reads them (``execute`` passes only the flags)."""
    extra = [a for a in train_args if is_override(a)]

    def overrides(n: str) -> list[str]:
        own = screen.readings[n][1]
        # a method without a latent head reads no latent key (lcreg train refuses them)
        base = [] if any(o.startswith("method=") and o != "method=lcreg" for o in own) else screen.base
        return [*screen.schedule, *base, *own, *read_by(own, extra)]

    return [
        RunSpec("latent_screen", "cifar10", 100, n, 0, screen.out / n, screen.readings[n][0], overrides(n))
        for n in names
    ]


def _balanced(per_class: list) -> float:
    """Mean per-class accuracy over the classes the split holds (None: a class it has not)."""
    present = [a for a in per_class if a is not None]
    return sum(present) / len(present)


def row(screen: Screen, name: str) -> dict | None:
    run = screen.out / name
    failed = screen.out / f"{name}.failed.json"
    reading = screen.readings[name]
    if failed.is_file():
        return {
            "reading": name,
            "overrides": reading[1],
            "what": reading[2],
            "failed": json.loads(failed.read_text())["error"],
            "commit": None,
        }
    if run_state(run) != "finished":
        return None
    final = json.loads((run / "final_metrics.json").read_text())
    diag_path = run / "analysis" / "diagnostics.json"
    diag = json.loads(diag_path.read_text()) if diag_path.is_file() else {}
    out = {"reading": name, "overrides": reading[1], "what": reading[2]}
    for stage in ("stage1", "stage2"):
        for split in ("val", "test"):
            out[f"{stage}_{split}_top1"] = final[stage].get(split, {}).get("top1")
        # the validation split is long-tailed like the training data: compare readings on its
        # class-balanced accuracy (mean per-class), as the balanced test split does
        out[f"{stage}_val_balanced"] = _balanced(final[stage]["val"]["per_class"])
    out["val_many"], out["val_medium"] = final["stage2"]["val"]["many"], final["stage2"]["val"]["medium"]
    for k in DIAGNOSTICS:
        out[k] = diag.get(k)
    out["class_kl_median"] = diag.get("class_kl", {}).get("median_symmetric")
    out["shared_head_tail"] = diag.get("shared_categories", {}).get("categories_shared_head_tail")
    out["num_latents"] = diag.get("num_latents")
    out["histogram_chance"] = diag.get("histogram_class_accuracy_chance")
    out["commit"] = json.loads((run / "environment.json").read_text()).get("commit")
    return out


# the MiSLAS run on the same backbone as each position reading (a gain must be LCReg's, not the padding's)
TWIN = {"reflect": "mislas_reflect", "circular": "mislas_circular", "zeros": "mislas"}


# each centred reading beside the same reading uncentred: what the centring cost or gained
UNCENTRED = {
    "attached_centre": "default_attached",
    "attached_reflect_centre": "attached_reflect",
    "as_written_centre": "as_written",
}


def padding_of(overrides: list[str]) -> str:
    return next((o.split("=", 1)[1] for o in reversed(overrides) if o.startswith("model.padding=")), "zeros")


# a centred reading within this many points (val balanced accuracy) of its uncentred twin keeps
# the twin's accuracy as far as one screen seed can tell (full-length readings spread 0.2-0.4 over
# seeds; the 9,000-image split adds about 0.7 to a difference)
TWIN_TOLERANCE = 1.0


def full_length_leaders(path: Path = ROOT / "results" / "readings.json") -> set[str]:
    """Readings whose full-length mean top-1 (three seeds or more) leads the default's:
    results/readings.md, the as-written reading's 77.36 against 76.67."""
    if not path.is_file():
        return set()
    rows = {r["variant"]: r for r in json.loads(path.read_text())["rows"] if r["imbalance"] == 100}
    default = rows.get("lcreg")
    if default is None or default["top1_mean"] is None:
        return set()
    return {
        v
        for v, r in rows.items()
        if r["top1_mean"] is not None and len(r["seeds"]) >= 3 and r["top1_mean"] > default["top1_mean"]
    }


def qualifying(rows: list[dict], leaders: set[str] | None = None) -> list[str]:
    """Issue 25's rule for the position screen: an LCReg reading whose categories carry content
    (``carries_content``: positional share < 0.5, histogram-class accuracy >= 2x chance,
    effective rank >= 2) runs three full-length seeds when it beats the default on the
    validation split (class-balanced accuracy after stage 2), or when it is the centred form
    of a reading that leads the default at full length (``leaders``) and comes within
    TWIN_TOLERANCE of it on the screen: the shortened schedule ranks the as-written reading 3.0
    points below the default, the full length 0.69 above, so beating the default here is
    not what such a reading can show."""
    from lcreg.eval.latent_diagnostics import carries_content

    leaders = full_length_leaders() if leaders is None else leaders
    by = {r["reading"]: r for r in rows if "failed" not in r}
    default = by.get("default")
    if default is None:
        return []
    out = []
    for name, r in by.items():
        if name == "default" or r["positional_share"] is None or r["histogram_class_accuracy"] is None:
            continue  # the default itself, MiSLAS (no latent head), a run not analysed
        content = carries_content(
            r["positional_share"], r["histogram_class_accuracy"], r["histogram_chance"] or 0.1, r["effective_rank"]
        )
        twin = by.get(UNCENTRED.get(name, ""))
        keeps_leader = (
            twin is not None
            and twin["reading"] in leaders
            and r["stage2_val_balanced"] >= twin["stage2_val_balanced"] - TWIN_TOLERANCE / 100
        )
        if content and (r["stage2_val_balanced"] > default["stage2_val_balanced"] or keeps_leader):
            out.append(name)
    return out


def verdict_lines(screen: Screen, rows: list[dict]) -> list[str]:
    """Each LCReg reading against the default and against MiSLAS on its own backbone."""
    by = {r["reading"]: r for r in rows if "failed" not in r}
    default = by.get("default")
    if default is None:
        return []
    leaders = full_length_leaders()
    chosen = qualifying(rows, leaders)
    lines = ["", "## What the screen says", ""]

    def points(r: dict, other: dict) -> float:
        """Validation balanced accuracy of r minus other's, in points."""
        return 100 * (r["stage2_val_balanced"] - other["stage2_val_balanced"])

    for name, r in by.items():
        if r["positional_share"] is None:
            continue
        twin = by.get(TWIN[padding_of(screen.readings[name][1])])
        gain = f"; {points(r, twin):+.2f} against `{twin['reading']}` on the same backbone" if twin else ""
        plain = by.get(UNCENTRED.get(name, ""))
        if plain:
            gain += f"; {points(r, plain):+.2f} against `{plain['reading']}` (uncentred)"
        lead = points(r, default)
        lines.append(
            f"- `{name}`: val balanced {100 * r['stage2_val_balanced']:.2f}"
            + (f" ({lead:+.2f} against the default)" if name != "default" else "")
            + f"{gain}; positional share {fmt(r['positional_share'])}, histogram-class acc. "
            f"{fmt(r['histogram_class_accuracy'])}, effective rank {fmt(r['effective_rank'], '.1f')}"
            + (
                ": carries content and "
                + (
                    "beats the default"
                    if lead > 0
                    else f"keeps `{plain['reading']}`'s accuracy (which leads the default at full length)"
                )
                + ", runs three full-length seeds"
                if name in chosen
                else ""
            )
        )
    lines += [
        "",
        "Rule (issue 25): a reading whose categories carry content (positional share < 0.5, histogram-class "
        "accuracy >= 2x chance, effective rank >= 2) and that beats the default on the validation split runs three "
        "full-length seeds, with MiSLAS on the same backbone where its padding differs; so does the centred form of "
        f"a reading that leads the default at full length ({', '.join(f'`{n}`' for n in sorted(leaders)) or 'none'}) "
        f"if it comes within {TWIN_TOLERANCE:.1f} point of that reading here (this schedule ranks the as-written "
        "reading below the default, the full length above it)"
        + (f"; here: {', '.join(f'`{n}`' for n in chosen)}" if chosen else "; here: none")
        + (
            f" ({len(by)} of {len(screen.readings)} readings finished so far)."
            if len(by) < len(screen.readings)
            else ("." if chosen else ", so the default stays.")
        ),
    ]
    return lines


def fmt(x, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def uncentred(r: dict) -> str:
    u = r.get("uncentred_positional_share")
    return "" if u is None else f" (before centring {u:.3f})"


def finished_rows(screen: Screen) -> list[dict]:
    """The table's rows: every reading that finished or failed, in the screen's order."""
    return [r for r in (row(screen, n) for n in screen.readings) if r is not None]


def write_table(screen: Screen) -> None:
    rows = finished_rows(screen)
    data = "CIFAR-10-LT IF 100 (JPEG copy), 10% of training held out as val"
    if screen.name != "readings":
        data = f"CIFAR-10-LT IF 100 (JPEG copy); validation: {screen.validation}"
    atomic_write_json(screen.stem.with_suffix(".json"), {"schedule": SCHEDULE_TEXT, "data": data, "rows": rows})
    command = "python benchmarks/latent_screen.py" + ("" if screen.name == "readings" else f" --screen {screen.name}")
    lines = [
        f"# Screen of the {screen.name}-shortcut readings (CIFAR-10-LT IF 100, JPEG copy, shortened schedule)"
        if screen.name != "readings"
        else "# Screen of the readings (CIFAR-10-LT IF 100, JPEG copy, shortened schedule)",
        "",
        f"Written by `{command}`. Schedule: {SCHEDULE_TEXT}; validation split: {screen.validation}; the",
        "readings are compared on it by its class-balanced accuracy (mean per-class accuracy; test",
        "top-1 beside, for reference only; never used to choose). Diagnostics from `lcreg analyze` on the",
        "validation split of each run's stage-2 model (class means from the training split); chance of the",
        "histogram-class accuracy is 0.100, the flat histogram entropy ln 40 = 3.689.",
        "",
        "| reading | val balanced acc. s1 / s2 | val Many / Medium | test top-1 s2 | positional share (K^T f) | feature positional share"
        " | effective rank (of 40) | saturation | histogram entropy | histogram-class acc. | class KL median"
        " | categories shared head+tail |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "failed" in r:
            lines.append(f"| `{r['reading']}` | failed: {r['failed']} |" + " |" * 10)
            continue
        lines.append(
            f"| `{r['reading']}` | {fmt(r['stage1_val_balanced'])} / {fmt(r['stage2_val_balanced'])} "
            f"| {fmt(r['val_many'])} / {fmt(r['val_medium'])} | {fmt(r['stage2_test_top1'])} "
            f"| {fmt(r['positional_share'])}{uncentred(r)} | {fmt(r['feature_positional_share'])} | {fmt(r['effective_rank'], '.1f')} "
            f"| {fmt(r['saturation'])} | {fmt(r['histogram_entropy'])} | {fmt(r['histogram_class_accuracy'])} "
            f"| {fmt(r['class_kl_median'], '.2g')} | {fmt(r['shared_head_tail'], 'd')} |"
        )
    if screen.name == "position":
        lines += verdict_lines(screen, rows)
    base = "the as-written reading, which is spelt out in each run's config.yaml" if screen.base else "today's default"
    lines += ["", f"Readings (overrides on top of {base}):", ""]
    for r in rows:
        lines.append(
            f"- `{r['reading']}`: {r['what']}; `{' '.join(r['overrides']) or '(none)'}` (commit "
            f"`{(r['commit'] or '?')[:12]}`)"
        )
    atomic_write_text(screen.stem.with_suffix(".md"), "\n".join(lines) + "\n")
    print(f"wrote {screen.stem.with_suffix('.md').relative_to(ROOT)} ({len(rows)} readings)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--screen", choices=list(SCREENS), default="readings")
    p.add_argument("--data-dir", default="data/cifar10-jpeg.tar.gz")
    p.add_argument("--only", help="comma-separated readings (default: all, in order)")
    p.add_argument(
        "--train-args",
        default="--compile on amp=bf16",
        help="extra lcreg train arguments (default: the CPU bf16 fast path)",
    )
    p.add_argument("--table-only", action="store_true", help="only rebuild the table from finished runs")
    p.add_argument(
        "--qualifying",
        action="store_true",
        help="print the readings the screen's rule sends to three full-length seeds (comma-separated) and exit",
    )
    p.add_argument("--with-twins", action="store_true", help="with --qualifying: and MiSLAS on their backbones")
    args = p.parse_args()
    screen = SCREENS[args.screen]
    if args.qualifying:
        chosen = qualifying(finished_rows(screen))
        if args.with_twins:  # zero padding's twin is the readings table's mislas, which has its seeds
            twins = {TWIN[padding_of(screen.readings[n][1])] for n in chosen} - {"mislas"}
            chosen += sorted(twins)
        print(",".join(chosen))
        return
    names = args.only.split(",") if args.only else list(screen.readings)
    unknown = [n for n in names if n not in screen.readings]
    if unknown:
        p.error(f"unknown readings {unknown}; known: {', '.join(screen.readings)}")
    if not args.table_only:
        for spec in specs(
            screen, names, args.train_args.split()
        ):  # one at a time, so the table grows as the queue goes
            failed = spec.out.with_name(spec.out.name + ".failed.json")
            if failed.is_file():
                continue  # a reading that cannot train is recorded once, not retried
            try:
                execute([spec], args.data_dir, args.train_args.split())
            except RunFailed as e:  # e.g. a reading whose loss diverges: recorded, the screen goes on
                atomic_write_json(failed, {"reading": spec.variant, "command": e.command, "error": e.reason})
            write_table(screen)
    write_table(screen)


if __name__ == "__main__":
    main()
