"""The small helpers every layer shares, each defined once: atomic file writes, whole writes to
files written as they go, plain JSON, the versions of the tools that made a file, and the one-line
CLI error.

Torch-free (``edge/`` never imports torch), so ``train/``, ``export/``, ``bench/`` and the CLIs
all use these rather than their own.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator, NoReturn

import numpy as np

EXIT_USAGE = 2  # the exit status of every footfall command refused for its input or arguments


# ---------------------------------------------------------------------------- atomic writes


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A fresh temporary path beside ``path``; once the block ends without an exception, it
    replaces ``path`` in one rename (so readers see the old file or the whole new one, never a
    part). On an exception the temporary file is removed and ``path`` is untouched.

    The name is unique (concurrent writers never share one) and starts with a dot; ``suffix``
    ends it, for writers that choose the format by extension. The file gets the usual
    permissions (``0o666`` less the umask), not ``mkstemp``'s 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, fsync: bool = False, newline: str | None = None) -> Iterator[IO]:
    """``open(path, mode)`` that publishes the file atomically when the block ends (see
    :func:`atomic_path`); ``fsync``: flush it to the disk first (checkpoints)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a whole file: mode 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, newline=newline, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())


def atomic_write(path: str | Path, data: str | bytes | Callable[[IO[bytes]], Any], *, fsync: bool = False) -> Path:
    """Write ``data`` (text, bytes, or a function writing to a binary file) to ``path`` atomically."""
    if isinstance(data, str):
        with atomic_open(path, "w", fsync=fsync) as f:
            f.write(data)
    elif isinstance(data, (bytes, bytearray, memoryview)):
        with atomic_open(path, "wb", fsync=fsync) as f:
            f.write(data)
    else:
        with atomic_open(path, "wb", fsync=fsync) as f:
            data(f)
    return Path(path)


# ---------------------------------------------------------------------------- files written as they go


class WriteError(OSError):
    """An output written as it goes that could not take more (a full disk); the message is one
    line naming the file and what it keeps."""


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (one call may take only part of it, e.g. the
    part that fits on the disk; the next then raises)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ---------------------------------------------------------------------------- JSON


def jsonable(x: Any) -> Any:
    """Plain JSON: NaN/inf -> None, numpy scalars -> Python, tuples -> lists, Paths -> str."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


def json_text(obj: Any, indent: int | None = 2) -> str:
    """``obj`` as NaN-free JSON text, one trailing newline."""
    return json.dumps(jsonable(obj), indent=indent) + "\n"


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """Atomic, NaN-free JSON (see :func:`jsonable`)."""
    return atomic_write(path, json_text(obj, indent))


# ---------------------------------------------------------------------------- provenance


def tool_versions(*packages: str) -> dict[str, str]:
    """``{package: installed version}`` of those of ``packages`` that are installed, in order.

    Read from the package metadata, so asking imports nothing (torch's version without torch).
    ``importlib.metadata`` itself is imported here, not with the module: it costs 17 ms of every
    ``edge-run`` start, which never asks.
    """
    import importlib.metadata as md

    out = {}
    for pkg in packages:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


# ---------------------------------------------------------------------------- CLI errors


def first_line(e: BaseException | str) -> str:
    """The first line of an error's message (its type's name when it has none)."""
    text = str(e)
    return text.splitlines()[0] if text.strip() else type(e).__name__


def fail(message: BaseException | str, code: int = EXIT_USAGE) -> NoReturn:
    """End a command: ``error: <message>`` on stderr (an exception's first line), exit status ``code``."""
    import typer  # the CLIs' toolkit; imported here so that the helpers above stay import-light

    typer.echo(f"error: {message if isinstance(message, str) else first_line(message)}", err=True)
    raise typer.Exit(code)
