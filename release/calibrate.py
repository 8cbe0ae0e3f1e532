"""``footfall calibrate``: fit the edge counter's rate calibration of an exported artifact.

Why: a step-count regressor trained with MSE on window counts shrinks towards the cadence it saw
most. On fold 0 the bundled student over-counts slow runs and under-counts fast ones (per-run
total error against mean cadence: correlation -0.66, -0.18 % per spm on the validation and test
runs, -0.16 % per spm on its own training runs), so held-out runners whose cadence is below the
training mean are over-counted by several per cent.

What: :class:`edge.counter.RateCalibration` multiplies each committed density frame by
``g(r) = clip(1 + slope * (r - centre), gain_min, gain_max)``, ``r`` the uncalibrated rate of
the last 10 s. :func:`fit` chooses ``slope`` and ``centre`` (Nelder-Mead from no correction)
to minimise the sum over runs of the squared relative total-count error.

Protocol: the fit uses only runs the model was trained on: the fold's *train* split of
``--data`` and every labeled run of each ``--extra`` dataset. The fold's validation and test
runs are streamed too and reported before/after, never fitted. Densities come from the
artifact itself, through the edge runtime (``edge.stream.count_offline``, exactly what a phone
commits), so the calibration is fitted to the int8 graph that ships. The result goes into the
artifact's model card (``calibration``, with the fit report), written atomically; the artifact
and its sha256 do not change. Torch is not needed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from edge.counter import DENSITY_FPS, RateCalibration

WINDOW_S = 10.0
GAIN_MIN, GAIN_MAX = 0.5, 1.5
# Two parameters (slope, centre) fitted to one error per run: with 2 runs the fit is exact and
# meaningless (2 runs gave a centre of -217 712 spm). Four runs per parameter, at least.
MIN_FIT_RUNS = 8


class CalibrationError(ValueError):
    """Bad input to the calibration (one line)."""


@dataclass
class RunDensity:
    """One run's committed, uncalibrated density and its true step count."""

    run_id: str
    split: str  # fit | val | test
    density: np.ndarray  # (n_frames // 4,) float32, 25 frames/s
    true_steps: int


def total_errors_pct(runs: Sequence[RunDensity], cal: RateCalibration | None) -> np.ndarray:
    """Signed total-count error per run, in % of the true count."""
    out = []
    for r in runs:
        pred = float(cal.apply(r.density).sum()) if cal is not None else float(np.sum(r.density, dtype=np.float64))
        out.append(100.0 * (pred - r.true_steps) / r.true_steps)
    return np.asarray(out)


def _check_enough(n_fit: int) -> None:
    if n_fit < MIN_FIT_RUNS:
        raise CalibrationError(
            f"need at least {MIN_FIT_RUNS} runs with steps to fit a rate calibration (slope and centre), got {n_fit}: "
            "add training runs (--extra DATASET) or use a dataset with more runners"
        )


def fit(runs: Sequence[RunDensity], window_s: float = WINDOW_S, gain_min: float = GAIN_MIN, gain_max: float = GAIN_MAX) -> RateCalibration:
    """Least squares on the runs' relative total-count errors; starts from no correction."""
    from scipy.optimize import minimize

    runs = [r for r in runs if r.true_steps > 0]
    _check_enough(len(runs))

    def make(p: np.ndarray) -> RateCalibration:
        return RateCalibration(centre_spm=float(p[1]), slope_per_spm=float(p[0]) / 100.0, window_s=window_s, gain_min=gain_min, gain_max=gain_max)

    def loss(p: np.ndarray) -> float:
        return float(np.sum(total_errors_pct(runs, make(p)) ** 2))

    res = minimize(loss, np.array([0.0, 165.0]), method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 2000})
    if not np.all(np.isfinite(res.x)):
        raise CalibrationError("the rate calibration fit did not converge")
    return make(res.x)


def _stats(errors: np.ndarray) -> dict:
    return {
        "runs": int(len(errors)),
        "median_abs_total_error_pct": round(float(np.median(np.abs(errors))), 3) if len(errors) else None,
        "mean_total_error_pct": round(float(np.mean(errors)), 3) if len(errors) else None,
    }


