"""Name -> implementation registries (methods, backbones, samplers, datasets), as timm
registers its models: each implementation registers itself with a decorator in the module
that defines it, and the config's allowed values and did-you-mean errors come from here.

A registry knows which module fills it and imports that module the first time it is asked
for its names, so ``lcreg.config`` can validate against it without importing the models,
data or methods packages at import time.
"""

from __future__ import annotations

import difflib
import importlib
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

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def get(self, name: str) -> T:
        self._load()
        if name not in self._items:
            close = difflib.get_close_matches(name, list(self._items), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise LcregError(f"unknown {self.kind} '{name}'{hint} ({', '.join(self.names())})")
        return self._items[name]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._items


METHODS: Registry = Registry("method", "lcreg.methods")
BACKBONES: Registry = Registry("backbone", "lcreg.models.backbones")
SAMPLERS: Registry = Registry("sampler", "lcreg.data.samplers")
DATASETS: Registry = Registry("dataset", "lcreg.data.datasets")
