"""``edge-run``: count a runner's steps from a file, audio on stdin, or the microphone.

A thin argparse layer over :func:`run_stream` (source -> :class:`edge.stream.StreamCounter` ->
views). Sources: ``FILE`` (any format soundfile reads, any rate >= 8 kHz; resampled/downmixed
to 16 kHz mono; ``--realtime`` paces it; a FIFO or ``<(...)`` is read like stdin; MP4/M4A is
refused with the ffmpeg line that converts it), ``-`` (stdin: a WAV stream, a whole file in
another container, or raw PCM: ``--stdin-format s16le|f32le``, ``--stdin-rate``,
``--stdin-channels``, interleaved channels downmixed), or ``--mic``
(``--device NAME|INDEX``, ``--list-devices``). ``--seconds`` stops after that much audio. The
model is ``--model PATH`` or the bundled default in ``edge/assets`` (see :func:`bundled_model`);
its card must match it. What happens on bad audio is listed in ``edge/sources.py``.

Views (the same for a file and the microphone):

- default: on a terminal, a live view (:class:`_LiveView`: steps, cadence, elapsed time mm:ss,
  input level meter; cadence is blank for the first seconds and reads "no steps" when there are
  none). Each step shows on its own once the audio is :func:`display_delay_s` past it
  (:class:`StepReveal`), so the count rises at the runner's rhythm rather than a window's batch
  at a time; the meter is smoothed (:class:`LevelMeter`) and marks the good range. The view is
  wiped and a summary takes its place (steps, duration, active time, mean and peak cadence, and a
  notice when the input was no run: silence, a constant level, a steady tone, no step at all);
  the summary has the exact count, steps not yet shown included. Not on a terminal (a pipe, a
  file): the summary only; ``--progress`` adds one line per second of audio. ``--verbose`` adds
  the engine's figures in words (the counter's parameters, inference time, schedule, dropped
  blocks, model).
- ``--json``: one JSON object per hop on stdout (:data:`HOP_FIELDS`), then one
  ``{"summary": {...}}`` (:data:`SUMMARY_FIELDS`; with ``--verbose`` also ``"debug"``); the schema
  is versioned by ``summary["version"]`` (:data:`JSON_VERSION`) and documented in
  ``docs/INTERFACES.md``. Messages go to stderr.

Outputs (checked before any audio is read; none is ever the input file or the model):

- ``--log CSV``: the per-hop rows (:data:`LOG_COLUMNS`: :data:`HOP_FIELDS`, then the run's number
  in the file and its source), each written whole as it happens (:mod:`edge.runlog`). An existing
  file is refused unless ``--append`` (rows are added as the next run; its header must be
  edge-run's) or ``--force`` (it is overwritten). A new log that got no row is removed.
- ``--record WAV``: the 16-kHz audio that was counted (16-bit PCM WAV, a valid file after every
  block), to re-count it offline. Any other extension is refused; an existing file is refused
  unless ``--force``. A new recording that got no audio is removed.
- ``--record-dir FOLDER``: the same audio as a recording folder (``edge.recording``: audio.wav +
  recording.json with the wall-clock start), the layout ``footfall data import-imu`` pairs with a
  phone's accelerometer log. A folder that already holds a recording is refused unless ``--force``.
- A folder that does not exist or cannot be written is an error (nothing is created).

Ends: Ctrl-C (or SIGTERM) stops the source, commits the audio consumed so far, prints the
summary and exits 0. A failure mid-run (NaN samples, a broken frame, a lost microphone) prints
the summary of what was counted, then the error, and exits 1; the log and the recording keep
everything up to it. So does a full disk: the output that could not be written keeps whole rows
(whole blocks) up to it, the run stops there, and the error names it. A stdout that goes away (a
pipe closed by its reader, a full disk) stops the run too; the error line on stderr says what was
counted. Exit codes: 0 done; 1 unusable audio or model (missing/corrupt/empty file, NaN/inf
samples, rate below 8 kHz, card mismatch, runtime error), or an output that could not be written;
2 usage error (bad option, a number that is NaN/inf/out of range, output path, stdout closed from
the start, no microphone: the message says how to list devices). Warnings (clipping, a rate below
16 kHz, a truncated or damaged file, dropped blocks) are one line each on stderr. With a
microphone, "listening: ..." is printed on stderr once the first audio block has arrived.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from edge.audio import AudioError
from edge.backends import Backend, BackendError, load_model
from edge.card import CardError, ModelCard, card_path
from edge.contract import DENSITY_FPS, DENSITY_STRIDE, FRAMES_PER_SECOND, SAMPLE_RATE
from edge.counter import MIN_GAP, Alignment, CounterParams
from edge.notices import InputCheck
from edge.sources import FileSource, MicError, MicSource, Source, StdinSource, is_stream, list_devices
from edge.stream import StreamCounter, Update
from edge.util import WriteError

if TYPE_CHECKING:  # imported where a run writes a log or a recording: a plain run does without them (3 ms)
    from edge.recording import WavWriter
    from edge.runlog import RunLog

ASSETS = Path(__file__).resolve().parent / "assets"
_FORMAT_RANK = {".tflite": 0, ".pte": 1, ".onnx": 2}
_RUNTIMES = {".tflite": "LiteRT", ".pte": "ExecuTorch", ".onnx": "ONNX Runtime"}  # by the artifact's extension
FRAME_MS = 1000 * DENSITY_STRIDE // FRAMES_PER_SECOND  # 40 ms: one output frame, the grain of a schedule

DEFAULT_BLOCK_MS = 100.0  # blocks of a paced file and of stdin
FILE_BLOCK_S = 2.0  # a file read as fast as it goes: 2-s blocks (or one hop if longer); per-block costs then vanish
MAX_SECONDS = 7 * 24 * 3600.0  # --seconds: a week of audio, beyond any run
MAX_BLOCK_MS = 60_000.0  # --block-ms: a minute; larger blocks only cost memory
MAX_STDIN_CHANNELS = 64
MAX_THREADS = 256  # --threads: beyond any machine's cores
JSON_VERSION = 1  # summary["version"]: bump when a field below changes meaning or goes away
HOP_FIELDS = ["t", "t_final", "steps", "cadence_spm", "latency_ms", "events", "level_db", "dropped_blocks"]
# the --log CSV: the per-hop fields (events space-separated), then which run of the file and its source
LOG_COLUMNS = HOP_FIELDS + ["run", "source"]
SUMMARY_FIELDS = [
    "version", "source", "model", "backend", "threads", "steps", "events", "audio_s", "schedule", "t_final", "active_s",
    "mean_cadence_spm", "peak_cadence_spm", "windows", "dropped_blocks", "xruns", "clipped_fraction",
    "bad_samples", "wall_s", "interrupted", "error", "warnings", "notices",
]


def bundled_models(assets: Path = ASSETS) -> list[Path]:
    """Every bundled artifact: the models in ``edge/assets`` with a card, the default first
    (.tflite first, int8 first)."""
    candidates = [p for p in assets.glob("*") if p.suffix in _FORMAT_RANK and Path(str(p) + ".card.json").exists()]
    return sorted(candidates, key=lambda p: (_FORMAT_RANK[p.suffix], "int8" not in p.name, p.name))


def bundled_model(assets: Path = ASSETS) -> Path | None:
    """The bundled default artifact (the first of :func:`bundled_models`), or None."""
    return next(iter(bundled_models(assets)), None)


class _Fail(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- outputs


def check_output(option: str, path: Path, inputs: list[Path], *, force: bool, append: bool = False) -> None:
    """Refuse an output path that would lose data or cannot be written (a usage error, exit 2).

    ``inputs``: files that must never be written (the audio, the model and its card).
    """
    for inp in inputs:
        if path.resolve() == inp.resolve() or (path.exists() and inp.exists() and os.path.samefile(path, inp)):
            raise _Fail(f"{option} {path}: that is the input file {inp}; choose another name", 2)
    parent = path.parent
    if not parent.exists():
        raise _Fail(f"{option} {path}: folder {parent} does not exist (create it first)", 2)
    if not parent.is_dir():
        raise _Fail(f"{option} {path}: {parent} is not a folder", 2)
    if path.is_dir():
        raise _Fail(f"{option} {path}: is a folder; give a file name", 2)
    if path.exists() and not path.is_file():
        raise _Fail(f"{option} {path}: is not a regular file (a device or a pipe); give a file name", 2)
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise _Fail(f"{option} {path}: not writable (permission denied)", 2)
    if path.exists() and not (force or append):
        hint = "--append to add rows to it or --force to overwrite it" if option == "--log" else "--force to overwrite it"
        raise _Fail(f"{option} {path}: file exists; pass {hint}", 2)


def _open_log(path: Path, append: bool, source: Source) -> RunLog:
    """The --log CSV (:class:`edge.runlog.RunLog`): a new file with a header, or (append) an
    existing edge-run log."""
    from edge.runlog import LogFileError, RunLog

    try:
        return RunLog(path, LOG_COLUMNS, source.description or type(source).__name__, append=append)
    except (LogFileError, WriteError) as e:  # not edge-run's log; no room for even the header
        raise _Fail(f"--log {e}", 2) from e


def _open_recording(path: Path, force: bool) -> WavWriter:
    """The --record WAV (16-bit PCM, written as it goes: :class:`edge.recording.WavWriter`)."""
    from edge.recording import WavWriter

    try:
        return WavWriter(path, SAMPLE_RATE, exclusive=not force)
    except OSError as e:
        raise _Fail(f"--record {path}: cannot write it ({e.strerror or e})", 2) from e


def _open_recording_folder(folder: Path, source: Source, force: bool):
    from edge.recording import AudioRecorder, RecordingError

    try:
        return AudioRecorder(folder, SAMPLE_RATE, meta={"source": source.description or type(source).__name__,
                                                        "recorded_by": "edge-run"}, force=force)
    except (RecordingError, OSError, RuntimeError) as e:
        raise _Fail(f"--record-dir {folder}: {str(e).splitlines()[0]}", 2) from e


# --------------------------------------------------------------------------- views

# The input level meter of the live view (dBFS RMS of the blocks as they arrive). A block's level
# swings by ~20 dB between a footstep and the gap after it, so the meter rises with a short attack
# and falls with a long release, as a recording level meter does, and settles near the run's level.
LEVEL_ATTACK_S = 0.3
LEVEL_RELEASE_S = 1.5
# A good level: the real-sound evaluation runs span -46 to -14 dBFS (the count does not follow the
# level over that range). Below LEVEL_QUIET_DBFS the steps sink towards a phone microphone's own
# noise (-70 dBFS and up); above LEVEL_LOUD_DBFS the footsteps' peaks, 20 dB and more above the
# RMS, clip.
LEVEL_QUIET_DBFS = -50.0
LEVEL_LOUD_DBFS = -10.0
LEVEL_BAR_DBFS = (-60.0, 0.0)  # the bar's span: 2 dB a cell
LEVEL_BAR_CELLS = 30
REDRAW_S = 0.05  # the live frame is redrawn with each audio block, at most this often (wall time)
PROGRESS_EVERY_S = 1.0  # --progress: one line per this much audio


def mmss(seconds: float) -> str:
    """Elapsed time as m:ss, or h:mm:ss from an hour on."""
    s = int(seconds)
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m:02d}:{s % 60:02d}"


def whole_steps(steps: float) -> int:
    """The count a runner sees: the number of step events once the stream is flushed."""
    return int(math.floor(steps + 0.5))


def display_delay_s(align: Alignment, params: CounterParams) -> float:
    """The longest a step waits, after it lands, for the counter to count it (the latency rules of
    :mod:`edge.counter`): output frame ``k`` is committed when the window that commits it has run
    (the schedule's lookahead behind the audio, up to a hop more); tracker frames ``2k`` and
    ``2k + 1`` enter the tracker with output frame ``k + 1``; a frame is decided when the block of
    tracker frames holding the frame ``lag_s`` after it has entered. The wait of a step at each
    tracker frame over one whole cycle of blocks and hops; the longest is the delay. A run's first
    steps (counted once the run is confirmed) come later."""
    from math import gcd

    fps, block, lag = params.fps, params.periods[0], params.lag_frames
    hop_d, c = align.hop_d, align.commit_offset_d

    def committed_at(k: int) -> float:  # audio time (s) output frame k is committed at
        window = max(0, (k - c) // hop_d)
        return align.window_end(window) / FRAMES_PER_SECOND

    cycle = block * 2 * hop_d // gcd(block, 2 * hop_d)
    first = 4 * (lag + cycle + align.window_frames)  # well into the stream
    waits = (committed_at(((u + lag) // block * block + block - 1) // 2 + 1) - (u + 1) / fps for u in range(first, first + cycle))
    return max(waits)


class StepReveal:
    """The count a runner watches: each counted step shown on its own, at the runner's rhythm.

    A window counts a batch of steps at once (every hop); shown as they come, the count would jump
    by a hop's steps at a time. Instead each step is shown when the audio clock passes its time
    plus ``delay_s`` (:func:`display_delay_s`: the longest a step waits to be counted), so the
    count rises one by one, that long behind the runner. A step counted later than that (a run's
    first steps, counted once the run is confirmed) is shown as it comes; and no step is shown less
    than ``spacing_s`` (the counter's minimum step gap) after the one before it, so a batch of late
    steps is shown one by one too, and the count catches up with the clock over the next steps.
    """

    def __init__(self, delay_s: float, spacing_s: float) -> None:
        self.delay_s, self.spacing_s = delay_s, spacing_s
        self.shown = 0
        self._due: deque[float] = deque()  # audio time each counted step is due, in order
        self._last = -math.inf  # audio time the last step was shown at

    def add(self, times: tuple[float, ...] | list[float], clock: float) -> None:
        """Steps counted (their times, in stream order) once the audio clock is at ``clock``."""
        self._due.extend(max(t + self.delay_s, clock) for t in times)

    def advance(self, clock: float) -> int:
        """Show the steps that are due by ``clock``; return the count shown."""
        while self._due:
            at = max(self._due[0], self._last + self.spacing_s)
            if at > clock:
                break
            self._due.popleft()
            self._last = at
            self.shown += 1
        return self.shown


class LevelMeter:
    """The input level a runner reads: block levels smoothed with a :data:`LEVEL_ATTACK_S` attack
    and a :data:`LEVEL_RELEASE_S` release (per second of audio, whatever the block size)."""

    def __init__(self) -> None:
        self.db: float | None = None  # None before the first block

    def update(self, db: float, seconds: float) -> float:
        if self.db is None:
            self.db = db
        else:
            tau = LEVEL_ATTACK_S if db > self.db else LEVEL_RELEASE_S
            self.db += (1.0 - math.exp(-seconds / tau)) * (db - self.db)
        return self.db


def level_verdict(db: float) -> str:
    """"too quiet" / "too loud" outside the good range, else ""."""
    return "too quiet" if db < LEVEL_QUIET_DBFS else "too loud" if db > LEVEL_LOUD_DBFS else ""


def level_bar(db: float) -> str:
    """A bar of :data:`LEVEL_BAR_CELLS` cells over :data:`LEVEL_BAR_DBFS`, with a ``|`` at each
    end of the good range (:data:`LEVEL_QUIET_DBFS` .. :data:`LEVEL_LOUD_DBFS`)."""
    lo, hi = LEVEL_BAR_DBFS

    def cell(level: float) -> int:
        return int(round(LEVEL_BAR_CELLS * min(1.0, max(0.0, (level - lo) / (hi - lo)))))

    filled = cell(db)
    cells = "█" * filled + "░" * (LEVEL_BAR_CELLS - filled)
    quiet, loud = cell(LEVEL_QUIET_DBFS), cell(LEVEL_LOUD_DBFS)
    return f"{cells[:quiet]}|{cells[quiet:loud]}|{cells[loud:]}"


def _rows(rows: list[tuple[str, str]]) -> list[str]:
    """Label/value rows as text lines: labels right-aligned, no trailing spaces."""
    width = max((len(k) for k, _ in rows), default=0)
    return [f"{k:>{width}}  {v}".rstrip() for k, v in rows]


def _runtime(model: Path | str) -> str:
    """The runtime of an artifact, as a person names it."""
    return _RUNTIMES.get(Path(model).suffix, Path(model).suffix)


class _Frame:
    """Lines redrawn in place on a terminal (cursor up, erase line) and wiped at the end, so what
    follows starts where the frame was. Lines are cut to the terminal's width (a wrapped line
    would break the cursor arithmetic)."""

    def __init__(self, out) -> None:
        self.out = out
        self.height = 0  # lines on screen now

    def draw(self, lines: list[str]) -> None:
        """Show ``lines`` (always as many) in place of the frame on screen."""
        try:
            width = os.get_terminal_size(self.out.fileno()).columns
        except (OSError, ValueError):
            width = 0
        width = width or shutil.get_terminal_size().columns  # a terminal that says 0 (a bare pty): $COLUMNS, or 80
        if self.height:
            text = "\r" + (f"\x1b[{self.height - 1}A" if self.height > 1 else "")  # back to its first line
        else:
            text = "\x1b[?25l"  # no cursor blinking over the frame
        self.out.write(text + "\n".join("\x1b[2K" + line[: width - 1] for line in lines))
        self.out.flush()
        self.height = len(lines)

    def clear(self) -> None:
        """Erase the frame, bottom up; the cursor ends where the frame began."""
        if self.height:
            self.out.write("\r" + "\x1b[2K\x1b[1A" * (self.height - 1) + "\x1b[2K\x1b[?25h")
            self.out.flush()
            self.height = 0


def _is_terminal(out) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


class _LiveView:
    """What a runner watches while a run is counted: steps (:class:`StepReveal`), cadence (blank
    while warming up, then "no steps" or the cadence), elapsed time, and the input level
    (:class:`LevelMeter`, :func:`level_bar`); engine rows with ``verbose``.

    On a terminal: a frame redrawn in place with each audio block, at most every :data:`REDRAW_S`
    of wall time (a microphone's blocks are 50 ms, a paced file's 100 ms: 10 to 20 times a
    second), and wiped before the summary. With ``progress``, or not on a terminal, no frame; with
    ``progress``, one plain line per :data:`PROGRESS_EVERY_S` of audio.
    """

    def __init__(self, engine: StreamCounter, source: Source, out, *, model: str, verbose: bool,
                 progress: bool) -> None:
        self.engine, self.source, self.out, self.model, self.verbose = engine, source, out, model, verbose
        params = engine.counter.params
        self.reveal = StepReveal(display_delay_s(engine.align, params), MIN_GAP / params.fps)
        self.meter = LevelMeter()
        self.frame = _Frame(out) if _is_terminal(out) and not progress else None
        self.progress = progress
        self.latency_ms = 0.0  # inference time of the last window
        self._drawn = -math.inf  # wall time of the last redraw
        self._next_line = PROGRESS_EVERY_S  # audio time of the next progress line

    def counted(self, update: Update) -> None:
        self.reveal.add(update.events, self.engine.audio_s)
        self.latency_ms = update.latency_ms

    def block(self, seconds: float) -> None:
        """After each block of ``seconds`` of audio: move the clock, the meter, the frame."""
        self.meter.update(self.source.level_db, seconds)
        clock = self.engine.audio_s
        self.reveal.advance(clock)
        now = time.perf_counter()
        if self.frame is not None and now - self._drawn >= REDRAW_S:
            self._drawn = now
            self.frame.draw(_rows(self.rows()))
        if self.progress and clock >= self._next_line:
            self._next_line = (math.floor(clock / PROGRESS_EVERY_S) + 1) * PROGRESS_EVERY_S
            cadence = self._cadence()
            verdict = level_verdict(self.meter.db)
            parts = [mmss(clock), f"steps {self.reveal.shown}"] + ([f"cadence {cadence}"] if cadence else []) + \
                [f"level {self.meter.db:.0f} dBFS" + (f" ({verdict})" if verdict else "")]
            self.out.write("  ".join(parts) + "\n")
            self.out.flush()

    def close(self) -> None:
        if self.frame is not None:
            self.frame.clear()

    def _cadence(self) -> str:
        """Blank while too little audio is final to say, then "no steps" or the cadence."""
        c = self.engine.counter
        return {"warming up": "", "no steps": "no steps"}.get(c.cadence_state(), f"{c.cadence_spm():.0f} spm")

    def rows(self) -> list[tuple[str, str]]:
        """The frame's rows (drawn after the first block, so the meter has a level)."""
        e, s, c, db = self.engine, self.source, self.engine.counter, self.meter.db
        rows = [
            ("steps", str(self.reveal.shown)),
            ("cadence", self._cadence()),
            ("elapsed", mmss(e.audio_s)),
            ("level", f"{level_bar(db)} {db:.0f} dBFS  {level_verdict(db)}"),
        ]
        if self.verbose:
            rows += [
                ("exact", f"{c.n_events} steps counted, the audio final up to {c.t_final:.2f} s; each step "
                          f"shown {self.reveal.delay_s:.2f} s after it lands"),
                ("inference", f"{self.latency_ms:.2f} ms the last window (median {e.latency.percentile(50):.2f})"),
                ("dropped", f"{s.dropped_blocks} audio blocks; the microphone's buffer overflowed {s.xruns} times"),
                ("model", self.model),
            ]
        return rows


def _hop_record(u: Update, source: Source) -> dict:
    """A hop's record (:data:`HOP_FIELDS`): a --log row; as text, the --json line (:func:`_hop_lines`)."""
    return u.to_json() | {"level_db": round(source.level_db, 1), "dropped_blocks": source.dropped_blocks}


def _hop_lines(updates: list[Update], source: Source) -> str:
    """The --json lines of a block's hops: ``json.dumps(_hop_record(u, source)) + "\\n"`` for each,
    byte for byte (tests/test_edge_cli.py holds them to it), written out directly rather than as a
    dict json.dumps walks: 14 against 41 ms for the 3750 packets of a 10-min file (a whole run
    costs 28 ms less).

    json.dumps writes a float as ``float.__repr__`` does, but for NaN, Infinity and -Infinity
    (repr: nan, inf, -inf; no key holds either word, so a block's text is mended at once, should
    one ever come). numpy's round of the source's level costs 2.3 us a call: it is taken once a
    block, as every hop of the block has the level and the dropped blocks it had at its end.
    """
    r = float.__repr__
    end = f'], "level_db": {r(round(source.level_db, 1))}, "dropped_blocks": {int.__repr__(source.dropped_blocks)}}}\n'
    text = "".join([
        f'{{"t": {r(round(u.t, 4))}, "t_final": {r(round(u.t_final, 4))}, "steps": {r(u.steps)}, '
        f'"cadence_spm": {r(round(u.cadence_spm, 2))}, "latency_ms": {r(round(u.latency_ms, 3))}, "events": ['
        + ", ".join([r(round(e, 3)) for e in u.events]) + end
        for u in updates
    ])
    if "nan" in text or "inf" in text:
        text = text.replace("nan", "NaN").replace("inf", "Infinity")
    return text


def _one_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


# Failures of a source or the model mid-run: the run stops, what was counted is summarised.
_MIDRUN_ERRORS = (AudioError, MicError, BackendError, OSError, RuntimeError, ValueError)


def run_stream(
    source: Source,
    backend: Backend,
    card: ModelCard,
    *,
    json_out: bool = False,
    log: Path | None = None,
    append: bool = False,
    view: bool = True,
    progress: bool = False,
    verbose: bool = False,
    seconds: float | None = None,
    record: Path | None = None,
    force: bool = False,
    out=None,
    record_dir: Path | None = None,
    align: Alignment | None = None,
) -> dict:
    """Stream ``source`` through the counter; print per-hop JSON / live view; return the summary.

    ``view``: the runner's live view on ``out`` (:class:`_LiveView`: a frame redrawn in place when
    ``out`` is a terminal, nothing otherwise; ``progress``: one plain line per second of audio
    instead).

    Stops at the end of the source, after ``seconds`` of audio, when ``source.stop`` is set, or
    at a failure of the source, the model or an output (a full disk): then the summary's
    ``"error"`` says what happened and covers the audio counted before it. ``record``: also write
    the 16-kHz mono audio that was counted to this file (WAV, 16-bit PCM). ``log``/``record`` are
    opened before any audio is read (``append``/``force``: see the module docstring;
    :func:`check_output` is the caller's). The summary's ``"notices"`` say what the input was when
    it was no run (silence, DC, a steady tone: :mod:`edge.notices`).
    """
    out = out or sys.stdout
    engine = StreamCounter(backend, card, align=align)
    check = InputCheck()
    # the log first: one that the recorders then fail to open is removed again (it has no row)
    run_log = None if log is None else _open_log(log, append, source)
    recorders = []  # (option, its writer)
    try:
        if record is not None:
            recorders.append(("--record", _open_recording(record, force)))
        if record_dir is not None:
            recorders.append(("--record-dir", _open_recording_folder(record_dir, source, force)))
    except _Fail:  # leave nothing behind that would block the next run
        for option, r in recorders:
            if option == "--record":  # the WAV
                r.discard()
            else:
                r.close()
        if run_log is not None:
            run_log.close()
        raise
    live = None
    if view:
        model = f"{backend.path.name} ({_runtime(backend.path)}, {_threads(backend.threads)})"
        live = _LiveView(engine, source, out, model=model, verbose=verbose, progress=progress)
    output_error = None  # the first output that could not be written (the run stops there)

    def emit(updates: list[Update]) -> None:
        nonlocal output_error
        for u in updates:
            if run_log is not None and not run_log.failed:  # the log first: a row is on disk before anyone sees the hop
                try:
                    run_log.write(_hop_record(u, source) | {"events": " ".join(f"{e:.3f}" for e in u.events)})
                except WriteError as e:
                    output_error = output_error or f"--log {_one_line(e)}"
            if live:
                live.counted(u)
        if json_out and updates:  # one write and one flush a block, not a line: a streaming model gives 12 or 13 a 2-s block
            out.write(_hop_lines(updates, source))
            out.flush()

    def record_block(block) -> None:
        nonlocal output_error
        for option, recorder in recorders:
            try:
                recorder.write(block)
            except WriteError as e:
                output_error = output_error or f"{option} {_one_line(e)}"

    t_wall = time.perf_counter()
    limit = None if seconds is None else int(round(seconds * SAMPLE_RATE))
    error = None
    try:
        try:
            for block in source:
                if limit is not None:
                    block = block[: max(0, limit - engine.samples)]
                record_block(block)
                if output_error:  # a block the recording could not keep is not counted either
                    break
                check.observe(block)
                emit(engine.push(block))
                if live:
                    live.block(len(block) / SAMPLE_RATE)
                if output_error or source.stop.is_set() or (limit is not None and engine.samples >= limit):
                    break
        except _MIDRUN_ERRORS as e:
            error = _one_line(e)
        try:
            emit(engine.finish())
        except _MIDRUN_ERRORS as e:
            error = error or _one_line(e)
    finally:
        if live:  # the summary takes the frame's place (it has the final count: steps not yet shown too)
            live.close()
        for option, output in [("--log", run_log), *recorders]:
            try:
                if option == "--record" and output.frames == 0:
                    output.discard()  # as a log without rows: an empty file would only block the next run
                elif output is not None:
                    output.close()
            except OSError as e:  # recording.json on a full disk
                output_error = output_error or f"{option} {_one_line(e)}"
    error = output_error or error
    wall = time.perf_counter() - t_wall
    summary = {"version": JSON_VERSION} | engine.summary() | source.stats() | {
        "model": str(backend.path),
        "backend": backend.name,
        "threads": backend.threads,
        "wall_s": round(wall, 3),
        "interrupted": source.stop.is_set() and error is None,
        "error": error,
    }
    summary["notices"] = check.notices(whole_steps(summary["steps"]))
    return summary


def summary_json(summary: dict, verbose: bool = False) -> dict:
    """The documented ``--json`` summary: :data:`SUMMARY_FIELDS` (and ``"debug"`` with ``verbose``)."""
    out = {k: summary.get(k) for k in SUMMARY_FIELDS}
    if verbose:
        out["debug"] = summary["debug"]
    return out


def summary_rows(summary: dict, verbose: bool = False) -> list[tuple[str, str]]:
    """What the runner reads after a run (the same for a file and the microphone): one mean and
    one peak cadence. The peak needs a few seconds of steady steps; a run too short for it shows
    the mean alone, and a run without steps says so."""
    mean, peak = summary["mean_cadence_spm"], summary["peak_cadence_spm"]
    rows = [
        ("steps", str(whole_steps(summary["steps"]))),
        ("duration", mmss(summary["audio_s"])),
        ("active time", mmss(summary["active_s"])),
        ("mean cadence", "no steps" if mean is None else f"{mean:.0f} spm"),
    ]
    if peak is not None:
        rows.append(("peak cadence", f"{peak:.0f} spm"))
    if summary.get("error"):
        rows.append(("stopped", "by an error (below); the figures cover the audio before it"))
    elif summary.get("interrupted"):
        rows.append(("stopped", "early (Ctrl-C or a stop signal)"))
    rows += [("notice", line) for line in summary.get("notices") or []]
    if verbose:
        d = summary["debug"]
        rows += [
            ("exact count", f"{summary['events']} step events"),
            ("counter", _describe_counter(d["counter"])),
            ("inference", f"median {d['latency_ms_median']:.2f} ms, 95 % within {d['latency_ms_p95']:.2f} ms, "
                          f"longest {d['latency_ms_max']:.2f} ms a call; {summary['windows']} calls"),
            ("front end", f"{d['frontend_ms_total']:.1f} ms in all"),
            ("alignment", _describe_alignment(d["alignment"])),
            ("input", f"{summary['dropped_blocks']} audio blocks dropped, the microphone's buffer overflowed "
                      f"{summary['xruns']} times, {100 * summary['clipped_fraction']:.3f} % of the samples clipped, "
                      f"{summary['bad_samples']} samples not numbers (read as silence)"),
            ("model", f"{summary['model']} ({_runtime(summary['model'])}, {_threads(summary['threads'])})"),
            ("wall time", f"{summary['wall_s']:.2f} s" + (f", {100 * d['rtf']:.2f} % of the audio's duration"
                                                        if d["rtf"] is not None else "")),
        ]
    return rows


def _threads(n: int) -> str:
    return f"{n} thread" + ("s" if n != 1 else "")


def _describe_counter(c: dict) -> str:
    """The counter's parameters (:class:`edge.counter.CounterParams`) in words."""
    return (f"a cadence tracker: steps where a runner's cadence ({c['min_spm']:g}-{c['max_spm']:g} steps a minute) puts them, "
            f"a step at {c['threshold']:.0%} step probability neutral evidence; each step decided {c['lag_s']:g} s after it lands")


def _describe_alignment(a: dict) -> str:
    """The streaming schedule (:meth:`edge.counter.Alignment.describe`) in words."""
    if a.get("stateful"):
        return f"each {a['window_frames'] / FRAMES_PER_SECOND:.2f}-s packet once as it arrives, the network's state carried"
    return (f"a {a['window_frames'] / FRAMES_PER_SECOND:.2f}-s window every {a['hop_frames'] / FRAMES_PER_SECOND:.2f} s, "
            f"each counting its steps up to {a['latency_s']:.2f} s before its end")


def print_summary(summary: dict, json_out: bool = False, verbose: bool = False, out=None) -> None:
    out = out or sys.stdout
    if json_out:
        out.write(json.dumps({"summary": summary_json(summary, verbose)}) + "\n")
    else:
        lines = [f"edge-run summary  {summary['source']}"] + _rows(summary_rows(summary, verbose))
        out.write("\n".join(lines) + "\n")
    out.flush()


def _warn(summary: dict) -> None:
    for line in summary.get("warnings", []):
        _err(f"edge-run: warning: {line}")
    if summary.get("clipped_fraction", 0) > 1e-3:
        _err(f"edge-run: warning: {100 * summary['clipped_fraction']:.2f} % of the input samples are clipped; "
             "counts may suffer")
    trouble = []
    if summary.get("dropped_blocks"):
        trouble.append(f"{summary['dropped_blocks']} audio blocks dropped (the counter fell behind)")
    if summary.get("xruns"):
        trouble.append(f"the microphone's buffer overflowed {summary['xruns']} times")
    if trouble:
        _err(f"edge-run: warning: {'; '.join(trouble)}")


def _err(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _open_source(file: str | None, mic: bool, device: str | None, realtime: bool, block_s: float,
                 stdin_rate: int, stdin_format: str, stop: threading.Event, stdin_channels: int = 1) -> Source:
    if mic and file:
        raise _Fail("give either FILE or --mic, not both", 2)
    if mic:
        def on_start(src: MicSource) -> None:
            _err(f"listening: {src.description} -> 16000 Hz (Ctrl-C to stop)")

        return MicSource(device=device, block_s=min(block_s, 0.05), stop=stop, on_start=on_start)
    if file is None:
        raise _Fail("nothing to count: give an audio FILE, '-' for audio on stdin, or --mic", 2)
    if file == "-":
        try:
            return StdinSource(rate=stdin_rate, fmt=stdin_format, channels=stdin_channels, block_s=block_s, stop=stop)
        except ValueError as e:
            if isinstance(e, AudioError):
                raise
            raise _Fail(str(e), 2) from e
    if is_stream(file):  # a FIFO, <(...), /dev/stdin: read once, front to back, like stdin
        return StdinSource(rate=stdin_rate, fmt=stdin_format, channels=stdin_channels, block_s=block_s, stop=stop,
                           stream=open(file, "rb"), name=file)
    return FileSource(file, block_s=block_s, realtime=realtime, stop=stop)


def _describe_limit(source: Source, seconds: float) -> None:
    """With ``--seconds``, the source's description (the summary's header, the JSON ``source``)
    says what is counted: its first ``seconds``, and of a file longer than that, out of how long."""
    if not isinstance(source, FileSource):
        source.description += f", first {seconds:g} s"
        return
    total = source.announced / source.rate
    if seconds < total:
        source.description = (f"{source.path.name} ({source.rate} Hz, {source.channels} ch, "
                              f"first {seconds:g} s of {total:.1f} s)")


def _check_number(option: str, value: float | None, lo: float, hi: float, unit: str) -> None:
    """A usage error for a value outside [lo, hi], NaN and inf included (float() reads 'nan' and 'inf')."""
    if value is not None and not lo <= value <= hi:  # False for NaN
        raise _Fail(f"{option} {value:g}: give a number of {unit} from {lo:g} to {hi:g}", 2)


def _schedule(card: ModelCard, low_latency: bool, hop_ms: float | None, lookahead_ms: float | None) -> Alignment:
    """The card's schedule (``low_latency``: its low-latency one) with ``--hop-ms`` /
    ``--lookahead-ms`` applied. Only ``--hop-ms``: the schedule's lookahead if it has one, else
    the centre commit."""
    base = card.alignment(low_latency=low_latency)
    if hop_ms is None and lookahead_ms is None:
        return base

    step_ms = card.density_stride * 1000 // FRAMES_PER_SECOND  # FRAME_MS: one output frame
    window_ms = card.window_frames * 1000 // FRAMES_PER_SECOND

    def frames(ms: float, option: str, lo: int, hi: int, why: str) -> int:
        """``ms`` in front-end frames; NaN, inf and anything but a multiple of ``step_ms`` in
        [lo, hi] is the one usage error both options give (and their --help describes)."""
        n = round(ms / step_ms) if math.isfinite(ms) else -1
        if abs(n * step_ms - ms) > 1e-6 or not lo <= n * step_ms <= hi:
            raise _Fail(f"{option} {ms:g}: give a number of milliseconds that is a multiple of {step_ms}, "
                        f"from {lo} to {hi} ({why})", 2)
        return n * card.density_stride

    hop = base.hop_frames if hop_ms is None else \
        frames(hop_ms, "--hop-ms", step_ms, window_ms, f"this model's window is {window_ms} ms")
    hop_ms_ = hop * 1000 // FRAMES_PER_SECOND
    max_lookahead = window_ms - hop_ms_
    lookahead = base.lookahead_frames if lookahead_ms is None else \
        frames(lookahead_ms, "--lookahead-ms", 0, max_lookahead, f"this model's {window_ms}-ms window less the {hop_ms_}-ms hop")
    if lookahead is not None and lookahead * 1000 // FRAMES_PER_SECOND > max_lookahead:  # the card's, with a new hop
        raise _Fail(f"--hop-ms {hop_ms:g}: the card's lookahead of {lookahead * 1000 // FRAMES_PER_SECOND} ms does not "
                    f"fit beside it in the {window_ms}-ms window; give --lookahead-ms (at most {max_lookahead})", 2)
    return Alignment(card.window_frames, hop, card.density_stride, lookahead)


# --------------------------------------------------------------------------- the command line

# (flags, dest, value type or None for a flag, default, metavar, help); --help is added after them
OPTIONS = [
    (("--mic",), "mic", None, False, None, "count live from the microphone"),
    (("--model",), "model", Path, None, "PATH", "model artifact (.tflite/.pte/.onnx) with its card; default: the bundled one"),
    (("--device",), "device", str, None, "NAME|INDEX", "input device name (substring) or index"),
    (("--list-devices",), "list_devices_", None, False, None, "list input devices and exit"),
    (("--json",), "json_out", None, False, None, "one JSON object per hop, then a summary (schema: docs/INTERFACES.md)"),
    (("--verbose", "-v"), "verbose", None, False, None, "also show the engine's figures (latency, alignment, counter)"),
    (("--progress",), "progress", None, False, None, "print the steps, cadence and level as a line per second "
     "of audio (for a log or a pipe) instead of the live view"),
    (("--log",), "log", Path, None, "CSV", "write per-hop rows to this CSV (new file; see --append, --force)"),
    (("--append",), "append", None, False, None, "with --log: add this run's rows to an existing edge-run log (its run column counts up)"),
    (("--record",), "record", Path, None, "WAV", "also save the 16-kHz audio that was counted (16-bit WAV, a .wav name; new file)"),
    (("--record-dir",), "record_dir", Path, None, "FOLDER", "also save it as a recording folder (audio.wav + recording.json) to pair with an accelerometer log"),
    (("--force",), "force", None, False, None, "overwrite existing --log/--record files"),
    (("--realtime",), "realtime", None, False, None, "pace a file in real time"),
    (("--threads",), "threads", int, 1, "N", f"inference threads, 1 to {MAX_THREADS} [default: 1]"),
    (("--block-ms",), "block_ms", float, None, "MS",
     "audio block size, 1 to 60000 ms; default: one model hop for a file, 100 ms for --realtime and stdin "
     "(mic uses <= 50 ms)"),
    (("--seconds",), "seconds", float, None, "SECONDS", "stop after this much audio (seconds, up to a week)"),
    (("--low-latency",), "low_latency", None, False, None, "count each step sooner after it lands: the card's "
     "low-latency schedule (more network runs; its accuracy is in the card)"),
    (("--hop-ms",), "hop_ms", float, None, "MS", f"run the model every this many milliseconds: a multiple "
     f"of {FRAME_MS}, from {FRAME_MS} to the model's window; default: the card's"),
    (("--lookahead-ms",), "lookahead_ms", float, None, "MS", f"count each window's steps up to this many "
     f"milliseconds before its end: a multiple of {FRAME_MS}, from 0 to the "
     "window less the hop (less: sooner, with less context); default: the card's"),
    (("--stdin-rate",), "stdin_rate", int, SAMPLE_RATE, "HZ",
     f"sample rate of raw PCM on stdin (a WAV header overrides it) [default: {SAMPLE_RATE}]"),
    (("--stdin-format",), "stdin_format", str, "s16le", "FORMAT", "raw PCM format on stdin: s16le | f32le [default: s16le]"),
    (("--stdin-channels",), "stdin_channels", int, 1, "N", f"channels of raw PCM on stdin, 1 to {MAX_STDIN_CHANNELS}, "
     "interleaved; downmixed to mono (a WAV header overrides it) [default: 1]"),
]
# options that take a value: each takes the next word whatever it looks like (--seconds -inf, --device -1)
_VALUE_OPTIONS = {flag for flags, _, kind, _, _, _ in OPTIONS if kind is not None for flag in flags}


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump: the caller says it and exits 2
        raise _UsageError(message)


def parser() -> argparse.ArgumentParser:
    """edge-run's command line (argparse rather than typer: typer cost every start about 15 ms)."""
    p = _Parser(prog="edge-run", usage="%(prog)s [OPTIONS] [FILE]", add_help=False, allow_abbrev=False,
                description="Count steps from a FILE, audio on stdin ('-'), or the microphone (--mic).",
                formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=28))
    p.add_argument_group("arguments").add_argument(
        "file", nargs="?", default=None, metavar="FILE", help="audio file (any format soundfile reads); '-' = audio on stdin")
    options = p.add_argument_group("options")  # after the arguments (argparse's own groups, left empty, are not shown)
    for flags, dest, kind, default, metavar, help_ in OPTIONS:
        if kind is None:
            options.add_argument(*flags, dest=dest, action="store_true", help=help_)
        else:
            options.add_argument(*flags, dest=dest, type=kind, default=default, metavar=metavar, help=help_)
    options.add_argument("--help", action="help", help="show this message and exit")
    return p


def _joined(argv: list[str]) -> list[str]:
    """``--option value`` as ``--option=value`` for the options that take one: argparse would read
    a value such as ``-inf`` or ``-1e5`` as an unknown option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--":
            out += argv[i:]
            break
        if argv[i] in _VALUE_OPTIONS and i + 1 < len(argv):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """Run edge-run on ``argv`` (default: ``sys.argv[1:]``); return its exit code."""
    try:
        try:
            args = parser().parse_args(_joined(sys.argv[1:] if argv is None else [str(a) for a in argv]))
        except _UsageError as e:
            _err(f"edge-run: error: {e} (edge-run --help lists the options)")
            return 2
        except SystemExit as e:  # --help printed
            return e.code if isinstance(e.code, int) else 0
        return edge_run(**vars(args))
    except (KeyboardInterrupt, EOFError):  # Ctrl-C before the run's own handler is in place, or a second one
        _err("\nAborted!")
        return 1


def app() -> None:
    """The ``edge-run`` console script: parse ``sys.argv``, exit with edge-run's code."""
    sys.exit(main())


def edge_run(
    *,
    file: str | None,
    mic: bool,
    model: Path | None,
    device: str | None,
    list_devices_: bool,
    json_out: bool,
    verbose: bool,
    progress: bool,
    log: Path | None,
    append: bool,
    record: Path | None,
    record_dir: Path | None,
    force: bool,
    realtime: bool,
    threads: int,
    block_ms: float | None,
    seconds: float | None,
    low_latency: bool,
    hop_ms: float | None,
    lookahead_ms: float | None,
    stdin_rate: int,
    stdin_format: str,
    stdin_channels: int,
) -> int:
    """Count steps from a FILE, audio on stdin ('-'), or the microphone (--mic); return the exit code.
    Every option comes from :func:`parser` (its defaults are in :data:`OPTIONS`), by name."""
    try:
        if list_devices_:
            print(list_devices(), flush=True)
            return 0
        if append and force:
            raise _Fail("give --append or --force, not both", 2)
        if append and log is None:
            raise _Fail("--append needs --log", 2)
        if progress and json_out:
            raise _Fail("give --json or --progress, not both (--json writes a line per hop already)", 2)
        if sys.stdout is None:  # started with stdout closed (>&-): the summary would have nowhere to go
            raise _Fail("stdout is closed; edge-run writes its summary there: redirect it to a file or /dev/null", 2)
        _check_number("--seconds", seconds, 0.0, MAX_SECONDS, "seconds")
        _check_number("--block-ms", block_ms, 1.0, MAX_BLOCK_MS, "milliseconds")
        _check_number("--threads", threads, 1, MAX_THREADS, "threads")
        _check_number("--stdin-channels", stdin_channels, 1, MAX_STDIN_CHANNELS, "channels")
        artifact = model or bundled_model()
        if artifact is None:
            raise _Fail(f"no model: pass --model PATH (no bundled model with a card in {ASSETS})", 2)
        inputs = [Path(artifact), card_path(artifact)] + ([Path(file)] if file not in (None, "-") else [])
        if log is not None:
            check_output("--log", log, inputs, force=force, append=append)
            if append and log.exists() and log.stat().st_size:
                from edge.runlog import LogFileError, next_run

                try:
                    next_run(log, LOG_COLUMNS)
                except (LogFileError, OSError) as e:
                    raise _Fail(f"--log {_one_line(e)}", 2) from e
        if record is not None:
            check_output("--record", record, inputs, force=force)
            if record.suffix.lower() != ".wav":
                raise _Fail(f"--record {record}: edge-run records WAV (16-bit PCM); give a .wav name such as "
                            f"{record.with_suffix('.wav').name} (convert it afterwards if you need "
                            f"{record.suffix or 'another format'})", 2)
            if log is not None and log.resolve() == record.resolve():
                raise _Fail(f"--log and --record are the same file {log}", 2)
        if record_dir is not None:
            for inp in inputs:
                if record_dir.resolve() in (inp.resolve(), inp.resolve().parent):
                    raise _Fail(f"--record-dir {record_dir}: that folder holds the input {inp}; choose another", 2)
            if not record_dir.parent.is_dir():
                raise _Fail(f"--record-dir {record_dir}: folder {record_dir.parent} does not exist (create it first)", 2)
            from edge.recording import RecordingError, check_folder

            try:
                check_folder(record_dir, force)
            except RecordingError as e:
                raise _Fail(f"--record-dir {_one_line(e)}", 2) from e
        stop = threading.Event()
        source = _open_source(file, mic, device, realtime, (block_ms or DEFAULT_BLOCK_MS) / 1e3, stdin_rate, stdin_format,
                              stop, stdin_channels)
        if seconds is not None:
            _describe_limit(source, seconds)
        backend, card = load_model(artifact, threads=threads)
        if card.streaming and (low_latency or hop_ms is not None or lookahead_ms is not None):
            raise _Fail(f"{Path(artifact).name} streams each {card.window_frames * 1000 // FRAMES_PER_SECOND}-ms packet once "
                        "as it arrives: --low-latency, --hop-ms and --lookahead-ms schedule windowed models", 2)
        if low_latency and not card.low_latency:
            raise _Fail(f"--low-latency: {Path(artifact).name}'s card has no low-latency schedule "
                        "(footfall bench-schedule --apply chooses one; or give --hop-ms and --lookahead-ms)", 2)
        align = _schedule(card, low_latency, hop_ms, lookahead_ms)
        if block_ms is None and isinstance(source, FileSource) and not realtime:
            source.block_s = max(FILE_BLOCK_S, align.hop_frames / FRAMES_PER_SECOND)
        for line in source.warnings:  # known before the first block: say it before counting
            _err(f"edge-run: warning: {line}")
        opened = len(source.warnings)
        previous = {}

        def on_signal(signum, frame) -> None:  # first Ctrl-C: stop cleanly; second: the default
            stop.set()
            signal.signal(signum, previous.get(signum, signal.SIG_DFL))

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            summary = run_stream(
                source, backend, card, json_out=json_out, log=log, append=append, view=not json_out,
                progress=progress, verbose=verbose, seconds=seconds, record=record, force=force, record_dir=record_dir, align=align,
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        try:
            print_summary(summary, json_out, verbose)
        except OSError as e:  # stdout went away (a closed pipe, a full disk): stderr says what was counted
            raise _Fail(f"stdout: cannot write ({e.strerror or e}); {whole_steps(summary['steps'])} steps counted in "
                        f"{summary['audio_s']:.1f} s of audio", 1) from e
        _warn(summary | {"warnings": summary["warnings"][opened:]})
        if summary["error"]:
            raise _Fail(summary["error"], 1)
    except _Fail as e:
        _err(f"edge-run: error: {e}")
        return e.code
    except MicError as e:
        _err(f"edge-run: error: {e}")
        return 2
    except (AudioError, CardError, BackendError) as e:
        _err(f"edge-run: error: {e}")
        return 1
    return 0


if __name__ == "__main__":
    app()
