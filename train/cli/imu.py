"""`footfall data import-imu` and `footfall data imu-synth`: own runs labelled from the phone's accelerometer.

Thin typer layer over :mod:`train.data.imu_import` and :mod:`train.data.imu`. Bad input: one line
on stderr and exit 2; warnings: one line each on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edge.util import fail as _fail


def import_imu(
    folders: list[Path] = typer.Argument(..., help="recording folders (audio + accelerometer CSV [+ recording.json]); only read"),
    out: Path = typer.Option(..., "--out", help="dataset folder to write (manifest.csv, audio/, steps/, import/)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing dataset at --out"),
    plot: bool = typer.Option(False, "--plot", help="also write import/<recording>.png (signals, steps, confidence, clock search)"),
    max_offset: float = typer.Option(3.0, "--max-offset", help="search the audio/sensor clock offset within +- this many seconds"),
    offset: Optional[float] = typer.Option(None, "--offset", help="known clock offset in seconds (skips the search)"),
    min_confidence: float = typer.Option(0.5, "--min-confidence", help="5-s windows with a lower step confidence are masked (0..1)"),
    min_segment: float = typer.Option(15.0, "--min-segment", help="sure stretches shorter than this (s) are dropped"),
    runner: Optional[str] = typer.Option(None, "--runner", help="runner id for every run (default: recording.json's, else 'me')"),
    fold: int = typer.Option(0, "--fold", help="fold written for every run (own runs are one runner: one fold)"),
) -> None:
    """Label own recordings from their accelerometer and write them as a dataset (steps per run, masked where unsure)."""
    from train.data.imu_import import ImportOptions, ImuImportError, import_folders

    try:
        opts = ImportOptions(max_offset_s=max_offset, offset_s=offset, min_confidence=min_confidence,
                             min_segment_s=min_segment, runner_id=runner)
        results = import_folders(folders, out, opts, force=force, plot=plot, fold=fold,
                                 progress=lambda m: typer.echo(m, err=True))
    except (ImuImportError, ValueError, OSError) as e:
        _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    for r in results:
        for w in r.warnings:
            typer.echo(f"warning: {w}", err=True)
        typer.echo(f"{r.name}: {r.n_labeled_steps} steps labelled in {len(r.segments)} run(s), {r.kept_s:.0f} of {r.duration_s:.0f} s kept; "
                   f"clock offset {r.offset_s:+.3f} s (confidence {r.offset_confidence:.2f}), drift {r.drift_ms:+.0f} ms, sensor {r.sensor_rate_hz:.0f} Hz")
    typer.echo(f"wrote {Path(out) / 'manifest.csv'}")


def imu_synth(
    out: Path = typer.Option(..., "--out", "-o", help="recording folder to write (audio.wav, accel.csv, recording.json, truth.*)"),
    seed: int = typer.Option(0, "--seed", help="population seed of the generated runners: same seed, runner and run, same recording"),
    runner: int = typer.Option(0, "--runner", help="which runner of the population"),
    run: int = typer.Option(0, "--run", help="which of the runner's runs"),
    seconds: float = typer.Option(120.0, "--seconds", help="length of the recording, seconds"),
    offset: float = typer.Option(0.0, "--offset", help="true clock offset: the audio really starts this many seconds into the sensor clock"),
    force: bool = typer.Option(False, "--force", help="replace a recording already at --out"),
) -> None:
    """Generate an own-run recording with known truth: the generator's audio plus an arm-worn accelerometer."""
    from edge.recording import RecordingError
    from train.data.imu import make_recording

    try:
        truth = make_recording(out, seed, runner, run, seconds, offset, force=force)
    except (RecordingError, ValueError) as e:
        _fail(str(e))
    typer.echo(f"wrote {out} ({truth['n_steps']} true steps, sensor {truth['rate_hz']:.0f} Hz, offset {offset:+.3f} s)")


def register(data_app: typer.Typer) -> None:
    data_app.command("import-imu")(import_imu)
    data_app.command("imu-synth")(imu_synth)
