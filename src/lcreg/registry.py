"""Name -> implementation registries (methods, backbones, samplers, datasets), as timm
registers its models: each implementation registers itself with a decorator in the module
that defines it, and the config's allowed values and did-you-mean errors come from here.

A registry knows which module fills it and imports that module the first time it is asked
for its names, so ``lcreg.config`` can validate against it without importing the models,
data or methods packages at import time.

Plug-ins register their own methods, backbones, samplers or datasets the same way, without
a fork: a module named in the environment variable ``LCREG_PLUGINS`` (comma-separated, found
on ``sys.path``), or an installed package's entry point in the group ``lcreg.methods``,
``lcreg.backbones``, ``lcreg.samplers`` or ``lcreg.datasets`` (README, "Your own method").
Plug-ins are imported once, when the first registry is asked for its names.
"""

from __future__ import annotations

import difflib
import importlib
import os
from importlib import metadata
from typing import Callable, Generic, Optional, TypeVar

from lcreg.errors import LcregError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, module: str) -> None:
        self.kind, self.module = kind, module
        self._items: dict[str, T] = {}
        self._loaded = False

    def register(self, name: Optional[str] = None) -> Callable[[T], T]:
        def add(obj: T) -> T:
            key = name or getattr(obj, "name", None) or obj.__name__
            if key in self._items and self._items[key] is not obj:
                raise ValueError(f"{self.kind} '{key}' registered twice")
            self._items[key] = obj
            return obj

        return add

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            importlib.import_module(self.module)
            load_plugins()

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def get(self, name: str) -> T:
        self._load()
        if name not in self._items:
            close = difflib.get_close_matches(name, list(self._items), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else "; a plug-in's? name its module in LCREG_PLUGINS"
            raise LcregError(f"unknown {self.kind} '{name}'{hint} ({', '.join(self.names())})")
        return self._items[name]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._items


PLUGIN_GROUPS = ("lcreg.methods", "lcreg.backbones", "lcreg.samplers", "lcreg.datasets")
_plugins_loaded = False


def _entry_points(group: str) -> list:
    found = metadata.entry_points()
    return list(found.select(group=group) if hasattr(found, "select") else found.get(group, []))  # 3.9: a dict


def load_plugins() -> None:
    """Import the modules of ``LCREG_PLUGINS`` and of the installed entry points (once); a
    plug-in that fails to import is named in a one-line error."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    named = [m.strip() for m in os.environ.get("LCREG_PLUGINS", "").split(",") if m.strip()]
    for module in named:
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - whatever the plug-in raises, name it
            raise LcregError(
                f"plug-in '{module}' (LCREG_PLUGINS) failed to import: {type(e).__name__}: {e} "
                "(is its folder on PYTHONPATH?)"
            ) from e
    for group in PLUGIN_GROUPS:
        for ep in _entry_points(group):
            try:
                ep.load()
            except Exception as e:  # noqa: BLE001
                raise LcregError(f"plug-in '{ep.name}' ({group} entry point {ep.value}) failed to import: {e}") from e


METHODS: Registry = Registry("method", "lcreg.methods")
BACKBONES: Registry = Registry("backbone", "lcreg.models.backbones")
SAMPLERS: Registry = Registry("sampler", "lcreg.data.samplers")
DATASETS: Registry = Registry("dataset", "lcreg.data.datasets")
