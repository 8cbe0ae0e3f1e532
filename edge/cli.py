"""``edge-run``: count a runner's steps from a file, audio on stdin, or the microphone.

A thin typer layer over :func:`run_stream` (source -> :class:`edge.stream.StreamCounter` ->
views). Sources: ``FILE`` (any format soundfile reads, any rate >= 8 kHz; resampled/downmixed
to 16 kHz mono; ``--realtime`` paces it; a FIFO or ``<(...)`` is read like stdin; MP4/M4A is
refused with the ffmpeg line that converts it), ``-`` (stdin: a WAV stream, a whole file in
another container, or raw PCM: ``--stdin-format s16le|f32le``, ``--stdin-rate``,
``--stdin-channels``, interleaved channels downmixed), or ``--mic``
(``--device NAME|INDEX``, ``--list-devices``). ``--seconds`` stops after that much audio. The
model is ``--model PATH`` or the bundled default in ``edge/assets`` (see :func:`bundled_model`);
its card must match it. What happens on bad audio is listed in ``edge/sources.py``.

Views (the same for a file and the microphone):

- default: a live view (steps, cadence, elapsed time mm:ss, input level meter; cadence is blank
  for the first seconds and reads "no steps" when there are none), then a summary (steps,
  duration, active time, mean and peak cadence, and a notice when the input was no run: silence,
  a constant level, a steady tone, no step at all). ``--verbose`` adds the engine's figures
  (the counter's parameters, inference latency, alignment, dropped blocks, model).
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
(whole blocks) up to it, the run stops there, and the error names it. Exit codes: 0 done; 1
unusable audio or model (missing/corrupt/empty file, NaN/inf samples, rate below 8 kHz, card
mismatch, runtime error), or an output that could not be written; 2 usage error (bad option, a
number that is NaN/inf/out of range, output path, no microphone: the message says how to list
devices). Warnings (clipping, a rate below 16 kHz, a truncated or damaged file, dropped blocks)
are one line each on stderr. With a microphone, "listening: ..." is printed on stderr once the
first audio block has arrived.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import typer

from edge.audio import AudioError
from edge.backends import Backend, BackendError, load_model
from edge.card import CardError, ModelCard, card_path
from edge.counter import Alignment
from edge.frontend import FRAMES_PER_SECOND, SAMPLE_RATE
from edge.notices import InputCheck
from edge.recording import RecordingError, WavWriter, check_folder
from edge.runlog import LogFileError, RunLog, next_run
from edge.sources import FileSource, MicError, MicSource, Source, StdinSource, is_stream, list_devices
from edge.stream import StreamCounter, Update
from edge.util import WriteError

ASSETS = Path(__file__).resolve().parent / "assets"
_FORMAT_RANK = {".tflite": 0, ".pte": 1, ".onnx": 2}

DEFAULT_BLOCK_MS = 100.0  # blocks of a paced file and of stdin
FILE_BLOCK_S = 2.0  # a file read as fast as it goes: 2-s blocks (or one hop if longer); per-block costs then vanish
MAX_SECONDS = 7 * 24 * 3600.0  # --seconds: a week of audio, beyond any run
MAX_BLOCK_MS = 60_000.0  # --block-ms: a minute; larger blocks only cost memory
MAX_STDIN_CHANNELS = 64
JSON_VERSION = 1  # summary["version"]: bump when a field below changes meaning or goes away
HOP_FIELDS = ["t", "t_final", "steps", "cadence_spm", "latency_ms", "events", "level_db", "dropped_blocks"]
# the --log CSV: the per-hop fields (events space-separated), then which run of the file and its source
LOG_COLUMNS = HOP_FIELDS + ["run", "source"]
SUMMARY_FIELDS = [
    "version", "source", "model", "backend", "threads", "steps", "events", "audio_s", "schedule", "t_final", "active_s",
    "mean_cadence_spm", "peak_cadence_spm", "windows", "dropped_blocks", "xruns", "clipped_fraction",
    "bad_samples", "wall_s", "interrupted", "error", "warnings", "notices",
]

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__.splitlines()[0])


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
    try:
        return RunLog(path, LOG_COLUMNS, source.description or type(source).__name__, append=append)
    except (LogFileError, WriteError) as e:  # not edge-run's log; no room for even the header
        raise _Fail(f"--log {e}", 2) from e


def _open_recording(path: Path, force: bool) -> WavWriter:
    """The --record WAV (16-bit PCM, written as it goes: :class:`edge.recording.WavWriter`)."""
    try:
        return WavWriter(path, SAMPLE_RATE, exclusive=not force)
    except OSError as e:
        raise _Fail(f"--record {path}: cannot write it ({e.strerror or e})", 2) from e


def _open_recording_folder(folder: Path, source: Source, force: bool):
    from edge.recording import AudioRecorder

    try:
        return AudioRecorder(folder, SAMPLE_RATE, meta={"source": source.description or type(source).__name__,
                                                        "recorded_by": "edge-run"}, force=force)
    except (RecordingError, OSError, RuntimeError) as e:
        raise _Fail(f"--record-dir {folder}: {str(e).splitlines()[0]}", 2) from e


# --------------------------------------------------------------------------- views


def mmss(seconds: float) -> str:
    """Elapsed time as m:ss, or h:mm:ss from an hour on."""
    s = int(seconds)
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m:02d}:{s % 60:02d}"


def whole_steps(steps: float) -> int:
    """The count a runner sees: the number of step events once the stream is flushed."""
    return int(math.floor(steps + 0.5))


def _level_bar(db: float, width: int = 24) -> str:
    filled = int(round(width * min(1.0, max(0.0, (db + 60.0) / 60.0))))  # -60 dBFS .. 0 dBFS
    return "█" * filled + "░" * (width - filled)


class _LiveView:
    """The live panel (steps, cadence, elapsed, level; engine rows with ``verbose``);
    refreshed at most every 0.1 s of wall time."""

    def __init__(self, engine: StreamCounter, source: Source, model: str, verbose: bool = False) -> None:
        from rich.console import Console
        from rich.live import Live

        self.engine, self.source, self.model, self.verbose = engine, source, model, verbose
        self.last: Update | None = None
        self._t = 0.0
        console = Console(stderr=False)
        self.live = Live(self.render(), console=console, refresh_per_second=8, transient=False)

    def render(self):
        from rich.markup import escape
        from rich.table import Table

        e, s, u = self.engine, self.source, self.last
        c = e.counter
        state = c.cadence_state()  # blank while warming up, then "no steps" or the cadence
        cadence = {"warming up": "", "no steps": "[yellow]no steps[/]"}.get(state, f"{c.cadence_spm():3.0f} spm")
        table = Table.grid(padding=(0, 2))
        table.add_column(justify="right", style="bold")
        table.add_column()
        table.add_row("steps", f"[bold green]{whole_steps(e.steps):>6d}[/]")
        table.add_row("cadence", cadence)
        table.add_row("elapsed", mmss(e.audio_s))
        table.add_row("level", f"{_level_bar(s.level_db)} {s.level_db:4.0f} dBFS")
        if self.verbose:
            table.add_row("exact", f"{e.steps:.2f} steps, {c.n_events} events, final up to {c.t_final:.2f} s")
            table.add_row("inference", f"{(u.latency_ms if u else 0.0):6.2f} ms (median {e.latency.percentile(50):.2f})")
            table.add_row("dropped", f"{s.dropped_blocks} blocks, {s.xruns} xruns")
            table.add_row("model", escape(self.model))
        return table

    def refresh(self, update: Update | None = None, force: bool = False) -> None:
        if update is not None:
            self.last = update
        now = time.perf_counter()
        if force or now - self._t > 0.1:
            self._t = now
            self.live.update(self.render())


def _hop_record(u: Update, source: Source) -> dict:
    return u.to_json() | {"level_db": round(source.level_db, 1), "dropped_blocks": source.dropped_blocks}


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
    verbose: bool = False,
    seconds: float | None = None,
    record: Path | None = None,
    force: bool = False,
    out=None,
    record_dir: Path | None = None,
    align: Alignment | None = None,
) -> dict:
    """Stream ``source`` through the counter; print per-hop JSON / live view; return the summary.

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
        for _, r in recorders:
            if isinstance(r, WavWriter):
                r.discard()
            else:
                r.close()
        if run_log is not None:
            run_log.close()
        raise
    live = None
    if view:
        live = _LiveView(engine, source, f"{backend.path.name} [{backend.name}, {backend.threads} thr]", verbose)
    output_error = None  # the first output that could not be written (the run stops there)

    def emit(updates: list[Update]) -> None:
        nonlocal output_error
        for u in updates:
            rec = _hop_record(u, source)
            if run_log is not None and not run_log.failed:  # the log first: a row is on disk before anyone sees the hop
                try:
                    run_log.write(rec | {"events": " ".join(f"{e:.3f}" for e in u.events)})
                except WriteError as e:
                    output_error = output_error or f"--log {_one_line(e)}"
            if json_out:
                out.write(json.dumps(rec) + "\n")
                out.flush()
            if live:
                live.refresh(u)

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
        if live:
            live.live.start()
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
                    live.refresh()
                if output_error or source.stop.is_set() or (limit is not None and engine.samples >= limit):
                    break
        except _MIDRUN_ERRORS as e:
            error = _one_line(e)
        try:
            emit(engine.finish())
        except _MIDRUN_ERRORS as e:
            error = error or _one_line(e)
    finally:
        if live:
            live.refresh(force=True)
            live.live.stop()
            if not live.live.console.is_terminal:  # rich leaves the last line of a non-tty render open
                live.live.console.line()
        for option, output in [("--log", run_log), *recorders]:
            try:
                if isinstance(output, WavWriter) and output.frames == 0:
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
    """What the runner reads after a run (the same for a file and the microphone)."""

    def spm(v: float | None) -> str:
        return "—" if v is None else f"{v:.0f} spm"

    rows = [
        ("steps", str(whole_steps(summary["steps"]))),
        ("duration", mmss(summary["audio_s"])),
        ("active time", mmss(summary["active_s"])),
        ("mean cadence", spm(summary["mean_cadence_spm"])),
        ("peak cadence", spm(summary["peak_cadence_spm"])),
    ]
    if summary.get("error"):
        rows.append(("stopped", "by an error (below); the figures cover the audio before it"))
    elif summary.get("interrupted"):
        rows.append(("stopped", "early (Ctrl-C)"))
    rows += [("notice", line) for line in summary.get("notices") or []]
    if verbose:
        d = summary["debug"]
        rows += [
            ("exact count", f"{summary['events']} step events"),
            ("counter", json.dumps(d["counter"])),
            ("inference", f"median {d['latency_ms_median']:.2f} ms, p95 {d['latency_ms_p95']:.2f} ms, "
                          f"max {d['latency_ms_max']:.2f} ms per hop; {summary['windows']} hops"),
            ("front end", f"{d['frontend_ms_total']:.1f} ms in all; real-time factor {d['rtf']}"),
            ("alignment", json.dumps(d["alignment"])),
            ("input", f"{summary['dropped_blocks']} dropped blocks, {summary['xruns']} xruns, "
                      f"{100 * summary['clipped_fraction']:.3f} % clipped, {summary['bad_samples']} bad samples"),
            ("model", f"{summary['model']} [{summary['backend']}, {summary['threads']} thr]"),
            ("wall time", f"{summary['wall_s']:.2f} s"),
        ]
    return rows


