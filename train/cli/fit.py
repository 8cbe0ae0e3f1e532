"""``footfall train`` and ``footfall cv``: thin typer commands over :func:`train.fit.trainer.train` and
:func:`train.evaluate.cv.run_cv`.

Config layers: ``--preset`` (smoke, cpu, gpu), ``--config FILE.yaml``, the named options, then
``--set key=value`` (repeatable; ``--set model_args.cnn14.width=0.5``). ``--resume --out RUN``
alone continues a run with the config it saved (``RUN/config.yaml``); options given with it
override that (only the keys a resume may change). Bad input (an unknown
key, a missing dataset, a fold out of range) prints one line and exits with status 2.

Scale-out: the same command under ``torchrun --nproc_per_node N -m train.cli.fit train ...``
(or ``torchrun ... $(which footfall) train ...``) trains with DistributedDataParallel.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional

import typer

from edge.util import fail as _fail


def _input_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input (one line to the user), not a bug (a traceback)."""
    from edge.audio import AudioError
    from train.fit.config import ConfigError
    from train.data.recordings import DatasetError
    from train.models import CheckpointError, ConfigError as ModelConfigError

    return (ConfigError, DatasetError, AudioError, ModelConfigError, CheckpointError, FileNotFoundError)


def _setup_logging() -> None:
    """Rich log lines for the ``footfall`` loggers (rank 0 at INFO, other ranks warnings only)."""
    from rich.logging import RichHandler

    logger = logging.getLogger("footfall")
    logger.setLevel(logging.INFO if int(os.environ.get("RANK", "0")) == 0 else logging.WARNING)
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        logger.addHandler(RichHandler(show_path=False, log_time_format="[%X]"))


def _overrides(sets: list[str], **named: Any) -> list[str] | dict[str, Any]:
    from train.fit.config import parse_override

    out: dict[str, Any] = {k: v for k, v in named.items() if v is not None}
    for item in sets:
        keys, value = parse_override(item)
        out[".".join(keys)] = value
    return out


def train_command(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="registered model name (cnn14, wvlm_cnn14, cnn10, crnn, fnn, ...)"),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="dataset folder (manifest.csv + audio + steps)"),
    fold: Optional[int] = typer.Option(None, "--fold", "-k", help="test fold k (val = k+1, train = the rest)"),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="smoke, cpu or gpu"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file of TrainConfig keys"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="run folder (config.yaml, last.pt, best.pt, metrics.csv)"),
    epochs: Optional[int] = typer.Option(None, "--epochs"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="global batch (split over DDP ranks)"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps"),
    precision: Optional[str] = typer.Option(None, "--precision", help="auto, fp32, bf16, fp16"),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda"),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the model"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out exactly where its last checkpoint left it "
                                "(its config comes from the run: --out alone is enough)"),
    set_: list[str] = typer.Option([], "--set", "-s", help="override any config key: --set key=value (repeatable)"),
) -> None:
    """Train a teacher, a large model, on one fold of a dataset (the fold's runners held out for testing)."""
    _setup_logging()
    try:
        from train.fit.config import ConfigError, load_config
        from train.fit.trainer import CONFIG, train

        if resume and preset is None and config is None:  # the run folder knows its config
            if out is None:
                raise ConfigError("--resume needs --out RUN_FOLDER (the run to continue)")
            if (out / CONFIG).is_file():
                config = out / CONFIG
        cfg = load_config(
            preset,
            config,
            _overrides(set_, model=model, data=str(data) if data else None, fold=fold, out=str(out) if out else None, epochs=epochs,
                       batch_size=batch_size, lr=lr, max_steps=max_steps, precision=precision, device=device, compile=compile),
        )
        train(cfg, resume=resume)
    except _input_errors() as e:
        _fail(e)


def cv_command(
    model: list[str] = typer.Option(["cnn14"], "--model", "-m", help="model(s) to cross-validate; repeat or comma-separate"),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="dataset folder"),
    folds: int = typer.Option(5, "--folds", help="run folds 0..N-1 of the runner-independent split"),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="smoke, cpu or gpu"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file of TrainConfig keys"),
    out: Path = typer.Option(Path("runs/cv"), "--out", "-o", help="folder for per-fold runs, table_ii.{md,csv,json} and counts.png"),
    baselines: str = typer.Option("naive,onset", "--baselines", help="comma-separated: naive, onset (empty for none)"),
    resume: bool = typer.Option(False, "--resume", help="reuse finished folds and resume interrupted ones"),
    set_: list[str] = typer.Option([], "--set", "-s", help="override any config key: --set key=value (repeatable)"),
) -> None:
    """Cross-validate models and baselines over folds of different runners; print and save the table of results.

    Per model: the step count's mean absolute error per 5-s window (MAE), the counts' correlation
    with the true ones (PCC) and the total-count error, each as mean ± std over the folds."""
    _setup_logging()
    try:
        from train.fit.config import ConfigError, load_config
        from train.evaluate.cv import run_cv

        cfg = load_config(preset, config, _overrides(set_, data=str(data) if data else None))
        models = [m.strip() for item in model for m in item.split(",") if m.strip()]
        names = [b.strip() for b in baselines.split(",") if b.strip()]
        if not 1 <= folds <= cfg.n_folds:
            raise ConfigError(f"--folds {folds}: expected 1..{cfg.n_folds}")
        run_cv(cfg, models, list(range(folds)), out, baselines=names, resume=resume)
    except _input_errors() as e:
        _fail(e)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("cv")(cv_command)


def standalone(register_commands) -> None:
    """Run the commands that ``register_commands(app)`` adds as a program of their own (what torchrun launches)."""
    app = typer.Typer(add_completion=False, no_args_is_help=True)
    register_commands(app)
    app()


def main() -> None:
    """``python -m train.cli.fit {train,cv} ...``: these two commands alone."""
    standalone(register)


if __name__ == "__main__":
    main()
