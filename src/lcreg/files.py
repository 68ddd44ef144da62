"""Files written atomically: to a temporary file in the same folder, flushed and fsync'ed,
then ``os.replace``d over the target and the folder fsync'ed. A crash (or kill -9) mid-write
never leaves a truncated file where the last good one was; a failed write (a full disk, a
read-only folder) removes the temporary file and ends with one line that names the file
and the reason, the previous file kept."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from lcreg.errors import LcregError


def _write_reason(e: BaseException, folder: Path) -> str:
    """One line for a failed write: a full disk says so (torch.save reports it as an
    'unexpected pos' RuntimeError that never names the cause)."""
    no_space = getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "unexpected pos" in str(e)
    try:
        no_space = no_space or shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        pass
    if no_space:
        return "no space left on device"
    if getattr(e, "errno", None) in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied (read-only folder?)"
    return f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems do not open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def portable_path(path: Path) -> str:
    """A path as files meant to be shared record it: relative below the working folder, ``~``
    for the home folder, else as it is (no machine's checkout or cache path)."""
    absolute = os.path.abspath(path)
    cwd, home = os.getcwd(), os.path.expanduser("~")
    if absolute == cwd or absolute.startswith(cwd + os.sep):
        return os.path.relpath(absolute, cwd)
    if home not in ("", os.sep) and absolute.startswith(home + os.sep):
        return "~" + absolute[len(home) :]
    return str(path)


def read_text(path: Path, what: str = "") -> str:
    """A UTF-8 text file (config, list, run file), or one line saying why it cannot be read."""
    label = f"{what} {path}".strip()
    try:
        return Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise LcregError(f"{label} does not exist") from None
    except IsADirectoryError:
        raise LcregError(f"{label} is a folder, not a file") from None
    except OSError as e:
        raise LcregError(f"cannot read {label}: {e.strerror or type(e).__name__}") from None
    except UnicodeDecodeError:
        raise LcregError(f"{label} is not UTF-8 text") from None


def replace_folder(tmp: Path, out: Path) -> None:
    """Swap a finished temporary folder in for ``out`` (which may exist): a failure leaves the
    earlier folder (or none), never half of one. One line naming ``out`` on failure."""
    old = out.with_name(f".{out.name}.{os.getpid()}.old")
    try:
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    except OSError as e:
        raise LcregError(f"cannot write {out}: {e.strerror or type(e).__name__}") from None
    finally:
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def check_output(path: Path) -> None:
    """An output may replace a regular file, never a folder, a device (/dev/null), a FIFO or
    a socket (nor a link to one): every command that writes checks its target with this."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise LcregError(f"cannot write {path}: it exists and is not a regular file")


def check_output_dir(path: Path) -> None:
    """An output folder may exist only as a folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LcregError(f"cannot write into {path}: it exists and is not a folder")


def replace_output(tmp: Path, path: Path) -> None:
    """Rename a finished temporary file over ``path``, checked again just before."""
    check_output(path)
    os.replace(tmp, path)


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """``write(f)`` into a temporary file next to ``path``, fsync, rename over ``path``."""
    path = Path(path)
    check_output(path)  # a folder, a device (/dev/full), a pipe: never replaced
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        replace_output(tmp, path)
    except (OSError, RuntimeError) as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise LcregError(f"cannot write {path}: {_write_reason(e, path.parent)}; the previous file is kept") from None
    _fsync_folder(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_csv(path: Path, rows: list) -> None:
    """Rows (lists) as a CSV file, written atomically."""
    import csv

    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2))
