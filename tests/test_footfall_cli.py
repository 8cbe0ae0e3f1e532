"""`footfall` in an install without its host-side extras: one line naming the extra, no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.blocking import blocker

ROOT = Path(__file__).resolve().parents[1]

# a device-only install (pip install -e '.[edge]'): no torch, no yaml, no matplotlib, no export tools
DEVICE_ONLY = blocker({"torch", "torchao", "executorch", "litert_torch", "yaml", "matplotlib", "onnx", "onnxscript"}) + """
from footfall.cli import app
sys.argv = ["footfall"] + sys.argv[1:]
app()
"""


def footfall_device_only(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", DEVICE_ONLY, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args,extra,module", [(["train", "--preset", "smoke", "--data", "nowhere"], "train", "yaml"),
                                               (["export", "student.pt"], "train", "torch")])
def test_missing_extra_is_one_line(args, extra, module):
    r = footfall_device_only(*args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"footfall: error: `footfall {args[0]}` needs the '{extra}' extra, which is not installed here "
        f"(no module {module!r}): pip install -e '.[{extra}]'"], r.stderr
    assert r.stdout == ""


def test_help_works_without_the_extras():
    r = footfall_device_only("--help")
    assert r.returncode == 0 and "train" in r.stdout and r.stderr == ""


def test_start_up_is_quiet():
    """No torchao/torch start-up chatter (the .so files it cannot load, pytree deprecation notes)."""
    pytest.importorskip("torchao")
    r = subprocess.run([sys.executable, "-c", "import sys; from footfall.cli import app; import torchao; "
                        "from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e; sys.argv = ['footfall', '--help']; app()"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def _click_tree():
    import typer

    from footfall.cli import app

    return typer.main.get_command(app)


def _commands(group, prefix=()):
    """(path, click command) of every command and group under ``group``, depth first."""
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, prefix + (name,))


def test_group_descriptions_list_every_registered_subcommand():
    """`footfall --help` lists data's and psl's sub-commands from what is registered (import-imu, imu-synth,
    negatives and oneshots were once left out of a hand-written list)."""
    tree = _click_tree()
    for group in ("data", "psl"):
        names = list(tree.commands[group].commands)
        listed = tree.commands[group].get_short_help_str().rsplit(": ", 1)[1].split(", ")
        assert listed == names, group
        assert tree.commands[group].help == tree.commands[group].get_short_help_str()  # `footfall data --help` says the same
    assert {"check", "synth", "negatives", "oneshots", "sounds", "realset", "import-imu", "imu-synth"} <= set(tree.commands["data"].commands)
    r = subprocess.run([sys.executable, "-c", "import sys; from footfall.cli import app; sys.argv = ['footfall', '--help']; app()"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "400"})
    row = next(line for line in r.stdout.splitlines() if line.strip("│ ").startswith("data "))
    assert all(name in row for name in tree.commands["data"].commands), row


def test_every_command_is_listed_with_one_whole_sentence():
    """A command list shows each command's short help: one line, never cut off or broken mid-sentence
    by the line breaks of a docstring, with nothing eaten as rich markup ([...])."""
    for path, cmd in _commands(_click_tree()):
        summary = cmd.get_short_help_str(limit=45)
        assert summary and "\n" not in summary and not summary.endswith("..."), (path, summary)
        if not hasattr(cmd, "commands"):
            assert summary.endswith((".", ")")), (path, summary)
            assert "[" not in summary and "  " not in summary, (path, summary)


def test_training_and_export_help_speaks_plainly():
    """No unexplained shorthand in the help of the training, export and evaluation commands."""
    tree = _click_tree()
    for path, cmd in _commands(tree):
        if path[0].startswith("bench"):
            continue
        texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
        text = " ".join(texts)
        assert "paper" not in text.lower() and "Table II" not in text, (path, text)
        assert "weak labels: window step counts" not in text, path
    baseline = next(p for p in tree.commands["eval"].params if p.name == "baseline").help
    assert "metronome-train (a constant cadence" in baseline
