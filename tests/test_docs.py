"""The documentation says what the code and the results say: every function, class or method
that docs/method.md's equation table points to is defined in the package (or its tests),
every config key its readings table names is a key of the config, and every README number
beside a run folder or a reading is the one its results file holds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

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


README = (ROOT / "README.md").read_text()
RESULTS_MD = (ROOT / "docs" / "results.md").read_text()  # the results and their discussion (the docs site)
EXTENDING_MD = (ROOT / "docs" / "extending.md").read_text()


def _num(cell: str):
    cell = cell.strip().strip("*")
    return None if cell in ("-", "") else float(cell)


def test_results_page_run_rows_match_their_run_folders():
    """Every docs/results.md row that names a run folder under results/ carries that folder's final numbers."""
    checked = 0
    for line in RESULTS_MD.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 8 or not re.fullmatch(r"`[\w./]+_seed\d`", cells[1]):
            continue
        run = ROOT / "results" / cells[1].strip("`")
        final = json.loads((run / "final_metrics.json").read_text())
        last = (final.get("stage2") or final["stage1"])["test"]
        many, medium, few = (_num(c) for c in cells[6].split("/"))
        want = [final["stage1"]["test"]["top1"], last["top1"], last["many"], last["medium"], last["ece"]]
        got = [_num(cells[4]), _num(cells[5]), many, medium, _num(cells[7])]
        # a split with no class (Medium at IF 10) is '-' in the README and None in the run
        assert [g is None for g in got] == [w is None for w in want], f"README row of {run.name}"
        pairs = [(g, 100 * w) for g, w in zip(got, want) if w is not None]
        assert [g for g, _ in pairs] == pytest.approx([w for _, w in pairs], abs=0.0051), f"README row of {run.name}"
        assert int(cells[3]) == yaml.safe_load((run / "config.yaml").read_text())["seed"]
        checked += 1
    assert checked >= 8


def test_results_page_seed_table_matches_results_readings():
    rows = {r["variant"]: r for r in json.loads((ROOT / "results" / "readings.json").read_text())["rows"]}
    checked = 0
    for line in RESULTS_MD.splitlines():
        m = re.match(r"\| [^|]*\(`(\w+)`\) \| (\d+) \|", line)
        if not m or m.group(1) not in rows:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        r = rows[m.group(1)]
        assert int(cells[1]) == len(r["seeds"])
        keys = ("top1_mean", "top1_std", "many_mean", "medium_mean", "ece_mean")
        assert [_num(c) for c in cells[2:7]] == pytest.approx([r[k] for k in keys], abs=0.0051), m.group(1)
        for cell, key in zip(cells[7:9], ("positional_share_mean", "histogram_class_accuracy_mean")):
            assert _num(cell) == (None if r[key] is None else pytest.approx(r[key], abs=0.00051))
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize(
    "text,heading,least",
    [(RESULTS_MD, "## The comparison methods of Table 1", 6), (README, "## Results", 9)],
    ids=["results page", "README summary"],
)
def test_table1_rows_match_results_table1(text, heading, least):
    """The Table 1 comparisons (CIFAR-10-LT IF 100) of the results page and of the README's
    summary carry results/table1.json's cells."""
    rows = {
        r["variant"]: r
        for r in json.loads((ROOT / "results" / "table1.json").read_text())["rows"]
        if (r["dataset"], r["imbalance"]) == ("cifar10", 100)
    }
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    checked = 0
    for line in section.splitlines():
        m = re.match(r"\| [^|]*`(\w+)`[^|]*\| (\d+) \|", line)
        if not m:
            continue
        r, cells = rows[m.group(1)], [c.strip() for c in line.strip().strip("|").split("|")]
        top1, _, std = cells[2].partition(" +- ")
        many, medium = (_num(c) for c in cells[3].split("/"))
        assert int(cells[1]) == len(r["seeds"]), m.group(1)
        want = [r["top1_mean"], r["top1_std"], r["many_mean"], r["medium_mean"], r["ece_mean"], r["paper"]]
        got = [_num(top1), _num(std or "-"), many, medium, _num(cells[4]), _num(cells[5])]
        assert got == pytest.approx(want, abs=0.0051), m.group(1)
        checked += 1
    assert checked >= least


