"""`footfall data ...`: dataset tools (check, synth, negatives, sounds, realset, own-run import).

Thin typer layer: the work is in :mod:`train.data`. Bad input ends with one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional

import typer

from edge.audio import AudioError
from edge.util import fail
from train.data.recordings import DatasetError, labeled, load_dataset

# its one-line description, listing the sub-commands, is written when it is registered (register)
data_app = typer.Typer(add_completion=False, no_args_is_help=True)

USAGE_ERRORS = (DatasetError, AudioError, ValueError)


@data_app.command("check")
def check(dataset: Path = typer.Argument(..., help="dataset folder holding manifest.csv")) -> None:
    """Validate a dataset folder and summarize it (runs, runners, hours, steps, folds)."""
    from rich.console import Console
    from rich.table import Table

    from train.data.recordings import load_steps

    try:
        recs = load_dataset(dataset)
    except USAGE_ERRORS as e:
        fail(e)
    lab = labeled(recs)
    n_steps = sum(len(load_steps(r.steps)) for r in lab)
    hours = sum(r.duration_s for r in recs) / 3600
    table = Table(title=f"{dataset}: {len(recs)} runs ({len(lab)} labeled), {len({r.runner_id for r in recs})} runners, {hours:.2f} h, {n_steps} steps")
    for col in ("fold", "runners", "runs", "labeled", "hours"):
        table.add_column(col, justify="right")
    folds = sorted({r.fold for r in recs})
    for k in folds:
        rs = [r for r in recs if r.fold == k]
        table.add_row(str(k), str(len({r.runner_id for r in rs})), str(len(rs)), str(len(labeled(rs))), f"{sum(r.duration_s for r in rs) / 3600:.2f}")
    Console().print(table)
    surfaces = Counter(r.surface or "-" for r in recs)
    typer.echo("surfaces: " + ", ".join(f"{s} {n}" for s, n in surfaces.most_common()))


@data_app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", "-o", help="output dataset folder (manifest.csv, audio/, steps/, runs.jsonl, report/)"),
    runners: int = typer.Option(20, "--runners", help="synthetic runners (at least 5: the folds are runner-independent)"),
    minutes: float = typer.Option(4.0, "--minutes", help="length of every run, minutes"),
    runs: int = typer.Option(3, "--runs", help="runs per runner"),
    seed: int = typer.Option(0, "--seed", help="same seed, same dataset (runners, sessions, audio)"),
    unlabeled_fraction: float = typer.Option(0.2, "--unlabeled-fraction", help="share of runs written without steps (for PSL)"),
    workers: int = typer.Option(2, "--workers", help="processes synthesising runs in parallel"),
    report: bool = typer.Option(True, "--report/--no-report", help="write OUT/report/ (counts, histograms, a spectrogram)"),
    sounds: Optional[Path] = typer.Option(None, "--sounds", help="a sound corpus (footfall data sounds): mix its train-split recordings in, with level, colour and room randomised"),
    force: bool = typer.Option(False, "--force", help="replace the dataset already at --out (its runs that the new one lacks are removed)"),
) -> None:
    """Generate synthetic armband-phone running audio with exact step times (train.data.synth).

    A folder that already holds a dataset (manifest.csv) is refused unless ``--force``: models
    trained on it would no longer match it. With ``--force`` the old dataset's audio and step
    files that the new manifest does not name are removed, so none is left orphaned (and its old
    report with ``--no-report``).
    """
    from train.data.recordings import MANIFEST
    from train.data.synth import synthesize_dataset

    replacing = (out / MANIFEST).exists()
    if replacing and not force:
        fail(f"{out / MANIFEST} exists: {out} already holds a dataset; choose another --out or pass --force to replace it")
    old_files = _dataset_files(out) if replacing else []
    try:
        root = synthesize_dataset(out, runners, minutes, runs, seed, unlabeled_fraction, workers, progress=True, report=report, sounds=sounds)
    except (ValueError, OSError) as e:
        fail(e)
    for path in set(old_files) - set(_dataset_files(root)):
        path.unlink(missing_ok=True)
    if replacing and not report and (root / "report").is_dir():  # the old dataset's report
        import shutil

        shutil.rmtree(root / "report")
    typer.echo(f"wrote {root / 'manifest.csv'}" + (f" and {root / 'report' / 'report.md'}" if report else ""))


def _dataset_files(root: Path) -> list[Path]:
    """The audio and step files a dataset's manifest names inside ``root`` (resolved)."""
    import csv

    from train.data.recordings import MANIFEST

    root = root.resolve()
    files = []
    try:
        with (root / MANIFEST).open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):  # an unreadable old manifest: nothing to clean
        return []
    for row in rows:
        for col in ("audio", "steps"):
            if row.get(col):
                path = (root / row[col]).resolve()
                if path.is_relative_to(root):  # never a file outside the dataset
                    files.append(path)
    return files


