"""The ``footfall`` commands of ``train/``: thin typer layers, one module per stage, each with
``register(app)`` (``footfall/cli.py`` composes them)."""
