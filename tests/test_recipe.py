"""`footfall model`: the shipped recipe is train/recipes/default.yaml, and the commands it runs are
what the file says (and what made the bundled model); train/recipes/psl.yaml is its PSL variant;
cards record relative provenance."""

from __future__ import annotations

import dataclasses
import inspect
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
PSL = ROOT / "train" / "recipes" / "psl.yaml"
EXTRAS = "data/oneshots_wide,data/negatives,data/negatives2,data/beds"

# the data of both recipes, command by command
DATA = [
    "footfall data sounds --profile full",
    "footfall data synth --out data/synth_ev --runners 40 --minutes 3 --runs 2 --seed 5 --sounds data/sounds --unlabeled-fraction 0.1 --no-report",
    "footfall data oneshots --out data/oneshots_wide --runs 250 --seconds 60 --seed 0 --sounds data/sounds "
    "--without hydrogen-drumkits,sonic-pi-samples",
    "footfall data negatives --out data/negatives --runs 60 --seconds 40 --seed 0 --sounds data/sounds",
    "footfall data negatives --out data/negatives2 --runs 96 --seconds 40 --seed 1 --sounds data/sounds",
    "footfall data negatives --out data/beds --kinds bed --runs 120 --seconds 40 --seed 2 --sounds data/sounds",
    "footfall data realset --split val --out data/realval_wide --runs 27 --seconds 70 --seed 7 --sounds data/sounds",
    "footfall data negatives --split val --out data/negval --runs 36 --seconds 40 --seed 5 --sounds data/sounds",
]
CHOOSERS = "data/realval_wide,data/negval"
# the default ships the streaming student in 160-ms packets with the threshold the choosing sets pick
EXPORT_DEFAULT = "--to pte,tflite --precision int8,fp32 --window 16 --counter-on data/realval_wide,data/negval --data data/synth_ev"

QAT_ARGS = "--epochs 2 --freeze-bn-epoch 0 --freeze-observer-epoch 1 --max-steps-per-epoch 150 --batch-size 32 --force"

# the shipped pipeline (what made the bundled model), command by command, on a fresh clone (nothing built yet)
SHIPPED = [
    *DATA,
    f"footfall distill --config train/presets/student-stream.yaml --data data/synth_ev --set extra_train={EXTRAS} "
    f"--set select_on={CHOOSERS} --fold 0 --out runs/default/student0",
    f"footfall qat --student runs/default/student0/best.pt {QAT_ARGS}",
    f"footfall export $(python -m train.quant.qat ship runs/default/student0/int8) {EXPORT_DEFAULT} --out runs/default/export0 "
    "--provenance runs/default/recipe.json --force",
    "python -m release.bundle sample",
    "python -m release.bundle artifacts runs/default/export0",
    "python -m train.fit.finetune bundle runs/default/student0/best.pt",
]

# the PSL variant: the default's data, a teacher ensemble (the student's recipe at two seeds, each chosen on the
# choosing runs), every dataset relabelled by both, the student on their mean
PSL_VARIANT = [
    *DATA,
    *(f"footfall distill --config train/presets/student-stream.yaml --data data/synth_ev --fold 0 --out runs/psl/teacher0-seed{s} "
      f"--set extra_train={EXTRAS} --set select_on={CHOOSERS} --set seed={s}" for s in (0, 1)),
    *(f"footfall psl relabel --teacher runs/psl/teacher0-seed0/best.pt --teacher runs/psl/teacher0-seed1/best.pt "
      f"--data {d} --out {d}/psl/psl-teacher0" for d in ("data/synth_ev", *EXTRAS.split(","))),
    "footfall distill --config train/presets/student-stream.yaml --labels psl --alpha 0.5 --psl data/synth_ev/psl/psl-teacher0 "
    f"--data data/synth_ev --set extra_train={EXTRAS} "
    "--set extra_psl=data/oneshots_wide/psl/psl-teacher0,data/negatives/psl/psl-teacher0,data/negatives2/psl/psl-teacher0,"
    "data/beds/psl/psl-teacher0 "
    f"--set select_on={CHOOSERS} --fold 0 --out runs/psl/student0",
    f"footfall qat --student runs/psl/student0/best.pt {QAT_ARGS}",
    f"footfall export $(python -m train.quant.qat ship runs/psl/student0/int8) {EXPORT_DEFAULT} --out runs/psl/export0 "
    "--provenance runs/psl/recipe.json --force",
    "python -m release.bundle sample",
    "python -m release.bundle artifacts runs/psl/export0",
    "python -m train.fit.finetune bundle runs/psl/student0/best.pt",
]


