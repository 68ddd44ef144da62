"""The documentation names code that exists: every function, class or method that
docs/method.md's equation table points to is defined in the package (or its tests), and every config key
its readings table names is a key of the config."""

from __future__ import annotations

import re
from pathlib import Path

from lcreg.config import load_config, to_dict

ROOT = Path(__file__).resolve().parents[1]
METHOD_MD = (ROOT / "docs" / "method.md").read_text()
SOURCE = "\n".join(p.read_text() for d in ("src", "tests") for p in (ROOT / d).rglob("*.py"))


def _table(heading_row: str) -> list[list[str]]:
    """The rows (cells) of the markdown table whose header row starts with ``heading_row``."""
    lines = METHOD_MD.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(heading_row))
    rows = []
    for ln in lines[start + 2 :]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return rows


def _defined(name: str) -> bool:
    """A function, class or test, or an attribute a constructor sets (``self.name = ...``)."""
    n = re.escape(name)
    return re.search(rf"^\s*(def|class)\s+{n}\b|^\s*self\.{n}\s*=", SOURCE, re.M) is not None


def test_equation_table_names_code_that_exists():
    rows = _table("| eq. | what | code |")
    assert len(rows) >= 12  # every equation 1-10 and the stages
    names = set()
    for row in rows:
        for quoted in re.findall(r"`([^`]+)`", row[2]):
            if "/" in quoted or "=" in quoted or " " in quoted:
                continue  # a file, a config setting or a phrase, not a name
            names.add(quoted)
    assert {"LatentCategoryHead.latent_maps", "ReconstructionLoss", "LatentAugmentationLoss"} <= names
    missing = [n for n in sorted(names) if not all(_defined(part) for part in n.split("."))]
    assert missing == [], f"docs/method.md names code that does not exist: {missing}"


def test_readings_table_names_config_keys():
    cfg = to_dict(load_config("cifar10_lt_if100", []))
    keys = set()
    for row in _table("| key | values"):
        keys.update(re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", row[0]))
    assert "loss.detach_features" in keys and len(keys) >= 8
    for key in keys:
        node = cfg
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"docs/method.md names '{key}', not a config key"
            node = node[part]
