"""docs/INTERFACES.md is held to the code: CLI options and commands, and the edge-run JSON schema."""

import re
from pathlib import Path

import typer.main

from edge.cli import HOP_FIELDS, JSON_VERSION, LOG_COLUMNS, SUMMARY_FIELDS
from edge.cli import parser as edge_parser

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "INTERFACES.md").read_text()


def paragraph(start: str) -> str:
    """The paragraph of DOC that begins with ``start``."""
    i = DOC.index(start)
    j = DOC.find("\n\n", i)
    return DOC[i : j if j >= 0 else len(DOC)]


def table_fields(heading: str) -> list[str]:
    """First-column names of the markdown table after ``heading``."""
    rest = DOC[DOC.index(heading) :]
    rows = re.findall(r"^\| `([a-z_]+)` \|", rest[: rest.index("\n\n", rest.index("|"))], re.M)
    return rows


def test_edge_run_options_are_documented_and_exist():
    documented = set(re.findall(r"`(--[a-z-]+)`", paragraph("`edge-run [FILE | - | --mic]` options")))
    # --help is the parser's own, not one of edge-run's options
    actual = {opt for a in edge_parser()._actions for opt in a.option_strings if opt.startswith("--")} - {"--help"}
    assert documented == actual, (sorted(documented - actual), sorted(actual - documented))


def test_footfall_commands_are_documented_and_exist():
    from footfall.cli import app

    text = paragraph("`footfall` commands:")
    command = typer.main.get_command(app)
    actual = set(command.commands)
    for name, sub in command.commands.items():
        actual |= {f"{name} {s}" for s in getattr(sub, "commands", {})}
    documented = set()
    for m in re.finditer(r"`([a-z][a-z-]*)`(?: \(([^)]*)\))?", text.split(":", 1)[1]):
        documented.add(m.group(1))
        documented |= {f"{m.group(1)} {s}" for s in re.findall(r"`([a-z][a-z-]*)`", m.group(2) or "")}
    assert documented == actual, (sorted(documented - actual), sorted(actual - documented))


def test_json_schema_is_the_documented_one():
    assert f"schema version {JSON_VERSION}" in DOC
    assert table_fields("Per hop (also the `--log` CSV columns") == HOP_FIELDS
    assert LOG_COLUMNS == HOP_FIELDS + ["run", "source"]  # as the heading's sentence says
    assert table_fields("Summary:") == SUMMARY_FIELDS
