"""The ``footfall`` commands of ``train/``: thin typer layers, one module per stage, each with
``register(app)`` (``footfall/cli.py`` composes them)."""

from __future__ import annotations


def subcommand_names(app) -> list[str]:
    """The names of the commands and groups registered on a typer app, in registration order: what a
    group's one-line description lists, read from the app so that it cannot leave one out."""
    from typer.main import get_command_name

    commands = [c.name or get_command_name(c.callback.__name__) for c in app.registered_commands]
    # a group's name is the one given to add_typer, else its app's (typer keeps a placeholder object meanwhile)
    return commands + [g.name if isinstance(g.name, str) else g.typer_instance.info.name for g in app.registered_groups]
