"""`footfall model`: build a model from its recipe file (``train/recipes/<name>.yaml``), stage by stage.

The recipe says everything the model depends on (the sound corpus, its datasets with their seeds
and sizes, an optional teacher with its PSL relabelling, the student, an optional quiet fine-tune,
QAT, export, bundle); this driver only turns it into the ``footfall`` commands the stages are, in
order. ``data`` names the datasets: ``main`` is the fold's, every other one joins the training
side (``extra_train``) in the recipe's order; each says its ``kind`` (``synth``, the default,
``oneshots`` or ``negatives``: the ``footfall data`` command that makes it) and that command's
options. ``select`` (optional) names the datasets that *choose* (never train): a real-sound
validation set (kind ``realset``: ``footfall data realset --split val``, recorded footsteps of
packages held out of training) and held-out step-free runs (kind ``negatives``: ``footfall data
negatives --split val``, seeds no training set uses, the val packages' speech and music as beds);
they choose the student's kept weights (its ``select_on``) and the counter the export ships
(``--counter-on``: the cadence tracker's threshold). Without a ``teacher`` the student
trains on the true step frames (``labels: "true"``) or the step counts (``weak``); with one, every dataset is relabelled by it and the student distils its
probabilities (``labels: psl``). A teacher with ``seeds`` is an ensemble: one training run a seed,
and the labels are the mean of their step probabilities. Each stage skips when its output exists (delete it to redo) and
training stages resume after a kill (``--resume`` when ``last.pt`` exists), so running it again
after an interruption loses nothing. ``--dry-run`` prints the commands.

Provenance: ``<runs>/recipe.json`` (recipe name and sha256, git commit, the datasets' kinds, seeds
and sizes) is written first and handed to ``footfall export --provenance``, so the model cards say
how to make the model again, in paths relative to the repository.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from edge.util import write_json

ROOT = Path(__file__).resolve().parents[1]
RECIPE_DIR = ROOT / "train" / "recipes"
DEFAULT_RECIPE = RECIPE_DIR / "default.yaml"
STAGES = ("sounds", "data", "teacher", "psl", "student", "quiet", "qat", "export", "bundle")
RECIPE_KEYS = ("name", "runs", "fold", "sounds", "data", "select", "teacher", "student", "quiet", "qat", "export", "bundle")
REQUIRED_KEYS = ("name", "runs", "data", "student", "export")  # teacher, quiet and qat are optional
# the keys each stage's section may have
SECTION_KEYS = {
    "teacher": ("trainer", "preset", "config", "args", "set", "seeds"),
    "student": ("preset", "config", "args", "set"),
    "quiet": ("args", "set"),
    "qat": ("args",),
    "export": ("args", "choose_counter"),  # choose_counter: false ships the counter's default threshold
    "bundle": ("sample",),
}
# the kinds of dataset that choose (recipe key ``select``): never trained on
SELECT_KINDS: dict[str, tuple[str, ...]] = {
    "realset": ("runs", "seconds", "seed", "sounds", "force"),  # footfall data realset --split val
    "negatives": ("runs", "seconds", "seed", "sounds", "force"),  # footfall data negatives --split val
}
# the kinds of dataset (the `footfall data` command that makes each) and the options a recipe may give it
DATA_KINDS: dict[str, tuple[str, ...]] = {
    "synth": ("runners", "minutes", "runs", "seed", "unlabeled_fraction", "workers", "report", "sounds", "force"),
    "oneshots": ("sounds", "runs", "seconds", "seed", "without", "force"),
    "negatives": ("runs", "seconds", "seed", "sounds", "kinds", "split", "force"),
}
# what trains the teacher (recipe key teacher.trainer): `footfall train` (the default) or `footfall distill` on the true
# step frames (its augmentation, weight averaging, and its epoch chosen on the recipe's `select` datasets)
TEACHER_TRAINERS = ("train", "distill")
LABELS = ("psl", "true", "weak")  # the student's labels (footfall distill --labels); psl needs a teacher
PROVENANCE_FIELDS = ("kind", "out", "seed", "runners", "minutes", "runs", "seconds", "unlabeled_fraction", "sounds", "kinds", "without")


class RecipeError(ValueError):
    """A recipe file that cannot be run; one line."""


def _value(v: Any) -> str:
    """One command-line value: lists of scalars comma-joined, nested lists as compact JSON."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        if any(isinstance(x, (list, tuple, dict)) for x in v):
            return json.dumps(v, separators=(",", ":"))
        return ",".join(_value(x) for x in v)
    return str(v)


