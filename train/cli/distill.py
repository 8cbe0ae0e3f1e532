"""``footfall psl relabel|analyze|ablate``, ``footfall distill`` and ``footfall qat``: thin typer
commands over :mod:`train.distill.psl`, :mod:`train.distill.student`, :mod:`train.evaluate.ablation` and :mod:`train.quant.qat`.

Bad input (a missing teacher or dataset, alpha outside [0, 1], an unknown student) prints one
line and exits with status 2. Scale-out: relabeling, distillation and the ablation run under
``torchrun --nproc_per_node N -m train.cli.distill psl relabel ...`` (gloo on CPUs, NCCL on GPUs).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, List, Optional

import typer

from edge.util import fail as _fail

# its one-line description, listing the sub-commands, is written when it is registered (register)
psl_app = typer.Typer(add_completion=False, no_args_is_help=True)


def _input_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input (one line to the user), not a bug (a traceback)."""
    from edge.audio import AudioError
    from train.fit.config import ConfigError
    from train.data.recordings import DatasetError
    from train.models import CheckpointError, ConfigError as ModelConfigError
    from train.distill.psl import PSLError

    return (ConfigError, DatasetError, AudioError, ModelConfigError, CheckpointError, PSLError, FileNotFoundError)


def _setup_logging(verbose: bool = False) -> None:
    """Progress lines on stderr (rank 0 only); ``verbose``: the libraries' start-up warnings that
    ``footfall`` quiets (edge.backends.NOISY_LOGGERS) show again."""
    from rich.logging import RichHandler

    from edge.backends import NOISY_LOGGERS

    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(show_path=False, rich_tracebacks=False)], force=True)
    if verbose:
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


def _rank0() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# --------------------------------------------------------------------------- psl


