"""`footfall` commands never replace what a user already has without being told to: a dataset at
`data synth --out` needs --force, and `finetune` never writes over the checkpoint it starts from.
Each refusal is one line, exit 2, and leaves every file as it was."""

import csv
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from footfall.cli import app


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def footfall(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)  # no traceback
    return r.exit_code, r.stdout, r.stderr


def synth(out: Path, *args):
    return footfall("data", "synth", "--out", out, "--runners", "5", "--minutes", "0.02", "--workers", "1", "--no-report", *args)


def manifest_files(root: Path) -> set[str]:
    with (root / "manifest.csv").open(newline="") as f:
        return {row[c] for row in csv.DictReader(f) for c in ("audio", "steps") if row[c]}


def test_data_synth_refuses_an_existing_dataset_without_force(tmp_path):
    out = tmp_path / "mini"
    code, _, err = synth(out, "--runs", "2", "--seed", "1", "--unlabeled-fraction", "0")
    assert code == 0, err
    before = snapshot(tmp_path)
    code, out_text, err = synth(out, "--runs", "1", "--seed", "2")
    assert code == 2
    assert err.strip().splitlines() == [f"error: {out / 'manifest.csv'} exists: {out} already holds a dataset; "
                                        "choose another --out or pass --force to replace it"]
    assert snapshot(tmp_path) == before

    code, _, err = synth(out, "--runs", "1", "--seed", "2", "--force")  # replaced, and nothing of the old one is left over
    assert code == 0, err
    named = manifest_files(out)
    on_disk = {str(p.relative_to(out)) for sub in ("audio", "steps") for p in (out / sub).iterdir()}
    assert on_disk == named and len([n for n in named if n.startswith("audio/")]) == 5


def test_finetune_never_overwrites_its_input_checkpoint(tmp_path, monkeypatch):
    init = tmp_path / "student.pt"
    init.write_bytes(b"the runner's only adapted student")
    os.link(init, tmp_path / "hard.pt")
    (tmp_path / "soft.pt").symlink_to(init)
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    for out in (init, Path("student.pt"), tmp_path / "hard.pt", tmp_path / "soft.pt"):
        for force in ([], ["--force"]):
            code, stdout, err = footfall("finetune", tmp_path / "own-runs", "--init", init, "--out", out, *force)
            assert code == 2 and stdout == ""
            (line,) = err.strip().splitlines()
            assert line.startswith(f"error: --out {out} is the checkpoint it starts from") and "not even with --force" in line
            assert snapshot(tmp_path) == before


@pytest.mark.parametrize("flag", [[], ["--force"]])
def test_finetune_still_checks_other_outputs_as_before(tmp_path, flag):
    init, out = tmp_path / "student.pt", tmp_path / "adapted.pt"
    init.write_bytes(b"x")
    out.write_bytes(b"an earlier result")
    code, _, err = footfall("finetune", tmp_path / "own-runs", "--init", init, "--out", out, *flag)
    assert code == 2
    if flag:  # allowed to replace it: it fails later, on the checkpoint, and leaves the earlier result
        assert "exists" not in err
    else:
        assert "exists; choose another --out or pass --force" in err
    assert out.read_bytes() == b"an earlier result"


@pytest.mark.parametrize("flag", [[], ["--force"]])
def test_finetune_never_overwrites_the_bundled_student(tmp_path, flag):
    """Without --init it starts from edge/assets' float student: that file is an input too."""
    from train.fit.finetune import bundled_student

    student = bundled_student()
    before = student.read_bytes()
    code, stdout, err = footfall("finetune", tmp_path / "own-runs", "--out", student, *flag)
    assert code == 2 and stdout == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: --out {student} is the checkpoint it starts from"), line
    assert student.read_bytes() == before
