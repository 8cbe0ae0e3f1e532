"""``edge-run``: count a runner's steps from a file, audio on stdin, or the microphone.

A thin typer layer over :func:`run_stream` (source -> :class:`edge.stream.StreamCounter` ->
views). Sources: ``FILE`` (any format soundfile reads, any rate >= 8 kHz; resampled/downmixed
to 16 kHz mono; ``--realtime`` paces it), ``-`` (stdin: a WAV stream, a whole file in another
container, or raw PCM: ``--stdin-format s16le|f32le``, ``--stdin-rate``), or ``--mic``
(``--device NAME|INDEX``, ``--list-devices``). ``--seconds`` stops after that much audio. The
model is ``--model PATH`` or the bundled default in ``edge/assets`` (see :func:`bundled_model`);
its card must match it. What happens on bad audio is listed in ``edge/sources.py``.

Views (the same for a file and the microphone):

- default: a live view (steps, cadence, elapsed time mm:ss, input level meter; cadence is blank
  for the first seconds and reads "no steps" when there are none), then a summary (steps,
  duration, active time, mean and peak cadence). ``--verbose`` adds the engine's figures
  (exact count, inference latency, alignment, calibration, dropped blocks, model).
- ``--json``: one JSON object per hop on stdout (:data:`HOP_FIELDS`), then one
  ``{"summary": {...}}`` (:data:`SUMMARY_FIELDS`; with ``--verbose`` also ``"debug"``); the schema
  is versioned by ``summary["version"]`` (:data:`JSON_VERSION`) and documented in
  ``docs/INTERFACES.md``. Messages go to stderr.

Outputs (checked before any audio is read; none is ever the input file or the model):

- ``--log CSV``: the per-hop rows (:data:`HOP_FIELDS`), flushed as they happen. An existing file
  is refused unless ``--append`` (rows are added; its header must be edge-run's) or ``--force``
  (it is overwritten).
- ``--record WAV``: the 16-kHz audio that was counted (float WAV), to re-count it offline. An
  existing file is refused unless ``--force``.
- ``--record-dir FOLDER``: the same audio as a recording folder (``edge.recording``: audio.wav +
  recording.json with the wall-clock start), the layout ``footfall data import-imu`` pairs with a
  phone's accelerometer log. A folder that already holds a recording is refused unless ``--force``.
- A folder that does not exist or cannot be written is an error (nothing is created).

Ends: Ctrl-C (or SIGTERM) stops the source, commits the audio consumed so far, prints the
summary and exits 0. A failure mid-run (NaN samples, a broken frame, a lost microphone) prints
the summary of what was counted, then the error, and exits 1; the log and the recording keep
everything up to it. Exit codes: 0 done; 1 unusable audio or model (missing/corrupt/empty
file, NaN/inf samples, rate below 8 kHz, card mismatch, runtime error); 2 usage error (bad
option, output path, no microphone: the message says how to list devices). Warnings (clipping,
a rate below 16 kHz, a truncated file, dropped blocks) are one line each on stderr. With a
microphone, "listening: ..." is printed on stderr once the first audio block has arrived.
"""

from __future__ import annotations

import csv
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
from edge.sources import FileSource, MicError, MicSource, Source, StdinSource, list_devices
from edge.stream import StreamCounter, Update

ASSETS = Path(__file__).resolve().parent / "assets"
_FORMAT_RANK = {".tflite": 0, ".pte": 1, ".onnx": 2}

