"""The recorded-sound corpus, the real-sound evaluation set and the metronome baseline.

The small corpus (teeworlds-data) is built once into the clone's cache (``data/sounds``, or
``$FOOTFALL_SOUNDS``) by ``make test`` before pytest; if it is missing here, the fixture builds it
with apt-get, and fails (never skips) where apt is not available. The real-sound set tests run on
a fixture corpus written by the test (noise-burst steps, noise beds), so they need no download.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edge.frontend import SAMPLE_RATE
from train.data import sounds as snd
from train.data.realset import build_realset, check_realset, dataset_digest, eval_clips
from train.data.recordings import load_dataset

ROOT = Path(__file__).resolve().parents[1]
RESERVED_EXAMPLES = ("0ad-data", "0ad", "lugaru-data", "etw-data", "scorched3d-data", "supertuxkart-data", "openarena-data",
                     "nexuiz-data", "xonotic-data", "redeclipse-data", "sauerbraten-data", "cube2-data", "minetest-data",
                     "luanti-data", "ioquake3", "quake3-data", "urbanterror-data", "tremulous-data", "worldofpadman-data",
                     "smokinguns-data", "alien-arena-data", "OpenArena-Data")


# ---------------------------------------------------------------------------------- registry


def test_reserved_names_are_refused():
    for name in RESERVED_EXAMPLES:
        assert snd.is_reserved(name), name
        with pytest.raises(snd.SoundsError, match="reserved"):
            snd.check_not_reserved(name)
    for name in ("supertux-data", "teeworlds-data", "flare-game", "megaglest-data"):  # near misses stay usable
        assert not snd.is_reserved(name)
    with pytest.raises(snd.SoundsError, match="reserved"):
        snd.Package("xonotic-data", "train", (snd.Rule("*.ogg", "footstep"),), "GPL-2+")
    with pytest.raises(snd.SoundsError, match="reserved"):
        snd.resolve_packages(None, ["0ad-data"])


def test_registry_names_no_reserved_package():
    assert snd.REGISTRY
    for p in snd.REGISTRY:
        assert not snd.is_reserved(p.name), p.name
    for profile in snd.PROFILES.values():
        assert not any(snd.is_reserved(n) for n in profile)


def test_train_val_and_eval_packages_are_disjoint():
    train, val, ev = (set(snd.split_packages(s)) for s in ("train", "val", "eval"))
    assert train and val and ev
    assert not train & ev and not train & val and not val & ev
    assert train | val | ev == {p.name for p in snd.REGISTRY}
    assert len(snd.registry()) == len(snd.REGISTRY)  # no package listed twice
    cats = {s: {r.category for p in snd.REGISTRY if p.split == s for r in p.rules} for s in snd.SPLITS}
    assert {"footstep", "ambience"} <= cats["train"] and {"footstep", "ambience", "wind"} <= cats["eval"]
    assert set(snd.PROFILES["small"]) <= train  # make test's corpus feeds the generator only


def test_licence_from_dep5():
    text = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
            "Files: *\nCopyright: someone\nLicense: GPL-2\n\n"
            "Files: share/game/Data/Sounds/*\nCopyright: other\nLicense: GFDL-1.3\n\n"
            "Files: share/game/Data/Sounds/Drop*.ogg\nCopyright: x\nLicense: CC-BY-SA-3.0\n")
    assert snd.licence_of(text, "usr/share/games/game/Data/Sounds/steps.ogg", "?")[0] == "GFDL-1.3"
    assert snd.licence_of(text, "usr/share/games/game/Data/Sounds/Drop1.ogg", "?")[0] == "CC-BY-SA-3.0"
    assert snd.licence_of(text, "usr/share/games/game/Data/Music/a.ogg", "?")[0] == "GPL-2"
    assert snd.licence_of("not machine readable", "a/b.ogg", "GPL-2+") == ("GPL-2+", "registry (copyright file not machine-readable)")


def test_split_events_cuts_one_shots():
    rng = np.random.default_rng(0)
    x = np.zeros(SAMPLE_RATE)
    starts = (1000, 6000, 11000)
    for s in starts:
        x[s : s + 800] = rng.standard_normal(800) * np.exp(-np.arange(800) / 150)
    events = snd.split_events(x)
    assert len(events) == 3
    for e in events:
        assert snd.onset_s(e) < 0.01  # each cut starts just before its impact


# ---------------------------------------------------------------------------------- the small corpus


@pytest.fixture(scope="module")
def small_corpus() -> Path:
    root = snd.default_root()
    built = (root / "teeworlds-data" / snd.INDEX).is_file() and (root / snd.MANIFEST).is_file()
    if not built:
        if not shutil.which("apt-get"):
            pytest.fail(f"no small sound corpus at {root} and no apt-get to build it: run `footfall data sounds --profile small` "
                        "on a Debian system (make test does) or point $FOOTFALL_SOUNDS at a built corpus")
        snd.build(root, "small", progress=False)
    return root


def test_small_corpus_manifest(small_corpus):
    rows = [r for r in snd.read_manifest(small_corpus) if r["package"] == "teeworlds-data"]
    assert rows and all(set(snd.MANIFEST_COLUMNS) <= set(r) for r in rows)
    assert {r["split"] for r in rows} == {"train"}
    assert all(r["licence"] and r["version"] and len(r["sha256_source"]) == 64 and len(r["sha256_clip"]) == 64 for r in rows)
    steps = [r for r in rows if r["category"] == "footstep"]
    assert len(steps) == 8 and all("foley_foot_" in r["path"] for r in steps)
    clips = snd.load_clips(small_corpus, split="train", category="footstep", packages=["teeworlds-data"])
    assert len(clips) == 8
    for c in clips:
        assert c.audio.dtype == np.float32 and c.audio.ndim == 1
        assert 0.02 < len(c.audio) / SAMPLE_RATE <= snd.MAX_ONE_SHOT_S
        assert abs(20 * np.log10(np.abs(c.audio).max()) - snd.ONE_SHOT_PEAK_DBFS) < 0.01  # level-normalised
        assert 0 <= c.onset_s < 0.05
    assert not any(c.split == "eval" for c in snd.load_clips(small_corpus, split="train"))
    assert snd.validate(small_corpus) == []


def test_no_manifest_names_a_reserved_package(small_corpus):
    for r in snd.read_manifest(small_corpus):
        assert not snd.is_reserved(r["package"]), r["package"]
    for idx in small_corpus.glob(f"*/{snd.INDEX}"):
        assert not snd.is_reserved(json.loads(idx.read_text())["package"])
    # every manifest-like file tracked in the repository
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for rel in tracked:
        if "manifest" in Path(rel).name.lower() or Path(rel).name in ("runs.jsonl", "realset.json", snd.INDEX):
            words = Path(ROOT / rel).read_text(errors="replace").lower().replace(",", " ").replace('"', " ").split()
            assert not any(snd.is_reserved(w) for w in words if w[:1].isalnum()), rel


def test_decode_wavpack_reproduces_the_stored_clip(small_corpus):
    idx = json.loads((small_corpus / "teeworlds-data" / snd.INDEX).read_text())
    row = next(c for c in idx["clips"] if c["category"] == "footstep")
    src = small_corpus / "teeworlds-data" / "source" / row["path"]
    assert src.suffix == ".wv"
    audio, sr = snd.decode_file(src)
    assert sr == row["orig_sample_rate"] and audio.shape[1] == row["orig_channels"] and audio.shape[0] > 1000
    clip, levels = snd.condition(audio, sr, row["category"])
    assert snd.clip_sha256(clip) == row["sha256_clip"]
    assert levels["level_dbfs"] == row["level_dbfs"]


def test_validate_detects_tampering(small_corpus, tmp_path):
    root = tmp_path / "sounds"
    shutil.copytree(small_corpus / "teeworlds-data", root / "teeworlds-data")
    snd.write_manifest(root)
    assert snd.validate(root) == []
    path = root / "teeworlds-data" / snd.CLIPS
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    victim = sorted(arrays)[0]
    arrays[victim] = arrays[victim].copy()
    arrays[victim][10] += 1e-3
    np.savez(path, **arrays)
    problems = snd.validate(root)
    assert len(problems) == 1 and victim in problems[0] and "tampered" in problems[0]
    src = next((root / "teeworlds-data" / "source").rglob("*.wv"))
    src.write_bytes(src.read_bytes() + b"x")
    assert any("source file sha256" in p for p in snd.validate(root))


# ---------------------------------------------------------------------------------- the real-sound set


def _write_package(root: Path, name: str, split: str, clips: dict[str, tuple[str, str, np.ndarray]]) -> None:
    """A fixture package in the corpus layout: clip id -> (category, surface, audio)."""
    d = root / name
    d.mkdir(parents=True)
    rows = []
    for cid, (cat, surface, x) in clips.items():
        x = np.asarray(x, np.float32)
        rows.append({"clip_id": f"{name}:{cid}", "package": name, "version": "1", "path": f"{cid}.wav", "licence": "CC0-1.0",
                     "category": cat, "surface": surface, "family": cid.rstrip("0123456789"), "split": split,
                     "duration_s": len(x) / SAMPLE_RATE, "onset_s": snd.onset_s(x) if cat in snd.ONE_SHOTS else 0.0,
                     "orig_sample_rate": SAMPLE_RATE, "orig_channels": 1, "level_dbfs": -20.0, "peak_dbfs": -1.0, "event": -1,
                     "sha256_source": "0" * 64, "sha256_clip": snd.clip_sha256(x)})
    np.savez(d / snd.CLIPS, **{r["clip_id"]: np.asarray(clips[r["clip_id"].split(":", 1)[1]][2], np.float32) for r in rows})
    (d / snd.INDEX).write_text(json.dumps({"package": name, "version": "1", "split": split, "registry_key": "fixture", "clips": rows}))


def _burst(rng, decay_ms: float) -> np.ndarray:
    n = int(0.12 * SAMPLE_RATE)
    x = np.concatenate([np.zeros(40), rng.standard_normal(n) * np.exp(-np.arange(n) / (decay_ms * SAMPLE_RATE / 1000))])
    return 0.9 * x / np.abs(x).max()


@pytest.fixture(scope="module")
def fixture_corpus(tmp_path_factory) -> Path:
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("corpus")
    bed = np.cumsum(rng.standard_normal(4 * SAMPLE_RATE)) * 0.001
    _write_package(root, "fixture-eval", "eval", {
        **{f"thud{i}": ("footstep", "gravel", _burst(rng, 8)) for i in range(3)},
        **{f"clack{i}": ("footstep", "", _burst(rng, 3)) for i in range(3)},
        "wind": ("wind", "", (bed - bed.mean()) * 0.1), "hiss": ("ambience", "", 0.05 * rng.standard_normal(3 * SAMPLE_RATE)),
    })
    _write_package(root, "fixture-train", "train", {"tap0": ("footstep", "", _burst(rng, 5)),
                                                   "rain": ("ambience", "", 0.05 * rng.standard_normal(SAMPLE_RATE))})
    snd.write_manifest(root)
    return root


def test_realset_uses_eval_packages_only_and_is_reproducible(fixture_corpus, tmp_path):
    a = build_realset(tmp_path / "a", fixture_corpus, n_runs=5, seconds=12.0, seed=3)
    b = build_realset(tmp_path / "b", fixture_corpus, n_runs=5, seconds=12.0, seed=3)
    c = build_realset(tmp_path / "c", fixture_corpus, n_runs=5, seconds=12.0, seed=4)
    assert dataset_digest(a) == dataset_digest(b) != dataset_digest(c)
    assert check_realset(a) == []
    recs = load_dataset(a)
    assert len(recs) == 5 and all(r.is_labeled for r in recs)
    assert {r.surface for r in recs} == {"gravel", "clack"}  # surface where known, else the family
    infos = [json.loads(line) for line in (a / "runs.jsonl").read_text().splitlines()]
    named = {p for i in infos for p in i["packages"]} | {x.split(":")[0] for i in infos for x in i["step_clips"] + i["beds"]}
    assert named == {"fixture-eval"}
    meta = json.loads((a / "realset.json").read_text())
    assert set(meta["packages"]) == {"fixture-eval"} and meta["split"] == "eval"
    levels = sorted(i["level_dbfs"] for i in infos)
    assert levels[-1] - levels[0] > 20  # the run level varies by tens of dB
    with pytest.raises(ValueError, match="exists"):
        build_realset(a, fixture_corpus, n_runs=5, seconds=12.0, seed=3)


def test_realset_refuses_a_train_package(fixture_corpus, tmp_path):
    root = tmp_path / "corpus"
    shutil.copytree(fixture_corpus, root)
    rng = np.random.default_rng(1)
    # a registry train package that claims to be eval in its index: the registry wins
    _write_package(root, "teeworlds-data", "eval", {"foot0": ("footstep", "", _burst(rng, 5))})
    snd.write_manifest(root)
    with pytest.raises(snd.SoundsError, match="eval packages only"):
        eval_clips(root)


def test_realset_cli(fixture_corpus, tmp_path):
    from footfall.cli import app

    out = tmp_path / "real"
    r = CliRunner().invoke(app, ["data", "realset", "--out", str(out), "--sounds", str(fixture_corpus), "--runs", "5", "--seconds", "12"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["data", "realset", "--out", str(out), "--sounds", str(fixture_corpus), "--runs", "5", "--seconds", "12"])
    assert r.exit_code == 2 and "--force" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["data", "realset", "--out", str(tmp_path / "x"), "--sounds", str(tmp_path / "none")])
    assert r.exit_code == 2 and "no sound corpus" in r.output


# ---------------------------------------------------------------------------------- the metronome


def _steady_dataset(root: Path, spms: list[float], seconds: float = 30.0) -> Path:
    rng = np.random.default_rng(0)
    (root / "audio").mkdir(parents=True)
    (root / "steps").mkdir()
    rows = []
    import soundfile as sf

    for i, spm in enumerate(spms):
        t = np.arange(0.2, seconds - 0.05, 60.0 / spm)
        sf.write(root / "audio" / f"r{i}.flac", (0.001 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32), SAMPLE_RATE)
        with (root / "steps" / f"r{i}.csv").open("w") as f:
            f.write("time_s\n" + "".join(f"{x:.6f}\n" for x in t))
        rows.append([f"r{i}", f"p{i}", f"audio/r{i}.flac", f"steps/r{i}.csv", "", "", i % 5])
    with (root / "manifest.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["run_id", "runner_id", "audio", "steps", "surface", "session", "fold"], *rows])
    return root


def test_metronome_baseline_numbers(tmp_path):
    from train.evaluate.baselines import METRONOME_SPM, evaluate_baseline
    from train.data.features import step_frames
    from train.data.recordings import load_steps
    from train.data.windows import window_index, window_sums

    root = _steady_dataset(tmp_path / "steady", [150.0, 150.0, 150.0, 150.0, 150.0])
    recs = load_dataset(root)
    run = evaluate_baseline(recs, root, "metronome", 5)
    # expected: per 5-s window, |170/12 - true count|
    errs = []
    for r in recs:
        truth = step_frames(load_steps(r.steps), int(r.duration_s * 100))
        counts = window_sums(truth, window_index(len(truth), 500), 500)
        errs += list(np.abs(METRONOME_SPM / 12 - counts))
    assert np.mean([res.mae for res in run.results]) == pytest.approx(np.mean(errs), abs=1e-4)
    assert all(res.extra["spm"] == METRONOME_SPM for res in run.results)
    # tuned on train: every run steps at 150 spm, so the train cadence is ~150 and the error small
    tuned = evaluate_baseline(recs, root, "metronome-train", 5)
    assert all(abs(res.extra["spm"] - 150) < 3 for res in tuned.results)
    assert max(res.mae for res in tuned.results) < 0.6 < min(res.mae for res in run.results)


def test_eval_model_cli_scores_the_bundled_model_beside_the_baselines(fixture_corpus, tmp_path):
    from footfall.cli import app

    real = build_realset(tmp_path / "real", fixture_corpus, n_runs=5, seconds=12.0, seed=3)
    artifact = ROOT / "edge" / "assets" / "streamtcn_int8.tflite"
    out = tmp_path / "report.json"
    r = CliRunner().invoke(app, ["eval", str(real), "--model", str(artifact), "--out", str(out)])
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert set(rep["overall"]) == {"model", "metronome", "metronome-train", "onset"}
    assert set(rep["by_source"]) == {"fixture-eval"} and set(rep["by_surface"]) == {"gravel", "clack"}
    assert all(row["model"] >= 0 for row in rep["runs"])
    r = CliRunner().invoke(app, ["eval", str(real), "--baseline", "metronome", "--out", str(tmp_path / "m.json")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["eval", str(real), "--model", str(tmp_path / "nope.tflite")])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_eval_model_on_runs_of_one_fold_skips_the_tuned_baselines(fixture_corpus, tmp_path):
    """A user's own runs sit in one fold: nothing to tune onset/metronome-train on, so they are
    left out with a note (never tuned on the scored runs), and the model and metronome are scored."""
    import csv as _csv

    from footfall.cli import app

    real = build_realset(tmp_path / "real", fixture_corpus, n_runs=5, seconds=12.0, seed=3)
    rows = list(_csv.DictReader((real / "manifest.csv").open()))
    with (real / "manifest.csv").open("w", newline="") as f:
        w = _csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({**r, "fold": "0"} for r in rows)
    out = tmp_path / "own.json"
    r = CliRunner().invoke(app, ["eval", str(real), "--model", str(ROOT / "edge" / "assets" / "streamtcn_int8.tflite"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert set(rep["overall"]) == {"model", "metronome"} and "no training runs" in rep["extra"]["skipped"]


def test_bench_reports_every_artifact_on_the_real_sound_set(fixture_corpus, tmp_path):
    """`footfall bench --realset`: the artifacts' headline accuracy beside the metronome and onset counter."""
    from types import SimpleNamespace

    from bench.report import real_sound_lines
    from bench.run import real_sound_accuracy
    from bench.subjects import BenchError
    from train.evaluate.realeval import evaluate_artifact

    real = build_realset(tmp_path / "real", fixture_corpus, n_runs=5, seconds=12.0, seed=3)
    artifact = ROOT / "edge" / "assets" / "streamtcn_int8.tflite"
    subjects = [SimpleNamespace(key="bundled.tflite", format="tflite", path=artifact, label="student int8 · .tflite"),
                SimpleNamespace(key="teacher-cpu", format="pytorch", path=tmp_path / "t.pt", label="teacher")]
    got = real_sound_accuracy(subjects, real)
    assert set(got["subjects"]) == {"bundled.tflite"} and set(got["baselines"]) == {"metronome", "onset"}
    alone = evaluate_artifact(artifact, real).overall
    assert got["subjects"]["bundled.tflite"]["mae"] == pytest.approx(alone["model"].mae)
    assert got["baselines"]["metronome"]["mae"] == pytest.approx(alone["metronome"].mae)
    text = "\n".join(real_sound_lines(SimpleNamespace(real=got, subjects=subjects)))
    assert "## Accuracy on recorded sounds" in text and "student int8 · .tflite" in text and "metronome, 170 spm" in text
    with pytest.raises(BenchError, match="--realset"):
        real_sound_accuracy(subjects, tmp_path / "missing")


