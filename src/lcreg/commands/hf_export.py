"""``lcreg export RUN --format hf --out DIR``: a Hugging Face Hub-style model folder.

``DIR/config.json`` (architecture, classes, input size, normalisation, and the full lcreg
config and data summary under ``"lcreg"``), ``DIR/model.safetensors`` (the weights; nothing
pickled) and ``DIR/README.md`` (a model card: YAML front matter for the Hub, then the
metrics, the data, the seed and the command that trained it). ``lcreg eval / predict /
analyze / export`` take the folder as they take a run folder, and ``hf-hub:ORG/NAME`` once it
is uploaded (``huggingface-cli upload ORG/NAME DIR``). The folder is written beside its
target and renamed into place once complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Optional

from lcreg import __version__
from lcreg import run_folder as rf
from lcreg.commands.trained import HF_CONFIG, HF_WEIGHTS, TrainedModel
from lcreg.config import to_dict
from lcreg.errors import LcregError
from lcreg.files import atomic_write_text, check_output_dir, replace_folder
from lcreg.runtime.checkpoint import save_model
from lcreg.runtime.environment import run_provenance

DATASET_IDS = {"cifar10-lt": "cifar10", "cifar100-lt": "cifar100"}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hf_config(trained: TrainedModel) -> dict:
    cfg = trained.cfg
    size = cfg.data.image_size
    return {
        "library_name": "lcreg",
        "lcreg_version": __version__,
        "architecture": f"{cfg.model.backbone} + {cfg.method} head",
        "method": cfg.method,
        "backbone": cfg.model.backbone,
        "num_classes": len(trained.class_names),
        "label_names": trained.class_names,
        "input_size": [3, size, size],
        "mean": list(cfg.data.mean),
        "std": list(cfg.data.std),
        "stage": trained.stage,
        "lcreg": {"config": to_dict(cfg), "summary": trained.summary, "stage": trained.stage},
    }


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def model_card(trained: TrainedModel, name: str, weights_sha256: str) -> str:
    """README.md of the folder: front matter the Hub reads, then what a user needs to trust it."""
    cfg, run = trained.cfg, trained.run_dir
    final = (rf.read_final(run) or {}) if run is not None else {}
    env = rf.read_environment(run) if run is not None and (run / rf.ENVIRONMENT).exists() else {}
    stats = rf.read_json(run / rf.DATA_STATS) if run is not None and (run / rf.DATA_STATS).exists() else {}
    test = (final.get(f"stage{trained.stage}") or {}).get("test", {})
    dataset = DATASET_IDS.get(cfg.data.dataset)
    front = ["---", "license: mit", "library_name: lcreg", "pipeline_tag: image-classification"]
    front += ["tags:", "  - image-classification", "  - long-tailed-recognition", f"  - {cfg.method}"]
    if dataset:
        front += ["datasets:", f"  - {dataset}"]
    if test.get("top1") is not None:
        front += ["metrics:", "  - accuracy"]
    front += ["---", ""]
    counts = trained.summary.get("counts", [])
    lines = [
        f"# {name}",
        "",
        f"{cfg.method} on {cfg.data.dataset}"
        + (f" (imbalance factor {cfg.data.imbalance_factor:g})" if cfg.data.imbalance_factor else "")
        + f", {cfg.model.backbone}, stage {trained.stage} of training, seed {cfg.seed}; trained with "
        "lcreg, the open-source implementation of LCReg (Liu, Wu et al., arXiv:2309.07186).",
        "",
        "| split | top-1 | Many | Medium | Few | ECE |",
        "|---|---|---|---|---|---|",
        f"| test (final epoch) | {_pct(test.get('top1'))} | {_pct(test.get('many'))} | {_pct(test.get('medium'))} | "
        f"{_pct(test.get('few'))} | {_pct(test.get('ece'))} |",
        "",
        "Final-epoch metrics on the test split, never a selected epoch; Many / Medium / Few by training count "
        f"({trained.summary.get('thresholds')}); ECE with 15 bins.",
        "",
        "## Data",
        "",
        f"{len(trained.class_names)} classes, {sum(counts)} training images ({max(counts, default=0)} .. "
        f"{min(counts, default=0)} per class). Source: {stats.get('source', cfg.data.dataset)}.",
        "",
        "## How it was trained",
        "",
        f"- command: `{env.get('command', '-')}`",
        f"- seed: {cfg.seed}; commit(s): {', '.join(c[:12] for c in run_provenance(env, 'commit')) or '-'}; "
        f"device(s): {', '.join(run_provenance(env, 'device')) or '-'}",
        "- the full resolved config is `config.json`'s `lcreg.config`",
        "",
        "## Use",
        "",
        "```bash",
        "pip install lcreg-longtail",
        "lcreg predict hf-hub:ORG/NAME image.png      # or the local folder",
        "lcreg eval hf-hub:ORG/NAME --data-dir DATA",
        "```",
        "",
        f"`model.safetensors` sha256: `{weights_sha256}`",
        "",
    ]
    return "\n".join(front + lines)


def export_hf(trained: TrainedModel, out: Path, force: bool = False, name: Optional[str] = None) -> dict:
    out = Path(out)
    check_output_dir(out)
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise LcregError(f"{out} exists and is not empty; pass --force to replace it")
        if not (out / HF_CONFIG).is_file():
            raise LcregError(f"{out} is not an lcreg HF folder (no {HF_CONFIG}); refusing to replace it")
    if trained.run_dir is not None and out.resolve() == trained.run_dir.resolve():
        raise LcregError("--out is the run folder itself; write the HF folder elsewhere")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        config = hf_config(trained)
        save_model(tmp / HF_WEIGHTS, trained.model.state_dict(), config["lcreg"])
        digest = sha256(tmp / HF_WEIGHTS)
        atomic_write_text(tmp / HF_CONFIG, json.dumps(config, indent=2) + "\n")
        atomic_write_text(tmp / "README.md", model_card(trained, name or out.name, digest))
        replace_folder(tmp, out)
    except OSError as e:
        raise LcregError(f"cannot write {out}: {e.strerror or type(e).__name__}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"path": str(out), "format": "hf", "sha256": digest, "bytes": (out / HF_WEIGHTS).stat().st_size}