@data_app.command("negatives")
def negatives(
    out: Path = typer.Option(..., "--out", "-o", help="output dataset folder (manifest.csv, audio/, steps/, negatives.json)"),
    runs: int = typer.Option(40, "--runs", help="step-free runs, the kinds in turn (silence, noise floor, hum, noise, DC, tone, square, recorded beds)"),
    seconds: float = typer.Option(30.0, "--seconds", help="length of every run, seconds"),
    seed: int = typer.Option(0, "--seed", help="same seed (and corpus), same dataset"),
    sounds: Optional[Path] = typer.Option(None, "--sounds", help="a sound corpus (footfall data sounds): the --split's ambience, wind, speech and music beds become runs too"),
    force: bool = typer.Option(False, "--force", help="replace a dataset already in OUT"),
    kinds: Optional[str] = typer.Option(None, "--kinds", help="comma-separated kinds to take in turn (e.g. bed: recorded beds "
                                         "only); default every kind once and a recorded bed 4 times in 18"),
    split: str = typer.Option("train", "--split", help="whose recorded beds: train (negatives to train on), val (step-free "
                              "runs that choose epochs and the counter beside footfall data realset --split val) or eval "
                              "(a step-free evaluation set of sounds no model trained on: footfall eval OUT --model ...)"),
) -> None:
    """Write step-free runs (silence, hum, noise, tones, recorded beds) labelled with no steps, to train on (--set extra_train=OUT), to choose on (--split val) or to evaluate (--split eval)."""
    from functools import partial

    from train.data.negatives import BED_SPLITS, write_negatives

    if split not in BED_SPLITS:
        fail(f"--split {split}: expected one of {', '.join(BED_SPLITS)}")
    if split != "train" and sounds is None:
        fail(f"--split {split} takes its beds from a sound corpus: give --sounds (footfall data sounds --profile full)")
    chosen = None if kinds is None else [k.strip() for k in kinds.split(",") if k.strip()]
    _write_runs(partial(write_negatives, split=split, kinds=chosen), "step-free", out, runs, seconds, seed, sounds, force, min_seconds=0.0)


def _write_runs(write, what: str, out: Path, runs: int, seconds: float, seed: int, sounds: Optional[Path], force: bool,
                min_seconds: float) -> None:
    """Check the options, then ``write(out, runs=, seconds=, seed=, sounds=, force=)`` a dataset of ``what`` runs."""
    from train.data.sounds import SoundsError

    if (out / "manifest.csv").exists() and not force:
        fail(f"{out}: a dataset is already there; pass --force to replace it")
    if runs < 1:
        fail(f"--runs {runs}: need at least 1")
    if not min_seconds < seconds <= 3600.0:
        fail(f"--seconds {seconds}: must be more than {min_seconds:g} and at most 3600")
    try:
        root = write(out, runs=runs, seconds=seconds, seed=seed, sounds=sounds, force=force)
    except (SoundsError, ValueError, OSError) as e:
        fail(e)
    typer.echo(f"wrote {root / 'manifest.csv'} ({runs} {what} runs x {seconds:g} s)")


@data_app.command("oneshots")
def oneshots(
    out: Path = typer.Option(..., "--out", "-o", help="output dataset folder (manifest.csv, audio/, steps/, oneshots.json)"),
    sounds: Optional[Path] = typer.Option(None, "--sounds", help="the sound corpus (footfall data sounds); default $FOOTFALL_SOUNDS or <clone>/data/sounds"),
    runs: int = typer.Option(60, "--runs", help="runs, each its own generated runner's timing"),
    seconds: float = typer.Option(60.0, "--seconds", help="length of every run, seconds"),
    seed: int = typer.Option(0, "--seed", help="same seed (and corpus), same dataset"),
    force: bool = typer.Option(False, "--force", help="replace a dataset already in OUT"),
    without: Optional[str] = typer.Option(None, "--without", help="comma-separated train packages whose one-shots make no step "
                                          "(their beds stay), e.g. hydrogen-drumkits,sonic-pi-samples"),
) -> None:
    """Write labelled runs made of single recorded footstep sounds from the sound corpus, through a random phone's sound chain."""
    import functools

    from train.data.oneshots import write_oneshot_runs

    left_out = tuple(p.strip() for p in (without or "").split(",") if p.strip())
    _write_runs(functools.partial(write_oneshot_runs, without=left_out), "one-shot", out, runs, seconds, seed, sounds, force, min_seconds=5.0)


