"""The Java DSP core of android_demo against fresh golden vectors from edge/.

Writes golden folders with ``edge.golden`` into tmp_path, compiles ``android_demo/core`` (main
and test sources) with javac into ``android_demo/core/build/``, and runs every JUnit test class
with ``org.junit.runner.JUnitCore`` from Debian's ``junit4`` package (``make test`` installs it).
The golden folders reach the Java tests through ``-Dfootfall.golden`` and are required there.

Seven golden inputs cover the alignment's and the counter's cases: the default 6-s click track
(student window 2 s, hop 0.48 s), a stream shorter than one window (the padded tail window
alone, odd sample count), an 11.4-s stream with another window/hop, windows without overlap
ending on a click in the last 15 ms (no tail window; a step flushed at the end of stream),
non-default counter parameters from the card (every one of the cadence tracker's) on a lone
knock, a run with one and two missed clicks (counted where the cadence puts them), a rest and a
walk (a new runner at another tempo), a low-latency schedule (a short hop committed 120 ms before
each window's end, as ``edge-run --low-latency``), and a streaming model (a card with a
``state``: packets of 8 frames taken once, a stateful model reset at the start, the tail the
remaining frames as one padded packet, a short decision lag). Every folder also carries
``counter_cases.json``, logit tracks that reach every branch of the cadence tracker under
parameter sets that move each of its parameters. Finally, changing one detail of the Java core
(the tie rules of the tracker's argmaxes, the tempo-change cost, the interpolated odd frame, the
lag's rounding, the rounding of the scores to their grid, the retro counting of a confirmed run,
the minimum gap, the final stop, the period, the commit offset, the stateful tail, the model
reset) must make the golden tests fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge.counter import Alignment, CounterParams, count_events
from edge.golden import click_track, onset_card, stream_card, write_golden

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "android_demo"
CORE = DEMO / "core"
BUILD = CORE / "build"
MAIN_JAVA = CORE / "src" / "main" / "java"
TEST_JAVA = CORE / "src" / "test" / "java"
MEL_FILTERS = ROOT / "edge" / "assets" / "mel_filters.npy"
JAVA_RELEASE = "11"  # the core's language level (build.gradle.kts), so it stays Android-desugarable

JUNIT_JARS = ("/usr/share/java/junit4.jar",)
HAMCREST_JARS = ("/usr/share/java/hamcrest-core.jar", "/usr/share/java/hamcrest.jar", "/usr/share/java/hamcrest-all.jar")

# the card's counter parameters of the "params" golden folder: every one differs from the default
CARD_COUNTER = {"threshold": 0.2, "min_spm": 90.0, "max_spm": 220.0, "tempo_lambda": 10.0, "switch_prob": 1e-3, "lag_s": 1.5}


def _first(paths: tuple[str, ...]) -> str | None:
    return next((p for p in paths if Path(p).is_file()), None)


def _java_sources(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.java"))


def _run(cmd: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _committed(folder: Path) -> np.ndarray:
    return np.fromfile(folder / "committed_logits.f32", dtype="<f4")


@pytest.fixture(scope="module")
def golden_dirs(tmp_path_factory) -> list[Path]:
    base = tmp_path_factory.mktemp("golden")
    dirs = [base / "default", base / "short", base / "long", base / "no_overlap", base / "params", base / "low_latency",
            base / "stateful"]
    index = write_golden(dirs[0], card=onset_card(200, 48))  # 6 s click track, W 200 / H 48, the numpy onset "model"
    assert index["totals"]["n_events"] == len(click_track(6.0, seed=0)[1])  # every click, once
    write_golden(dirs[1], card=onset_card(200, 48), seconds=1.337, seed=1)  # < one window: the padded tail window only
    write_golden(dirs[2], card=onset_card(window_frames=128, hop_frames=32), seconds=11.37, seed=2)
    # H == W and exactly 4 windows: no tail window; a click in the last 15 ms peaks in the last
    # frame, so finish() counts it (flush) in an update of its own
    pcm, _ = click_track(5.12, seed=3)
    start = int(5.105 * 16_000)
    n = len(pcm) - start
    pcm[start:] += (0.5 * np.exp(-np.arange(n) / 128.0) * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    index = write_golden(dirs[3], card=onset_card(window_frames=128, hop_frames=128), pcm=np.clip(pcm, -1, 1).astype(np.float32))
    assert index["totals"]["flushed_events"] and not index["updates"][-1]["tail"]
    # the card's counter parameters: a lone knock, a run at 170 spm missing click 8 and clicks 14-15
    # (the tracker counts them where the cadence puts them), a 2.5-s rest, and a walk at 100 spm
    # (a new runner, at a tempo the run could not change to)
    knock, _ = click_track(1.6, spm=40, seed=6, start_s=0.5)
    run, run_steps = click_track(7.0, spm=170, seed=7, drop=(8, 14, 15))
    rest, _ = click_track(2.5, seed=8, start_s=5.0)  # no click
    walk, walk_steps = click_track(4.0, spm=100, seed=9, start_s=0.9)
    index = write_golden(dirs[4], card=onset_card(200, 48, counter=CARD_COUNTER), pcm=np.concatenate([knock, run, rest, walk]))
    assert index["counter"] == CounterParams(**CARD_COUNTER).to_dict() == index["card"]["counter"]
    assert all(v != CounterParams().to_dict()[k] for k, v in CARD_COUNTER.items())
    events = np.asarray(index["totals"]["events"])
    assert len(events) == len(run_steps) + 3 + len(walk_steps) == 25  # the knock out, 3 missed steps in
    clicks = np.concatenate([run_steps + 1.6, walk_steps + 11.1])
    assert np.abs(events[:, None] - clicks[None]).min(axis=0).max() < 0.04  # every click counted, in its frame
    committed = _committed(dirs[4])
    assert len(count_events(committed, CounterParams(**CARD_COUNTER | {"switch_prob": 0.2}))) == 24  # cheap stops: the knock in, the 1-s gap out
    assert len(count_events(committed, CounterParams())) == 45  # with the defaults a stop is dear: the knock and the rest are steps
    # a low-latency schedule (edge-run --low-latency): the shipped window, a 280-ms hop, each window
    # committing the hop that ends 120 ms before its end; 7.77 s so that a tail window runs too
    index = write_golden(dirs[5], card=onset_card(240, 200), seconds=7.77, seed=5, align=Alignment(240, 28, 4, 12))
    assert index["alignment"]["lookahead_frames"] == 12 and index["alignment"]["commit_offset_density_frames"] == 50
    assert index["updates"][-1]["tail"]
    # a streaming model (its card has a state): 8-frame packets, each once, from a reset state;
    # 607 frames: 75 packets and a tail packet of 7 frames and padding, committing one output frame
    # with a streaming card's counter: a short decision lag, a lower threshold
    index = write_golden(dirs[6], card=stream_card(8, counter={"lag_s": 1.0, "threshold": 0.1}), seconds=6.07, seed=4)
    assert index["alignment"]["stateful"] and index["card"]["state"]
    assert index["counter"] == CounterParams(lag_s=1.0, threshold=0.1).to_dict() and index["counter_constants"]["lag_frames"] == 50
    assert [(u["start_frame"], u["lo"], u["hi"], u["tail"]) for u in index["updates"][-2:]] == [(592, 0, 2, False), (600, 0, 1, True)]
    assert index["totals"]["n_events"] == len(click_track(6.07, seed=4)[1])
    return dirs


@pytest.fixture(scope="module")
def compiled_core() -> dict:
    """javac of core/ (main, then tests): the class folders and the classpath JUnit runs with."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        pytest.skip("no JDK: javac/java not on PATH (install Debian's default-jdk-headless to run the Java core tests)")
    junit, hamcrest = _first(JUNIT_JARS), _first(HAMCREST_JARS)
    assert junit and hamcrest, (
        "JUnit 4 jars not found (looked for /usr/share/java/junit4.jar and hamcrest): "
        "`make test` installs Debian's junit4 package (apt-get install junit4)"
    )
    main_out, test_out = BUILD / "classes", BUILD / "test-classes"
    for d in (main_out, test_out):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    r = _run([javac, "--release", JAVA_RELEASE, "-Xlint:all", "-encoding", "UTF-8",
              "-d", str(main_out), *_java_sources(MAIN_JAVA)])
    assert r.returncode == 0, f"javac (core main) failed:\n{r.stdout}\n{r.stderr}"
    test_sources = _java_sources(TEST_JAVA)
    r = _run([javac, "--release", JAVA_RELEASE, "-Xlint:all", "-encoding", "UTF-8",
              "-cp", os.pathsep.join([str(main_out), junit, hamcrest]), "-d", str(test_out), *test_sources])
    assert r.returncode == 0, f"javac (core tests) failed:\n{r.stdout}\n{r.stderr}"
    classes = []
    for src in test_sources:
        text = Path(src).read_text()
        if "@Test" in text and re.search(r"^public class \w+", text, re.M):
            rel = Path(src).relative_to(TEST_JAVA).with_suffix("")
            classes.append(".".join(rel.parts))
    assert "org.footfall.core.GoldenTest" in classes, classes
    return {"javac": javac, "java": java, "main": main_out, "test": test_out, "libs": [junit, hamcrest], "classes": classes}


def _junit(core: dict, golden: list[Path], classes: list[str], main: list[Path] | None = None,
           extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run JUnit on ``classes`` against the golden folders; ``main``: class folders in front of the core's."""
    cp = [str(p) for p in (main or [])] + [str(core["main"]), *core["libs"], str(core["test"])]
    return _run([core["java"], f"-Dfootfall.golden={os.pathsep.join(str(d) for d in golden)}",
                 "-Dfootfall.golden.required=true", f"-Djava.io.tmpdir={BUILD}",  # scratch stays in the build folder
                 *extra, "-cp", os.pathsep.join(cp), "org.junit.runner.JUnitCore", *classes])


def test_core_has_no_android_imports():
    """core/ must stay plain Java: it is compiled and tested here without an Android SDK."""
    bad = []
    for src in _java_sources(CORE / "src"):
        for n, line in enumerate(Path(src).read_text().splitlines(), 1):
            if re.match(r"\s*import\s+(static\s+)?(android|androidx|org\.json|org\.pytorch|org\.tensorflow)\.", line):
                bad.append(f"{Path(src).relative_to(DEMO)}:{n}: {line.strip()}")
    assert not bad, "Android/runtime imports in the plain-Java core:\n" + "\n".join(bad)


def test_java_core_against_golden_vectors(golden_dirs, compiled_core):
    recording = BUILD / "recording-from-java"
    shutil.rmtree(recording, ignore_errors=True)
    r = _junit(compiled_core, golden_dirs, compiled_core["classes"],
               extra=(f"-Dfootfall.recordingOut={recording}", f"-Dfootfall.melFilters={MEL_FILTERS}"))
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"JUnit failed:\n{out[-8000:]}"
    m = re.search(r"^OK \((\d+) tests?\)", r.stdout, re.M)
    assert m, f"JUnit did not report OK:\n{out[-4000:]}"
    n_tests = int(m.group(1))
    golden_tests = len(re.findall(r"@Test", (TEST_JAVA / "org/footfall/core/GoldenTest.java").read_text()))
    assert n_tests >= golden_tests * len(golden_dirs), f"only {n_tests} JUnit tests ran:\n{out[-4000:]}"
    # the log-mel lines the golden tests print: within 1e-4 on every input
    diffs = [float(x) for x in re.findall(r"log-mel max \|java - python\| = (\S+)", r.stdout)]
    assert len(diffs) == len(golden_dirs) and max(diffs) <= 1e-4, r.stdout
    # the app's recording folder, read back by the Python side (edge.recording, the importer's CSV reader)
    from edge.recording import read_meta

    meta = read_meta(recording)
    audio, rate = sf.read(recording / "audio.wav", dtype="float32")
    assert rate == meta["audio"]["sample_rate"] == 16000 and len(audio) == meta["audio"]["frames"] == 16001
    assert meta["audio"]["start_s"] == 100.25 and meta["arm"] == "L" and meta["accel"]["unit"] == "m/s^2"
    accel = np.loadtxt(recording / "accel.csv", delimiter=",", skiprows=1)
    assert accel.shape == (150, 4) and np.all(np.diff(accel[:, 0]) > 0)


# One changed detail of the Java core each: (file, the original text, the changed text, the golden
# test that must then fail). The golden vectors must be sharp enough to see every one.
MUTATIONS = {
    # the tracker: the first of equal candidates wins each argmax, as numpy's argmax
    "step_argmax_ties": ("Counter.java", "if (c > best) {", "if (c >= best) {", "counterCasesAreExact"),
    "stop_argmax_ties": ("Counter.java", "if (last[i] > last[stopFrom]) stopFrom = i;",
                         "if (last[i] >= last[stopFrom]) stopFrom = i;", "counterCasesAreExact"),
    "best_state_ties": ("Counter.java", "if (a[s] > a[k]) k = s;", "if (a[s] >= a[k]) k = s;", "counterCasesAreExact"),
    "start_ties": ("Counter.java", "if (started > best) {", "if (started >= best) {", "counterCasesAreExact"),
    "tempo_cost": ("Counter.java", "((double) Math.abs(per[j] - per[i]) / (double) per[i])",
                   "((double) Math.abs(per[j] - per[i]) / (double) per[j])", "counterCasesAreExact"),
    "odd_frame": ("Counter.java", "pending[nPending++] = 0.5 * (prev + v);", "pending[nPending++] = 0.5 * (v + v);",
                  "counterCasesAreExact"),
    "lag_rounding": ("CounterParams.java", "(int) Math.rint(lagS * FPS)", "(int) Math.round(lagS * FPS)", "counterCasesAreExact"),
    "score_grid": ("CounterParams.java", "return Math.rint(x * 16777216.0) / 16777216.0;",
                   "return Math.floor(x * 16777216.0) / 16777216.0;", "theCardIsReadAsEdgeReadsIt"),
    "retro_first_step": ("Counter.java", "if (lo + j <= u && u < decided) step(u);", "if (lo + j < u && u < decided) step(u);",
                         "counterCasesAreExact"),
    "min_gap": ("Counter.java", "u - lastU < MIN_GAP", "u - lastU <= MIN_GAP", "counterCasesAreExact"),
    "final_stop": ("Counter.java", "score[k0] + (isFinal ? stopCost : 0.0) > off", "score[k0] > off", "counterOnGoldenLogitsIsExact"),
    "period_trim": ("Counter.java", "for (int i = 1; i < n - 1; i++) sum += sorted[i];",
                    "for (int i = 1; i < n; i++) sum += sorted[i];", "counterCasesAreExact"),
    # the alignment and the engine
    "commit_offset": ("Alignment.java", "return (windowD() - hopD()) / 2;", "return (windowD() - hopD()) / 2 + 1;",
                      "alignmentPlanIsThePythonOne"),
    "stateful_tail": ("Alignment.java", "if (stateful) { // the state", "if (false) { // the state",
                      "alignmentPlanIsThePythonOne"),
    "bin_horizon": ("Counter.java", "this.binLag = 1 + (block", "this.binLag = (block", "counterCasesAreExact"),
    "model_reset": ("StreamCounter.java", "model.reset();", "", "engineResetsTheModelForEachStream"),
    "silent_window": ("StreamCounter.java", "float[] d = silent(x) ? silentLogits() : model.run(levelled(x));",
                      "float[] d = model.run(levelled(x));", "engineDoesNotRunTheModelOnDigitalSilence"),
    "levelled": ("StreamCounter.java", "if (first == 0) return x;", "if (true) return x;", "engineDoesNotRunTheModelOnDigitalSilence"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_golden_vectors_catch_a_changed_java_detail(golden_dirs, compiled_core, tmp_path, name):
    """The core with one detail changed still compiles and runs, and GoldenTest fails on it."""
    file, original, changed, failing_test = MUTATIONS[name]
    src = MAIN_JAVA / "org" / "footfall" / "core" / file
    text = src.read_text()
    assert text.count(original) == 1, f"{file} no longer has exactly one {original!r}: update MUTATIONS"
    mutated = tmp_path / "src" / file
    mutated.parent.mkdir()
    mutated.write_text(text.replace(original, changed))
    classes = tmp_path / "classes"
    r = _run([compiled_core["javac"], "--release", JAVA_RELEASE, "-encoding", "UTF-8", "-cp", str(compiled_core["main"]),
              "-d", str(classes), str(mutated)])
    assert r.returncode == 0, f"javac of the changed {file} failed:\n{r.stderr}"
    r = _junit(compiled_core, [golden_dirs[0], golden_dirs[4], golden_dirs[6]], ["org.footfall.core.GoldenTest"], main=[classes])
    assert r.returncode != 0 and "Tests run:" in r.stdout, f"GoldenTest passed with {name} changed:\n{r.stdout[-3000:]}"
    assert re.search(rf"^\d+\) {failing_test}\[", r.stdout, re.M), f"{failing_test} did not fail:\n{r.stdout[-3000:]}"


def test_gradle_project_is_complete():
    """What Android Studio needs to build the app, checked statically (no SDK here)."""
    settings = (DEMO / "settings.gradle.kts").read_text()
    assert 'include(":core", ":app")' in settings
    assert re.search(r'id\("com\.android\.application"\) version "[\d.]+"', (DEMO / "build.gradle.kts").read_text())
    assert "distributionUrl" in (DEMO / "gradle/wrapper/gradle-wrapper.properties").read_text()
    app = (DEMO / "app/build.gradle.kts").read_text()
    assert "minSdk = 26" in app
    for dep in ("org.pytorch:executorch-android:", "com.google.ai.edge.litert:litert:", 'project(":core")'):
        assert dep in app, dep
    assert not re.search(r'implementation\("[^"]+:\+"\)', app), "dependency without a fixed version"
    manifest = (DEMO / "app/src/main/AndroidManifest.xml").read_text()
    assert "android.permission.RECORD_AUDIO" in manifest and 'android:name=".MainActivity"' in manifest
    java_dir = DEMO / "app/src/main/java/org/footfall/demo"
    assert (java_dir / "MainActivity.java").is_file()
    app_java = "\n".join(p.read_text() for p in java_dir.glob("*.java"))
    # every R.id / R.string / R.layout the code uses is defined in res/
    res = DEMO / "app/src/main/res"
    layouts = {p.stem: p.read_text() for p in (res / "layout").glob("*.xml")}
    ids = set(re.findall(r'@\+id/(\w+)', "\n".join(layouts.values())))
    strings = set(re.findall(r'<string name="(\w+)"', (res / "values/strings.xml").read_text()))
    for kind, name in re.findall(r"\bR\.(id|string|layout)\.(\w+)", app_java):
        defined = {"id": ids, "string": strings, "layout": set(layouts)}[kind]
        assert name in defined, f"R.{kind}.{name} is used but not defined under res/"
    for name in re.findall(r"@string/(\w+)", "\n".join(layouts.values()) + manifest):
        assert name in strings, f"@string/{name} is not defined"
    for doc in ("README.md",):
        text = (DEMO / doc).read_text()
        assert "./gradlew installDebug" in text and "gradle wrapper" in text
