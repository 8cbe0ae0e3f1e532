"""`footfall data ...` (dataset tools) and `footfall eval` (the paper's table for a counter).

Thin typer layer: the work is in :mod:`train.data.recordings`, :mod:`train.baselines` and
:mod:`train.metrics`. Bad input ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional

import typer

from edge.audio import AudioError
from train.data.recordings import DatasetError, labeled, load_dataset

data_app = typer.Typer(add_completion=False, no_args_is_help=True, help="datasets: check, synth")

USAGE_ERRORS = (DatasetError, AudioError, ValueError)


def fail(message: str) -> None:
    """One line on stderr, exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@data_app.command("check")
def check(dataset: Path = typer.Argument(..., help="dataset folder holding manifest.csv")) -> None:
    """Validate a dataset folder and summarize it (runs, runners, hours, steps, folds)."""
    from rich.console import Console
    from rich.table import Table

    from train.data.recordings import load_steps

    try:
        recs = load_dataset(dataset)
    except USAGE_ERRORS as e:
        fail(str(e))
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
    out: Path = typer.Argument(..., help="output dataset folder (manifest.csv, audio/, steps/, runs.jsonl, report/)"),
    runners: int = typer.Option(20, "--runners", help="synthetic runners (at least 5: the folds are runner-independent)"),
    minutes: float = typer.Option(4.0, "--minutes", help="length of every run, minutes"),
    runs: int = typer.Option(3, "--runs", help="runs per runner"),
    seed: int = typer.Option(0, "--seed", help="same seed, same dataset (runners, sessions, audio)"),
    unlabeled_fraction: float = typer.Option(0.2, "--unlabeled-fraction", help="share of runs written without steps (for PSL)"),
    workers: int = typer.Option(2, "--workers", help="processes synthesising runs in parallel"),
    report: bool = typer.Option(True, "--report/--no-report", help="write OUT/report/ (counts, histograms, a spectrogram)"),
) -> None:
    """Generate synthetic armband-phone running audio with exact step times (train.data.synth)."""
    from train.data.synth import synthesize_dataset

    try:
        root = synthesize_dataset(out, runners, minutes, runs, seed, unlabeled_fraction, workers, progress=True, report=report)
    except ValueError as e:
        fail(str(e))
    typer.echo(f"wrote {root / 'manifest.csv'}" + (f" and {root / 'report' / 'report.md'}" if report else ""))


def eval_command(
    dataset: Path = typer.Argument(..., help="dataset folder holding manifest.csv"),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="onset | naive"),
    folds: int = typer.Option(5, "--folds", help="number of runner-independent folds in the manifest"),
    fold: Optional[list[int]] = typer.Option(None, "--fold", help="evaluate only these folds (repeatable); default all"),
    window: float = typer.Option(5.0, "--window", help="window length in seconds: 5, 10 or 20 (the paper's)"),
    out: Optional[Path] = typer.Option(None, "--out", help="JSON results file; default DATASET/results/baseline-<name>-<window>s.json"),
) -> None:
    """Cross-validate a counter on DATASET and print the paper's table (MAE, PCC, cMAE, total-count error, cadence)."""
    from rich.console import Console

    from train.baselines import BASELINES, evaluate_baseline
    from train.metrics import results_table, save_results

    if baseline is None:
        fail(f"give --baseline ({' | '.join(BASELINES)})")
    if baseline not in BASELINES:
        fail(f"unknown baseline {baseline!r}; expected one of {', '.join(BASELINES)}")
    if window not in (5, 10, 20):
        fail(f"--window {window:g}: expected 5, 10 or 20 seconds (the paper's windows)")
    if folds < 2:
        fail(f"--folds {folds}: need at least 2")
    if fold and any(not 0 <= k < folds for k in fold):
        fail(f"--fold {fold}: folds are 0..{folds - 1}")
    console = Console(stderr=True)
    try:
        recs = load_dataset(dataset, n_folds=folds)
        if not labeled(recs):
            fail(f"{dataset}: no labeled runs (every steps cell is empty); nothing to evaluate")
        with console.status("") as status:
            run = evaluate_baseline(recs, dataset, baseline, window, folds=fold or None, n_folds=folds, progress=status.update)
    except USAGE_ERRORS as e:
        fail(str(e))
    title = f"{baseline} baseline, {window:g}-s windows, {Path(dataset).name} (test folds)"
    Console().print(results_table(run.results, title))
    if baseline == "onset":
        for r in run.results:
            typer.echo(f"fold {r.fold} tuned on train runs: {r.extra['params']} (train MAE {r.extra['train_mae']:.3f})")
    path = out or Path(dataset) / "results" / f"baseline-{baseline}-{window:g}s.json"
    save_results(path, run.results, baseline=baseline, dataset=str(Path(dataset).resolve()), window_s=window, n_folds=folds)
    typer.echo(f"saved {path}")


def register(app: typer.Typer) -> None:
    """Add `data` (sub-commands) and `eval` to the `footfall` app."""
    app.add_typer(data_app, name="data")
    app.command("eval")(eval_command)