def _dry_run(cwd: Path, recipe: Path | dict = DEFAULT) -> tuple[list[list[str]], list[str]]:
    lines: list[str] = []
    import os

    old = os.getcwd()
    os.chdir(cwd)
    try:
        cmds = R.run(recipe if isinstance(recipe, dict) else R.load_recipe(recipe), dry_run=True, echo=lines.append)
    finally:
        os.chdir(old)
    return cmds, lines


def _write(tmp_path: Path, name: str, spec: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize("recipe, expected", [(DEFAULT, SHIPPED), (PSL, PSL_VARIANT)], ids=["default", "psl"])
def test_dry_run_is_the_pipeline(tmp_path, recipe, expected):
    cmds, lines = _dry_run(tmp_path, recipe)
    assert [" ".join(map(str, c)) for c in cmds] == expected
    assert all(line.startswith("+ ") for line in lines) and len(lines) == len(expected)
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_the_default_recipe_has_no_teacher_and_the_psl_recipe_the_same_data():
    default, psl = (yaml.safe_load(p.read_text()) for p in (DEFAULT, PSL))
    assert "teacher" not in default and "quiet" not in default
    assert psl["sounds"] == default["sounds"] and psl["select"] == default["select"]
    # the same datasets; the one-shot runs make no step of the drum kits' hits (their beds stay)
    assert psl["data"] == default["data"]
    assert default["data"]["oneshots"]["without"] == "hydrogen-drumkits,sonic-pi-samples"
    # both ship the streaming student (160-ms packets); the PSL variant's teacher is that student at two seeds
    assert default["student"]["config"] == psl["student"]["config"] == psl["teacher"]["config"] == "train/presets/student-stream.yaml"
    assert psl["teacher"]["trainer"] == "distill" and psl["teacher"]["seeds"] == [0, 1]
    assert default["export"] == psl["export"] and psl["bundle"] == default["bundle"]
    # the int8 is QAT of the streaming step, the same for both (PTQ of the default's student missed the parity gate)
    assert default["qat"] == psl["qat"] == {"args": {"epochs": 2, "freeze_bn_epoch": 0, "freeze_observer_epoch": 1,
                                                     "max_steps_per_epoch": 150, "batch_size": 32}}
    assert R.student_labels(R.load_recipe(DEFAULT)) == "true" and R.student_labels(R.load_recipe(PSL)) == "psl"
    header = " ".join(line.lstrip("#").strip() for line in PSL.read_text().splitlines()[:3])  # its header comment says so
    assert "not the bundled model" in header.lower()


@pytest.mark.parametrize("recipe", [DEFAULT, PSL], ids=["default", "psl"])
def test_dry_run_commands_are_what_the_recipe_says(tmp_path, recipe):
    spec = yaml.safe_load(recipe.read_text())
    all_cmds = [[str(a) for a in c] for c in _dry_run(tmp_path, recipe)[0]]
    cmds = {c[1] if c[0] == "footfall" else c[-1]: c for c in all_cmds}

    def has(cmd, *seq):
        seq = [R._value(s) for s in seq]
        return any(cmd[i : i + len(seq)] == seq for i in range(len(cmd)))

    # one `footfall data <kind>` per dataset, in the recipe's order, with its options
    choosing = {d["out"] for d in spec["select"].values()}
    made = [c for c in all_cmds if c[1] == "data" and c[2] != "sounds" and c[c.index("--out") + 1] not in choosing]
    assert [c[4] for c in made] == [d["out"] for d in spec["data"].values()]
    # what chooses: a real-sound validation set of the val split and step-free runs, never trained on
    chose = [c for c in all_cmds if c[1] == "data" and "--out" in c and c[c.index("--out") + 1] in choosing]
    assert [c[c.index("--out") + 1] for c in chose] == [d["out"] for d in spec["select"].values()]
    for (name, d), cmd in zip(spec["select"].items(), chose):
        assert cmd[2] == d["kind"] and has(cmd, "--split", "val"), name
        assert all(has(cmd, "--" + k, v) for k, v in d.items() if k not in ("kind", "out")), name
    assert {d["kind"] for d in spec["select"].values()} == {"realset", "negatives"}
    for (name, d), cmd in zip(spec["data"].items(), made):
        assert cmd[2] == d.get("kind", "synth"), name
        for opt, v in d.items():
            if opt in ("kind", "out"):
                continue
            flag = "--" + opt.replace("_", "-")
            assert (flag if v else flag.replace("--", "--no-", 1)) in cmd if isinstance(v, bool) else has(cmd, flag, v), (name, opt)
    main = spec["data"]["main"]["out"]
    extras = ",".join(d["out"] for k, d in spec["data"].items() if k != "main")
    distill = cmds["distill"]
    assert has(distill, "--data", main) and has(distill, "--fold", spec["fold"]) and has(distill, "--set", f"extra_train={extras}")
    choosers = ",".join(d["out"] for d in spec["select"].values())
    assert has(distill, "--config", spec["student"]["config"]) and has(distill, "--set", f"select_on={choosers}")
    assert not choosing & set(extras.split(","))
    for k, v in (spec["student"].get("args") or {}).items():
        assert has(distill, f"--{k}", v)
    if "teacher" in spec:
        t = spec["teacher"]
        teachers = [c for c in all_cmds if c[1] == t.get("trainer", "train") and "--out" in c and "/teacher" in c[c.index("--out") + 1]]
        seeds = t.get("seeds", [None])
        assert len(teachers) == len(seeds)
        for train, seed in zip(teachers, seeds):
            assert has(train, "--fold", spec["fold"]) and has(train, "--set", f"extra_train={extras}")  # the teacher trains on the same extras
            assert (has(train, "--preset", t["preset"]) if "preset" in t else has(train, "--config", t["config"]))
            assert seed is None or has(train, "--set", f"seed={seed}")
            for k, v in (t.get("set") or {}).items():
                assert has(train, "--set", f"{k}={v}")
        relabels = [c for c in all_cmds if c[1:3] == ["psl", "relabel"]]
        assert [c[c.index("--data") + 1] for c in relabels] == [d["out"] for d in spec["data"].values()]  # every dataset
        for c in relabels:  # by every teacher
            assert [c[i + 1] for i, a in enumerate(c) if a == "--teacher"] == [t_[t_.index("--out") + 1] + "/best.pt" for t_ in teachers]
        assert has(distill, "--psl", f"{main}/psl/{spec['name']}-teacher0")
        assert has(distill, "--set", "extra_psl=" + ",".join(f"{d['out']}/psl/{spec['name']}-teacher0"
                                                             for k, d in spec["data"].items() if k != "main"))
    else:
        assert "train" not in cmds and not [c for c in all_cmds if c[1] == "psl"]
        assert len([c for c in all_cmds if c[1] == "distill"]) == 1
        assert "--psl" not in distill and not [a for a in distill if a.startswith("extra_psl=")]
    export = cmds["export"]
    if "qat" in spec:
        qat = cmds["qat"]
        assert has(qat, "--student", f"{spec['runs']}/student0/best.pt")  # no quiet fine-tune: QAT from the student
        for k, v in spec["qat"]["args"].items():
            assert has(qat, "--" + k.replace("_", "-"), v)
    else:  # no QAT: the float student goes to the export, which quantizes it
        assert export[2] == f"{spec['runs']}/student0/best.pt" and "qat" not in cmds
    assert has(export, "--to", ",".join(spec["export"]["args"]["to"]))
    assert has(export, "--precision", ",".join(spec["export"]["args"]["precision"]))
    assert has(export, "--data", main)
    # the counter's threshold is chosen where the weights were, unless the recipe ships the default one
    assert has(export, "--counter-on", choosers) == spec["export"].get("choose_counter", True)


@pytest.mark.parametrize("recipe", [DEFAULT, PSL], ids=["default", "psl"])
def test_the_recipe_student_is_the_shipped_student(recipe):
    from train.distill.student import SHIPPED_STUDENT, DistillConfig, load_distill_config

    student = yaml.safe_load(recipe.read_text())["student"]
    overrides = {**(student.get("args") or {}), **(student.get("set") or {})}
    if overrides.get("labels", "psl") == "psl" or R.student_labels(R.load_recipe(recipe)) == "psl":
        overrides["psl"] = "data/synth_ev/psl/x"  # the folder the recipe hands it
    cfg = load_distill_config(student.get("preset"), ROOT / student["config"], overrides)
    assert cfg.labels == R.student_labels(R.load_recipe(recipe))
    if cfg.model == "streamtcn":  # the bundled streaming student: its architecture is the cards', its packet the contract's
        from edge.card import load_verified_card
        from edge.cli import bundled_models
        from train.models import make_config

        built = dataclasses.asdict(make_config(cfg.model, **cfg.model_args.get(cfg.model, {})))
        for artifact in bundled_models():
            card = load_verified_card(artifact)
            assert card.model["name"] == cfg.model and card.streaming, artifact.name
            # the card's architecture as the model loader reads it (a key newer than the card takes its default)
            shipped = dataclasses.asdict(make_config(card.model["name"], **card.model["config"]))
            assert {k: v for k, v in json.loads(json.dumps(built)).items() if k != "packet_frames"} == \
                {k: v for k, v in json.loads(json.dumps(shipped)).items() if k != "packet_frames"}, artifact.name
            assert card.window_frames == card.hop_frames == card.model["config"]["packet_frames"] == C.PACKET_FRAMES
        return
    assert cfg.model == DistillConfig.model
    built = cfg.model_args[cfg.model]
    assert {k: [list(b) for b in built[k]] if k == "blocks" else built[k] for k in SHIPPED_STUDENT} == \
        {k: [list(b) for b in v] if k == "blocks" else v for k, v in SHIPPED_STUDENT.items()}
    # the window and streaming hop the recipe trains with are the contract's (and the cards')
    assert cfg.window_frames == C.WINDOW_FRAMES
    assert cfg.stream_hop_frames == C.HOP_FRAMES
    assert cfg.labels == R.student_labels(R.load_recipe(recipe))
    if cfg.labels == "psl":
        assert cfg.alpha == 0.5


def test_stages_skip_when_done_and_training_resumes(tmp_path):
    (tmp_path / "data" / "synth_ev").mkdir(parents=True)
    (tmp_path / "data" / "synth_ev" / "manifest.csv").write_text("")
    (tmp_path / "data" / "negatives2").mkdir(parents=True)
    (tmp_path / "data" / "negatives2" / "manifest.csv").write_text("")
    (tmp_path / "runs" / "default" / "student0").mkdir(parents=True)
    (tmp_path / "runs" / "default" / "student0" / "last.pt").write_bytes(b"")
    cmds, lines = _dry_run(tmp_path)
    assert any(line.startswith("# skip data-main") for line in lines)
    assert any(line.startswith("# skip data-negatives2") for line in lines)
    assert not any(line.startswith("# skip data-negatives ") for line in lines)
    student = next(c for c in cmds if c[1] == "distill")
    assert student[-1] == "--resume"
    (tmp_path / "runs" / "default" / "student0" / ".done").write_text("done\n")
    cmds, lines = _dry_run(tmp_path)
    assert any(line.startswith("# skip student") for line in lines)
    assert any(line.startswith("+ footfall qat --student runs/default/student0/best.pt") for line in lines)
    # a finished QAT skips; the export takes the int8 step it shipped
    (tmp_path / "runs" / "default" / "student0" / "int8").mkdir()
    (tmp_path / "runs" / "default" / "student0" / "int8" / "report.json").write_text("{}")
    cmds, lines = _dry_run(tmp_path)
    assert any(line.startswith("# skip qat") for line in lines)
    assert any(line.startswith("+ footfall export $(python -m train.quant.qat ship runs/default/student0/int8)") for line in lines)
    # the PSL variant: a finished teacher skips, the interrupted one resumes, a finished student skips, the quiet
    # fine-tune (when a recipe has one) does not resume
    for seed, marker in ((0, ".done"), (1, "last.pt")):
        (tmp_path / "runs" / "psl" / f"teacher0-seed{seed}").mkdir(parents=True)
        (tmp_path / "runs" / "psl" / f"teacher0-seed{seed}" / marker).write_bytes(b"")
    (tmp_path / "runs" / "psl" / "student0").mkdir(parents=True)
    (tmp_path / "runs" / "psl" / "student0" / ".done").write_text("done\n")
    spec = R.load_recipe(PSL)
    spec["quiet"] = {"args": {"epochs": 3}, "set": {"quiet_fraction": 0.05, "lr": "3e-4"}}
    spec["qat"] = {"args": {"epochs": 2}}
    cmds, lines = _dry_run(tmp_path, spec)
    teachers = [c for c in cmds if c[1] == "distill" and "--out" in c and "teacher0" in c[c.index("--out") + 1]]
    assert [c[c.index("--out") + 1] for c in teachers] == ["runs/psl/teacher0-seed0", "runs/psl/teacher0-seed1"]
    assert [c[-1] for c in teachers] == ["seed=0", "--resume"]  # the finished one is not resumed (and skips, below)
    skipped = [line for line in lines if line.startswith("# skip teacher")]
    assert len(skipped) == 1 and "teacher0-seed0" in skipped[0]
    assert any(line.startswith("# skip student") for line in lines)
    quiet = next(c for c in cmds if c[1] == "distill" and "--init" in c)
    assert "--resume" not in quiet and quiet[quiet.index("--init") + 1] == "runs/psl/student0/best.pt"
    qat = next(c for c in cmds if c[1] == "qat")
    assert qat[qat.index("--student") + 1] == "runs/psl/student0-quiet/best.pt"  # with a quiet fine-tune, QAT starts from it


def test_provenance_is_relative_and_reproducible():
    spec = R.load_recipe("default")
    prov = R.provenance(spec)
    assert prov["recipe"] == "default" and prov["recipe_file"] == "train/recipes/default.yaml"
    assert list(prov["data"]) == ["main", "oneshots", "negatives", "negatives2", "beds"]
    assert prov["data"]["beds"] == {"kind": "negatives", "out": "data/beds", "seed": 2, "runs": 120, "seconds": 40,
                                    "sounds": "data/sounds", "kinds": "bed"}
    assert prov["data"]["main"] == {"kind": "synth", "out": "data/synth_ev", "seed": 5, "runners": 40, "minutes": 3, "runs": 2,
                                    "unlabeled_fraction": 0.1, "sounds": "data/sounds"}
    assert prov["data"]["oneshots"] == {"kind": "oneshots", "out": "data/oneshots_wide", "seed": 0, "runs": 250, "seconds": 60,
                                        "sounds": "data/sounds", "without": "hydrogen-drumkits,sonic-pi-samples"}  # how to make it again
    assert prov["select"] == {"realval": {"kind": "realset", "out": "data/realval_wide", "seed": 7, "runs": 27, "seconds": 70, "sounds": "data/sounds"},
                              "negval": {"kind": "negatives", "out": "data/negval", "seed": 5, "runs": 36, "seconds": 40, "sounds": "data/sounds"}}
    assert prov["data"]["negatives"]["kind"] == "negatives" and prov["data"]["negatives"]["seed"] == 0
    assert prov["data"]["negatives2"] == {"kind": "negatives", "out": "data/negatives2", "seed": 1, "runs": 96, "seconds": 40,
                                          "sounds": "data/sounds"}
    assert len(prov["git_commit"].split("-")[0]) == 40
    assert "/work/" not in json.dumps(prov) and not prov["recipe_file"].startswith("/")
    psl = R.provenance(R.load_recipe("psl"))
    assert psl["recipe_file"] == "train/recipes/psl.yaml"
    assert psl["data"]["oneshots"] == prov["data"]["oneshots"]


def test_unknown_recipe_is_one_line(tmp_path):
    with pytest.raises(R.RecipeError, match="no such recipe file"):
        R.load_recipe(tmp_path / "nope.yaml")
    base = yaml.safe_load(DEFAULT.read_text())

    def refused(spec, pattern):
        with pytest.raises(R.RecipeError, match=pattern) as e:
            R.load_recipe(_write(tmp_path, "bad", spec))
        assert "\n" not in str(e.value)

    refused({**base, "studnet": {}}, "unknown recipe keys")
    # the rate calibration stage is gone with `footfall calibrate`: an old recipe naming it is refused
    refused({**base, "rate_calibration": {}}, r"unknown recipe keys \['rate_calibration'\]")
    refused({**base, "student": {**base["student"], "lables": "true"}}, r"unknown student keys \['lables'\]")
    # data: a main dataset, an out folder each, a known kind, that kind's options
    refused({**base, "data": {"extra": {"out": "x"}, "negatives": {"kind": "negatives", "out": "y"}}}, "data needs a 'main' dataset")
    refused({**base, "data": {**base["data"], "negative": {"kind": "negative", "out": "y"}}},
            r"data 'negative': unknown kind 'negative' \(expected synth, oneshots, negatives\)")
    refused({**base, "data": {**base["data"], "more": {"kind": "oneshots", "out": "y", "runners": 3}}},
            r"data 'more': unknown oneshots options \['runners'\]")
    refused({**base, "data": {**base["data"], "more": {"runners": 3}}}, "data 'more' needs an 'out' folder")
    refused({**base, "data": {**base["data"], "again": {"kind": "negatives", "out": "data/negatives"}}}, "both in data/negatives")
    refused({**base, "data": "data/synth_ev"}, "data needs a 'main' dataset")
    # select: datasets of a choosing kind that no training side holds
    refused({**base, "select": {"v": {"kind": "synth", "out": "data/v"}}}, r"select 'v': kind 'synth' \(expected realset, negatives\)")
    refused({**base, "select": {"v": {"kind": "realset", "out": "data/v", "runners": 3}}}, r"select 'v': unknown realset options \['runners'\]")
    refused({**base, "select": {"v": {"kind": "negatives", "out": "data/negatives"}}}, "a training dataset: what chooses is never trained on")
    refused({**base, "select": {"v": {"kind": "realset"}}}, "select 'v' needs an 'out' folder")


def test_labels_and_teacher_go_together(tmp_path):
    base = yaml.safe_load(DEFAULT.read_text())
    psl = yaml.safe_load(PSL.read_text())

    def refused(spec, pattern):
        with pytest.raises(R.RecipeError, match=pattern) as e:
            R.load_recipe(_write(tmp_path, "bad", spec))
        assert "\n" not in str(e.value)

    # no teacher: PSL labels (asked for in args, set, or by default) are refused
    refused({**base, "student": {**base["student"], "args": {"labels": "psl"}}}, "labels are psl but the recipe has no teacher")
    refused({**base, "student": {**base["student"], "set": {"labels": "psl"}}}, "labels are psl but the recipe has no teacher")
    refused({**base, "student": {"preset": "cpu"}}, "labels are psl but the recipe has no teacher")  # distill's default labels
    refused({**psl, "teacher": None}, "labels are psl but the recipe has no teacher")
    refused({**psl, "teacher": {**psl["teacher"], "trainer": "fit"}}, r"the teacher's trainer 'fit': expected one of train, distill")
    for seeds in ([], [0, 0], [0, "1"], 3, [True]):
        refused({**psl, "teacher": {**psl["teacher"], "seeds": seeds}}, "expected a list of different integers")
    # a teacher with true labels would go unused
    refused({**psl, "student": {"config": psl["student"]["config"]}}, "the teacher and its PSL folders would go unused")
    refused({**base, "student": {**base["student"], "args": {"labels": "soft"}}}, r"labels 'soft': expected one of psl, true, weak")
    refused({**base, "student": {"config": "train/presets/nope.yaml"}}, "student config train/presets/nope.yaml: no such file")
    # weak labels need no teacher either; set wins over the config file
    weak = R.load_recipe(_write(tmp_path, "weak", {**base, "student": {**base["student"], "set": {"labels": "weak"}}}))
    assert R.student_labels(weak) == "weak"
    cmds, _ = _dry_run(tmp_path, weak)
    assert "--psl" not in next(c for c in cmds if c[1] == "distill")
    # `labels: true` unquoted (YAML's boolean) is the label kind, not a switch
    unquoted = _write(tmp_path, "unquoted", {**base, "student": {**base["student"], "args": {"labels": True}}})
    distill = next(c for c in _dry_run(tmp_path, R.load_recipe(unquoted))[0] if c[1] == "distill")
    assert "--labels" in distill and distill[distill.index("--labels") + 1] == "true"
    # a recipe with a single dataset trains on it alone: no extra_train
    alone = R.load_recipe(_write(tmp_path, "alone", {**base, "data": {"main": base["data"]["main"]}}))
    distill = next(c for c in _dry_run(tmp_path, alone)[0] if c[1] == "distill")
    assert not [a for a in distill if str(a).startswith("extra_train")]


def test_data_kinds_take_the_options_of_their_commands():
    """DATA_KINDS lists what `footfall data synth|oneshots|negatives` accept (nothing more)."""
    from train.cli import data as D

    for kind, allowed in R.DATA_KINDS.items():
        params = set(inspect.signature(getattr(D, kind)).parameters) - {"out"}
        assert set(allowed) == params, kind


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
    assert out.stderr.startswith("+ footfall data sounds --profile full\n")


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
    src = ROOT / "edge" / "assets" / "streamtcn_int8.tflite.card.json"
    data = json.loads(src.read_text())
    data["training_data"]["dataset"] = "/some/checkout/data/synth_default"
    card = tmp_path / "m.tflite.card.json"
    card.write_text(json.dumps(data, indent=2) + "\n")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "relative_cards.py"), "--root", "/some/checkout", str(card)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(card.read_text()) == json.loads(src.read_text()) | {
        "training_data": json.loads(src.read_text())["training_data"] | {"dataset": "data/synth_default"}}
