"""The paper's published numbers (%), read from ``paper_numbers.csv``: one row per cell
(table, dataset, imbalance factor, variant) with top-1, or for Table 6 Many / Medium / Few.
Copied from LCReg Tables 1, 5, 6, 7, 9 and 10 (ResNet-32, original CIFAR, best epoch). Table
1's ``isda`` row is Table 10's "+ ISDA"; the readings table holds every reading of eq. 1-4
against the paper's LCReg and MiSLAS against its MiSLAS; Table 6's "Ours*" (the baseline
without the latent parts) is MiSLAS here."""

from __future__ import annotations

import csv
from pathlib import Path

CSV = Path(__file__).with_name("paper_numbers.csv")


def _num(text: str):
    return float(text) if text.strip() else None


def load(path: Path = CSV) -> dict[str, dict[tuple, object]]:
    """``{table: {(dataset, imbalance, variant): top1 or (many, medium, few)}}``."""
    out: dict[str, dict[tuple, object]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["dataset"], int(row["imbalance"]), row["variant"])
            top1 = _num(row["top1"])
            value = top1 if top1 is not None else tuple(_num(row[k]) for k in ("many", "medium", "few"))
            out.setdefault(row["table"], {})[key] = value
    return out


PAPER = load()
