"""`footfall finetune`: a thin typer layer over :func:`train.fit.finetune.finetune`.

Kept apart from :mod:`train.fit.finetune` so that ``footfall --help`` never imports torch: in a
device-only install the command itself says which extra it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional


def register(app) -> None:
    """Add `finetune` to the `footfall` app."""
    import typer

    def finetune_command(
        data: Path = typer.Argument(..., help="your own labelled runs: a dataset from footfall data import-imu --out"),
        out: Path = typer.Option(..., "--out", help="the adapted checkpoint to write (.pt; not in edge/assets, which holds "
                                 "the bundled models)"),
        init: Optional[Path] = typer.Option(None, "--init", help="student checkpoint (.pt) to start from; default the bundled "
                                            "float student, edge/assets/<model>_float.pt (what the bundled int8 model was made from)"),
        holdout: list[str] = typer.Option([], "--holdout", help="run id scored before/after, never trained on (repeatable); default the last run"),
        epochs: int = typer.Option(6, "--epochs", help="passes over your runs; the weights after the last one are saved"),
        lr: float = typer.Option(3e-4, "--lr", help="learning rate: small, so the student keeps what it knew"),
        batch_size: int = typer.Option(16, "--batch-size"),
        threads: int = typer.Option(0, "--threads", help="CPU threads (0: torch's default)"),
        force: bool = typer.Option(False, "--force", help="overwrite --out"),
    ) -> None:
        """Adapt a student (by default the bundled one) to your own labelled runs, and score a held-out run before and after.

        The score is the mean absolute error of the step count in the held-out run's 5-s windows
        (lower is better). Export the result with `footfall export`."""
        from edge.util import fail
        from train.data.recordings import DatasetError
        from train.fit.finetune import FinetuneConfig, FinetuneError, bundled_student, finetune  # torch: only when the command runs

        try:
            start = init if init is not None else bundled_student()
            cfg = FinetuneConfig(str(start), str(data), str(out), list(holdout), epochs, lr, batch_size, threads=threads)
            res = finetune(cfg, force=force, progress=lambda m: typer.echo(m, err=True))
        except (FinetuneError, DatasetError, ValueError, OSError) as e:
            fail(e)
        typer.echo(f"held out {', '.join(res.holdout)}: mean count error per 5-s window {res.before_mae:.3f} -> {res.after_mae:.3f} "
                   f"({len(res.train_runs)} run(s), {res.windows} windows, {res.seconds:.0f} s)")
        typer.echo(f"wrote: {res.out}")

    app.command("finetune")(finetune_command)