def print_summary(summary: dict, json_out: bool = False, verbose: bool = False, out=None) -> None:
    out = out or sys.stdout
    if json_out:
        out.write(json.dumps({"summary": summary_json(summary, verbose)}) + "\n")
        out.flush()
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=out)
    console.print(f"[bold]edge-run summary[/]  {escape(summary['source'])}")
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="bold")
    table.add_column()
    for k, v in summary_rows(summary, verbose):
        table.add_row(k, escape(v))
    console.print(table)


def _warn(summary: dict) -> None:
    for line in summary.get("warnings", []):
        _err(f"edge-run: warning: {line}")
    if summary.get("clipped_fraction", 0) > 1e-3:
        _err(f"edge-run: warning: {100 * summary['clipped_fraction']:.2f} % of the input samples are clipped; "
             "counts may suffer")
    if summary.get("dropped_blocks") or summary.get("xruns"):
        _err(f"edge-run: warning: {summary['dropped_blocks']} audio blocks dropped, {summary['xruns']} xruns "
             "(the counter fell behind)")


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


def _check_number(option: str, value: float | None, lo: float, hi: float, unit: str) -> None:
    """A usage error for a value outside [lo, hi], NaN and inf included (typer's bounds let NaN through)."""
    if value is not None and not lo <= value <= hi:  # False for NaN
        raise _Fail(f"{option} {value:g}: give a number of {unit} from {lo:g} to {hi:g}", 2)