@psl_app.command("relabel")
def relabel_command(
    teacher: List[Path] = typer.Option(..., "--teacher", "-t", help="teacher checkpoint (a best.pt); give it again for an ensemble, "
                                       "whose label is the mean of its members' step probabilities"),
    data: Path = typer.Option(..., "--data", "-d", help="dataset folder (labeled and unlabeled runs)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="PSL folder; default DATA/psl/<teacher>-<sha8>"),
    window: Optional[float] = typer.Option(None, "--window", help="teacher window in s (default: its training window)"),
    hop: Optional[float] = typer.Option(None, "--hop", help="relabeling hop in s (default: half the window; each window gives its centre hop)"),
    batch_size: int = typer.Option(32, "--batch-size"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace labels of another teacher/window/hop (or an older format) in --out"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Relabel every recording with the teacher (or the mean of an ensemble's): its step probability per 40-ms frame (resumable)."""
    _setup_logging()
    try:
        from train.distill.psl import relabel

        path = relabel(teacher, data, out, window, hop, batch_size, device, overwrite, progress)
        if _rank0():
            typer.echo(str(path))
    except _input_errors() as e:
        _fail(e)


@psl_app.command("analyze")
def analyze_command(
    psl: Path = typer.Option(..., "--psl", help="PSL folder (footfall psl relabel)"),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="dataset (default: the one relabeled)"),
    window: list[float] = typer.Option([], "--window", help="window length(s) in s to count steps in, repeatable; default 1 2 5"),
) -> None:
    """Compare pseudo-strong labels with the true steps: steps found (F1), and per window the count's error, bias and correlation; a plot."""
    _setup_logging()
    try:
        from rich.console import Console
        from rich.table import Table

        from train.distill.psl import ANALYSIS_WINDOWS_S, analyze

        res = analyze(psl, data, sorted(set(window)) or ANALYSIS_WINDOWS_S)
        groups = {"all": f"all {res['n_runs']} labeled runs"}
        if res["teacher_fold"] is not None and f"fold{res['teacher_fold']}" in res["by_group"]:
            groups[f"fold{res['teacher_fold']}"] = f"group {res['teacher_fold']}: the teacher's test runners (held out)"
        f = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        for group, title in groups.items():
            ev = res["by_group"][group]["events"]
            table = Table(title=f"PSL vs true steps, {title}: teacher's steps F1 {f(ev['f1'])} "
                                f"(precision {f(ev['precision'])}, recall {f(ev['recall'])}, +-{ev['tolerance_s'] * 1000:g} ms)")
            for col in ("window", "windows", "true mean", "event MAE", "event bias", "event PCC", "soft MAE", "soft bias", "soft PCC"):
                table.add_column(col, justify="right")
            for r in res["by_group"][group]["windows"]:
                table.add_row(f"{r['window_s']:g} s", str(r["n_windows"]), f(r["true_mean"]), f(r["event_mae"]), f(r["event_bias"]),
                              f(r["event_pcc"]), f(r["soft_mae"]), f(r["soft_bias"]), f(r["soft_pcc"]))
            table.caption = "event: the teacher's probabilities through the step counter; soft: their sum (the expected count a student is taught)"
            Console().print(table)
        typer.echo(f"{psl / 'analysis.json'}, {psl / 'analysis.png'}")
    except _input_errors() as e:
        _fail(e)


def _distill_config(preset: Optional[str], config: Optional[Path], sets: list[str], **named: Any):
    from train.fit.config import parse_override
    from train.distill.student import load_distill_config

    overrides: dict[str, Any] = {k: v for k, v in named.items() if v is not None}
    student, width = overrides.pop("model", None), overrides.pop("width", None)
    if student is not None:
        overrides["model"] = student
    if width is not None:
        overrides[f"model_args.{student or 'mobilenetv2'}.width"] = width
    for item in sets:  # --set wins over the named options
        keys, value = parse_override(item)
        overrides[".".join(keys)] = value
    return load_distill_config(preset, config, overrides)


def _check_student(name: Optional[str]) -> None:
    from train.fit.config import ConfigError
    from train.models import list_models

    if name is not None and name not in list_models("student"):
        raise ConfigError(f"--student {name!r}: expected one of {', '.join(list_models('student'))}")


@psl_app.command("ablate")
def ablate_command(
    data: Path = typer.Option(..., "--data", "-d", help="dataset folder"),
    psl: str = typer.Option(..., "--psl", help="PSL folder of the fold's teacher; may contain {fold}"),
    student: Optional[str] = typer.Option(None, "--student", help="mobilenetv2 or cnn6 (default mobilenetv2)"),
    width: Optional[float] = typer.Option(None, "--width", help="width multiplier (default 0.35, the shipped student)"),
    fold: list[int] = typer.Option([], "--fold", "-k", help="fold(s) to run, repeatable; default 0"),
    window: list[float] = typer.Option([], "--window", help="extra student windows (s) for the default PSL row"),
    only: list[str] = typer.Option([], "--only", help="run only these rows (repeatable), e.g. weak, true, teacher"),
    out: Path = typer.Option(Path("runs/ablation"), "--out", "-o"),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="schedule/runtime preset: smoke, cpu, gpu (train.distill.student.PRESETS)"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML of DistillConfig keys"),
    epochs: Optional[int] = typer.Option(None, "--epochs"),
    set_: list[str] = typer.Option([], "--set", "-s", help="override any DistillConfig key: --set key=value"),
) -> None:
    """The PSL ablation: students on weak counts, true step frames, the teacher's probabilities and their mix, vs the teacher."""
    _setup_logging()
    try:
        from train.evaluate.ablation import ablate, markdown

        _check_student(student)
        cfg = _distill_config(preset, config, set_, model=student, width=width, data=str(data), psl=psl, epochs=epochs)
        table = ablate(cfg, out, folds=fold or [0], windows=window, only=only)
        if _rank0():
            typer.echo(markdown(table))
            typer.echo(json.dumps(table["verdict"]))
    except _input_errors() as e:
        _fail(e)


# --------------------------------------------------------------------------- distill, qat


def distill_command(
    student: Optional[str] = typer.Option(None, "--student", help="mobilenetv2 (default) or cnn6"),
    width: Optional[float] = typer.Option(None, "--width", help="width multiplier (default 0.35 for mobilenetv2, the shipped student)"),
    psl: Optional[Path] = typer.Option(None, "--psl", help="PSL folder (footfall psl relabel)"),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="dataset folder (default: the PSL folder's)"),
    fold: Optional[int] = typer.Option(None, "--fold", "-k"),
    labels: Optional[str] = typer.Option(None, "--labels", help="psl (default; the teacher's probabilities and the true steps), true or weak (no teacher)"),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="weight of the teacher's probabilities vs the true step frames on labeled runs, in [0, 1] (default 0.5)"),
    unlabeled: Optional[bool] = typer.Option(None, "--unlabeled/--no-unlabeled", help="train on the unlabeled runs too (default on)"),
    window: Optional[float] = typer.Option(None, "--window", help="student window in s (default 2.4); the training "
                                          "hop becomes half of it (--set train_hop_s=X overrides)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o"),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="schedule/runtime preset: smoke, cpu, gpu (train.distill.student.PRESETS)"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML of DistillConfig keys"),
    epochs: Optional[int] = typer.Option(None, "--epochs"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps"),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out from its last.pt"),
    init: Optional[Path] = typer.Option(None, "--init", help="fine-tune: start from this student checkpoint's weights "
                                        "(same model and config; a fresh optimizer and schedule in a new --out)"),
    set_: list[str] = typer.Option([], "--set", "-s", help="override any DistillConfig key: --set key=value"),
) -> None:
    """Train a student, the small model that runs on phones, from a teacher's pseudo-strong labels and/or the true steps.

    --labels psl mixes the teacher's step probabilities with the true step frames (--alpha);
    --labels true or weak needs no teacher."""
    _setup_logging()
    try:
        from train.distill.student import train_student
        from train.distill.psl import load_provenance

        _check_student(student)
        if data is None and psl is not None:
            data = Path(load_provenance(psl).dataset)
        cfg = _distill_config(preset, config, set_, model=student, width=width, psl=str(psl) if psl else None, data=str(data) if data else None,
                              fold=fold, labels=labels, alpha=alpha, unlabeled=unlabeled, window_s=window,
                              train_hop_s=window / 2 if window else None, out=str(out) if out else None, epochs=epochs,
                              batch_size=batch_size, lr=lr, max_steps=max_steps, device=device, init=str(init) if init else None)
        res = train_student(cfg, resume=resume)
        if _rank0():
            typer.echo(f"{res.best_path}  (test 5-s MAE {res.test['direct']['mae']:.3f}, streamed {res.test['stream']['mae']:.3f})")
    except _input_errors() as e:
        _fail(e)


