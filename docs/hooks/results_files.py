"""MkDocs hook: the figures and reports under ``results/`` (outside the docs folder) become
files of the site at ``results/...``, so pages link to them as ``results/<file>``; and
``<!-- include results/NAME.md -->`` in a page is replaced by that results file (its headings
one level down), so a page shows the table a command wrote, never a copy of it."""

from __future__ import annotations

import re
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


INCLUDE = re.compile(r"<!-- include (results/[\w./-]+\.md) -->")


def on_page_markdown(markdown: str, page, config, files) -> str:
    root = Path(config["docs_dir"]).parent

    def include(m: re.Match) -> str:
        text = (root / m.group(1)).read_text()
        return re.sub(r"^(#+) ", r"#\1 ", text, flags=re.M)

    return INCLUDE.sub(include, markdown)
