"""Per-epoch logs of a run: JSONL (one object per epoch), CSV and TensorBoard."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from lcreg.files import atomic_write_csv, check_output
from lcreg.run_folder import METRICS, METRICS_CSV, TENSORBOARD, read_records


def _scalars(record: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in record.items():
        if isinstance(v, dict):
            out.update(_scalars(v, f"{prefix}{k}/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None and math.isfinite(v):
            out[prefix + k] = float(v)
    return out


class RunLogger:
    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.jsonl = self.run_dir / METRICS
        self.csv = self.run_dir / METRICS_CSV
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.run_dir / TENSORBOARD))
            except ImportError:  # tensorboard is a dependency, but a trimmed install still trains
                self.writer = None

    def log_epoch(self, record: dict[str, Any]) -> None:
        """``record`` holds stage, epoch and nested metric dicts (per_class lists are kept in
        the JSONL only)."""
        check_output(self.jsonl)
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(record) + "\n")
        flat = _scalars({k: v for k, v in record.items() if k not in ("stage", "epoch")})
        self._rewrite_csv()
        if self.writer is not None:
            step = record.get("global_epoch", record.get("epoch", 0))
            for k, v in flat.items():
                self.writer.add_scalar(f"stage{record.get('stage')}/{k}", v, step)
            self.writer.flush()

    def truncate(self, stage: int, epoch: int) -> None:
        """Keep the records up to (stage, epoch), the point a resumed run continues from:
        a process killed between an epoch's log line and its checkpoint logged that epoch,
        which the resumed process runs (and logs) again."""
        if not self.jsonl.is_file():
            return
        lines = self.jsonl.read_text(errors="replace").splitlines()
        kept = [r for r in read_records(self.run_dir) if (r["stage"], r["epoch"]) <= (stage, epoch)]
        if len(kept) != len([ln for ln in lines if ln.strip()]) or not self.jsonl.read_bytes().endswith(b"\n"):
            tmp = self.jsonl.with_name(self.jsonl.name + ".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
            os.replace(tmp, self.jsonl)
            self._rewrite_csv()

    def _rewrite_csv(self) -> None:
        """Columns differ between epochs (test metrics only every N epochs), so the CSV is
        rebuilt from the JSONL with the union of columns; cheap at a few hundred rows."""
        rows = []
        for rec in read_records(self.run_dir):
            rows.append(
                {
                    "stage": rec.get("stage"),
                    "epoch": rec.get("epoch"),
                    **_scalars({k: v for k, v in rec.items() if k not in ("stage", "epoch")}),
                }
            )
        fields = list(dict.fromkeys(k for r in rows for k in r))
        atomic_write_csv(self.csv, [fields, *([r.get(k, "") for k in fields] for r in rows)])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
