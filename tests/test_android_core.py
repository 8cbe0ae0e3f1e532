"""The Java DSP core of android_demo against fresh golden vectors from edge/.

Writes golden folders with ``edge.golden`` into tmp_path, compiles ``android_demo/core`` (main
and test sources) with javac into ``android_demo/core/build/``, and runs every JUnit test class
with ``org.junit.runner.JUnitCore`` from Debian's ``junit4`` package (``make test`` installs it).
The golden folders reach the Java tests through ``-Dfootfall.golden`` and are required there.

Six golden inputs cover the alignment's cases: the default 6-s click track (student window
2 s, hop 0.48 s), a stream shorter than one window (the padded tail window alone, odd sample
count), an 11.4-s stream with another window/hop (the 10-s cadence ring wraps), windows
without overlap ending on a rising click (no tail window; steps flushed at the end of stream),
a rate calibration, and a low-latency schedule (a short hop committed 120 ms before each
window's end, as ``edge-run --low-latency``).
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

from edge.counter import Alignment, RateCalibration
from edge.golden import click_track, onset_card, write_golden

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "android_demo"
CORE = DEMO / "core"
BUILD = CORE / "build"
MEL_FILTERS = ROOT / "edge" / "assets" / "mel_filters.npy"
JAVA_RELEASE = "11"  # the core's language level (build.gradle.kts), so it stays Android-desugarable

JUNIT_JARS = ("/usr/share/java/junit4.jar",)
HAMCREST_JARS = ("/usr/share/java/hamcrest-core.jar", "/usr/share/java/hamcrest.jar", "/usr/share/java/hamcrest-all.jar")


def _first(paths: tuple[str, ...]) -> str | None:
    return next((p for p in paths if Path(p).is_file()), None)


def _java_sources(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.java"))


def _run(cmd: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def golden_dirs(tmp_path_factory) -> list[Path]:
    base = tmp_path_factory.mktemp("golden")
    dirs = [base / "default", base / "short", base / "long", base / "no_overlap", base / "calibrated", base / "low_latency"]
    write_golden(dirs[0], card=onset_card(200, 48))  # 6 s click track, W 200 / H 48, the numpy onset "model"
    write_golden(dirs[1], card=onset_card(200, 48), seconds=1.337, seed=1)  # < one window: the padded tail window only
    write_golden(dirs[2], card=onset_card(window_frames=128, hop_frames=32), seconds=11.37, seed=2)
    # H == W and exactly 4 windows: no tail window; a click in the last 15 ms leaves steps waiting
    # for their peak at the end, so finish() emits them in an update of their own
    pcm, _ = click_track(5.12, seed=3)
    start = int(5.105 * 16_000)
    n = len(pcm) - start
    pcm[start:] += (0.5 * np.exp(-np.arange(n) / 128.0) * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    write_golden(dirs[3], card=onset_card(window_frames=128, hop_frames=128), pcm=np.clip(pcm, -1, 1).astype(np.float32))
    # a rate calibration (a 4-s rate window, so the gain moves within the run): every count changes
    card = onset_card(200, 48)
    card.calibration = RateCalibration(centre_spm=150.0, slope_per_spm=0.004, window_s=4.0).to_dict()
    index = write_golden(dirs[4], card=card, seconds=9.0, seed=4)
    assert index["calibration"]["kind"] == "rate_gain"
    assert abs(index["total_steps"] - index["raw_total_steps"]) > 0.05 * index["raw_total_steps"]
    # a low-latency schedule (edge-run --low-latency): the shipped window, a 280-ms hop, each window
    # committing the hop that ends 120 ms before its end; 7.77 s so that a tail window runs too
    index = write_golden(dirs[5], card=onset_card(240, 200), seconds=7.77, seed=5, align=Alignment(240, 28, 4, 12))
    assert index["alignment"]["lookahead_frames"] == 12 and index["alignment"]["commit_offset_density_frames"] == 50
    assert index["updates"][-1]["tail"]
    return dirs


def test_core_has_no_android_imports():
    """core/ must stay plain Java: it is compiled and tested here without an Android SDK."""
    bad = []
    for src in _java_sources(CORE / "src"):
        for n, line in enumerate(Path(src).read_text().splitlines(), 1):
            if re.match(r"\s*import\s+(static\s+)?(android|androidx|org\.json|org\.pytorch|org\.tensorflow)\.", line):
                bad.append(f"{Path(src).relative_to(DEMO)}:{n}: {line.strip()}")
    assert not bad, "Android/runtime imports in the plain-Java core:\n" + "\n".join(bad)


def test_java_core_against_golden_vectors(golden_dirs):
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
              "-d", str(main_out), *_java_sources(CORE / "src" / "main" / "java")])
    assert r.returncode == 0, f"javac (core main) failed:\n{r.stdout}\n{r.stderr}"
    cp_test = os.pathsep.join([str(main_out), junit, hamcrest])
    test_sources = _java_sources(CORE / "src" / "test" / "java")
    r = _run([javac, "--release", JAVA_RELEASE, "-Xlint:all", "-encoding", "UTF-8",
              "-cp", cp_test, "-d", str(test_out), *test_sources])
    assert r.returncode == 0, f"javac (core tests) failed:\n{r.stdout}\n{r.stderr}"

    classes = []
    for src in test_sources:
        text = Path(src).read_text()
        if "@Test" in text and re.search(r"^public class \w+", text, re.M):
            rel = Path(src).relative_to(CORE / "src" / "test" / "java").with_suffix("")
            classes.append(".".join(rel.parts))
    assert "org.footfall.core.GoldenTest" in classes, classes

    recording = BUILD / "recording-from-java"
    shutil.rmtree(recording, ignore_errors=True)
    r = _run([java,
              f"-Dfootfall.golden={os.pathsep.join(str(d) for d in golden_dirs)}",
              f"-Dfootfall.recordingOut={recording}",
              f"-Djava.io.tmpdir={BUILD}",  # the JUnit tests' scratch folders stay in the build folder
              "-Dfootfall.golden.required=true",
              f"-Dfootfall.melFilters={MEL_FILTERS}",
              "-cp", os.pathsep.join([cp_test, str(test_out)]),
              "org.junit.runner.JUnitCore", *classes])
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"JUnit failed:\n{out[-8000:]}"
    m = re.search(r"^OK \((\d+) tests?\)", r.stdout, re.M)
    assert m, f"JUnit did not report OK:\n{out[-4000:]}"
    n_tests = int(m.group(1))
    golden_tests = len(re.findall(r"@Test", (CORE / "src/test/java/org/footfall/core/GoldenTest.java").read_text()))
    assert n_tests >= golden_tests * len(golden_dirs), f"only {n_tests} JUnit tests ran:\n{out[-4000:]}"
    # the log-mel lines the golden tests print: within the 1e-4 on every input
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
