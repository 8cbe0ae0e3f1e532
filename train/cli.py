"""`footfall`: the host-side CLI. Each area registers its commands from its own module."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="footfall host-side tools: data, train, psl, distill, qat, export, eval, bench")

# each module exposes register(app: typer.Typer) -> None
COMMAND_MODULES = ("train.data.cli", "train.cli_train", "train.cli_psl", "export.cli", "train.calibrate", "bench.cli")

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as e:  # an area not written yet; anything else is a real error
        if e.name != _name:
            raise
        continue
    _module.register(app)