DEFAULT_BLOCK_MS = 100.0  # blocks of a paced file and of stdin
FILE_BLOCK_S = 2.0  # a file read as fast as it goes: 2-s blocks (or one hop if longer); per-block costs then vanish
JSON_VERSION = 1  # summary["version"]: bump when a field below changes meaning or goes away
HOP_FIELDS = ["t", "t_final", "steps", "cadence_spm", "latency_ms", "events", "level_db", "dropped_blocks"]
LOG_COLUMNS = HOP_FIELDS  # the --log CSV has the per-hop fields as columns (events space-separated)
SUMMARY_FIELDS = [
    "version", "source", "model", "backend", "threads", "steps", "events", "audio_s", "schedule", "t_final", "active_s",
    "mean_cadence_spm", "peak_cadence_spm", "windows", "dropped_blocks", "xruns", "clipped_fraction",
    "bad_samples", "wall_s", "interrupted", "error", "warnings",
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
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise _Fail(f"{option} {path}: not writable (permission denied)", 2)
    if path.exists() and not (force or append):
        hint = "--append to add rows to it or --force to overwrite it" if option == "--log" else "--force to overwrite it"
        raise _Fail(f"{option} {path}: file exists; pass {hint}", 2)


def _open_log(path: Path, append: bool):
    """The --log CSV: a new file with a header, or (append) an existing one with edge-run's header."""
    if append and path.exists() and path.stat().st_size:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        if header != LOG_COLUMNS:
            raise _Fail(f"--log {path}: not an edge-run log (its header is {','.join(header)[:60]!r}); "
                        "choose another file", 2)
    try:
        f = open(path, "a" if append else "w", newline="")
    except OSError as e:
        raise _Fail(f"--log {path}: cannot write it ({e.strerror})", 2) from e
    writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
    if f.tell() == 0:
        writer.writeheader()
    return f, writer


def _open_recording(path: Path, force: bool):
    import soundfile as sf

    try:
        return sf.SoundFile(str(path), "w" if force else "x", samplerate=SAMPLE_RATE, channels=1, subtype="FLOAT")
    except (OSError, RuntimeError) as e:  # soundfile raises LibsndfileError (a RuntimeError) or FileExistsError
        raise _Fail(f"--record {path}: cannot write it ({str(e).splitlines()[0]})", 2) from e


def _open_recording_folder(folder: Path, source: Source, force: bool):
    from edge.recording import AudioRecorder, RecordingError

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
    at a failure of the source or the model: then the summary's ``"error"`` says what happened
    and covers the audio counted before it. ``record``: also write the 16-kHz mono audio that was
    counted to this (WAV, float) file. ``log``/``record`` are opened before any audio is read
    (``append``/``force``: see the module docstring; :func:`check_output` is the caller's).
    """
    out = out or sys.stdout
    engine = StreamCounter(backend, card, align=align)
    log_file = writer = None
    if log is not None:
        log_file, writer = _open_log(log, append)
    recorders = []
    try:
        if record is not None:
            recorders.append(_open_recording(record, force))
        if record_dir is not None:
            recorders.append(_open_recording_folder(record_dir, source, force))
    except _Fail:
        for r in recorders:
            r.close()
        if log_file is not None:
            log_file.close()
        raise
    live = None
    if view:
        live = _LiveView(engine, source, f"{backend.path.name} [{backend.name}, {backend.threads} thr]", verbose)

    def emit(updates: list[Update]) -> None:
        for u in updates:
            rec = _hop_record(u, source)
            if writer is not None:  # the log first: a row is on disk before anyone sees the hop
                writer.writerow(rec | {"events": " ".join(f"{e:.3f}" for e in u.events)})
                log_file.flush()
            if json_out:
                out.write(json.dumps(rec) + "\n")
                out.flush()
            if live:
                live.refresh(u)

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
                for recorder in recorders:
                    recorder.write(block)
                emit(engine.push(block))
                if live:
                    live.refresh()
                if source.stop.is_set() or (limit is not None and engine.samples >= limit):
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
        if log_file is not None:
            log_file.close()
        for recorder in recorders:
            recorder.close()
    wall = time.perf_counter() - t_wall
    summary = {"version": JSON_VERSION} | engine.summary() | source.stats() | {
        "model": str(backend.path),
        "backend": backend.name,
        "threads": backend.threads,
        "wall_s": round(wall, 3),
        "interrupted": source.stop.is_set() and error is None,
        "error": error,
    }
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
    if verbose:
        d = summary["debug"]
        rows += [
            ("exact count", f"{summary['steps']:.3f} ({d['steps_uncalibrated']:.3f} uncalibrated), {summary['events']} events"),
            ("calibration", json.dumps(d["calibration"]) if d["calibration"] else "none"),
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
                 stdin_rate: int, stdin_format: str, stop: threading.Event) -> Source:
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
            return StdinSource(rate=stdin_rate, fmt=stdin_format, block_s=block_s, stop=stop)
        except ValueError as e:
            if isinstance(e, AudioError):
                raise
            raise _Fail(str(e), 2) from e
    return FileSource(file, block_s=block_s, realtime=realtime, stop=stop)


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
    verbose: bool = typer.Option(False, "--verbose", "-v", help="also show the engine's figures (latency, alignment, calibration)"),
    log: Optional[Path] = typer.Option(None, "--log", help="write per-hop rows to this CSV (new file; see --append, --force)"),
    append: bool = typer.Option(False, "--append", help="with --log: add rows to an existing edge-run log"),
    record: Optional[Path] = typer.Option(None, "--record", help="also save the 16-kHz audio that was counted (WAV; new file)"),
    record_dir: Optional[Path] = typer.Option(None, "--record-dir", help="also save it as a recording folder (audio.wav + recording.json) to pair with an accelerometer log"),
    force: bool = typer.Option(False, "--force", help="overwrite existing --log/--record files"),
    realtime: bool = typer.Option(False, "--realtime", help="pace a file in real time"),
    threads: int = typer.Option(1, "--threads", min=1, help="inference threads"),
    block_ms: Optional[float] = typer.Option(
        None, "--block-ms", min=1.0,
        help="audio block size; default: one model hop for a file, 100 ms for --realtime and stdin (mic uses <= 50 ms)",
    ),
    seconds: Optional[float] = typer.Option(None, "--seconds", min=0.0, help="stop after this much audio"),
    low_latency: bool = typer.Option(False, "--low-latency", help="count each step within ~0.5 s of landing: the card's "
                                     "low-latency schedule (more network runs; its accuracy is in the card)"),
    hop_ms: Optional[float] = typer.Option(None, "--hop-ms", min=10.0, help="run the model every this many ms (a multiple of 40); "
                                           "default: the card's"),
    lookahead_ms: Optional[float] = typer.Option(None, "--lookahead-ms", min=0.0, help="count each window's steps up to this long "
                                                 "before its end (a multiple of 40; less: sooner, with less context); default: the card's"),
    stdin_rate: int = typer.Option(SAMPLE_RATE, "--stdin-rate", help="sample rate of raw PCM on stdin (a WAV header overrides it)"),
    stdin_format: str = typer.Option("s16le", "--stdin-format", help="raw PCM format on stdin: s16le | f32le"),
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
        artifact = model or bundled_model()
        if artifact is None:
            raise _Fail(f"no model: pass --model PATH (no bundled model with a card in {ASSETS})", 2)
        inputs = [Path(artifact), card_path(artifact)] + ([Path(file)] if file not in (None, "-") else [])
        if log is not None:
            check_output("--log", log, inputs, force=force, append=append)
        if record is not None:
            check_output("--record", record, inputs, force=force)
            if log is not None and log.resolve() == record.resolve():
                raise _Fail(f"--log and --record are the same file {log}", 2)
        if record_dir is not None:
            for inp in inputs:
                if record_dir.resolve() in (inp.resolve(), inp.resolve().parent):
                    raise _Fail(f"--record-dir {record_dir}: that folder holds the input {inp}; choose another", 2)
            if not record_dir.parent.is_dir():
                raise _Fail(f"--record-dir {record_dir}: folder {record_dir.parent} does not exist (create it first)", 2)
        stop = threading.Event()
        source = _open_source(file, mic, device, realtime, (block_ms or DEFAULT_BLOCK_MS) / 1e3, stdin_rate, stdin_format, stop)
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
