"""A paper table as a restartable queue of runs, then its table: this project's reproduction
of the LCReg paper, kept beside the library (never installed with it).

    python experiments/reproduce.py TABLE --data-dir D [--seeds 0,1,2] [--imbalance-factors 100]
        [--methods a,b] [--epochs E] [--train-args "--compile on amp=bf16"] [--dry-run | --table-only]

TABLE: table1, table5, table6, table7, table9, table10 or readings (``tables.yaml``). Each cell
(dataset, imbalance factor, variant) trains once per seed into ``results/<table>/...`` with
``lcreg train`` (a finished run skipped, an interrupted one resumed), then
``results/<table>.md``, ``.json`` and ``.png`` are written beside the paper's numbers
(``paper_numbers.csv``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import paper_tables  # noqa: E402
import run_queue as rq  # noqa: E402
from lcreg.cli import OneLineParser, positive_int, run_command  # noqa: E402
from lcreg.errors import LcregError  # noqa: E402


def _list(text: Optional[str], flag: str, kind=str) -> Optional[list]:
    if text is None:
        return None
    try:
        items = [kind(t.strip()) for t in text.split(",") if t.strip()]
    except ValueError:
        raise LcregError(f"{flag} takes comma-separated {kind.__name__}s, got '{text}'") from None
    if not items:
        raise LcregError(f"{flag} takes a comma-separated list, got '{text}'")
    return items


def reproduce(args: argparse.Namespace) -> int:
    results = Path(args.results)
    train_args = args.train_args.split()
    # key=value train args are part of what each cell trains: a run trained with
    # stage1.epochs=1 is not the full-schedule cell, and a later queue without them says so
    extra = [a for a in train_args if rq.is_override(a)]
    datasets = _list(args.datasets, "--datasets")
    runs = rq.plan(
        args.table,
        results,
        datasets,
        _list(args.imbalance_factors, "--imbalance-factors", int),
        _list(args.seeds, "--seeds", int) or [0],
        _list(args.methods, "--methods"),
        args.epochs,
        extra,
    )
    epochs = args.epochs or rq.FULL_EPOCHS
    print(f"reproduce {args.table}: {len(runs)} runs, {rq.schedule_label(args.epochs)}")
    if args.dry_run:
        print("\n".join(rq.dry_run_lines(runs, results, epochs, train_args)))
        return 0
    if not args.table_only:
        if not args.data_dir:
            raise LcregError("reproduce needs --data-dir (the CIFAR data; docs: Your data)")
        rq.execute(runs, args.data_dir, train_args)
    covered = rq.table_runs(args.table, results, datasets, runs, args.epochs, extra)
    summary = paper_tables.summarize(args.table, covered, args.epochs)
    md = paper_tables.write_table(summary, results)
    figure = md.with_suffix(".png")
    paper_tables.plot_paper_table(
        paper_tables.table_cells(summary["rows"]), figure, f"{summary['what']}: {summary['schedule']}"
    )
    print(f"wrote {md}, {md.with_suffix('.json')} and {figure}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="reproduce", description=__doc__.split("\n\n")[0])
    p.add_argument("table", help="table1, table5, table6, table7, table9, table10 or readings")
    p.add_argument("--data-dir", help="the CIFAR data (any accepted layout)")
    p.add_argument("--datasets", default="cifar10", help="comma-separated: cifar10, cifar100 (default cifar10)")
    p.add_argument("--imbalance-factors", help="comma-separated, e.g. 100,50,10 (default: the table's)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--methods", help="comma-separated variants of the table (default: all)")
    p.add_argument("--epochs", type=positive_int, help="shortened stage 1 (labelled as such everywhere)")
    p.add_argument("--train-args", default="", help="extra lcreg train arguments, e.g. '--compile on amp=bf16'")
    p.add_argument("--results", default="results", help="where run folders and the table go (default results)")
    p.add_argument("--dry-run", action="store_true", help="list the runs, their state and estimated time; train none")
    p.add_argument("--table-only", action="store_true", help="only write the table from the finished runs")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(reproduce, args, prog="reproduce")


if __name__ == "__main__":
    sys.exit(main())