@data_app.command("sounds")
def sounds(
    profile: Optional[str] = typer.Option(None, "--profile", help="small (teeworlds-data: make test) | full (every registry package); default small unless --package"),
    package: Optional[list[str]] = typer.Option(None, "--package", help="registry package to build (repeatable)"),
    out: Optional[Path] = typer.Option(None, "--out", help="corpus folder; default $FOOTFALL_SOUNDS or <clone>/data/sounds"),
    force: bool = typer.Option(False, "--force", help="rebuild packages that are up to date"),
    check: bool = typer.Option(False, "--check", help="only validate the corpus (sha256 of every clip and source file)"),
    list_registry: bool = typer.Option(False, "--list", help="print the registry (packages, split, licence hint, rules) and exit"),
) -> None:
    """Build the recorded-sound corpus from Debian data packages (apt-get download; set-up time only)."""
    from rich.console import Console
    from rich.table import Table

    from train.data import sounds as snd

    if list_registry:
        t = Table(title="train.data.sounds.REGISTRY")
        for col in ("package", "split", "profiles", "licence hint", "files (category)"):
            t.add_column(col)
        for p in snd.REGISTRY:
            t.add_row(p.name, p.split, ", ".join(k for k, v in snd.PROFILES.items() if p.name in v), p.licence_hint,
                      "\n".join(f"{r.glob.rsplit('/', 2)[-2]}/{r.glob.rsplit('/', 1)[-1]} ({r.category}{', ' + r.surface if r.surface else ''})" for r in p.rules))
        Console().print(t)
        return
    root = out if out is not None else snd.default_root()
    try:
        if not check:
            results = snd.build(root, profile if profile or package else "small", package or (), force=force, progress=True)
            for r in results:
                typer.echo(f"{r.package} {r.version}: {r.status}, {r.clips} clips, {r.seconds:.1f} s")
        problems = snd.validate(root)
    except (snd.SoundsError, OSError) as e:
        fail(e)
    if problems:
        for p in problems[:20]:
            typer.echo(f"invalid: {p}", err=True)
        fail(f"{root}: {len(problems)} problem(s); rebuild with --force")
    rows = snd.read_manifest(root)
    counts = Counter((r["split"], r["category"]) for r in rows)
    typer.echo(f"{root / snd.MANIFEST}: {len(rows)} clips valid; " + ", ".join(f"{s}/{c} {n}" for (s, c), n in sorted(counts.items())))


@data_app.command("realset")
def realset(
    out: Path = typer.Option(..., "--out", "-o", help="output dataset folder (manifest.csv, audio/, steps/, runs.jsonl, realset.json)"),
    sounds_dir: Optional[Path] = typer.Option(None, "--sounds", help="sound corpus; default $FOOTFALL_SOUNDS or <clone>/data/sounds"),
    runs: int = typer.Option(18, "--runs", help="number of runs (at least 5: tuned baselines cross-validate over 5 folds)"),
    seconds: float = typer.Option(70.0, "--seconds", help="length of every run, seconds"),
    seed: int = typer.Option(2025, "--seed", help="same seed and corpus, same set"),
    force: bool = typer.Option(False, "--force", help="replace OUT if it exists"),
    split: str = typer.Option("eval", "--split", help="eval: the evaluation set results are reported on; val: the validation "
                              "set that chooses epochs and counter thresholds (other packages, other runs)"),
) -> None:
    """Build a real-sound set: runs from recorded sounds of held-out packages only (the evaluation or the validation split)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from train.data.realset import RealsetError, build_realset
    from train.data.sounds import SoundsError

    try:
        with Progress(TextColumn("realset"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"), TimeRemainingColumn(),
                      transient=True) as bar:
            task = bar.add_task("", total=runs)

            def tick(run_id: str, i: int, n: int) -> None:
                bar.update(task, completed=i, description=run_id)

            root = build_realset(out, sounds_dir, runs, seconds, seed, force=force, progress=tick, split=split)
    except (RealsetError, SoundsError, OSError) as e:
        fail(e)
    typer.echo(f"wrote {root / 'manifest.csv'} ({runs} runs x {seconds:g} s; {root / 'realset.json'})")


def register(app: typer.Typer) -> None:
    """Add `data` (sub-commands) to the `footfall` app."""
    from train.cli import imu as imu_cli  # `data import-imu`, `data imu-synth`: own runs labelled from the accelerometer
    from train.cli import subcommand_names

    imu_cli.register(data_app)
    app.add_typer(data_app, name="data", help=f"make and check datasets: {', '.join(subcommand_names(data_app))}")
