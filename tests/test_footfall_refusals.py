"""`footfall` commands never replace what a user already has without being told to: a dataset at
`data synth --out` needs --force, `finetune` never writes over the checkpoint it starts from nor
into the bundled models, and `eval` never writes its results over its inputs. Options that make
no sense (NaN, infinity, too few runs) and inputs that cannot be used are refused before any work.
Each refusal is one line, exit 2, and leaves every file as it was."""

import csv
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge.cli import ASSETS
from footfall.cli import app
from tests.fixtures import make_dataset
from tests.test_sounds import fixture_corpus  # noqa: F401  (a sound corpus of eval and train packages, no val one)


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


# --------------------------------------------------------------------------- options that make no sense


@pytest.mark.parametrize("args,expect", [
    (["data", "realset", "--sounds", "CORPUS", "--seconds", "nan"],
     "--seconds nan: runs need at least 10 s (the metrics use 5- and 10-s windows) and at most 3600 s"),
    (["data", "realset", "--sounds", "CORPUS", "--seconds", "inf"],
     "--seconds inf: runs need at least 10 s (the metrics use 5- and 10-s windows) and at most 3600 s"),
    (["data", "realset", "--sounds", "CORPUS", "--split", "nonsense"],
     "split 'nonsense': a real-sound set is built from eval or val packages"),
    (["data", "realset", "--sounds", "CORPUS", "--split", "val", "--runs", "5", "--seconds", "12"],
     "no footstep clips of a val package in the corpus; build it with `footfall data sounds --profile full`"),
    (["data", "realset", "--sounds", "CORPUS", "--runs", "3", "--seconds", "12"],
     "--runs 3: need at least 5 (the tuned baselines cross-validate over 5 folds)"),
    (["data", "synth", "--runners", "5", "--runs", "1", "--minutes", "nan", "--no-report"],
     "need runs >= 1 and minutes > 0 (a finite number), got runs=1, minutes=nan"),
    (["data", "synth", "--runners", "5", "--runs", "1", "--minutes", "inf", "--no-report"],
     "need runs >= 1 and minutes > 0 (a finite number), got runs=1, minutes=inf"),
    (["data", "negatives", "--runs", "0"], "--runs 0: need at least 1"),
    (["data", "negatives", "--seconds", "nan"], "--seconds nan: must be more than 0 and at most 3600"),
    (["data", "oneshots", "--sounds", "CORPUS", "--seconds", "-5"], "--seconds -5.0: must be more than 5 and at most 3600"),
    (["data", "oneshots", "--runs", "1", "--seconds", "6"], "FILE/manifest.csv: no sound corpus; build it with "
                                                            "`footfall data sounds --profile small` (or full)"),
    (["bench-engine", "--minutes", "nan"], "--minutes nan: expected at least 1 (the length of the long file in minutes)"),
    (["bench-engine", "--minutes", "inf"], "--minutes inf: expected at least 1 (the length of the long file in minutes)"),
])
def test_options_that_make_no_sense_are_refused_before_any_work(tmp_path, monkeypatch, fixture_corpus, args, expect):  # noqa: F811
    file = tmp_path / "sounds.wav"  # $FOOTFALL_SOUNDS naming a file, not a corpus folder
    file.write_bytes(b"RIFF")
    monkeypatch.setenv("FOOTFALL_SOUNDS", str(file))
    out = tmp_path / "out"
    before = snapshot(tmp_path)
    code, stdout, err = footfall(*[{"CORPUS": fixture_corpus}.get(a, a) for a in args], "--out", out)
    assert code == 2
    assert err.strip().splitlines() == [f"error: {expect.replace('FILE', str(file))}"]
    assert snapshot(tmp_path) == before and not out.exists()  # not even an empty folder


# --------------------------------------------------------------------------- eval never writes over its inputs


@pytest.fixture
def runs(tmp_path):
    return make_dataset(tmp_path / "runs", seconds=12.0)


@pytest.fixture
def model(tmp_path):
    from tests.edge_fixtures import copy_artifact

    return copy_artifact(ASSETS / "streamtcn_int8.tflite", tmp_path / "model")


@pytest.mark.parametrize("mode,target,expect", [
    *[(mode, target, expect) for mode in ("--baseline", "--model") for target, expect in [
        ("runs/manifest.csv", "that file is part of the dataset"),
        ("runs/audio/r00_0.wav", "that file is part of the dataset"),
        ("runs/steps/r00_0.csv", "that file is part of the dataset"),
        ("runs", "is a folder; give a file name such as"),
    ]],
    ("--model", "model/streamtcn_int8.tflite", "that is the model's file"),
    ("--model", "model/streamtcn_int8.tflite.card.json", "that is the model's file"),
])
def test_eval_never_writes_its_results_over_an_input(tmp_path, runs, model, mode, target, expect):
    how = ["--baseline", "metronome"] if mode == "--baseline" else ["--model", model]
    before = snapshot(tmp_path)
    code, stdout, err = footfall("eval", runs, *how, "--out", tmp_path / target)
    assert code == 2 and stdout == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: --out {tmp_path / target}: {expect}"), line
    assert snapshot(tmp_path) == before