def _schedule(card: ModelCard, low_latency: bool, hop_ms: float | None, lookahead_ms: float | None) -> Alignment:
    """The card's schedule (``low_latency``: its low-latency one) with ``--hop-ms`` /
    ``--lookahead-ms`` applied. Only ``--hop-ms``: the schedule's lookahead if it has one, else
    the centre commit."""
    base = card.alignment(low_latency=low_latency)
    if hop_ms is None and lookahead_ms is None:
        return base

    step_ms = card.density_stride * 1000 // FRAMES_PER_SECOND  # 40 ms: one density frame
    window_ms = card.window_frames * 1000 // FRAMES_PER_SECOND

    def frames(ms: float, option: str, hi: int) -> int:
        n = round(ms / step_ms)
        if abs(n * step_ms - ms) > 1e-6 or not (0 <= n * step_ms <= hi):
            raise _Fail(f"{option} {ms:g}: must be a multiple of {step_ms} ms between {step_ms if option == '--hop-ms' else 0} "
                        f"and {hi} (this model's window is {window_ms} ms)", 2)
        return n * card.density_stride

    hop = base.hop_frames if hop_ms is None else frames(hop_ms, "--hop-ms", window_ms)
    max_lookahead = window_ms - hop * 1000 // FRAMES_PER_SECOND
    lookahead = base.lookahead_frames if lookahead_ms is None else frames(lookahead_ms, "--lookahead-ms", max_lookahead)
    if lookahead is not None and lookahead * 1000 // FRAMES_PER_SECOND > max_lookahead:  # the card's, with a new hop
        raise _Fail(f"--hop-ms {hop_ms:g}: the card's lookahead of {lookahead * 10} ms does not fit beside it in the "
                    f"{window_ms}-ms window; give --lookahead-ms (at most {max_lookahead})", 2)
    return Alignment(card.window_frames, hop, card.density_stride, lookahead)