def report(runs: Sequence[RunDensity], cal: RateCalibration) -> dict:
    """Per split: runs, median |total error| and mean total error, before and after."""
    out = {}
    for split in ("fit", "val", "test"):
        sel = [r for r in runs if r.split == split]
        if sel:
            out[split] = {"uncalibrated": _stats(total_errors_pct(sel, None)), "calibrated": _stats(total_errors_pct(sel, cal))}
    return out


def plot(runs: Sequence[RunDensity], cal: RateCalibration, path: str | Path, title: str = "") -> Path:
    """Per-run signed total-count error against the run's true mean cadence, before and after, and g(r)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, axg) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2.2, 1]})
    colours = {"fit": "0.6", "val": "tab:blue", "test": "tab:red"}
    for split in ("fit", "val", "test"):
        sel = [r for r in runs if r.split == split and r.true_steps > 0]
        if not sel:
            continue
        spm = np.array([60.0 * r.true_steps * DENSITY_FPS / len(r.density) for r in sel])
        before, after = total_errors_pct(sel, None), total_errors_pct(sel, cal)
        c = colours[split]
        ax.scatter(spm, before, s=18, facecolors="none", edgecolors=c, linewidths=0.8)
        ax.scatter(spm, after, s=14, color=c, label=f"{split} ({len(sel)} runs): median |error| {np.median(np.abs(before)):.2f} → {np.median(np.abs(after)):.2f} %")
    ax.axhline(0, color="k", lw=0.6)
    ax.axhspan(-3, 3, color="tab:green", alpha=0.08, lw=0)
    ax.set_xlabel("true mean cadence of the run (steps/min)")
    ax.set_ylabel("total-count error (%)")
    ax.set_title("per run: open = uncalibrated, filled = calibrated")
    ax.legend(fontsize=8, loc="best")
    r = np.linspace(0, 220, 221)
    axg.plot(r, cal.gain(r), color="k")
    axg.axhline(1, color="0.7", lw=0.6)
    axg.set_xlabel(f"uncalibrated rate, last {cal.window_s:g} s (spm)")
    axg.set_ylabel("gain g(r)")
    axg.set_title(f"g(r) = 1 {cal.slope_per_spm:+.5f} (r − {cal.centre_spm:.1f})", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def collect(
    backend,
    card,
    data: str | Path,
    fold: int,
    extra: Sequence[str | Path] = (),
    progress: Optional[Callable[[str, int, int], None]] = None,
) -> list[RunDensity]:
    """Stream every labeled run of the fit/val/test sets through a loaded artifact (uncalibrated)."""
    from edge.audio import load_audio
    from edge.stream import count_offline
    from train.data.folds import N_FOLDS, split as split_folds
    from train.data.recordings import labeled, load_dataset, load_steps

    raw_card = dataclasses.replace(card, calibration={})
    recs = labeled(load_dataset(data))
    if not recs:
        raise CalibrationError(f"{data}: no labeled runs")
    if not 0 <= fold < N_FOLDS:
        raise CalibrationError(f"fold {fold} not in 0..{N_FOLDS - 1}")
    train, val, test = split_folds(recs, fold, N_FOLDS)
    todo = [("fit", r) for r in train]
    for d in extra:
        more = labeled(load_dataset(d))
        if not more:
            raise CalibrationError(f"{d}: no labeled runs")
        todo += [("fit", r) for r in more]
    _check_enough(sum(split == "fit" for split, _ in todo))  # before streaming anything
    todo += [("val", r) for r in val] + [("test", r) for r in test]
    out = []
    for i, (split, rec) in enumerate(todo):
        if progress:
            progress(rec.run_id, i, len(todo))
        audio = load_audio(rec.audio)
        density = count_offline(backend, raw_card, audio).density
        out.append(RunDensity(rec.run_id, split, density, len(load_steps(rec.steps, rec.duration_s))))
    if progress:
        progress("", len(todo), len(todo))
    return out


def calibrate(
    artifact: str | Path,
    data: str | Path,
    fold: int = 0,
    extra: Sequence[str | Path] = (),
    write: bool = True,
    progress: Optional[Callable[[str, int, int], None]] = None,
    threads: int = 1,
    plot_path: str | Path | None = None,
) -> dict:
    """Fit, report and (with ``write``) store the calibration in ``artifact``'s card; optionally plot it."""
    from edge.backends import load_model
    from edge.card import write_card

    backend, card = load_model(artifact, threads=threads)  # verifies the card against the artifact once
    runs = collect(backend, card, data, fold, extra, progress)
    cal = fit([r for r in runs if r.split == "fit"])
    rep = report(runs, cal)
    entry = cal.to_dict() | {
        "fit": {
            "objective": "sum over runs of squared relative total-count error",
            "runs": "train split of the fold" + (" + every labeled run of the extra datasets" if extra else ""),
            "dataset": str(data),
            "fold": fold,
            "extra": [str(d) for d in extra],
            "density_fps": DENSITY_FPS,
            "report": rep,
        }
    }
    if plot_path is not None:
        plot(runs, cal, plot_path, title=f"{Path(artifact).name}: rate calibration fitted on the 'fit' runs only")
    if write:
        card.calibration = entry
        write_card(card, artifact)
    return entry