def test_eval_replaces_its_own_earlier_results(runs):
    for _ in range(2):
        code, _, err = footfall("eval", runs, "--baseline", "metronome")
        assert code == 0, err
    assert (runs / "results" / "baseline-metronome-5s.json").is_file()


def test_eval_names_a_model_without_a_card_and_a_missing_audio_file(runs, model):
    Path(str(model) + ".card.json").unlink()
    code, _, err = footfall("eval", runs, "--model", model)
    assert code == 2 and err.strip().splitlines() == [
        f"error: {model}: no model card (expected streamtcn_int8.tflite.card.json beside it)"]
    (runs / "audio" / "r01_0.wav").unlink()
    code, _, err = footfall("eval", runs, "--baseline", "metronome")
    assert code == 2 and err.strip().splitlines() == [
        f"error: {runs / 'manifest.csv'}:3 (run 'r01_0'): no such audio file {runs / 'audio' / 'r01_0.wav'}"]


# --------------------------------------------------------------------------- export and distill choose on real runs only


def _without_steps(root: Path) -> Path:
    with (root / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows([r | {"steps": ""} for r in rows])
    return root


@pytest.mark.parametrize("what,expect", [
    ("runs shorter than 5 s", "ON: no run there is as long as a 5-s window, so nothing can be chosen on it; "
                              "give runs of 10 s or more (footfall data realset --split val)"),
    ("no dataset", "ON/manifest.csv: no manifest; a dataset folder needs manifest.csv with columns "
                   "run_id,runner_id,audio,steps,surface,session,fold"),
    ("no labelled run", "ON: no labeled runs to choose with"),
])
def test_export_refuses_a_counter_set_it_cannot_choose_on_before_exporting(tmp_path, what, expect):
    from train.fit.finetune import bundled_student

    on = tmp_path / "choose"
    if what == "runs shorter than 5 s":
        make_dataset(on, seconds=3.0)
    elif what == "no dataset":
        on.mkdir()
    else:
        _without_steps(make_dataset(on, seconds=12.0))
    out = tmp_path / "export"
    code, _, err = footfall("export", bundled_student(), "--to", "onnx", "--precision", "fp32", "--out", out, "--counter-on", on)
    assert code == 2
    assert err.strip().splitlines()[-1] == f"error: {expect.replace('ON', str(on))}"
    assert not out.exists()  # no card with a threshold chosen on nothing


@pytest.mark.parametrize("content", [b"", b"\x80\x02 not a checkpoint" * 50])
def test_export_of_a_damaged_checkpoint_names_it_once(tmp_path, content):
    ckpt = tmp_path / "student.pt"
    ckpt.write_bytes(content)
    code, _, err = footfall("export", ckpt, "--to", "onnx", "--precision", "fp32", "--out", tmp_path / "export")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: {ckpt}: not a loadable footfall model checkpoint (") and line.count(str(ckpt)) == 1
    assert ckpt.read_bytes() == content and not (tmp_path / "export").exists()


def test_distill_names_a_missing_choice_set(tmp_path):
    data = make_dataset(tmp_path / "runs", runs_per_runner=2, seconds=12.0)
    code, _, err = footfall("distill", "--labels", "true", "--no-unlabeled", "--data", data, "--set", "select_on=/nowhere",
                            "--preset", "smoke", "--max-steps", "1", "--out", tmp_path / "student")
    assert code == 2 and err.strip().splitlines() == ["error: select_on: /nowhere: no such dataset folder"]
    assert not (tmp_path / "student").exists()
    short = make_dataset(tmp_path / "short", seconds=3.0)  # its 5-s MAE would be NaN: nothing to choose epochs by
    code, _, err = footfall("distill", "--labels", "true", "--no-unlabeled", "--data", data, "--set", f"select_on={short}",
                            "--preset", "smoke", "--max-steps", "1", "--out", tmp_path / "student")
    assert code == 2 and err.strip().splitlines()[-1].startswith(f"error: select_on: {short}: no run there is as long as a 5-s window")
    assert not (tmp_path / "student").exists()


# --------------------------------------------------------------------------- the bundled models stay as shipped


@pytest.mark.parametrize("name", ["adapted_float.pt", "streamtcn_int8.tflite"])
@pytest.mark.parametrize("flag", [[], ["--force"]])
def test_finetune_never_writes_into_the_bundled_models(tmp_path, name, flag):
    """A second <model>_float.pt there would hide the bundled student from every later finetune."""
    init = tmp_path / "student.pt"
    init.write_bytes(b"a student of the runner's own")
    before = snapshot(ASSETS)
    code, stdout, err = footfall("finetune", tmp_path / "own-runs", "--init", init, "--out", ASSETS / name, *flag)
    assert code == 2 and stdout == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: --out {ASSETS / name}: {ASSETS} holds the bundled models") and "not even with --force" in line
    assert snapshot(ASSETS) == before
