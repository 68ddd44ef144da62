"""``lcreg report``: one markdown + HTML report per run folder: config, data statistics,
training curves, final metrics of each stage, and the eval / analysis figures (computed
here into the report folder)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

import torch

from lcreg import run_folder as rf
from lcreg.commands.analysis import analyze_checkpoint
from lcreg.commands.evaluation import evaluate_checkpoint, pct
from lcreg.commands.trained import load_trained_model
from lcreg.errors import LcregError
from lcreg.eval.latent_diagnostics import collapse_warning
from lcreg.eval.plots import plot_class_distribution, plot_training_curves
from lcreg.eval.report import Code, Figure, Heading, Paragraph, Report, Table, write_report
from lcreg.files import replace_folder
from lcreg.runtime.environment import run_provenance

METRIC_COLUMNS = ("top1", "top5", "many", "medium", "few", "ece", "mce")


def build_run_report(run_dir: Path, out_dir: Path, device: torch.device, data_dir: Optional[str] = None) -> dict:
    """Read and check everything first (run files, the model), then write the report into a
    folder of its own that replaces ``out_dir`` only once complete: a failure leaves the
    earlier report (or none), never half of one."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (out_dir.is_symlink() or not out_dir.is_dir()):
        raise LcregError(f"cannot write the report into {out_dir}: it exists and is not a folder")
    trained = load_trained_model(run_dir, device)  # a run folder, an HF folder or hf-hub:ORG/NAME
    run_dir = trained.run_dir or trained.path.parent
    is_run = trained.run_dir is not None
    env = rf.read_environment(run_dir) if is_run and (run_dir / rf.ENVIRONMENT).exists() else {}
    stats = rf.read_json(run_dir / rf.DATA_STATS) if is_run and (run_dir / rf.DATA_STATS).exists() else None
    final = (rf.read_final(run_dir) or {}) if is_run else {}
    records = rf.read_records(run_dir) if is_run else []
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        result = _write(run_dir, tmp, device, data_dir, env, stats, final, records, trained)
        replace_folder(tmp, out_dir)
    except OSError as e:
        raise LcregError(f"cannot write the report into {out_dir}: {e.strerror or type(e).__name__}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {k: v.replace(str(tmp), str(out_dir)) if isinstance(v, str) else v for k, v in result.items()}


def _write(run_dir, out_dir, device, data_dir, env, stats, final, records, trained) -> dict:
    report = Report(f"Run report: {run_dir.name}")
    report.add(
        Paragraph(
            f"Run folder {run_dir}; commit {' then '.join(run_provenance(env, 'commit')) or 'unknown'}; "
            f"device {' then '.join(run_provenance(env, 'device')) or 'unknown'}; "
            f"torch {env.get('torch', 'unknown')}."
        )
    )
    report.add(Heading("Final metrics (final epoch of each stage, test split)"))
    rows = []
    for stage, m in rf.stage_metrics(final).items():
        for split in ("test", "val"):
            if split in m:
                rows.append([stage, split, m.get("epoch", ""), *[pct(m[split].get(k)) for k in METRIC_COLUMNS]])
    report.add(
        Table(["stage", "split", "epoch", "top-1", "top-5", "Many", "Medium", "Few", "ECE", "MCE"], rows)
        if rows
        else Paragraph("No stage has finished yet.")
    )
    walls = [
        f"{stage} done after {m['wall_seconds'] / 60:.1f} min"
        for stage, m in rf.stage_metrics(final).items()
        if "wall_seconds" in m
    ]
    if walls:
        report.add(
            Paragraph(
                "Wall time (start-up, compilation and evaluation included, summed over resumed "
                f"processes): {'; '.join(walls)}."
            )
        )

    if stats:
        plot_class_distribution(
            stats["counts"],
            stats["class_names"],
            stats["splits"],
            out_dir / "class_distribution.png",
            title=f"{stats['dataset']}: {stats['total']} training images",
        )
        report.add(
            Heading("Data"),
            Paragraph(
                f"{stats['dataset']} from {stats['source']}: {stats['num_classes']} classes, "
                f"{stats['total']} training and {stats['test_total']} test images, imbalance factor "
                f"{stats['imbalance_factor']:.1f}; {stats['split_rule']}."
            ),
            Figure(Path("class_distribution.png"), "training images per class, Many / Medium / Few"),
        )
    if records:
        plot_training_curves(records, out_dir / "training_curves.png")
        report.add(
            Heading("Training"),
            Figure(Path("training_curves.png"), "loss terms per epoch and top-1 at the evaluated epochs"),
        )

    ev = evaluate_checkpoint(trained, out_dir / "eval", device, data_dir)
    report.add(
        Heading(f"Evaluation of {trained.path.name}"),
        Paragraph(
            f"{ev['split_rule']}: {ev['split_classes']['many']} / {ev['split_classes']['medium']} / "
            f"{ev['split_classes']['few']} classes. NLL {ev['metrics']['nll']:.4f}."
        ),
        Figure(Path("eval/reliability.png"), "reliability diagram (15 bins)"),
        Figure(Path("eval/per_class_accuracy.png"), "per-class accuracy, classes by training count"),
        Figure(Path("eval/confusion.png"), "confusion matrix"),
    )
    result = {"report_dir": str(out_dir), "eval": ev["metrics"]["top1"], "analysis": None}
    if trained.model.has_latent_head:
        an = analyze_checkpoint(trained, out_dir / "analysis", device, data_dir)
        s, d = an["sharing"], an["diagnostics"]
        report.add(
            Heading("Latent categories"),
            Paragraph(
                f"{an['num_latents']} latent categories. Share of a tail class's top-{s['top_k']} "
                f"latent categories also among a head class's: {s['mean_shared_with_head']}."
            ),
            Paragraph(
                f"Do they carry image content (on the {d['held_out_split']} split)? Variance of K^T f "
                f"explained by position alone {d['positional_share']:.3f} (1 = a position code"
                + (f"; {u:.3f} before the centring)" if (u := d.get("uncentred_positional_share")) is not None else ")")
                + f", of the backbone features {d['feature_positional_share']:.3f}; effective rank of K "
                f"{d['effective_rank']:.1f} of {d['num_latents']}"
                + (
                    f" (largest cosine between two categories {c:.3f})"
                    if (c := d.get("category_cosine_max")) is not None
                    else ""
                )
                + "; similarity maps saturated "
                f"{d['saturation']:.3f}; histogram entropy {d['histogram_entropy']:.3f} (flat "
                f"{d['histogram_entropy_max']:.3f}); nearest-class-histogram accuracy "
                f"{d['histogram_class_accuracy']:.3f} (chance {d['histogram_class_accuracy_chance']:.3f})."
                + (f" Warning: {warning}." if (warning := collapse_warning(d)) else "")
            ),
            Figure(Path("analysis/image_histograms.png"), "latent histograms of Many / Medium / Few images"),
            Figure(Path("analysis/shared_categories.png"), "latent categories shared by head and tail classes"),
            Figure(Path("analysis/latent_montage.png"), "images weighing most on each latent category"),
            Figure(Path("analysis/kl_heatmap.png"), "KL divergence between class latent histograms"),
        )
        result["analysis"] = s["mean_shared_with_head"]
    import yaml

    from lcreg.config import to_dict

    report.add(Heading("Config"), Code(yaml.safe_dump(to_dict(trained.cfg), sort_keys=False), "yaml"))
    md, page = write_report(report, out_dir)
    result.update(markdown=str(md), html=str(page))
    return result
