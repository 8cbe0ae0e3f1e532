"""`footfall`: the host-side CLI. Each layer registers its commands from its own module; this top
layer only composes them (nothing below imports it).

The host-side commands need the ``train`` (and some the ``export``) extra; in a device-only
install (``pip install -e '.[edge]'``) a command that reaches a missing package says, in one line,
which extra to install (exit 2) instead of a traceback.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
import sys

import typer

from edge.backends import quiet_startup_loggers

PROJECT = "footfall"
# import name -> distribution name, where they differ (the extras in pyproject.toml name distributions)
_MODULE_DIST = {"yaml": "pyyaml", "litert_torch": "litert-torch", "ai_edge_litert": "ai-edge-litert"}


def extra_for(module: str) -> str | None:
    """The optional-dependency group (extra) of this project that provides ``module``, or None."""
    top = module.split(".")[0]
    dist = _MODULE_DIST.get(top, top).replace("_", "-").lower()
    try:
        requires = importlib.metadata.requires(PROJECT) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for req in requires:
        m = re.match(r"\s*([A-Za-z0-9_.\-]+).*;\s*extra\s*==\s*['\"]([^'\"]+)['\"]", req)
        if m and m.group(1).replace("_", "-").lower() == dist:
            return m.group(2)
    return None


class _App(typer.Typer):
    """The typer app, turning a missing optional package into one line naming the extra."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except ModuleNotFoundError as e:
            extra = extra_for(e.name or "")
            if extra is None:
                raise
            command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
            what = f"`footfall {command}`" if command else "this command"
            sys.stderr.write(f"footfall: error: {what} needs the '{extra}' extra, which is not installed here "
                             f"(no module {e.name!r}): pip install -e '.[{extra}]'\n")
            sys.exit(2)


quiet_startup_loggers()  # torchao's and torch's start-up chatter (edge.backends.NOISY_LOGGERS)

app = _App(add_completion=False, no_args_is_help=True,
           help="footfall's host side: make datasets, train a teacher and a small student, quantize and export the student "
                "for phones, evaluate and benchmark it. (edge-run counts the steps on the device side.)")

# each module exposes register(app: typer.Typer) -> None
COMMAND_MODULES = ("train.cli.data", "train.cli.evaluate", "train.cli.fit", "train.cli.distill", "export.cli",
                   "bench.cli", "train.cli.finetune", "footfall.recipe")

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as e:  # an area not written yet; anything else is a real error
        if e.name != _name:
            raise
        continue
    _module.register(app)


def one_line_summaries(typer_app: typer.Typer) -> None:
    """Give every command without a short help one: the first paragraph of its description, on one line.

    A command list shows a command's short help, else its whole description with the line breaks of
    its docstring (rows that stop mid-sentence) or, without rich, its first 45 characters and "...".
    """
    for info in typer_app.registered_commands:
        if info.short_help is None:
            description = info.help or inspect.getdoc(info.callback) or ""
            info.short_help = " ".join(description.split("\n\n")[0].split())
    for group in typer_app.registered_groups:
        # a group's help and short help are typer placeholders unless given to add_typer
        if isinstance(group.help, str) and not isinstance(group.short_help, str):
            group.short_help = " ".join(group.help.split("\n\n")[0].split())
        one_line_summaries(group.typer_instance)


one_line_summaries(app)
