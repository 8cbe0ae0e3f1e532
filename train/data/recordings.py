"""The recording dataset format (contract 5) and its validating loader.

A dataset is a folder::

    root/
      manifest.csv        run_id,runner_id,audio,steps,surface,session,fold
      <audio files>       any rate/format soundfile reads (resampled to 16 kHz mono on load)
      <steps files>       CSV, header ``time_s`` or ``time_s,foot``; one step per row, seconds
                          from the start of the audio, strictly increasing

``audio`` and ``steps`` are paths relative to ``root`` (or absolute). An empty ``steps`` cell
marks an unlabeled run (PSL labels those). ``fold`` is the runner's group 0..n_folds-1 (see
:mod:`train.data.folds`); leave the whole column empty to have the loader assign groups with
``assign_folds(seed=0)``. ``surface`` and ``session`` are free text (may be empty).

:func:`load_dataset` checks everything it can without decoding audio (headers are read with
``soundfile.info``) and raises :class:`DatasetError` with one line naming the manifest row and
the file at fault.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from edge.util import atomic_open
from train.data.folds import N_FOLDS, assign_folds

MANIFEST = "manifest.csv"
COLUMNS = ("run_id", "runner_id", "audio", "steps", "surface", "session", "fold")
STEPS_HEADER = ("time_s", "foot")


class DatasetError(ValueError):
    """A dataset that cannot be used; the message is one line naming the file (and row)."""


@dataclass(frozen=True)
class Recording:
    """One run: where its audio and steps are, who ran it, its fold group."""

    run_id: str
    runner_id: str
    audio: Path  # absolute
    steps: Path | None  # absolute; None = unlabeled
    surface: str = ""
    session: str = ""
    fold: int | None = None
    duration_s: float = 0.0  # of the audio file, from its header

    @property
    def is_labeled(self) -> bool:
        return self.steps is not None


def labeled(recs: Iterable[Recording]) -> list[Recording]:
    """The runs that have step annotations."""
    return [r for r in recs if r.steps is not None]


def load_steps(path: str | Path, duration_s: float | None = None) -> np.ndarray:
    """Read a steps CSV -> (n,) float64 seconds, strictly increasing.

    Header ``time_s`` or ``time_s,foot`` (the foot column is optional and ignored here).
    With ``duration_s``, every step must lie in [0, duration_s). Raises :class:`DatasetError`.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such steps file")
    try:
        with path.open(newline="") as f:
            rows = [row for row in csv.reader(f) if row and any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{path}: unreadable steps file ({type(e).__name__}: {e})") from e
    if not rows:
        raise DatasetError(f"{path}: empty steps file; expected a header 'time_s[,foot]'")
    header = [c.strip() for c in rows[0]]
    if header[0] != "time_s" or len(header) > 2 or (len(header) == 2 and header[1] != "foot"):
        raise DatasetError(f"{path}: header is {','.join(header)!r}; expected 'time_s' or 'time_s,foot'")
    times = np.empty(len(rows) - 1, dtype=np.float64)
    for i, row in enumerate(rows[1:]):
        line = i + 2
        try:
            times[i] = float(row[0])
        except ValueError:
            raise DatasetError(f"{path}:{line}: step time {row[0]!r} is not a number") from None
        if not np.isfinite(times[i]):
            raise DatasetError(f"{path}:{line}: step time {row[0]!r} is not finite")
    diffs = np.diff(times)
    if (diffs < 0).any():
        i = int(np.flatnonzero(diffs < 0)[0])
        raise DatasetError(f"{path}:{i + 3}: steps not sorted ({times[i + 1]:.6g} s after {times[i]:.6g} s)")
    if (diffs == 0).any():
        i = int(np.flatnonzero(diffs == 0)[0])
        raise DatasetError(f"{path}:{i + 3}: duplicate step at {times[i]:.6g} s")
    if len(times) and times[0] < 0:
        raise DatasetError(f"{path}:2: step at {times[0]:.6g} s is before the start of the audio")
    if duration_s is not None and len(times) and times[-1] >= duration_s:
        bad = int(np.flatnonzero(times >= duration_s)[0])
        raise DatasetError(
            f"{path}:{bad + 2}: step at {times[bad]:.6g} s is outside the audio ({duration_s:.6g} s long); "
            f"{len(times) - bad} step(s) past the end"
        )
    return times


def _audio_duration(path: Path, where: str) -> float:
    import soundfile as sf

    if not path.is_file():
        raise DatasetError(f"{where}: no such audio file {path}")
    try:
        info = sf.info(str(path))
    except Exception as e:  # LibsndfileError, RuntimeError, TypeError...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DatasetError(f"{where}: unreadable audio {path} ({msg})") from e
    if info.frames <= 0 or info.samplerate <= 0:
        raise DatasetError(f"{where}: empty audio {path} ({info.frames} frames)")
    return info.frames / info.samplerate


def _resolve(root: Path, cell: str) -> Path:
    p = Path(cell)
    return p if p.is_absolute() else root / p


def _parse_fold(cell: str, where: str, n_folds: int) -> int | None:
    if cell == "":
        return None
    try:
        fold = int(cell)
    except ValueError:
        raise DatasetError(f"{where}: fold {cell!r} is not an integer; expected 0..{n_folds - 1} or empty") from None
    if not 0 <= fold < n_folds:
        raise DatasetError(f"{where}: fold {fold} out of range; expected 0..{n_folds - 1} or empty")
    return fold


def load_dataset(root: str | Path, n_folds: int = N_FOLDS, check_steps: bool = True) -> list[Recording]:
    """Read and validate ``root/manifest.csv`` -> one :class:`Recording` per row, in file order.

    Checks: manifest present with all columns; non-empty unique run ids; runner ids present;
    folds integers in 0..n_folds-1, the same for every run of a runner, all given or all empty
    (then assigned with ``assign_folds``); audio files present and readable; steps files
    present, numeric, strictly increasing, inside the audio (``check_steps=False`` skips reading
    them, e.g. for a quick listing). Raises :class:`DatasetError` naming the row and the file.
    """
    root = Path(root).resolve()
    manifest = root / MANIFEST
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    if not manifest.is_file():
        raise DatasetError(f"{manifest}: no manifest; a dataset folder needs {MANIFEST} with columns {','.join(COLUMNS)}")
    try:
        with manifest.open(newline="") as f:
            reader = csv.DictReader(f)
            fields = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in COLUMNS if c not in fields]
            if missing:
                raise DatasetError(f"{manifest}: missing column(s) {','.join(missing)}; expected {','.join(COLUMNS)}")
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{manifest}: unreadable manifest ({type(e).__name__}: {e})") from e
    if not rows:
        raise DatasetError(f"{manifest}: no runs listed")

    recs: list[Recording] = []
    first_line: dict[str, int] = {}
    runner_fold: dict[str, tuple[int | None, int]] = {}
    for i, row in enumerate(rows):
        line = i + 2  # header is line 1
        run_id = row["run_id"]
        where = f"{manifest}:{line} (run {run_id!r})"
        if not run_id:
            raise DatasetError(f"{manifest}:{line}: empty run_id")
        if run_id in first_line:
            raise DatasetError(f"{where}: duplicate run_id, first on line {first_line[run_id]}")
        first_line[run_id] = line
        runner = row["runner_id"]
        if not runner:
            raise DatasetError(f"{where}: missing runner_id (folds are runner-independent, every run needs one)")
        fold = _parse_fold(row["fold"], where, n_folds)
        if runner in runner_fold and runner_fold[runner][0] != fold:
            prev, prev_line = runner_fold[runner]
            raise DatasetError(
                f"{where}: runner {runner!r} has fold {row['fold'] or 'empty'} here but {prev if prev is not None else 'empty'} "
                f"on line {prev_line}; a runner's runs must share one fold"
            )
        runner_fold.setdefault(runner, (fold, line))
        if not row["audio"]:
            raise DatasetError(f"{where}: empty audio cell")
        audio = _resolve(root, row["audio"])
        duration = _audio_duration(audio, where)
        steps = _resolve(root, row["steps"]) if row["steps"] else None
        if steps is not None:
            if not steps.is_file():
                raise DatasetError(f"{where}: no such steps file {steps}")
            if check_steps:
                try:
                    load_steps(steps, duration)
                except DatasetError as e:
                    raise DatasetError(f"{where}: {e}") from e
        recs.append(Recording(run_id, runner, audio, steps, row["surface"], row["session"], fold, duration))

    given = [r for r in recs if r.fold is not None]
    if given and len(given) < len(recs):
        r = next(r for r in recs if r.fold is None)
        raise DatasetError(f"{manifest}:{first_line[r.run_id]} (run {r.run_id!r}): empty fold while other rows have one; fill all or none")
    if not given:
        try:
            groups = assign_folds([r.runner_id for r in recs], n_folds=n_folds, seed=0)
        except ValueError as e:
            raise DatasetError(f"{manifest}: cannot assign folds ({e})") from e
        recs = [Recording(r.run_id, r.runner_id, r.audio, r.steps, r.surface, r.session, groups[r.runner_id], r.duration_s) for r in recs]
    return recs


def write_manifest(root: str | Path, recs: Iterable[Recording]) -> Path:
    """Write ``root/manifest.csv`` for ``recs`` (paths relative to root where possible)."""
    root = Path(root).resolve()
    path = root / MANIFEST

    def rel(p: Path | None) -> str:
        if p is None:
            return ""
        try:
            return Path(p).resolve().relative_to(root).as_posix()
        except ValueError:
            return str(p)

    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in recs:
            w.writerow([r.run_id, r.runner_id, rel(r.audio), rel(r.steps), r.surface, r.session, "" if r.fold is None else r.fold])
    return path
