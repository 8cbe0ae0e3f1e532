"""The ``edge-run --log`` CSV: one row per hop as it happens, whole rows only.

Columns: the per-hop fields, then ``run`` (1 in a new log; each ``--append`` adds 1, so a run's
rows are those with its number) and ``source`` (what that run counted). Each row goes to the file
in one write, unbuffered; a row the disk cannot take is cut off again (:class:`edge.util.WriteError`),
so the log always ends with a whole row. A log this run created and wrote no row to is removed at
close: a header alone holds nothing and would only block the next run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path

from edge.util import WriteError, write_all


class LogFileError(ValueError):
    """An existing file that ``--append`` cannot add to; the message is one line."""


def _row_text(values: list) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerow(values)  # "\r\n"-terminated, as csv writes
    return buf.getvalue().encode("utf-8")


def next_run(path: str | Path, columns: list[str]) -> int:
    """The number the next run appended to the log at ``path`` gets (1 + the highest there);
    :class:`LogFileError` when the file is not a log with these ``columns``."""
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            if header != list(columns):
                raise LogFileError(f"{path}: not an edge-run log with the columns {','.join(columns)} "
                                   f"(its header is {','.join(header)[:60]!r}); choose another file")
            at = columns.index("run")
            runs = [int(row[at]) for row in reader if len(row) == len(columns) and row[at].isdigit()]
    except csv.Error as e:  # a NUL byte, a runaway quote: not a CSV this wrote
        raise LogFileError(f"{path}: not an edge-run log ({e}); choose another file") from e
    return max(runs, default=0) + 1


class RunLog:
    """``write(row)`` per hop; ``columns`` ends with ``run`` and ``source``, which this fills in."""

    def __init__(self, path: str | Path, columns: list[str], source: str, append: bool = False) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self.source = source
        self.rows = 0
        self.failed = False
        self.run = 1
        tail = b""
        if append and self.path.exists() and self.path.stat().st_size:
            self.run = next_run(self.path, self.columns)
            with open(self.path, "rb") as f:
                f.seek(max(0, self.path.stat().st_size - 2))
                tail = f.read()
        existed = os.path.lexists(self.path)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        try:
            self._fd = os.open(self.path, flags, 0o666)
        except OSError as e:
            raise WriteError(f"{self.path}: cannot write it ({e.strerror})") from e
        self.size = os.fstat(self._fd).st_size
        self.created = not existed  # only a file this run created is ever removed (never /dev/full, ...)
        first = _row_text(self.columns) if self.size == 0 else b""
        if tail and not tail.endswith(b"\n"):  # an earlier run cut mid-row: start on a line of our own
            first = b"\r\n"
        try:
            self._write(first)
        except WriteError:
            self.close()
            raise

    def _write(self, data: bytes) -> None:
        if not data:
            return
        try:
            write_all(self._fd, data)
        except OSError as e:
            self.failed = True
            with contextlib.suppress(OSError):  # not a regular file: nothing to take back
                os.ftruncate(self._fd, self.size)  # the rows before this one, whole
            raise WriteError(f"{self.path}: cannot write ({e.strerror}); the log keeps the {self.rows} rows "
                             f"this run wrote before it") from e
        self.size += len(data)

    def write(self, row: dict) -> None:
        """Append one row (the values of ``columns``; ``run`` and ``source`` are this log's); nothing
        once a write has failed."""
        if self.failed or self._fd < 0:
            return
        values = {**row, "run": self.run, "source": self.source}
        self._write(_row_text([values.get(c, "") for c in self.columns]))
        self.rows += 1

    def close(self) -> None:
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        os.close(fd)
        if self.created and self.rows == 0:
            self.path.unlink(missing_ok=True)
