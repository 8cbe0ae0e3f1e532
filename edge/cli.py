"""``edge-run``: count a runner's steps from a file, raw PCM on stdin, or the microphone.

A thin typer layer over :func:`run_stream` (source -> :class:`edge.stream.StreamCounter` ->
views). Outputs:

- default: a rich live view (count, cadence, input level meter, inference latency, dropped
  blocks) and a summary table;
- ``--json``: one JSON object per hop on stdout, ``{"t", "t_final", "steps", "cadence_spm",
  "latency_ms", "events", "level_db", "dropped_blocks"}`` (``t``: audio seconds consumed;
  ``steps``: cumulative count up to ``t_final``; ``events``: times of the steps this hop
  completed), then ``{"summary": {"steps": total, ...}}``; messages go to stderr;
- ``--log CSV``: the same per-hop rows appended to a CSV as they happen (flushed every row,
  before the hop is printed).

Sources: ``FILE`` (any format soundfile reads; resampled/downmixed to 16 kHz mono; ``--realtime``
paces it), ``-`` (raw PCM on stdin: ``--stdin-format s16le|f32le``, ``--stdin-rate``), or
``--mic`` (``--device NAME|INDEX``, ``--list-devices``). ``--seconds`` stops after that much audio;
``--record WAV`` saves the 16-kHz audio that was counted (to re-count it offline). The model is
``--model PATH`` or the bundled default in ``edge/assets`` (see :func:`bundled_model`); its card
must match it. What happens on bad input is listed in ``edge/sources.py``.

Ctrl-C (or SIGTERM) stops the source, commits the audio consumed so far, prints the summary
and exits 0. Exit codes: 0 done; 1 unusable audio or model (missing/corrupt/empty file,
NaN/inf samples, card mismatch, runtime error); 2 usage error or no microphone (the message
says how to list devices). With a microphone, "listening: ..." is printed on stderr once the
first audio block has arrived.
"""

from __future__ import annotations

import csv
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import typer

from edge.audio import AudioError
from edge.backends import Backend, BackendError, load_model
from edge.card import CardError, ModelCard
from edge.frontend import SAMPLE_RATE
from edge.sources import FileSource, MicError, MicSource, Source, StdinSource, list_devices
from edge.stream import StreamCounter, Update

ASSETS = Path(__file__).resolve().parent / "assets"
_FORMAT_RANK = {".tflite": 0, ".pte": 1, ".onnx": 2}
LOG_COLUMNS = ["t", "t_final", "steps", "cadence_spm", "latency_ms", "events", "level_db", "dropped_blocks"]

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


def _level_bar(db: float, width: int = 24) -> str:
    filled = int(round(width * min(1.0, max(0.0, (db + 60.0) / 60.0))))  # -60 dBFS .. 0 dBFS
    return "█" * filled + "░" * (width - filled)


class _LiveView:
    """The rich live panel; refreshed at most every 0.1 s of wall time."""

    def __init__(self, engine: StreamCounter, source: Source, model: str) -> None:
        from rich.console import Console
        from rich.live import Live

        self.engine, self.source, self.model = engine, source, model
        self.last: Update | None = None
        self._t = 0.0
        self.live = Live(self.render(), console=Console(), refresh_per_second=8, transient=False)

    def render(self):
        from rich.markup import escape
        from rich.table import Table

        e, s, u = self.engine, self.source, self.last
        table = Table.grid(padding=(0, 2))
        table.add_column(justify="right", style="bold")
        table.add_column()
        table.add_row("steps", f"[bold green]{e.steps:8.1f}[/]  ({e.counter.n_events} events)")
        table.add_row("cadence", f"{e.counter.cadence_spm():6.1f} spm")
        table.add_row("level", f"{_level_bar(s.level_db)} {s.level_db:6.1f} dBFS")
        table.add_row("inference", f"{(u.latency_ms if u else 0.0):6.2f} ms (median {e.latency.percentile(50):.2f})")
        table.add_row("audio", f"{e.audio_s:7.1f} s   final up to {e.counter.t_final:7.2f} s")
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


