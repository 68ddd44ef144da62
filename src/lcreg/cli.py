"""``lcreg`` command line: parse, call, print.

    lcreg train [PRESET] [key=value ...]      stage 1 + stage 2 into a new run folder
    lcreg eval RUN_OR_CHECKPOINT              metrics.json, summary.md, reliability / per-class / confusion plots
    lcreg analyze RUN_OR_CHECKPOINT           latent histograms, montages, KL table
    lcreg predict CHECKPOINT PATH...          top-k classes per image (table, --json, --csv)
    lcreg report RUN                          markdown + HTML report of a run
    lcreg export MODEL --format F             TorchScript or ONNX (checked), or hf: a Hugging Face folder
    lcreg data stats [PRESET] [--json]        class counts, Many/Medium/Few, plot
    lcreg data prepare [PRESET]               decode images once into the cache
    lcreg runs [DIR]                          every run below DIR, and mean +- std over seeds (markdown, --json, --csv)
    lcreg methods                             list the methods (method=NAME trains one)
    lcreg configs [PRESET key=value ...]      list the presets, or show one resolved

Any bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence

from lcreg.commands.run_config import resolve_config
from lcreg.errors import LcregError, LcregWarning, short


def cmd_train(args: argparse.Namespace) -> int:
    from lcreg.commands.training import train

    return train(args)


# --------------------------------------------------------------------------------------
# after training: eval, analyze, predict, report, export


def _load(args: argparse.Namespace):
    from lcreg.commands.trained import load_trained_model
    from lcreg.runtime.environment import select_device

    device = select_device(args.device or "auto")
    return load_trained_model(args.model, device), device


def _default_out(trained, folder: str) -> Path:
    """Next to the model: RUN/<folder> for a run folder's model, else <stem>_<folder>."""
    if trained.run_dir is not None:
        return trained.run_dir / folder
    return trained.path.with_name(f"{trained.path.stem}_{folder}")


def cmd_eval(args: argparse.Namespace) -> int:
    from lcreg.commands.evaluation import EVAL_FILES, evaluate_checkpoint, pct

    trained, device = _load(args)
    out = (
        Path(args.out) if args.out else _default_out(trained, "eval" if args.split == "test" else f"eval_{args.split}")
    )
    result = evaluate_checkpoint(trained, out, device, args.data_dir, args.split, args.batch_size, args.amp)
    m = result["metrics"]
    print(f"{result['checkpoint']} on {result['split']} ({m['num_samples']} images, amp={result['amp']})")
    print(
        f"  top-1 {pct(m['top1'])}  top-5 {pct(m['top5'])}  many {pct(m['many'])}  medium {pct(m['medium'])}  "
        f"few {pct(m['few'])}  ece {pct(m['ece'])}  mce {pct(m['mce'])}  nll {m['nll']:.4f}"
    )
    print(
        f"  splits: {result['split_rule']} ({result['split_classes']['many']} / "
        f"{result['split_classes']['medium']} / {result['split_classes']['few']} classes)"
    )
    print(f"  wrote {out}/: {', '.join(EVAL_FILES)}")
    return 0


def _int_list(text: Optional[str], flag: str) -> Optional[list[int]]:
    if not text:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise LcregError(f"{flag} takes comma-separated integers, got '{text}'") from None


def _diagnostics_lines(d: dict) -> list[str]:
    """The content measures of a latent head, one line each (eval/latent_diagnostics.py)."""
    lines = [
        f"  held-out split: {d['held_out_split']} ({d['held_out_images']} images)",
        f"  feature_positional_share {d['feature_positional_share']:.3f}  (backbone features explained by position)",
    ]
    if not d["latent_head"]:
        return lines
    return lines + [
        f"  positional_share {d['positional_share']:.3f}  (K^T f explained by position; 1 = a pure position code)",
        *(
            [f"  uncentred_positional_share {u:.3f}  (the same before the centring, which removes it from eq. 2 on)"]
            if (u := d.get("uncentred_positional_share")) is not None
            else []
        ),
        f"  effective_rank {d['effective_rank']:.1f} of {d['num_latents']}   category_cosine_max "
        f"{d['category_cosine_max']:.3f} (1 = two categories are one)   saturation {d['saturation']:.3f}",
        f"  histogram_entropy {d['histogram_entropy']:.3f} (flat: {d['histogram_entropy_max']:.3f})",
        f"  histogram_class_accuracy {d['histogram_class_accuracy']:.3f} (chance {d['histogram_class_accuracy_chance']:.3f})",
        f"  class_kl symmetric median {d['class_kl']['median_symmetric']:.3g}, max {d['class_kl']['max_symmetric']:.3g}",
        f"  shared_categories: {d['shared_categories']['categories_shared_head_tail']} of {d['num_latents']} used by "
        f"head and tail classes",
    ]


