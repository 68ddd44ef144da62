"""Progress bars that stay out of logs: shown only on an interactive terminal (stderr is a
TTY) and never after ``--no-progress`` (``set_enabled(False)``), so a log written to a file
holds lines, not carriage-return frames."""

from __future__ import annotations

from typing import Iterable, Optional

from tqdm.auto import tqdm

_enabled = True


def set_enabled(enabled: bool) -> None:
    global _enabled
    _enabled = enabled


def progress(iterable: Optional[Iterable] = None, show: bool = True, **kwargs) -> tqdm:
    """tqdm over ``iterable``; disabled unless enabled, ``show`` and stderr is a terminal
    (tqdm's ``disable=None``)."""
    return tqdm(iterable, disable=None if (_enabled and show) else True, **kwargs)


def write(line: str) -> None:
    """A line that does not break a running bar."""
    tqdm.write(line)