@app.command()
def edge_run(
    file: Optional[str] = typer.Argument(None, help="audio file (any format soundfile reads); '-' = audio on stdin"),
    mic: bool = typer.Option(False, "--mic", help="count live from the microphone"),
    model: Optional[Path] = typer.Option(
        None, "--model", help="model artifact (.tflite/.pte/.onnx) with its card; default: the bundled one"
    ),
    device: Optional[str] = typer.Option(None, "--device", help="input device name (substring) or index"),
    list_devices_: bool = typer.Option(False, "--list-devices", help="list input devices and exit"),
    json_out: bool = typer.Option(False, "--json", help="one JSON object per hop, then a summary (schema: docs/INTERFACES.md)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="also show the engine's figures (latency, alignment, counter)"),
    log: Optional[Path] = typer.Option(None, "--log", help="write per-hop rows to this CSV (new file; see --append, --force)"),
    append: bool = typer.Option(False, "--append", help="with --log: add this run's rows to an existing edge-run log (its run column counts up)"),
    record: Optional[Path] = typer.Option(None, "--record", help="also save the 16-kHz audio that was counted (16-bit WAV, a .wav name; new file)"),
    record_dir: Optional[Path] = typer.Option(None, "--record-dir", help="also save it as a recording folder (audio.wav + recording.json) to pair with an accelerometer log"),
    force: bool = typer.Option(False, "--force", help="overwrite existing --log/--record files"),
    realtime: bool = typer.Option(False, "--realtime", help="pace a file in real time"),
    threads: int = typer.Option(1, "--threads", min=1, help="inference threads"),
    block_ms: Optional[float] = typer.Option(
        None, "--block-ms",
        help="audio block size, 1 to 60000 ms; default: one model hop for a file, 100 ms for --realtime and stdin "
        "(mic uses <= 50 ms)",
    ),
    seconds: Optional[float] = typer.Option(None, "--seconds", help="stop after this much audio (seconds, up to a week)"),
    low_latency: bool = typer.Option(False, "--low-latency", help="count each step within ~0.5 s of landing: the card's "
                                     "low-latency schedule (more network runs; its accuracy is in the card)"),
    hop_ms: Optional[float] = typer.Option(None, "--hop-ms", help="run the model every this many ms (a multiple of 40); "
                                           "default: the card's"),
    lookahead_ms: Optional[float] = typer.Option(None, "--lookahead-ms", help="count each window's steps up to this long "
                                                 "before its end (a multiple of 40; less: sooner, with less context); default: the card's"),
    stdin_rate: int = typer.Option(SAMPLE_RATE, "--stdin-rate", help="sample rate of raw PCM on stdin (a WAV header overrides it)"),
    stdin_format: str = typer.Option("s16le", "--stdin-format", help="raw PCM format on stdin: s16le | f32le"),
    stdin_channels: int = typer.Option(1, "--stdin-channels", min=1, max=MAX_STDIN_CHANNELS,
                                       help="channels of raw PCM on stdin, interleaved; downmixed to mono (a WAV "
                                       "header overrides it)"),
) -> None:
    """Count steps from a FILE, audio on stdin ('-'), or the microphone (--mic)."""
    try:
        if list_devices_:
            typer.echo(list_devices())
            return
        if append and force:
            raise _Fail("give --append or --force, not both", 2)
        if append and log is None:
            raise _Fail("--append needs --log", 2)
        _check_number("--seconds", seconds, 0.0, MAX_SECONDS, "seconds")
        _check_number("--block-ms", block_ms, 1.0, MAX_BLOCK_MS, "milliseconds")
        _check_number("--hop-ms", hop_ms, 10.0, MAX_BLOCK_MS, "milliseconds")
        _check_number("--lookahead-ms", lookahead_ms, 0.0, MAX_BLOCK_MS, "milliseconds")
        artifact = model or bundled_model()
        if artifact is None:
            raise _Fail(f"no model: pass --model PATH (no bundled model with a card in {ASSETS})", 2)
        inputs = [Path(artifact), card_path(artifact)] + ([Path(file)] if file not in (None, "-") else [])
        if log is not None:
            check_output("--log", log, inputs, force=force, append=append)
            if append and log.exists() and log.stat().st_size:
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
            try:
                check_folder(record_dir, force)
            except RecordingError as e:
                raise _Fail(f"--record-dir {_one_line(e)}", 2) from e
        stop = threading.Event()
        source = _open_source(file, mic, device, realtime, (block_ms or DEFAULT_BLOCK_MS) / 1e3, stdin_rate, stdin_format,
                              stop, stdin_channels)
        backend, card = load_model(artifact, threads=threads)
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
                verbose=verbose, seconds=seconds, record=record, force=force, record_dir=record_dir, align=align,
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        print_summary(summary, json_out, verbose)
        _warn(summary | {"warnings": summary["warnings"][opened:]})
        if summary["error"]:
            raise _Fail(summary["error"], 1)
    except _Fail as e:
        _err(f"edge-run: error: {e}")
        raise typer.Exit(e.code)
    except MicError as e:
        _err(f"edge-run: error: {e}")
        raise typer.Exit(2)
    except (AudioError, CardError, BackendError) as e:
        _err(f"edge-run: error: {e}")
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