def options(args: dict[str, Any] | None) -> list[str]:
    """``{"max_steps_per_epoch": 120, "report": False}`` -> ``["--max-steps-per-epoch", "120", "--no-report"]``."""
    out: list[str] = []
    for key, v in (args or {}).items():
        flag = "--" + key.replace("_", "-")
        if isinstance(v, bool):
            out.append(flag if v else "--no-" + key.replace("_", "-"))
        else:
            out += [flag, _value(v)]
    return out


def sets(values: dict[str, Any] | None) -> list[str]:
    """``{"lr": "3e-4"}`` -> ``["--set", "lr=3e-4"]``."""
    out: list[str] = []
    for key, v in (values or {}).items():
        out += ["--set", f"{key}={_value(v)}"]
    return out


@dataclass
class Stage:
    """One command of the recipe. It is skipped when ``done`` exists; ``resume`` (a checkpoint)
    adds ``--resume`` when it exists; ``marker`` is written after it succeeds."""

    name: str
    argv: list[str]  # after the program: ["data", "synth", ...] for footfall, ["-m", ...] for python
    program: str = "footfall"
    done: Path | None = None
    resume: Path | None = None
    marker: Path | None = None

    def command(self) -> list[str]:
        argv = list(self.argv)
        if self.resume is not None and self.resume.exists():
            argv.append("--resume")
        return [self.program, *argv]

    def skipped(self) -> bool:
        return self.done is not None and self.done.exists()