def qat_command(
    student: Path = typer.Option(..., "--student", help="float student checkpoint to quantize (footfall distill's best.pt)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="output folder (default: int8/ beside the student checkpoint)"),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="dataset (default: the one the student was trained on)"),
    psl: Optional[Path] = typer.Option(None, "--psl", help="pseudo-strong-label folder (default: the student's)"),
    epochs: int = typer.Option(4, "--epochs", help="passes of quantization-aware training over the training runs"),
    lr: float = typer.Option(1e-4, "--lr", help="learning rate: small, the student is only adjusted to int8"),
    batch_size: int = typer.Option(64, "--batch-size"),
    freeze_bn_epoch: int = typer.Option(2, "--freeze-bn-epoch", help="epochs in which the batch-norm statistics still move"),
    freeze_observer_epoch: int = typer.Option(3, "--freeze-observer-epoch", help="epochs in which the int8 value ranges still move; "
                                              "the epoch converted is the best on the validation runs of those after"),
    calib_batches: int = typer.Option(16, "--calib-batches", help="batches of training windows that set the value ranges of the PTQ variant (a streaming student: of its QAT step, before training)"),
    max_steps_per_epoch: int = typer.Option(0, "--max-steps-per-epoch", help="at most this many training steps per epoch (0: all; for quick trials)"),
    ptq: bool = typer.Option(True, "--ptq/--no-ptq", help="also make the post-training-quantized (PTQ) variant, to compare with "
                             "(not for a streaming student: `footfall export` of its checkpoint is its PTQ)"),
    qat: bool = typer.Option(True, "--qat/--no-qat", help="run QAT (--no-qat: PTQ only, minutes instead of half an hour on a CPU)"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda"),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads (0: one a core; give 1 to each of several runs that share the cores)"),
    force: bool = typer.Option(False, "--force", help="replace the int8 graphs and report an earlier run left in --out"),
    verbose: bool = typer.Option(False, "--verbose", help="also show the quantization libraries' start-up warnings (hidden by default: nothing to act on)"),
) -> None:
    """Make int8 versions of a student for phones: quantization-aware training (QAT), and PTQ to compare.

    QAT fine-tunes the student with int8 rounding simulated; post-training quantization (PTQ) only
    measures value ranges on a few batches. Both are saved as graphs (.pt2) that `footfall export`
    takes, with a report comparing their accuracy with the float student's; every file written is
    listed at the end. A streaming student is trained as it ships: its step (a packet and its state),
    each training window streamed through it packet by packet (BatchNorm folded first, so
    --freeze-bn-epoch does not apply)."""
    _setup_logging(verbose)
    try:
        from rich.console import Console
        from rich.table import Table

        from train.quant.qat import QATConfig, run_qat

        report = run_qat(QATConfig(student=str(student), out=str(out) if out else "", data=str(data) if data else "", psl=str(psl) if psl else "",
                                   epochs=epochs, lr=lr, batch_size=batch_size, freeze_bn_epoch=freeze_bn_epoch, freeze_observer_epoch=freeze_observer_epoch,
                                   calib_batches=calib_batches, max_steps_per_epoch=max_steps_per_epoch, ptq=ptq, qat=qat, device=device,
                                   threads=threads, force=force))
        table = Table(title=f"test runs, counted as a phone runs the model (a {report['window_frames']}-frame window every "
                            f"{report['hop_frames']} frames)")
        for col in ("model", "MAE", "PCC", "total err % (median)", "MAE vs fp32"):
            table.add_column(col, justify="right")
        for name, r in report["summary"]["test_stream"].items():
            rel = r.get("mae_rel_change_pct")
            table.add_row(name, f"{r['mae']:.4f}", f"{r['pcc']:.3f}" if r["pcc"] is not None else "-", f"{r['tce_median']:.2f}",
                          "" if rel is None else f"{rel:+.2f} %")
        table.caption = ("MAE: mean error of the step count in 5-s windows; PCC: correlation of those counts with the true ones; "
                         "total err: error of a whole run's count")
        Console().print(table)
    except _input_errors() as e:
        _fail(e)
    for path in report["written"]:
        typer.echo(f"wrote: {path}")


def register(app: typer.Typer) -> None:
    from train.cli import subcommand_names

    app.add_typer(psl_app, name="psl", help="pseudo-strong labels, a teacher's step probability per frame that a student "
                                             f"learns from: {', '.join(subcommand_names(psl_app))}")
    app.command("distill")(distill_command)
    app.command("qat")(qat_command)


def main() -> None:
    """``python -m train.cli.distill {psl,distill,qat} ...``: these commands alone (what torchrun launches)."""
    from train.cli.fit import standalone

    standalone(register)


if __name__ == "__main__":
    main()
