"""`footfall eval`: the paper's table for a counter (a baseline cross-validated on a dataset), or an
exported artifact scored through the edge runtime beside the baselines.

Thin typer layer: the work is in :mod:`train.evaluate.baselines`, :mod:`train.evaluate.metrics` and
:mod:`train.evaluate.realeval`. Bad input ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from edge.util import fail
from train.cli.data import USAGE_ERRORS
from train.data.recordings import labeled, load_dataset


def _check_out(out: Optional[Path], dataset: Path, model: Optional[Path]) -> None:
    """Refuse, before any scoring, an --out that is a folder or an input: a file of the dataset
    (its results/ folder aside, where results go), the model or its card."""
    from edge.card import card_path

    if out is None:
        return
    if out.is_dir():
        fail(f"--out {out}: is a folder; give a file name such as {out / 'results.json'}")
    if not out.exists():
        return
    target, root = out.resolve(), dataset.resolve()
    if target.is_relative_to(root) and not target.is_relative_to(root / "results"):
        fail(f"--out {out}: that file is part of the dataset {dataset}; choose another (results go to "
             f"{dataset / 'results'} by default)")
    for inp in (model, card_path(model)) if model is not None else ():
        if inp.exists() and os.path.samefile(out, inp):
            fail(f"--out {out}: that is the model's file {inp}; choose another")


def eval_model(dataset: Path, model: Path, folds: int, fold: Optional[list[int]], out: Optional[Path], card_key: Optional[str] = None,
               peers: bool = False, tune_on: Optional[Path] = None) -> None:
    """`footfall eval DATASET --model ARTIFACT`: the artifact through the edge runtime, with the baselines
    (and madmom's, with ``peers``)."""
    from rich.console import Console

    from edge.backends import BackendError
    from edge.card import CardError
    from train.evaluate.realeval import (DEFAULT_COUNTERS, PEERS, evaluate_artifact, group_table, is_step_free, overall_table,
                                         save_report)

    console = Console(stderr=True)
    if fold and any(not 0 <= k < folds for k in fold):
        fail(f"--fold {fold}: folds are 0..{folds - 1}")
    try:
        step_free = is_step_free(dataset, folds)
    except USAGE_ERRORS as e:
        fail(e)
    if step_free:
        eval_step_free(dataset, model, out, card_key, peers, fold, tune_on)
        return
    if tune_on is not None:
        fail(f"--tune-on is for a step-free set; {dataset} holds steps (its baselines are tuned on its own folds)")
    try:
        with console.status("") as status:
            report = evaluate_artifact(model, dataset, folds=fold or None, n_folds=folds,
                                       counters=DEFAULT_COUNTERS + (PEERS if peers else ()), progress=status.update)
    except (*USAGE_ERRORS, BackendError, CardError, FileNotFoundError) as e:
        fail(e)
    out_console = Console()
    out_console.print(overall_table(report, f"{Path(model).name} on {Path(dataset).name} ({report.extra['scored']}), 5-s windows"))
    out_console.print(group_table(report.by_source, "source"))
    out_console.print(group_table(report.by_surface, "surface"))
    if report.extra.get("skipped"):
        typer.echo(f"note: {report.extra['skipped']}", err=True)
    path = out or Path(dataset) / "results" / f"model-{Path(model).name}.json"
    save_report(report, path)
    typer.echo(f"saved {path}")
    if card_key:
        from train.evaluate.realeval import write_to_card

        card = write_to_card(report, model, card_key)
        typer.echo(f"wrote accuracy.{card_key} into {card}")


def eval_step_free(dataset: Path, model: Path, out: Optional[Path], card_key: Optional[str], peers: bool,
                   fold: Optional[list[int]], tune_on: Optional[Path]) -> None:
    """`footfall eval STEP-FREE-SET --model ARTIFACT --tune-on LABELED-SET`: the steps the artifact
    and the onset counter (tuned on LABELED-SET) find where there are none, per kind."""
    from rich.console import Console

    from edge.backends import BackendError
    from edge.card import CardError
    from edge.util import atomic_write
    from train.evaluate.realeval import step_free_report, step_free_table

    for given, option in ((card_key, "--card"), (peers, "--peers"), (fold, "--fold")):
        if given:
            fail(f"{dataset}: a step-free set (no run holds a step) is scored in steps a minute; {option} does not apply")
    if tune_on is None:
        fail(f"{dataset}: a step-free set (no run holds a step) has nothing to tune the onset counter on: give --tune-on "
             "a labeled set (e.g. data/realval)")
    try:
        with Console(stderr=True).status("") as status:
            report = step_free_report(model, dataset, tune_on, progress=status.update)
    except (*USAGE_ERRORS, BackendError, CardError, FileNotFoundError) as e:
        fail(e)
    Console().print(step_free_table(report, f"{Path(model).name} on {Path(dataset).name}: steps counted where there are none"))
    path = out or Path(dataset) / "results" / f"model-{Path(model).name}.json"
    atomic_write(path, json.dumps(report.to_json(), indent=1) + "\n")
    typer.echo(f"saved {path}")


def eval_command(
    dataset: Path = typer.Argument(..., help="dataset folder holding manifest.csv"),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="a counter without a network: onset (a tuned onset detector), "
                                           "naive (every window gets the training windows' mean count), metronome (a constant 170 "
                                           "steps/min), metronome-train (a constant cadence: the training runs' mean), madmom or "
                                           "madmom-tempo (madmom's onset network with peak picking, or with its beat tracker)"),
    model: Optional[Path] = typer.Option(None, "--model", help="exported artifact (.tflite/.pte/.onnx with its card): scored through the edge runtime beside the metronome and onset baselines"),
    folds: int = typer.Option(5, "--folds", help="number of runner-independent folds in the manifest"),
    fold: Optional[list[int]] = typer.Option(None, "--fold", help="evaluate only these folds (repeatable); default all"),
    window: float = typer.Option(5.0, "--window", help="length in seconds of the windows steps are counted in: 5, 10 or 20"),
    out: Optional[Path] = typer.Option(None, "--out", help="JSON results file (never a file of the dataset, nor the model); default "
                                       "DATASET/results/baseline-<name>-<window>s.json"),
    card: Optional[str] = typer.Option(None, "--card", help="with --model: also record the result in the artifact's card as accuracy.<NAME> (e.g. real_sound, synthetic), beside the baselines"),
    peers: bool = typer.Option(False, "--peers", help="with --model: also score madmom's CNN onset detector (peak picking, and beat tracking), tuned per fold like the onset counter"),
    tune_on: Optional[Path] = typer.Option(None, "--tune-on", help="with --model on a step-free set (footfall data negatives): the labeled set the onset counter is tuned on (e.g. data/realval)"),
) -> None:
    """Score step counting on DATASET: an exported model (--model) beside simple counters, or one of those (--baseline).

    The table gives, per window of a few seconds, the mean absolute error of the step count (MAE)
    and the correlation of the counts with the true ones (PCC); and per run the total-count error."""
    from rich.console import Console

    from train.evaluate.baselines import BASELINES, evaluate_baseline
    from train.evaluate.metrics import results_table, save_results
    from train.evaluate.realeval import is_step_free

    _check_out(out, dataset, model)
    if model is not None:
        if baseline is not None:
            fail("give --model or --baseline, not both (--model reports the baselines too)")
        if window != 5:
            fail("--model scores 5-s windows; leave --window out")
        eval_model(dataset, model, folds, fold, out, card, peers, tune_on)
        return
    if tune_on is not None:
        fail("--tune-on tunes the onset counter beside a model on a step-free set: give --model ARTIFACT")
    if peers:
        fail("--peers adds madmom beside a model: give --model ARTIFACT (or --baseline madmom / madmom-tempo)")
    if card is not None:
        fail("--card records a model's result in its card: give --model ARTIFACT")
    if baseline is None:
        fail(f"give --baseline ({' | '.join(BASELINES)}) or --model ARTIFACT")
    if baseline not in BASELINES:
        fail(f"unknown baseline {baseline!r}; expected one of {', '.join(BASELINES)}")
    if window not in (5, 10, 20):
        fail(f"--window {window:g}: expected 5, 10 or 20 seconds")
    if folds < 2:
        fail(f"--folds {folds}: need at least 2")
    if fold and any(not 0 <= k < folds for k in fold):
        fail(f"--fold {fold}: folds are 0..{folds - 1}")
    console = Console(stderr=True)
    try:
        recs = load_dataset(dataset, n_folds=folds)
        if not labeled(recs):
            fail(f"{dataset}: no labeled runs (every steps cell is empty); nothing to evaluate")
        if is_step_free(dataset, folds):
            fail(f"{dataset}: a step-free set (no run holds a step) has no cadence to tune a baseline on: score a model on "
                 "it with --model ARTIFACT --tune-on LABELED-SET (the onset counter is tuned there)")
        with console.status("") as status:
            run = evaluate_baseline(recs, dataset, baseline, window, folds=fold or None, n_folds=folds, progress=status.update)
    except (*USAGE_ERRORS, ImportError) as e:
        fail(e)
    title = f"{baseline} baseline, {window:g}-s windows, {Path(dataset).name} (test folds)"
    Console().print(results_table(run.results, title))
    if baseline in ("onset", "madmom", "madmom-tempo"):
        for r in run.results:
            typer.echo(f"fold {r.fold} tuned on train runs: {r.extra['params']} (train MAE {r.extra['train_mae']:.3f})")
    path = out or Path(dataset) / "results" / f"baseline-{baseline}-{window:g}s.json"
    save_results(path, run.results, baseline=baseline, dataset=str(Path(dataset).resolve()), window_s=window, n_folds=folds)
    typer.echo(f"saved {path}")


def register(app: typer.Typer) -> None:
    """Add `eval` to the `footfall` app."""
    app.command("eval")(eval_command)
