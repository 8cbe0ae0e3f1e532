"""`footfall model`: the shipped recipe is train/recipes/default.yaml, and the commands it runs are
what the file says (and what made the bundled model); cards record relative provenance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge import contract as C
from edge.card import load_verified_card, relative_paths
from footfall import recipe as R

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "train" / "recipes" / "default.yaml"
BLOCKS = "[[1,16,1,1],[4,24,2,2],[4,32,3,2],[4,64,4,2],[4,96,3,1],[4,160,3,2]]"

# the shipped pipeline, command by command, on a fresh clone (nothing built yet)
SHIPPED = [
    "footfall data sounds --profile full",
    "footfall data synth --out data/synth_default --runners 20 --minutes 4 --runs 3 --seed 0",
    "footfall data synth --out data/synth_extra1 --runners 40 --minutes 4 --runs 3 --seed 1 --unlabeled-fraction 0 --no-report",
    "footfall data negatives --out data/negatives --runs 40 --seconds 30 --seed 0 --sounds data/sounds",
    "footfall train --preset cpu --data data/synth_default --fold 0 --out runs/default/teacher0 "
    "--set extra_train=data/synth_extra1,data/negatives --set train_hop_s=2.5 --set epochs=4",
    "footfall psl relabel --teacher runs/default/teacher0/best.pt --data data/synth_default --out data/synth_default/psl/default-teacher0",
    "footfall psl relabel --teacher runs/default/teacher0/best.pt --data data/synth_extra1 --out data/synth_extra1/psl/default-teacher0",
    "footfall psl relabel --teacher runs/default/teacher0/best.pt --data data/negatives --out data/negatives/psl/default-teacher0",
    "footfall distill --student mobilenetv2 --width 0.35 --window 2.4 --alpha 0.5 --set model_args.mobilenetv2.last_channels=160 "
    f"--set model_args.mobilenetv2.blocks={BLOCKS} --set stream_hop_s=2.0 --set train_hop_s=2.4 --set epochs=17 "
    "--psl data/synth_default/psl/default-teacher0 --data data/synth_default --set extra_train=data/synth_extra1,data/negatives "
    "--set extra_psl=data/synth_extra1/psl/default-teacher0,data/negatives/psl/default-teacher0 --fold 0 --preset cpu "
    "--out runs/default/student0",
    "footfall distill --config runs/default/student0/config.yaml --out runs/default/student0-quiet --init runs/default/student0/best.pt "
    "--epochs 3 --set quiet_fraction=0.05 --set lr=3e-4",
    "footfall qat --student runs/default/student0-quiet/best.pt --epochs 2 --max-steps-per-epoch 120 --lr 1e-5 --freeze-bn-epoch 0 "
    "--freeze-observer-epoch 1",
    "footfall export $(python -m train.quant.qat ship runs/default/student0-quiet/int8) --to pte,tflite,onnx,qnn --precision int8,fp32 "
    "--data data/synth_default --out runs/default/export0 --provenance runs/default/recipe.json",
    "python -m release.bundle sample",
    "python -m release.bundle artifacts runs/default/export0",
]


def _dry_run(cwd: Path) -> tuple[list[list[str]], list[str]]:
    lines: list[str] = []
    import os

    old = os.getcwd()
    os.chdir(cwd)
    try:
        cmds = R.run(R.load_recipe(DEFAULT), dry_run=True, echo=lines.append)
    finally:
        os.chdir(old)
    return cmds, lines


def test_dry_run_is_the_shipped_pipeline(tmp_path):
    cmds, lines = _dry_run(tmp_path)
    assert [" ".join(map(str, c)) for c in cmds] == SHIPPED
    assert all(line.startswith("+ ") for line in lines) and len(lines) == len(SHIPPED)
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_dry_run_commands_are_what_the_recipe_says(tmp_path):
    spec = yaml.safe_load(DEFAULT.read_text())
    cmds = {c[1] if c[0] == "footfall" else c[-1]: c for c in ([str(a) for a in c] for c in _dry_run(tmp_path)[0])}

    def has(cmd, *seq):
        seq = [str(s) for s in seq]
        return any(cmd[i : i + len(seq)] == seq for i in range(len(cmd)))

    for key in ("main", "extra"):
        d = spec["data"][key]
        synth = next(c for c in _dry_run(tmp_path)[0] if c[1:3] == ["data", "synth"] and c[4] == d["out"])
        for opt in ("runners", "minutes", "runs", "seed"):
            assert has(synth, f"--{opt}", d[opt]), (key, opt)
    neg = spec["data"]["negatives"]
    negatives = next(c for c in _dry_run(tmp_path)[0] if c[1:3] == ["data", "negatives"])
    for opt in ("out", "runs", "seconds", "seed", "sounds"):
        assert has(negatives, f"--{opt}", neg[opt]), opt
    train = cmds["train"]
    assert has(train, "--preset", spec["teacher"]["preset"]) and has(train, "--fold", spec["fold"])
    # the step-free runs train the teacher and, relabeled by it, the student
    extras = f"{spec['data']['extra']['out']},{neg['out']}"
    assert has(train, "--set", f"extra_train={extras}")
    relabeled = [c[c.index("--data") + 1] for c in _dry_run(tmp_path)[0] if c[1:3] == ["psl", "relabel"]]
    assert relabeled == [spec["data"][k]["out"] for k in ("main", "extra", "negatives")]
    for k, v in spec["teacher"]["set"].items():
        assert has(train, "--set", f"{k}={v}")
    distill = next(c for c in _dry_run(tmp_path)[0] if c[1] == "distill" and "--student" in c)
    assert has(distill, "--set", f"extra_train={extras}")
    assert has(distill, "--set", "extra_psl=" + ",".join(f"{spec['data'][k]['out']}/psl/default-teacher0" for k in ("extra", "negatives")))
    for k, v in spec["student"]["args"].items():
        assert has(distill, f"--{k}", v)
    for k, v in spec["student"]["set"].items():
        assert has(distill, "--set", f"{k}={R._value(v)}")
    qat = cmds["qat"]
    for k, v in spec["qat"]["args"].items():
        assert has(qat, "--" + k.replace("_", "-"), v)
    export = cmds["export"]
    assert has(export, "--to", ",".join(spec["export"]["args"]["to"]))
    assert has(export, "--precision", ",".join(spec["export"]["args"]["precision"]))


def test_the_recipe_student_is_the_shipped_student():
    from train.distill.student import SHIPPED_STUDENT, DistillConfig

    student = yaml.safe_load(DEFAULT.read_text())["student"]
    args, sets = student["args"], student["set"]
    prefix = "model_args.mobilenetv2."
    built = {"width": args["width"], **{k[len(prefix):]: v for k, v in sets.items() if k.startswith(prefix)}}
    shipped = {k: [list(b) for b in v] if k == "blocks" else v for k, v in SHIPPED_STUDENT.items()}
    assert built == shipped
    assert args["student"] == DistillConfig.model
    # the window and streaming hop the recipe trains with are the contract's (and the cards')
    assert round(args["window"] * C.FRAMES_PER_SECOND) == C.WINDOW_FRAMES
    assert round(sets["stream_hop_s"] * C.FRAMES_PER_SECOND) == C.HOP_FRAMES


def test_stages_skip_when_done_and_training_resumes(tmp_path):
    (tmp_path / "data" / "synth_default").mkdir(parents=True)
    (tmp_path / "data" / "synth_default" / "manifest.csv").write_text("")
    (tmp_path / "runs" / "default" / "teacher0").mkdir(parents=True)
    (tmp_path / "runs" / "default" / "teacher0" / "last.pt").write_bytes(b"")
    (tmp_path / "runs" / "default" / "student0").mkdir(parents=True)
    (tmp_path / "runs" / "default" / "student0" / ".done").write_text("done\n")
    cmds, lines = _dry_run(tmp_path)
    assert any(line.startswith("# skip data-main") for line in lines)
    assert any(line.startswith("# skip student") for line in lines)
    teacher = next(c for c in cmds if c[1] == "train")
    assert teacher[-1] == "--resume"
    quiet = next(c for c in cmds if c[1] == "distill" and "--init" in c)
    assert "--resume" not in quiet


def test_provenance_is_relative_and_reproducible():
    spec = R.load_recipe("default")
    prov = R.provenance(spec)
    assert prov["recipe"] == "default" and prov["recipe_file"] == "train/recipes/default.yaml"
    assert prov["data"]["main"]["seed"] == 0 and prov["data"]["extra"]["seed"] == 1
    assert len(prov["git_commit"].split("-")[0]) == 40
    assert "/work/" not in json.dumps(prov) and not prov["recipe_file"].startswith("/")


def test_unknown_recipe_is_one_line(tmp_path):
    with pytest.raises(R.RecipeError, match="no such recipe file"):
        R.load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**yaml.safe_load(DEFAULT.read_text()), "studnet": {}}))
    with pytest.raises(R.RecipeError, match="unknown recipe keys"):
        R.load_recipe(bad)
    # the rate calibration stage is gone with `footfall calibrate`: an old recipe naming it is refused
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({**yaml.safe_load(DEFAULT.read_text()), "rate_calibration": {}}))
    with pytest.raises(R.RecipeError, match=r"unknown recipe keys \['rate_calibration'\]"):
        R.load_recipe(old)
    odd = tmp_path / "odd.yaml"
    odd.write_text(yaml.safe_dump({**yaml.safe_load(DEFAULT.read_text()), "data": {"main": {"out": "x"}, "negative": {"out": "y"}}}))
    with pytest.raises(R.RecipeError, match="data needs main and extra"):
        R.load_recipe(odd)


def test_footfall_data_negatives_writes_step_free_runs_and_refuses_to_overwrite(tmp_path):
    """`footfall data negatives`: a dataset of labeled runs without steps; an existing one is one line, exit 2, unless --force."""
    from typer.testing import CliRunner

    from footfall.cli import app
    from train.data.recordings import load_dataset, load_steps

    out = tmp_path / "neg"
    runner = CliRunner()
    r = runner.invoke(app, ["data", "negatives", "--out", str(out), "--runs", "3", "--seconds", "1.5", "--seed", "4"])
    assert r.exit_code == 0, r.output
    recs = load_dataset(out)
    assert len(recs) == 3 and all(rec.steps is not None and len(load_steps(rec.steps)) == 0 for rec in recs)
    assert all(abs(rec.duration_s - 1.5) < 0.01 for rec in recs)
    manifest = (out / "manifest.csv").read_bytes()
    r = runner.invoke(app, ["data", "negatives", "--out", str(out), "--runs", "2"])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and "already there" in lines[0] and "--force" in lines[0], r.output
    assert (out / "manifest.csv").read_bytes() == manifest  # untouched
    r = runner.invoke(app, ["data", "negatives", "--out", str(out), "--runs", "2", "--seconds", "1", "--force"])
    assert r.exit_code == 0, r.output
    assert len(load_dataset(out)) == 2
    r = runner.invoke(app, ["data", "negatives", "--out", str(tmp_path / "none"), "--runs", "0"])
    assert r.exit_code == 2 and "--runs" in r.output


def test_footfall_model_dry_run_command(tmp_path):
    out = subprocess.run([sys.executable, "-c", "from footfall.cli import app; app()", "model", "--recipe", str(DEFAULT), "--dry-run"],
                         capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("\n+ footfall ") == len([c for c in SHIPPED if c.startswith("footfall")]) - 1


def test_relative_paths():
    card = {"dataset": "/work/x/data/synth_default", "other": "/elsewhere/a", "list": ["/work/x/runs/t/best.pt", 3], "n": "rel/p"}
    assert relative_paths(card, ["/work/x"]) == {"dataset": "data/synth_default", "other": "/elsewhere/a",
                                                 "list": ["runs/t/best.pt", 3], "n": "rel/p"}


def test_the_bundled_cards_hold_no_absolute_paths_and_verify():
    cards = sorted((ROOT / "edge" / "assets").glob("*.card.json"))
    assert cards
    for path in cards:
        text = path.read_text()
        strings = []

        def walk(x):
            if isinstance(x, dict):
                [walk(v) for v in x.values()]
            elif isinstance(x, list):
                [walk(v) for v in x]
            elif isinstance(x, str):
                strings.append(x)

        walk(json.loads(text))
        assert not [s for s in strings if s.startswith("/")], path.name
        load_verified_card(path.with_name(path.name[: -len(".card.json")]))


def test_relative_cards_script_rewrites_only_paths(tmp_path):
    src = ROOT / "edge" / "assets" / "mobilenetv2_int8.tflite.card.json"
    data = json.loads(src.read_text())
    data["training_data"]["dataset"] = "/some/checkout/data/synth_default"
    card = tmp_path / "m.tflite.card.json"
    card.write_text(json.dumps(data, indent=2) + "\n")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "relative_cards.py"), "--root", "/some/checkout", str(card)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(card.read_text()) == json.loads(src.read_text()) | {
        "training_data": json.loads(src.read_text())["training_data"] | {"dataset": "data/synth_default"}}
