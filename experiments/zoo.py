"""The model zoo: the headline models as Hugging Face-style folders, and their table.

    python experiments/zoo.py            # writes zoo/<name>/ and docs/model-zoo.md

Each folder is what ``lcreg export RUN --format hf`` writes (config.json, model.safetensors,
a README.md model card); ``lcreg eval zoo/<name>``, ``lcreg predict zoo/<name> IMAGE`` use it
as they use a run folder. The models: LCReg (default reading) and its MiSLAS baseline,
CIFAR-10-LT IF 100 (CIFAR-10 JPEG copy), ResNet-32, seeds 0-2, final epoch of stage 2. Run
folders in git keep no model files; these folders are the only weights committed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "results" / "table1" / "cifar10_if100"
MODELS = [(method, seed) for method in ("lcreg", "mislas") for seed in (0, 1, 2)]
LIMIT_MB = 30


def name_of(method: str, seed: int) -> str:
    return f"{method}-resnet32-cifar10lt-if100-seed{seed}"


def main() -> int:
    zoo = ROOT / "zoo"
    rows = []
    for method, seed in MODELS:
        run, out = RUNS / f"{method}_seed{seed}", zoo / name_of(method, seed)
        if not (out / "model.safetensors").is_file():
            cmd = [sys.executable, "-m", "lcreg", "export", str(run), "--format", "hf", "--out", str(out), "--force"]
            subprocess.run(cmd, check=True, cwd=ROOT)
        final = json.loads((run / "final_metrics.json").read_text())["stage2"]["test"]
        env = json.loads((run / "environment.json").read_text())
        card = (out / "README.md").read_text()
        sha = card.split("sha256: `")[1].split("`")[0]
        rows.append((name_of(method, seed), method, seed, 100 * final["top1"], 100 * final["ece"], sha, env["command"]))
    total = sum(p.stat().st_size for p in zoo.rglob("*") if p.is_file()) / 2**20
    if total > LIMIT_MB:
        raise SystemExit(f"the zoo holds {total:.1f} MB, more than {LIMIT_MB} MB")
    lines = [
        "# Model zoo",
        "",
        "The headline models, as Hugging Face-style folders under `zoo/` in the repository (written by",
        "`python experiments/zoo.py`, which runs `lcreg export RUN --format hf` on each run folder).",
        "CIFAR-10-LT IF 100 built from the CIFAR-10 JPEG copy, ResNet-32, final epoch of stage 2,",
        "test split; `lcreg eval zoo/NAME --data-dir data/cifar10-jpeg.tar.gz` measures it again.",
        f"{total:.1f} MB in all.",
        "",
        "| name | method | seed | top-1 | ECE | sha256 of model.safetensors | trained by |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, method, seed, top1, ece, sha, command in rows:
        lines.append(f"| `{name}` | {method} | {seed} | {top1:.2f} | {ece:.2f} | `{sha[:16]}...` | `{command}` |")
    lines += [
        "",
        "Load one in Python:",
        "",
        "```python",
        "import torch",
        "from lcreg.commands.trained import load_trained_model",
        "",
        'trained = load_trained_model("zoo/lcreg-resnet32-cifar10lt-if100-seed0", torch.device("cpu"))',
        "logits = trained.model(images).logits  # images: (B, 3, 32, 32), normalised as config.json says",
        "```",
        "",
        "Uploaded to the Hugging Face Hub (`huggingface-cli upload ORG/NAME zoo/NAME`), the same",
        "folder loads as `hf-hub:ORG/NAME` in every command.",
        "",
    ]
    (ROOT / "docs" / "model-zoo.md").write_text("\n".join(lines))
    print(f"{len(rows)} models, {total:.1f} MB: docs/model-zoo.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