def cmd_analyze(args: argparse.Namespace) -> int:
    from lcreg.commands.analysis import ANALYSIS_FILES, analyze_checkpoint
    from lcreg.eval.latent_diagnostics import collapse_warning

    if not 0 <= args.seed < 2**32:
        raise LcregError(f"--seed must lie in 0 .. 2**32 - 1 (numpy's seeds), got {short(args.seed, 24)}")
    trained, device = _load(args)
    out = Path(args.out) if args.out else _default_out(trained, "analysis")
    result = analyze_checkpoint(
        trained,
        out,
        device,
        args.data_dir,
        per_split=args.per_split,
        num_latents_shown=args.num_latents,
        images_per_latent=args.images_per_latent,
        latents=_int_list(args.latents, "--latents"),
        images=_int_list(args.images, "--images"),
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(result))
        return 0
    diagnostics = result["diagnostics"]
    if not diagnostics["latent_head"]:
        print(f"{result['checkpoint']}: no latent head; backbone diagnostics only")
        print("\n".join(_diagnostics_lines(diagnostics)))
        print(f"  wrote {out}/diagnostics.json")
        return 0
    s = result["sharing"]
    print(f"{result['checkpoint']}: {result['num_latents']} latent categories over {result['num_images']} images")
    print("\n".join(_diagnostics_lines(diagnostics)))
    print(f"  tail classes' top-{s['top_k']} latents shared with the head: {s['mean_shared_with_head']}")
    print(
        f"  mean KL tail -> nearest head class {s['mean_kl_tail_to_nearest_head']}, "
        f"between head classes {s['mean_kl_between_head_classes']}"
    )
    print(f"  wrote {out}/: {', '.join(ANALYSIS_FILES)}")
    message = collapse_warning(diagnostics)
    if message is not None:
        warnings.warn(message, LcregWarning, stacklevel=1)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import csv

    from lcreg.commands.prediction import gather_files, predict_files

    files = gather_files(args.paths)
    trained, device = _load(args)
    results, skipped = predict_files(trained, files, device, args.top_k, args.batch_size)
    if not results:
        raise LcregError(f"none of the {len(files)} files could be read (first: {_one_line(skipped[0][1])})")
    for path, reason in skipped:
        print(f"lcreg: skipped {path}: {_one_line(reason)}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "path": r.path,
                        "top": [
                            {"class": c, "index": i, "probability": p}
                            for c, i, p in zip(r.classes, r.indices, r.probabilities)
                        ],
                    }
                    for r in results
                ]
            )
        )
    elif args.csv:
        w = csv.writer(sys.stdout)
        w.writerow(["path", "rank", "class", "index", "probability"])
        for r in results:
            for rank, (c, i, p) in enumerate(zip(r.classes, r.indices, r.probabilities), 1):
                w.writerow([r.path, rank, c, i, f"{p:.6f}"])
    else:
        width = max(len(r.path) for r in results)
        for r in results:
            top = "  ".join(f"{c} {100 * p:5.1f}%" for c, p in zip(r.classes, r.probabilities))
            print(f"{r.path:<{width}}  {top}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from lcreg.commands.run_report import build_run_report
    from lcreg.runtime.environment import select_device

    run_dir = Path(args.run)
    if args.out:
        out = Path(args.out)
    elif (run_dir / "config.yaml").is_file():
        out = run_dir / "report"
    else:  # an HF folder or hf-hub:ORG/NAME: beside it in the working folder
        out = Path(f"{args.run.rstrip('/').split('/')[-1].split(':')[-1]}_report")
    result = build_run_report(args.run, out, select_device(args.device or "auto"), args.data_dir)
    print(f"wrote {result['markdown']} and {result['html']}")
    return 0


def _is_run_file(path: Path) -> bool:
    """A file that a run folder depends on: its model files, checkpoint, config and logs."""
    from lcreg.commands.trained import MODEL_FILES

    protected = set(MODEL_FILES) | {"config.yaml", "final_metrics.json", "metrics.jsonl", "metrics.csv"}
    return path.name in protected and (path.parent / "config.yaml").is_file()


def _check_output_file(out: Path, force: bool) -> None:
    """An output file never replaces a run's own files, and another existing file only with --force."""
    if out.is_dir():
        raise LcregError(f"--out {out} is a folder; give a file name")
    if out.exists() and not out.is_file():  # a device, a FIFO, a socket: never replaced, even with --force
        raise LcregError(f"cannot write {out}: it exists and is not a regular file")
    if out.exists() and _is_run_file(out.resolve()):
        raise LcregError(
            f"{out} belongs to a run folder (model, checkpoint, config or log); write the export elsewhere"
        )
    if out.exists() and not force:
        raise LcregError(f"{out} already exists; pass --force to overwrite it")


def cmd_export(args: argparse.Namespace) -> int:
    from lcreg.commands.export import export_model

    trained, _ = _load(args)
    if args.format == "hf":
        from lcreg.commands.hf_export import export_hf

        if not args.out:
            raise LcregError("--format hf writes a folder: give it with --out DIR")
        info = export_hf(trained, Path(args.out), args.force)
        print(f"wrote {info['path']}/ (config.json, model.safetensors sha256 {info['sha256'][:16]}..., README.md)")
        return 0
    suffix = {"torchscript": ".ts", "onnx": ".onnx"}.get(args.format, "")
    out = Path(args.out) if args.out else trained.path.with_suffix(suffix)
    _check_output_file(out, args.force)
    info = export_model(trained, args.format, out)
    print(
        f"wrote {info['path']} ({info['format']}: images (B, {', '.join(map(str, info['input']))}) -> logits "
        f"(B, {info['num_classes']}); max |logit difference| on {info['check_batch']} images: "
        f"{info['max_abs_diff']:.2e})"
    )
    return 0


# --------------------------------------------------------------------------------------
# data


def cmd_data_stats(args: argparse.Namespace) -> int:
    from lcreg.data import build_dataset

    cfg = resolve_config(args)
    if args.plot:  # checked before the data is read
        from lcreg.eval.plots import figure_format

        _check_output_file(Path(args.plot), args.force)
        figure_format(Path(args.plot))
    data = build_dataset(cfg.data)
    stats = data.stats()
    if args.plot:
        from lcreg.eval.plots import plot_class_distribution

        plot = Path(args.plot)
        plot.parent.mkdir(parents=True, exist_ok=True)
        plot_class_distribution(
            stats["counts"],
            stats["class_names"],
            stats["splits"],
            plot,
            title=f"{cfg.name}: {stats['total']} training images",
        )
    if args.json:
        print(json.dumps(stats))
        return 0
    print(f"dataset   {stats['dataset']}  ({stats['source']})")
    print(
        f"classes   {stats['num_classes']}   train {stats['total']}   test {stats['test_total']}"
        + (f"   val {stats['val_total']}" if stats["val_total"] else "")
    )
    imb = stats["imbalance_factor"]
    print(f"imbalance {imb:.1f} (largest / smallest training class)")
    print(f"splits    {stats['split_rule']}")
    for name in ("many", "medium", "few"):
        print(f"  {name:<7} {len(stats['splits'][name]):>5} classes")
    width = max(len(n) for n in stats["class_names"])
    order = sorted(range(stats["num_classes"]), key=lambda c: -stats["counts"][c])
    shown = order if len(order) <= 30 else order[:15] + [None] + order[-15:]
    split_of = {c: s for s, cs in stats["splits"].items() for c in cs}
    print(f"  {'class':<{width}}  {'train':>7}  {'test':>6}  split")
    for c in shown:
        if c is None:
            print(f"  {'...':<{width}}")
            continue
        print(
            f"  {stats['class_names'][c]:<{width}}  {stats['counts'][c]:>7}  {stats['test_counts'][c]:>6}  {split_of[c]}"
        )
    if args.plot:
        print(f"plot      {args.plot}")
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    from lcreg.data import build_dataset
    from lcreg.data.cache import default_cache_dir

    cfg = resolve_config(args)
    start = time.perf_counter()
    data = build_dataset(cfg.data)
    print(
        f"prepared {cfg.data.dataset}: {len(data.train)} train / {len(data.test)} test images "
        f"in {time.perf_counter() - start:.1f} s; cache: {default_cache_dir(cfg.data.cache_dir)}"
    )
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from lcreg.commands import runs_table as rt

    root = Path(args.dir)
    runs, unfinished = rt.load_runs(root)
    if args.json:
        out = {
            "runs": rt.run_rows(runs, root),
            "seed_groups": rt.seed_rows(runs),
            "unfinished": [p.relative_to(root).as_posix() for p in unfinished],
        }
        print(json.dumps(out, indent=2))
    elif args.csv:
        sys.stdout.write(rt.csv_text(runs, root))
    else:
        sys.stdout.write(rt.markdown(runs, unfinished, root))
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from lcreg.methods import get_method
    from lcreg.registry import METHODS

    if args.name:
        from lcreg.config import Config, to_dict
        from lcreg.run_folder import flatten

        m = get_method(args.name)
        print(f"{m.name}: {m.summary}" + (f" [{m.paper}]" if m.paper else ""))
        print("stages: " + ("1 and 2" if m.has_stage2 else "1") + ("; mixup in stage 1" if m.mixup else ""))
        import dataclasses

        defaults = flatten(to_dict(Config()))
        own = [k for k in m.own_keys(list(defaults)) if not k.startswith("method_params")]
        params = dataclasses.fields(m.Params) if m.Params is not None else ()
        print("its parameters (method_params.NAME=VALUE):" if params else "its parameters: none")
        for f in params:
            default = f.default if f.default is not dataclasses.MISSING else "-"
            bounds = ", ".join(f"{k} {f.metadata[k]}" for k in ("min", "gt", "max", "lt") if k in f.metadata)
            print(f"  {f.name} = {default}  {f.metadata.get('help', '')}" + (f" ({bounds})" if bounds else ""))
        print("the config keys it reads besides (default):" if own else "no other config keys of its own")
        for k in own:
            print(f"  {k} = {defaults[k]}")
        if m.stage2_fixed:
            print("stage 2 settings it fixes: " + ", ".join(f"stage2.{k}={v}" for k, v in m.stage2_fixed.items()))
        print("besides those every method reads: run settings, data.*, model.backbone, stage1.*")
        return 0
    names = METHODS.names()
    width = max(map(len, names))
    for name in names:
        m = get_method(name)
        stages = "stage 1 + 2" if m.has_stage2 else "stage 1    "
        print(f"{name:<{width}}  {stages}  {m.summary}" + (f"  [{m.paper}]" if m.paper else ""))
    return 0


def cmd_configs(args: argparse.Namespace) -> int:
    from lcreg.config import preset_dir, preset_names, to_dict

    if args.config or args.dataset:
        # the config `lcreg train` would resolve from the same arguments, every key filled in
        import yaml

        from lcreg.commands.run_config import resolve_config

        print(yaml.safe_dump(to_dict(resolve_config(args)), sort_keys=False), end="")
        return 0
    for name in preset_names():
        print(f"{name:<24} {preset_dir() / (name + '.yaml')}")
    return 0


# --------------------------------------------------------------------------------------
# parser


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="*", help="a preset name or YAML path, then key=value overrides")
    p.add_argument("--dataset", help="cifar10-lt, cifar100-lt, folder, list or demo")
    p.add_argument("--data-dir", help="data folder or archive (see README: accepted layouts)")
    p.add_argument("--imbalance-factor", type=float, help="largest / smallest class size (>= 1)")
    p.add_argument("--seed", type=int, help="run seed")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), like every other error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="lcreg", description="LCReg: long-tailed classification with latent categories.")
    from lcreg import __version__

    parser.add_argument("--version", action="version", version=f"lcreg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser(
        "train",
        help="train a model (stage 1 then stage 2)",
        description="Train into a run folder: config.yaml, metrics.jsonl/.csv, tensorboard/, "
        "checkpoint.pt, final_metrics.json. With no arguments: the offline demo.",
        epilog="Several GPUs: torchrun --nproc_per_node N -m lcreg train PRESET ... (the configured "
        "batch size is the global batch). Fast CPU path where the CPU has native bf16 "
        "(AMX / AVX512-BF16): --compile on amp=bf16.",
    )
    _add_data_flags(p)
    p.add_argument("--stage", choices=["1", "2", "all"], default="all", help="which stage(s) to run")
    p.add_argument("--from", dest="from_run", help="stage 2: the stage-1 run folder (or its stage-1 model file)")
    p.add_argument("--resume", help="continue an interrupted run folder from its last checkpoint")
    p.add_argument("--out", help="run folder (default: runs/<preset>-seed<N>-<time>)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--deterministic", action="store_true", help="repeatable bit for bit on CPU")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="end with the final metrics as JSON, not a table")
    p.add_argument("--compile", choices=["auto", "on", "off"], help="torch.compile (auto: on CUDA only)")
    p.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=10,
        default=0,
        metavar="STEPS",
        help="write a profiler trace of STEPS (default 10) stage-1 steps to RUN/profile/",
    )
    p.set_defaults(func=cmd_train)

    def model_command(
        name: str,
        func,
        help: str,
        model_help: str = "a run folder, a model file, an HF folder (lcreg export --format hf) or hf-hub:ORG/NAME",
    ):
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("model", help=model_help)
        p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
        p.set_defaults(func=func)
        return p

    p = model_command("eval", cmd_eval, "metrics and plots of a trained model on its test split")
    p.add_argument("--data-dir", help="evaluate on this data instead (same classes, same layouts as training)")
    p.add_argument("--split", choices=["test", "val"], default="test")
    p.add_argument("--out", help="output folder (default: RUN/eval)")
    p.add_argument("--batch-size", type=positive_int, default=512)
    p.add_argument(
        "--amp",
        choices=["auto", "bf16", "off"],
        help="precision of the forward pass (default: the model's training config; off: fp32)",
    )

    p = model_command("analyze", cmd_analyze, "latent-category histograms, montages and KL table (LCReg models)")
    p.add_argument("--data-dir", help="analyze on this data instead (same classes)")
    p.add_argument("--out", help="output folder (default: RUN/analysis)")
    p.add_argument("--per-split", type=positive_int, default=3, help="images per Many / Medium / Few in the histograms")
    p.add_argument("--num-latents", type=positive_int, default=8, help="latent categories in the montage (most used)")
    p.add_argument("--latents", help="comma-separated latent categories for the montage instead")
    p.add_argument("--images", help="comma-separated test-split indices for the histograms instead of sampling")
    p.add_argument("--images-per-latent", type=positive_int, default=6)
    p.add_argument("--seed", type=int, default=0, help="which images are sampled for the histograms")
    p.add_argument("--json", action="store_true", help="print the whole result (diagnostics included) as JSON")

    p = model_command("predict", cmd_predict, "top-k classes for images or folders of images")
    p.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--top-k", type=positive_int, default=5)
    p.add_argument("--batch-size", type=positive_int, default=256)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON list on stdout")
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout (path, rank, class, index, probability)")

    p = sub.add_parser(
        "report",
        help="markdown + HTML report of a run folder",
        description="config, data, training curves, final metrics, eval and analysis figures",
    )
    p.add_argument("run", help="a run folder (or an HF folder / hf-hub:ORG/NAME: no training curves)")
    p.add_argument("--data-dir", help="data for the evaluation, if not where training found it")
    p.add_argument("--out", help="output folder (default: RUN/report)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    p.set_defaults(func=cmd_report)

    p = model_command(
        "export", cmd_export, "export to TorchScript or ONNX (checked against the model), or a Hugging Face folder"
    )
    p.add_argument("--format", choices=["torchscript", "onnx", "hf"], default="torchscript")
    p.add_argument("--out", help="output file (default: next to the model, .ts or .onnx); a folder for --format hf")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file (never a run's own files)")

    pd = sub.add_parser("data", help="dataset statistics and preparation")
    dsub = pd.add_subparsers(dest="data_command", required=True, parser_class=OneLineParser)
    ps = dsub.add_parser("stats", help="class counts, imbalance, Many/Medium/Few")
    _add_data_flags(ps)
    ps.add_argument("--json", action="store_true", help="print one JSON object")
    ps.add_argument("--plot", help="write a bar chart of the class distribution to this PNG")
    ps.add_argument("--force", action="store_true", help="overwrite an existing --plot file")
    ps.set_defaults(func=cmd_data_stats)
    ps.add_argument("--no-progress", action="store_true", help="no progress bars or notes on stderr")
    pp = dsub.add_parser("prepare", help="decode images once into the uint8 cache")
    _add_data_flags(pp)
    pp.add_argument("--no-progress", action="store_true", help="no progress bars or notes on stderr")
    pp.set_defaults(func=cmd_data_prepare)

    pu = sub.add_parser(
        "runs",
        help="every run folder below DIR in one table, and mean +- std over seeds",
        description="One row per finished run below DIR (top-1, Many / Medium / Few, ECE, numerics, device, "
        "minutes, commit), then the runs that differ only in their seed grouped: mean and std over seeds. "
        "Unfinished runs are named, not counted.",
    )
    pu.add_argument("dir", nargs="?", default="runs", help="a folder of run folders (default runs/)")
    fmt = pu.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object on stdout (runs, seed groups, unfinished)")
    fmt.add_argument("--csv", action="store_true", help="the per-run table as CSV on stdout")
    pu.set_defaults(func=cmd_runs)

    pm = sub.add_parser("methods", help="list the registered methods (lcreg train PRESET method=NAME)")
    pm.add_argument("name", nargs="?", help="one method: the config keys it reads, with their defaults")
    pm.set_defaults(func=cmd_methods)

    pc = sub.add_parser(
        "configs",
        help="list the shipped config presets; with a preset (and overrides): the resolved config",
        description="With no arguments: the shipped presets. With a preset or YAML path, key=value "
        "overrides and the flags of lcreg train: the full config that lcreg train would train with "
        "(as its run folder's config.yaml), every key filled in.",
    )
    _add_data_flags(pc)
    pc.set_defaults(func=cmd_configs)
    return parser


def _one_line(message: str) -> str:
    """A DataLoader worker re-raises our error with its whole traceback in the message;
    keep only our own sentence."""
    if "Original Traceback" in message:
        message = message.strip().splitlines()[-1].split("LcregError: ", 1)[-1]
    return message


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so that its clean-up runs."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our warnings as one line (``lcreg: warning: ...``); other libraries' as Python prints them."""
    if issubclass(category, LcregWarning):
        print(f"lcreg: warning: {_one_line(str(message))}", file=file or sys.stderr)
    else:
        (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    # overrides may follow options (lcreg train PRESET --data-dir D key=value): argparse
    # stops a nargs="*" positional at the first option, so collect the stragglers here
    args, extra = parser.parse_known_args(argv)
    stray = [e for e in extra if e.startswith("-") or not hasattr(args, "config")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.config = list(args.config) + extra
    return run_command(args.func, args)


def run_command(func, args: argparse.Namespace, prog: str = "lcreg") -> int:
    """Run a command the way every lcreg command runs: an LcregError is one line and exit code
    2, SIGTERM ends it as Ctrl-C does, our warnings are one line each. Scripts beside the
    package (experiments/reproduce.py) run their commands through it too."""
    from lcreg.progress import set_enabled

    set_enabled(not getattr(args, "no_progress", False))
    # SIGTERM (a scheduler's preemption, kill, torchrun stopping its workers) ends a command as
    # Ctrl-C does: the same clean-up (a run without a checkpoint leaves no folder), one line
    previous_term = None
    if threading.current_thread() is threading.main_thread():
        previous_term = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with warnings.catch_warnings():  # restores the hook when the command ends
            warnings.showwarning = _show_warning
            return func(args)
    except LcregError as e:
        print(f"{prog}: error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout closed early (lcreg runs | head): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 141
    except OSError as e:  # a write the commands did not foresee: read-only folder, full disk, ...
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        reason = "no space left on device" if e.errno == errno.ENOSPC else (e.strerror or type(e).__name__)
        print(f"{prog}: error: {where}{reason}", file=sys.stderr)
        return 2
    except Terminated:
        print("lcreg: terminated (resume with: lcreg train --resume RUN_FOLDER)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("lcreg: interrupted (resume with: lcreg train --resume RUN_FOLDER)", file=sys.stderr)
        return 130
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)


if __name__ == "__main__":
    raise SystemExit(main())