# --------------------------------------------------------------------------- CLI


def register(app) -> None:
    import typer

    @app.command("calibrate")
    def calibrate_command(
        artifacts: list[Path] = typer.Argument(..., help="exported artifact(s) with model cards (.tflite, .pte, .onnx)"),
        data: Path = typer.Option(..., "--data", "-d", help="the dataset the model was trained on (its fold's train runs are fitted)"),
        fold: int = typer.Option(0, "--fold", "-k"),
        extra: list[Path] = typer.Option([], "--extra", help="more training datasets (all labeled runs fitted), repeatable"),
        dry_run: bool = typer.Option(False, "--dry-run", help="fit and report, leave the card as it is"),
        with_plot: bool = typer.Option(True, "--plot/--no-plot", help="write ARTIFACT.calibration.png: per-run errors against cadence, before and after, and g(r)"),
        as_json: bool = typer.Option(False, "--json", help="print the calibration as JSON"),
        threads: int = typer.Option(1, "--threads"),
    ) -> None:
        """Fit the counter's rate calibration on the training runs and write it into the card."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        from rich.table import Table

        from edge.audio import AudioError
        from edge.backends import BackendError
        from edge.card import CardError
        from edge.util import fail
        from train.data.recordings import DatasetError

        console = Console(stderr=True)
        for artifact in artifacts:
            try:
                with Progress(TextColumn(f"calibrating {artifact.name}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                              TimeRemainingColumn(), console=console, transient=True) as bar:
                    task = bar.add_task("", total=None)

                    def tick(run_id: str, i: int, n: int) -> None:
                        bar.update(task, completed=i, total=n, description=run_id)

                    png = artifact.with_name(artifact.name + ".calibration.png") if with_plot else None
                    entry = calibrate(artifact, data, fold, extra, write=not dry_run, progress=tick, threads=threads, plot_path=png)
            except (CalibrationError, CardError, BackendError, DatasetError, AudioError, FileNotFoundError) as e:
                fail(e)
            if as_json:
                typer.echo(json.dumps(entry, indent=1))
            t = Table(title=f"{artifact.name}: g(r) = clip(1 {entry['slope_per_spm']:+.6f} (r - {entry['centre_spm']:.1f} spm), "
                            f"{entry['gain_min']}, {entry['gain_max']}), r over {entry['window_s']:g} s")
            for col in ("runs", "", "n", "median |total error| %", "mean total error %"):
                t.add_column(col, justify="right" if col not in ("runs", "") else "left")
            for split, rows in entry["fit"]["report"].items():
                for kind in ("uncalibrated", "calibrated"):
                    s = rows[kind]
                    t.add_row(split if kind == "uncalibrated" else "", kind, str(s["runs"]),
                              f"{s['median_abs_total_error_pct']:.2f}", f"{s['mean_total_error_pct']:+.2f}")
            Console().print(t)
            where = "not written (--dry-run)" if dry_run else f"written to {artifact}.card.json"
            typer.echo(f"{artifact.name}: calibration fitted on the 'fit' runs only; {where}" + (f"; plot {png}" if png else ""))
