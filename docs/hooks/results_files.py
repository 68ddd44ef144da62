"""MkDocs hook: the figures and reports under ``results/`` (outside the docs folder) become
files of the site at ``results/...``, so pages link to them as ``results/<file>``."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

SUFFIXES = (".png", ".html", ".json", ".csv")  # not .md: those would become pages


def on_files(files, config):
    root = Path(config["docs_dir"]).parent
    for path in sorted((root / "results").rglob("*")):
        if path.is_file() and path.suffix in SUFFIXES and not path.name.startswith("."):
            rel = path.relative_to(root).as_posix()
            files.append(File(rel, str(root), config["site_dir"], config["use_directory_urls"]))
    return files