def run_stream(
    source: Source,
    backend: Backend,
    card: ModelCard,
    *,
    json_out: bool = False,
    log: Path | None = None,
    view: bool = True,
    seconds: float | None = None,
    record: Path | None = None,
    out=None,
) -> dict:
    """Stream ``source`` through the counter; print per-hop JSON / live view; return the summary.

    Stops at the end of the source, after ``seconds`` of audio, or when ``source.stop`` is set.
    ``record``: also write the 16-kHz mono audio that was counted to this (WAV, float) file.
    """
    out = out or sys.stdout
    engine = StreamCounter(backend, card)
    live = _LiveView(engine, source, f"{backend.path.name} [{backend.name}, {backend.threads} thr]") if view else None
    log_file = writer = None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(log, "a", newline="")
        writer = csv.DictWriter(log_file, fieldnames=LOG_COLUMNS)
        if log_file.tell() == 0:
            writer.writeheader()

    def emit(updates: list[Update]) -> None:
        for u in updates:
            record = _hop_record(u, source)
            if writer is not None:  # the log first: a row is on disk before anyone sees the hop
                writer.writerow(record | {"events": " ".join(f"{e:.3f}" for e in u.events)})
                log_file.flush()
            if json_out:
                out.write(json.dumps(record) + "\n")
                out.flush()
            if live:
                live.refresh(u)

    recorder = None
    if record is not None:
        import soundfile as sf

        recorder = sf.SoundFile(str(record), "w", samplerate=SAMPLE_RATE, channels=1, subtype="FLOAT")
    t_wall = time.perf_counter()
    limit = None if seconds is None else int(round(seconds * SAMPLE_RATE))
    try:
        if live:
            live.live.start()
        for block in source:
            if limit is not None:
                block = block[: max(0, limit - engine.samples)]
            if recorder is not None:
                recorder.write(block)
            emit(engine.push(block))
            if live:
                live.refresh()
            if source.stop.is_set() or (limit is not None and engine.samples >= limit):
                break
        emit(engine.finish())
    finally:
        if live:
            live.refresh(force=True)
            live.live.stop()
            if not live.live.console.is_terminal:  # rich leaves the last line of a non-tty render open
                live.live.console.line()
        if log_file is not None:
            log_file.close()
        if recorder is not None:
            recorder.close()
    wall = time.perf_counter() - t_wall
    summary = engine.summary() | source.stats() | {
        "model": str(backend.path),
        "backend": backend.name,
        "threads": backend.threads,
        "wall_s": round(wall, 3),
        "interrupted": source.stop.is_set(),
    }
    return summary


def _print_summary(summary: dict, json_out: bool, out=None) -> None:
    out = out or sys.stdout
    if json_out:
        out.write(json.dumps({"summary": summary}) + "\n")
        out.flush()
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="edge-run summary", show_header=False)
    for k, v in summary.items():
        table.add_row(k, json.dumps(v) if isinstance(v, dict) else str(v))
    Console(file=out).print(table)


def _warn(summary: dict) -> None:
    if summary.get("clipped_fraction", 0) > 1e-3:
        _err(f"warning: {100 * summary['clipped_fraction']:.2f} % of the input samples are clipped; counts may suffer")
    if summary.get("dropped_blocks") or summary.get("xruns"):
        _err(f"warning: {summary['dropped_blocks']} audio blocks dropped, {summary['xruns']} xruns "
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
        raise _Fail("nothing to count: give an audio FILE, '-' for raw PCM on stdin, or --mic", 2)
    if file == "-":
        try:
            return StdinSource(rate=stdin_rate, fmt=stdin_format, block_s=block_s, stop=stop)
        except ValueError as e:
            raise _Fail(str(e), 2) from e
    return FileSource(file, block_s=block_s, realtime=realtime, stop=stop)


@app.command()
def edge_run(
    file: Optional[str] = typer.Argument(None, help="audio file (any format soundfile reads); '-' = raw PCM on stdin"),
    mic: bool = typer.Option(False, "--mic", help="count live from the microphone"),
    model: Optional[Path] = typer.Option(
        None, "--model", help="model artifact (.tflite/.pte/.onnx) with its card; default: the bundled one"
    ),
    device: Optional[str] = typer.Option(None, "--device", help="input device name (substring) or index"),
    list_devices_: bool = typer.Option(False, "--list-devices", help="list input devices and exit"),
    json_out: bool = typer.Option(False, "--json", help="one JSON object per hop, then a summary"),
    log: Optional[Path] = typer.Option(None, "--log", help="append per-hop rows to this CSV"),
    realtime: bool = typer.Option(False, "--realtime", help="pace a file in real time"),
    threads: int = typer.Option(1, "--threads", min=1, help="inference threads"),
    block_ms: float = typer.Option(
        100.0, "--block-ms", min=1.0, help="audio block size (file/stdin; mic uses <= 50 ms)"
    ),
    seconds: Optional[float] = typer.Option(None, "--seconds", min=0.0, help="stop after this much audio"),
    stdin_rate: int = typer.Option(16000, "--stdin-rate", help="sample rate of raw PCM on stdin"),
    stdin_format: str = typer.Option("s16le", "--stdin-format", help="raw PCM format on stdin: s16le | f32le"),
    record: Optional[Path] = typer.Option(None, "--record", help="also save the 16-kHz audio that was counted (WAV)"),
) -> None:
    """Count steps from a FILE, raw PCM on stdin ('-'), or the microphone (--mic)."""
    try:
        if list_devices_:
            typer.echo(list_devices())
            return
        artifact = model or bundled_model()
        if artifact is None:
            raise _Fail(f"no model: pass --model PATH (no bundled model with a card in {ASSETS})", 2)
        stop = threading.Event()
        source = _open_source(file, mic, device, realtime, block_ms / 1e3, stdin_rate, stdin_format, stop)
        backend, card = load_model(artifact, threads=threads)
        previous = {}

        def on_signal(signum, frame) -> None:  # first Ctrl-C: stop cleanly; second: the default
            stop.set()
            signal.signal(signum, previous.get(signum, signal.SIG_DFL))

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            summary = run_stream(
                source, backend, card, json_out=json_out, log=log, view=not json_out, seconds=seconds, record=record
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        _print_summary(summary, json_out)
        _warn(summary)
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
