"""MkDocs hook: the CLI reference page from lcreg's own argparse parsers (``lcreg.cli``), so
the page is never written twice. Replaces ``<!-- cli-reference -->`` in docs/cli.md."""

from __future__ import annotations

import argparse

MARKER = "<!-- cli-reference -->"


def _sections(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    out = [f"## `{prefix}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _sections(sub, f"{prefix} {name}")
    return out


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    from lcreg.cli import build_parser

    parser = build_parser()
    parser.prog = "lcreg"
    return markdown.replace(MARKER, "\n".join(_sections(parser, "lcreg")))
