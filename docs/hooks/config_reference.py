"""MkDocs hook: the configuration reference from lcreg's own config dataclasses
(``lcreg/config.py``: every key, its default, and the comment beside or above it) and the
registered methods' parameters, so the page is never written twice. Replaces
``<!-- config-reference -->`` in docs/configuration.md."""

from __future__ import annotations

import ast
import dataclasses
import inspect

MARKER = "<!-- config-reference -->"
# config class -> the dotted prefix of its keys, in the order the page lists them
SECTIONS = [
    ("Config", ""),
    ("DataConfig", "data."),
    ("ModelConfig", "model."),
    ("LatentConfig", "model.latent."),
    ("LossConfig", "loss."),
    ("Stage1Config", "stage1."),
    ("Stage2Config", "stage2."),
]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _comments(source: str) -> dict[str, dict[str, str]]:
    """class name -> field name -> its comment: the one on its line, else the comment lines
    right above it."""
    lines = source.splitlines()
    out: dict[str, dict[str, str]] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        fields = out.setdefault(node.name, {})
        for item in node.body:
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
                continue
            line = lines[item.end_lineno - 1][item.end_col_offset :]
            text = line.split("#", 1)[1].strip() if "#" in line else ""
            if not text:
                above, i = [], item.lineno - 2
                while i >= 0 and lines[i].strip().startswith("#"):
                    above.insert(0, lines[i].strip().lstrip("#").strip())
                    i -= 1
                text = " ".join(above)
            fields[item.target.id] = text
    return out


def _default(value: object) -> str:
    return "`null`" if value is None else f"`{value}`"


def reference() -> str:
    import lcreg.config as config
    from lcreg.methods import get_method
    from lcreg.registry import METHODS

    comments = _comments(inspect.getsource(config))
    out = []
    for cls_name, prefix in SECTIONS:
        cls = getattr(config, cls_name)
        instance = cls()
        out += [f"### `{prefix.rstrip('.') or 'top level'}`", "", "| key | default | meaning |", "|---|---|---|"]
        for f in dataclasses.fields(cls):
            value = getattr(instance, f.name)
            if dataclasses.is_dataclass(value):
                continue  # a section of its own
            out.append(
                f"| `{prefix}{f.name}` | {_cell(_default(value))} | {_cell(comments[cls_name].get(f.name, ''))} |"
            )
        out.append("")
    out += ["### `method_params`, by method", "", "| method | parameter | default | meaning |", "|---|---|---|---|"]
    for name in METHODS.names():
        params = get_method(name).Params
        for f in dataclasses.fields(params) if params is not None else ():
            default = f.default if f.default is not dataclasses.MISSING else "-"
            bounds = ", ".join(f"{k} {f.metadata[k]}" for k in ("min", "gt", "max", "lt") if k in f.metadata)
            meaning = f.metadata.get("help", "") + (f" ({bounds})" if bounds else "")
            out.append(f"| `{name}` | `method_params.{f.name}` | {_cell(_default(default))} | {_cell(meaning)} |")
    return "\n".join(out) + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, reference())