def test_bundled_cards_state_their_real_sound_accuracy_beside_the_baselines():
    """Every bundled card's accuracy claim: the real-sound set, the synthetic fold, each with the metronome beside it."""
    from edge.cli import bundled_models
    from edge.card import load_verified_card

    for artifact in bundled_models():
        acc = load_verified_card(artifact).accuracy
        for key in ("real_sound", "synthetic"):
            assert {"model", "metronome", "onset"} <= set(acc[key]), (artifact.name, key)
            assert acc[key]["runs"] > 0 and len(acc[key]["manifest_sha256"]) == 64


def test_eval_card_option_records_the_result_in_a_copy(fixture_corpus, tmp_path):
    import shutil

    from edge.card import load_verified_card
    from footfall.cli import app

    real = build_realset(tmp_path / "real", fixture_corpus, n_runs=5, seconds=12.0, seed=3)
    src = ROOT / "edge" / "assets" / "streamtcn_int8.tflite"
    for f in (src, Path(str(src) + ".card.json")):
        shutil.copy2(f, tmp_path / f.name)
    artifact = tmp_path / src.name
    before = artifact.read_bytes()
    r = CliRunner().invoke(app, ["eval", str(real), "--model", str(artifact), "--card", "real_sound", "--out", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    card = load_verified_card(artifact)  # still verifies: the artifact is untouched
    assert artifact.read_bytes() == before and card.accuracy["real_sound"]["runs"] == 5
    assert card.accuracy["real_sound"]["model"]["mae"] == pytest.approx(json.loads((tmp_path / "r.json").read_text())["overall"]["model"]["mae"], abs=1e-4)
    r = CliRunner().invoke(app, ["eval", str(real), "--baseline", "metronome", "--card", "real_sound"])
    assert r.exit_code == 2 and "--card" in r.output


def test_a_validation_set_takes_val_footsteps_over_train_beds_and_never_eval_sounds(fixture_corpus, tmp_path):
    """--split val: the footsteps of val packages (held out of training: they choose epochs and
    thresholds), the beds of train ones, nothing of an eval package; check_realset agrees."""
    root = tmp_path / "corpus"
    shutil.copytree(fixture_corpus, root)
    rng = np.random.default_rng(2)
    _write_package(root, "fixture-val", "val", {f"stomp{i}": ("footstep", "boots", _burst(rng, 12)) for i in range(2)})
    snd.write_manifest(root)
    v = build_realset(tmp_path / "v", root, n_runs=5, seconds=12.0, seed=3, split="val")
    # a val package's speech and music (the step-free choosing runs' beds) do not change the val set
    root2 = tmp_path / "corpus2"
    shutil.copytree(root, root2)
    _write_package(root2, "fixture-val-beds", "val", {"hold": ("music", "", 0.1 * np.sin(np.arange(3 * SAMPLE_RATE) * 0.03)),
                                                      "hello": ("speech", "", 0.1 * rng.standard_normal(SAMPLE_RATE))})
    snd.write_manifest(root2)
    assert dataset_digest(build_realset(tmp_path / "v2", root2, n_runs=5, seconds=12.0, seed=3, split="val")) == dataset_digest(v)
    infos = [json.loads(line) for line in (v / "runs.jsonl").read_text().splitlines()]
    assert {x.split(":")[0] for i in infos for x in i["step_clips"]} == {"fixture-val"}
    assert {x.split(":")[0] for i in infos for x in i["beds"]} == {"fixture-train"}
    assert json.loads((v / "realset.json").read_text())["split"] == "val"
    assert check_realset(v) == []
    # the evaluation set of the same corpus is untouched by the val package
    assert dataset_digest(build_realset(tmp_path / "e", root, n_runs=5, seconds=12.0, seed=3)) == \
        dataset_digest(build_realset(tmp_path / "e0", fixture_corpus, n_runs=5, seconds=12.0, seed=3))
    with pytest.raises(ValueError, match="eval or val"):
        build_realset(tmp_path / "t", root, n_runs=5, seconds=12.0, seed=3, split="train")
    # they are the beds of step-free runs of the val split (footfall data negatives --split val), alone
    from train.data.negatives import corpus_beds, write_negatives
    from train.data.recordings import load_dataset

    beds, categories = corpus_beds(root2, "val")
    assert sorted(set(categories)) == ["music", "speech"] and len(beds) == len(categories)
    neg = write_negatives(tmp_path / "nv", runs=8, seconds=4.0, seed=1, sounds=root2, split="val", kinds=["bed"])
    assert {r.session for r in load_dataset(neg)} <= {"bed:music", "bed:speech"}
    assert json.loads((neg / "negatives.json").read_text())["split"] == "val"


def test_every_registry_split_is_a_known_role_and_val_packages_hold_footsteps():
    assert set(snd.SPLITS) == {"train", "val", "eval"}
    for split in snd.SPLITS:
        cats = {r.category for p in snd.REGISTRY if p.split == split for r in p.rules}
        assert "footstep" in cats, split
    assert not set(snd.split_packages("val")) & (set(snd.split_packages("train")) | set(snd.split_packages("eval")))