def load_recipe(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        named = RECIPE_DIR / f"{path}.yaml"
        if named.is_file():
            path = named
        else:
            known = ", ".join(sorted(p.stem for p in RECIPE_DIR.glob("*.yaml")))
            raise RecipeError(f"{path}: no such recipe file (recipes: {known})")
    import yaml  # here, not at the top: `footfall --help` must work in a device-only install

    try:
        recipe = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not a readable recipe ({str(e).splitlines()[0]})") from e
    if not isinstance(recipe, dict):
        raise RecipeError(f"{path}: not a recipe (a mapping of {', '.join(RECIPE_KEYS)})")
    unknown = sorted(set(recipe) - set(RECIPE_KEYS))
    if unknown:
        raise RecipeError(f"{path}: unknown recipe keys {unknown} (expected {', '.join(RECIPE_KEYS)})")
    for key in REQUIRED_KEYS:
        if key not in recipe:
            raise RecipeError(f"{path}: the recipe has no {key!r}")
    for key, allowed in SECTION_KEYS.items():
        section = recipe.get(key)
        if section is None and key in recipe and key in REQUIRED_KEYS:
            recipe[key] = section = {}
        if section is None:
            continue
        if not isinstance(section, dict):
            raise RecipeError(f"{path}: {key} must be a mapping of {', '.join(allowed)}, got {section!r}")
        odd = sorted(set(section) - set(allowed))
        if odd:
            raise RecipeError(f"{path}: unknown {key} keys {odd} (expected {', '.join(allowed)})")
    _check_data(path, recipe["data"])
    _check_select(path, recipe.get("select"), recipe["data"])
    for where in (recipe["student"].get("args"), recipe["student"].get("set")):
        if isinstance(where, dict) and isinstance(where.get("labels"), bool):  # `labels: true` unquoted is YAML's boolean
            where["labels"] = _value(where["labels"])
    _check_teacher(path, recipe)
    _check_labels(path, recipe)
    recipe["_path"] = path
    return recipe


def _check_data(path: Path, data: Any) -> None:
    """``data``: named datasets, ``main`` among them, each with its ``out`` folder, a known kind and that kind's options."""
    if not isinstance(data, dict) or "main" not in data:
        raise RecipeError(f"{path}: data needs a 'main' dataset (the fold's; every other one joins the training side), "
                          f"got {sorted(data) if isinstance(data, dict) else data!r}")
    folders: dict[str, str] = {}
    for name, spec in data.items():
        if not isinstance(spec, dict) or not spec.get("out"):
            raise RecipeError(f"{path}: data {name!r} needs an 'out' folder and its options, got {spec!r}")
        kind = spec.get("kind", "synth")
        if kind not in DATA_KINDS:
            raise RecipeError(f"{path}: data {name!r}: unknown kind {kind!r} (expected {', '.join(DATA_KINDS)})")
        odd = sorted(set(spec) - {"kind", "out", *DATA_KINDS[kind]})
        if odd:
            raise RecipeError(f"{path}: data {name!r}: unknown {kind} options {odd} (expected {', '.join(DATA_KINDS[kind])})")
        out = Path(str(spec["out"])).as_posix()
        if out in folders:
            raise RecipeError(f"{path}: data {name!r} and {folders[out]!r} are both in {out}")
        folders[out] = name


def _check_select(path: Path, select: Any, data: dict) -> None:
    """``select``: named datasets of a choosing kind, each with its ``out`` folder, none a training one."""
    if select is None:
        return
    if not isinstance(select, dict) or not select:
        raise RecipeError(f"{path}: select must name the datasets that choose (kinds {', '.join(SELECT_KINDS)}), got {select!r}")
    trained = {Path(str(spec["out"])).as_posix() for spec in data.values()}
    for name, spec in select.items():
        if not isinstance(spec, dict) or not spec.get("out"):
            raise RecipeError(f"{path}: select {name!r} needs an 'out' folder and its options, got {spec!r}")
        kind = spec.get("kind")
        if kind not in SELECT_KINDS:
            raise RecipeError(f"{path}: select {name!r}: kind {kind!r} (expected {', '.join(SELECT_KINDS)})")
        odd = sorted(set(spec) - {"kind", "out", *SELECT_KINDS[kind]})
        if odd:
            raise RecipeError(f"{path}: select {name!r}: unknown {kind} options {odd} (expected {', '.join(SELECT_KINDS[kind])})")
        if Path(str(spec["out"])).as_posix() in trained:
            raise RecipeError(f"{path}: select {name!r} is in {spec['out']}, a training dataset: what chooses is never trained on")


def _config_labels(path: Path, config: Any) -> str | None:
    """The ``labels`` of a student config file (relative to the working directory or the repository)."""
    file = Path(str(config))
    if not file.is_file() and not file.is_absolute() and (ROOT / file).is_file():
        file = ROOT / file
    if not file.is_file():
        raise RecipeError(f"{path}: student config {config}: no such file")
    import yaml

    try:
        values = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: student config {config}: not readable ({str(e).splitlines()[0]})") from e
    return values.get("labels") if isinstance(values, dict) else None


def student_labels(recipe: dict[str, Any], path: Path | None = None) -> str:
    """The labels the student stage trains on: its ``set``, else its ``args``, else its config file, else psl."""
    path = Path(path or recipe.get("_path", "recipe"))
    s = recipe["student"]
    for where in (s.get("set") or {}, s.get("args") or {}):
        if "labels" in where:
            return _value(where["labels"])
    labels = _config_labels(path, s["config"]) if s.get("config") else None
    return "psl" if labels is None else _value(labels)


def _check_teacher(path: Path, recipe: dict[str, Any]) -> None:
    """A teacher's trainer is a known one, and its seeds (an ensemble) are different integers."""
    teacher = recipe.get("teacher") or {}
    trainer = teacher.get("trainer", "train")
    if trainer not in TEACHER_TRAINERS:
        raise RecipeError(f"{path}: the teacher's trainer {trainer!r}: expected one of {', '.join(TEACHER_TRAINERS)}")
    seeds = teacher.get("seeds")
    if seeds is not None and (not isinstance(seeds, list) or not seeds or len(set(map(str, seeds))) < len(seeds)
                              or not all(isinstance(x, int) and not isinstance(x, bool) for x in seeds)):
        raise RecipeError(f"{path}: the teacher's seeds {seeds!r}: expected a list of different integers (one teacher a seed)")


def _check_labels(path: Path, recipe: dict[str, Any]) -> None:
    """A teacher goes with PSL labels, and PSL labels need a teacher."""
    labels = student_labels(recipe, path)
    if labels not in LABELS:
        raise RecipeError(f"{path}: the student's labels {labels!r}: expected one of {', '.join(LABELS)}")
    if recipe.get("teacher") is None and labels == "psl":
        raise RecipeError(f"{path}: the student's labels are psl but the recipe has no teacher; "
                          "add a teacher or set the student's labels to \"true\" (or weak)")
    if recipe.get("teacher") is not None and labels != "psl":
        raise RecipeError(f"{path}: the student's labels are {labels!r}, so the teacher and its PSL folders would go unused; "
                          "drop the teacher or set the student's labels to psl")


def _rel(path: Path) -> str:
    path = Path(path).resolve()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def _summary(spec: dict[str, Any]) -> dict[str, Any]:
    """What provenance records of one dataset: its kind, folder, seed and size (paths relative to the repository)."""
    out = {"kind": spec.get("kind", "synth")}
    for f in PROVENANCE_FIELDS[1:]:
        if f in spec:
            v = spec[f]
            out[f] = _rel(Path(v)) if f in ("out", "sounds") and Path(str(v)).is_absolute() else v
    return out


def provenance(recipe: dict[str, Any]) -> dict[str, Any]:
    """What a card records of the recipe: its name, file and sha256, the git commit, the datasets (kinds, seeds, sizes)."""
    path = Path(recipe["_path"])
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "", False
    return {
        "recipe": recipe["name"],
        "recipe_file": _rel(path),
        "recipe_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "git_commit": commit + ("-dirty" if dirty else ""),
        "fold": int(recipe.get("fold", 0)),
        "data": {name: _summary(spec) for name, spec in recipe["data"].items()},
        **({"select": {name: _summary(spec) for name, spec in recipe["select"].items()}} if recipe.get("select") else {}),
        "command": f"footfall model --recipe {_rel(path)}",
    }


def _training(preset: str | None, config: Any) -> list[str]:
    return [*(["--config", str(config)] if config else []), *(["--preset", str(preset)] if preset else [])]


def stages(recipe: dict[str, Any], python: str = "python") -> list[Stage]:
    """The recipe as the commands that make the model, in order (see the module docstring)."""
    runs = Path(recipe["runs"])
    fold = int(recipe.get("fold", 0))
    folders = {name: Path(spec["out"]) for name, spec in recipe["data"].items()}
    data = folders["main"]
    extras = [folder for name, folder in folders.items() if name != "main"]  # the training side's extra datasets, in order
    extra_train = {"extra_train": ",".join(map(str, extras))} if extras else {}
    out: list[Stage] = []
    if recipe.get("sounds"):
        out.append(Stage("sounds", ["data", "sounds", *options(recipe["sounds"])]))
    for name, folder in folders.items():
        spec = {k: v for k, v in recipe["data"][name].items() if k not in ("kind", "out")}
        kind = recipe["data"][name].get("kind", "synth")  # footfall data synth | oneshots | negatives
        out.append(Stage(f"data-{name}", ["data", kind, "--out", str(folder), *options(spec)], done=folder / "manifest.csv"))

    choosers = []  # the datasets that choose the student's weights and the counter's threshold
    for name, spec in (recipe.get("select") or {}).items():
        folder = Path(str(spec["out"]))
        kind = spec["kind"]
        opts = {k: v for k, v in spec.items() if k not in ("kind", "out")}
        # the val packages' footsteps (realset), or their speech and music as step-free beds (negatives)
        out.append(Stage(f"select-{name}", ["data", kind, "--split", "val", "--out", str(folder), *options(opts)],
                         done=folder / "manifest.csv"))
        choosers.append(str(folder))
    select_on = {"select_on": ",".join(choosers)} if choosers else {}

    psl: dict[Path, Path] = {}
    t = recipe.get("teacher")
    if t is not None:
        trainer = t.get("trainer", "train")
        chosen = select_on if trainer == "distill" else {}  # `footfall train` chooses on its validation runners
        # one teacher, or (seeds) an ensemble: one training run a seed, the labels their mean step probability
        seeds = t.get("seeds")
        members = [(runs / f"teacher{fold}", {})] if seeds is None else [(runs / f"teacher{fold}-seed{s}", {"seed": s}) for s in seeds]
        for teacher, seed in members:
            out.append(Stage("teacher", [trainer, *_training(t.get("preset"), t.get("config")), "--data", str(data), "--fold", str(fold),
                                         "--out", str(teacher), *sets({**extra_train, **chosen, **seed, **(t.get("set") or {})}),
                                         *options(t.get("args"))],
                             done=teacher / ".done", resume=teacher / "last.pt", marker=teacher / ".done"))
        # the teacher's step probabilities on every run of every dataset the student trains on
        psl = {folder: folder / "psl" / f"{runs.name}-teacher{fold}" for folder in (data, *extras)}
        given = [a for teacher, _ in members for a in ("--teacher", str(teacher / "best.pt"))]
        for folder, target in psl.items():
            out.append(Stage("psl", ["psl", "relabel", *given, "--data", str(folder), "--out", str(target)]))

    student = runs / f"student{fold}"
    s = recipe["student"]
    teacher_labels = {"extra_psl": ",".join(str(psl[e]) for e in extras)} if psl and extras else {}
    out.append(Stage("student", ["distill", *(["--config", str(s["config"])] if s.get("config") else []), *options(s.get("args")),
                                 *sets(s.get("set")), *(["--psl", str(psl[data])] if psl else []), "--data", str(data),
                                 *sets({**extra_train, **teacher_labels, **select_on}), "--fold", str(fold),
                                 *(["--preset", str(s["preset"])] if s.get("preset") else []), "--out", str(student)],
                     done=student / ".done", resume=student / "last.pt", marker=student / ".done"))

    tuned = student  # the checkpoint QAT starts from: the student's, or its quiet fine-tune's
    q = recipe.get("quiet")
    if q is not None:
        tuned = runs / f"student{fold}-quiet"
        out.append(Stage("quiet", ["distill", "--config", str(student / "config.yaml"), "--out", str(tuned), "--init",
                                   str(student / "best.pt"), *options(q.get("args")), *sets(q.get("set"))],
                         done=tuned / ".done", resume=tuned / "last.pt", marker=tuned / ".done"))
    if recipe.get("qat") is None:  # no QAT: the export quantizes the float student (PTQ on validation windows)
        return out + _release_stages(recipe, runs, fold, data, tuned, python, source=str(tuned / "best.pt"), choosers=choosers)
    # --force here and in the export: a stage runs again only when it did not finish, and then replaces what it left
    out.append(Stage("qat", ["qat", "--student", str(tuned / "best.pt"), *options(recipe["qat"].get("args")), "--force"],
                     done=tuned / "int8" / "report.json"))
    return out + _release_stages(recipe, runs, fold, data, tuned, python, choosers=choosers)


def _release_stages(recipe, runs: Path, fold: int, data: Path, tuned: Path, python: str, source: str | None = None,
                    choosers: list[str] | None = None) -> list[Stage]:
    """Export the int8 graph with the lower validation MAE (or ``source``, a float checkpoint), bundle."""
    export = runs / f"export{fold}"
    int8 = source if source is not None else ShippedInt8(tuned / "int8", python)
    # the counter's threshold, chosen where the weights were (unless the recipe says choose_counter: false)
    counter_on = ["--counter-on", ",".join(choosers)] if choosers and recipe["export"].get("choose_counter", True) else []
    out = [Stage("export", ["export", int8, *options(recipe["export"].get("args")), *counter_on, "--data", str(data), "--out", str(export),
                            "--provenance", str(runs / "recipe.json"), "--force"],
                 done=export / ".done", marker=export / ".done")]
    bundle = recipe.get("bundle") or {}
    if bundle.get("sample", True):
        out.append(Stage("bundle", ["-m", "release.bundle", "sample"], program=python))
    out.append(Stage("bundle", ["-m", "release.bundle", "artifacts", str(export)], program=python))
    # the float student beside them: what footfall finetune starts from
    out.append(Stage("bundle", ["-m", "train.fit.finetune", "bundle", str(tuned / "best.pt")], program=python))
    return out


class ShippedInt8(str):
    """The int8 graph ``python -m train.quant.qat ship FOLDER`` picks, resolved when the command runs."""

    def __new__(cls, folder: Path, python: str):
        obj = super().__new__(cls, f"$({python} -m train.quant.qat ship {folder})")
        obj.folder, obj.python = folder, python
        return obj

    def resolve(self) -> list[str]:
        python = sys.executable if self.python == "python" else self.python
        picked = subprocess.run([python, "-m", "train.quant.qat", "ship", str(self.folder)], capture_output=True, text=True, check=True)
        return [picked.stdout.strip()]


def resolved(argv: list[str]) -> list[str]:
    return [r for a in argv for r in (a.resolve() if hasattr(a, "resolve") else [a])]


def run(recipe: dict[str, Any], dry_run: bool = False, echo: Callable[[str], None] = print, footfall: str | None = None) -> list[list[str]]:
    """Run (or with ``dry_run`` print) every stage; returns the commands as printed."""
    if footfall is None:
        beside = Path(sys.executable).with_name("footfall")
        footfall = str(beside) if beside.exists() else "footfall"
    runs = Path(recipe["runs"])
    printed = []
    if not dry_run:
        write_json(runs / "recipe.json", provenance(recipe))
    for stage in stages(recipe):
        cmd = stage.command()
        printed.append(cmd)
        line = " ".join(a if hasattr(a, "resolve") else shlex.quote(a) for a in cmd)
        if stage.skipped():
            echo(f"# skip {stage.name} ({stage.done} exists): {line}")
            continue
        echo(f"+ {line}")
        if dry_run:
            continue
        argv = resolved(cmd)
        program = {"footfall": footfall, "python": sys.executable}.get(argv[0], argv[0])
        subprocess.run([program, *argv[1:]], check=True)
        if stage.marker is not None:
            stage.marker.parent.mkdir(parents=True, exist_ok=True)
            stage.marker.write_text("done\n")
    if not dry_run:
        echo("footfall model: done; try: make demo")
    return printed


def register(app) -> None:
    import typer

    from edge.util import fail

    def model_command(
        recipe: Path = typer.Option(DEFAULT_RECIPE, "--recipe", help="recipe file (or the name of one in train/recipes/)"),
        dry_run: bool = typer.Option(False, "--dry-run", help="print the commands, run nothing"),
    ) -> None:
        """Make a model from its recipe, stage by stage: sounds, data, teacher and its labels, student, quiet fine-tune, QAT, export, bundle.

        The teacher with its pseudo-strong labels, the quiet fine-tune and QAT run when the recipe has them."""
        try:
            spec = load_recipe(recipe)
        except RecipeError as e:
            fail(e)
        try:
            run(spec, dry_run=dry_run, echo=lambda m: typer.echo(m, err=True))
        except subprocess.CalledProcessError as e:
            fail(f"footfall model: stage failed (exit {e.returncode}): {shlex.join(map(str, e.cmd))}", code=1)

    app.command("model")(model_command)