def test_readme_peer_rows_match_results_peers():
    """The README's "How our numbers relate to the papers'" table carries results/peers.json's
    numbers for every peer run (finished or not) and our table1 rows beside them."""
    rows = {r["method"]: r for r in json.loads((ROOT / "results" / "peers.json").read_text())["rows"]}
    section = README.split("## How our numbers relate to the papers'", 1)[1].split("\n## ", 1)[0]
    checked = 0
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or cells[0] not in rows:
            continue
        r = rows[cells[0]]
        top1, _, std = cells[4].partition(" +- ")
        assert _num(cells[1]) == r["paper"], cells[0]
        for cell, key in ((cells[2], "peer_best_top1"), (cells[3], "peer_final_top1")):
            if r["peer_final_top1"] is None:  # unfinished: its state, not a number
                assert cell in ("running", "queued", ""), (cells[0], cell)
            else:
                assert _num(cell) == pytest.approx(r[key], abs=0.0051), (cells[0], key)
        assert _num(top1) == pytest.approx(r["ours_top1"], abs=0.0051)
        assert _num(std or "-") == (
            None if r["ours_top1_std"] is None else pytest.approx(r["ours_top1_std"], abs=0.0051)
        )
        assert int(cells[5]) == len(r["ours_seeds"])
        checked += 1
    assert checked == len(rows)


def test_readme_is_a_guide_not_a_lab_notebook():
    assert len(README.splitlines()) <= 250
    for page in ("getting-started", "data", "results", "peers", "model-zoo", "reliability", "cli", "citing"):
        assert (ROOT / "docs" / f"{page}.md").is_file(), page


def test_training_loop_example_runs(capsys):
    section = EXTENDING_MD.split("## In your own training loop", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/extending.md (own training loop)", "exec"), {})
    terms = eval(capsys.readouterr().out)  # the example prints the loss terms of eq. 10
    assert set(terms) == {"cls", "recon", "latent_aug"} and all(v > 0 for v in terms.values())


def test_no_model_file_is_committed_outside_the_zoo():
    """Weights stay out of git (run folders keep configs, logs, metrics, analysis and figures);
    the model zoo's HF folders are the exception, at most 30 MB in all."""
    import subprocess

    try:
        tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    models = [p for p in tracked.splitlines() if p.endswith((".pt", ".pth", ".pth.tar", ".safetensors", ".ckpt"))]
    # the resume state of a run that has not finished may travel with the repository between
    # sessions (removed when the run finishes): lcreg's checkpoint.pt, MiSLAS's current.pth.tar,
    # LDAM-DRW's ckpt.pth.tar
    resume = [p for p in models if p.endswith(("/checkpoint.pt", "/current.pth.tar", "/ckpt.pth.tar"))]
    for p in resume:
        run = (ROOT / p).parent
        assert not (run / "final_metrics.json").exists(), f"{p}: a finished run keeps no checkpoint"
        peer = next((d for d in run.parents if (d / "peer.json").is_file()), None)  # a peer's run folder
        if peer is not None:
            assert "finished" not in json.loads((peer / "peer.json").read_text()), f"{p}: the peer's run finished"
    outside = [p for p in models if not p.startswith("zoo/") and p not in resume]
    assert outside == [], outside[:5]
    zoo_bytes = sum((ROOT / p).stat().st_size for p in models if (ROOT / p).exists())
    assert zoo_bytes <= 30 * 2**20


def test_a_page_includes_a_results_file_as_written():
    """docs/peers.md shows results/peers.md through the results_files hook, headings one level down."""
    import sys

    sys.path.insert(0, str(ROOT / "docs" / "hooks"))
    import results_files

    page = (ROOT / "docs" / "peers.md").read_text()
    assert "<!-- include results/peers.md -->" in page
    md = results_files.on_page_markdown(page, None, {"docs_dir": str(ROOT / "docs")}, None)
    included = (ROOT / "results" / "peers.md").read_text()
    assert "<!-- include" not in md and "\n## The peers' own code beside ours" in md
    assert included.splitlines()[2] in md  # its text as written
