"""Own runs labelled from the accelerometer: the generated recording (audio + arm-worn sensor with
known truth), the labeller's count and timing, clock-offset recovery, bad recordings, the
sensor-logger CSV readers and the recording-folder writer. Recordings are 60-120 s: fast."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from edge.recording import ACCEL, AUDIO, META, AudioRecorder, RecordingError, read_meta, write_motion_csv, write_recording
from train.data.imu import ImuConfig, make_recording, synthesize_accel
from train.data.imu_import import ImportOptions, ImuImportError, import_folders, label_recording, read_motion_csv
from train.data.recordings import load_dataset, load_steps
from footfall.cli import app
from train.data.synth import SR, synthesize_run

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "data" / "sensor_logger"


def scored(res, true: np.ndarray) -> tuple[int, int, float]:
    """(labelled steps, true steps inside the kept stretches, median |timing error| s)."""
    kept = [(a, b) for _, a, b, _ in res.segments]
    inside = lambda x: np.array([any(a <= v < b for a, b in kept) for v in x], bool)  # noqa: E731
    est, tru = res.steps_s[inside(res.steps_s)], true[inside(true)]
    err = np.abs(est[:, None] - tru[None, :]).min(axis=1) if len(est) and len(tru) else np.array([np.inf])
    return len(est), len(tru), float(np.median(err))


def tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(p.name.encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def run60():
    """60 s of generated running (audio, true steps, info), shared by the offset tests."""
    return synthesize_run(seed=2, runner=3, run=1, duration_s=60.0, surface="track")


def write_with_offset(folder: Path, run, offset_s: float, cfg: ImuConfig = ImuConfig(), seed: int = 0) -> dict:
    audio, steps, info = run
    t, xyz, truth = synthesize_accel(steps, info, len(audio) / SR, np.random.default_rng(seed), cfg, offset_s)
    write_recording(folder, audio, SR, accel=(t, xyz), meta={"runner_id": "me"})
    return truth


def test_generated_recording_labels_count_and_timing(tmp_path):
    truth = make_recording(tmp_path / "rec", seed=5, runner=7, run=0, duration_s=120.0, offset_s=1.234)
    assert {AUDIO, ACCEL, META, "truth.steps.csv", "truth.json"} <= {p.name for p in (tmp_path / "rec").iterdir()}
    assert any(kind == "walk" for kind, *_ in truth["plan"]) and any(kind == "stop" for kind, *_ in truth["plan"])
    assert truth["handling"], "the generated recording has a phone-handling stretch"
    res, _, _ = label_recording(tmp_path / "rec")
    n_est, n_true, med = scored(res, truth["steps"])
    assert res.kept_s >= 0.5 * res.duration_s
    assert abs(n_est - n_true) <= 0.02 * n_true, (n_est, n_true)
    assert med <= 0.040, med
    assert abs(res.offset_s - 1.234) <= 0.020
    a, b = truth["handling"][0]  # handling the phone is masked, not counted
    assert all(not w.kept for w in res.windows if w.start_s < b and w.end_s > a and (b - a) > 0)


@pytest.mark.parametrize("offset", [-2.0, -0.73, 0.41, 2.0])
def test_clock_offset_recovered(tmp_path, run60, offset):
    write_with_offset(tmp_path / "rec", run60, offset, seed=int(100 + 10 * offset))
    res, _, _ = label_recording(tmp_path / "rec")
    assert abs(res.offset_s - offset) <= 0.020, (res.offset_s, offset)
    assert res.offset_confidence > 0.2


def test_import_writes_dataset_and_leaves_input_alone(tmp_path, run60):
    rec = tmp_path / "morning run"
    write_with_offset(rec, run60, 0.5)
    before = tree_hash(rec)
    out = tmp_path / "own"
    results = import_folders([rec], out, plot=True)
    assert tree_hash(rec) == before
    recs = load_dataset(out)
    assert recs and all(r.runner_id == "me" and r.fold == 0 and r.session == "own" for r in recs)
    assert sum(len(load_steps(r.steps, r.duration_s)) for r in recs) == results[0].n_labeled_steps
    assert (out / "import" / "morning_run.png").stat().st_size > 10_000
    assert (out / "import" / "morning_run.windows.csv").is_file()
    with pytest.raises(ImuImportError, match="exists; choose another --out or pass --force"):
        import_folders([rec], out)
    with pytest.raises(ImuImportError, match="inside the recording"):
        import_folders([rec], rec / "out")


def test_drift_is_reported_and_corrected(tmp_path):
    truth = make_recording(tmp_path / "rec", seed=2, runner=3, run=1, duration_s=150.0, offset_s=-0.8,
                           cfg=ImuConfig(drift_ppm=400.0))  # 60 ms over the run
    res, _, _ = label_recording(tmp_path / "rec")
    assert any("clock drift" in w for w in res.warnings), res.warnings
    assert 40 <= res.drift_ms <= 80
    n_est, n_true, med = scored(res, truth["steps"])
    assert med <= 0.040 and abs(n_est - n_true) <= 0.02 * n_true


def test_gaps_and_clipping_are_warned(tmp_path, run60):
    write_with_offset(tmp_path / "rec", run60, 0.2, ImuConfig(gaps=((20.0, 1.5),), clip_g=1.2))
    res, _, _ = label_recording(tmp_path / "rec")
    assert any("sensor gap of 1.5" in w for w in res.warnings), res.warnings
    assert any("clipped at +-11.8 m/s^2" in w for w in res.warnings), res.warnings
    assert [w.state for w in res.windows if w.start_s <= 20.5 < w.end_s] == ["gap"]


def test_mismatched_lengths(tmp_path, run60):
    audio, steps, info = run60
    t, xyz, _ = synthesize_accel(steps, info, 60.0, np.random.default_rng(1), offset_s=0.0)
    keep = t < 40.0
    write_recording(tmp_path / "short", audio, SR, accel=(t[keep], xyz[keep]))
    res, _, _ = label_recording(tmp_path / "short")
    assert any("lengths differ" in w for w in res.warnings), res.warnings
    assert all(w.state == "gap" for w in res.windows if w.start_s >= 40.0)
    keep = t < 12.0
    write_recording(tmp_path / "tiny", audio, SR, accel=(t[keep], xyz[keep]))
    with pytest.raises(ImuImportError, match="share only"):
        label_recording(tmp_path / "tiny")


def test_bad_recordings_fail_in_one_line(tmp_path, run60):
    audio = run60[0]
    (tmp_path / "noaccel").mkdir()
    sf.write(tmp_path / "noaccel" / "audio.wav", audio, SR)
    with pytest.raises(ImuImportError, match="no accelerometer CSV"):
        label_recording(tmp_path / "noaccel")
    slow = tmp_path / "slow"
    t = np.arange(0, 60, 1 / 20)
    write_recording(slow, audio, SR, accel=(t, np.tile([0, 0, 9.81], (len(t), 1))))
    with pytest.raises(ImuImportError, match="20.0 Hz; foot strikes need at least 25 Hz"):
        label_recording(slow)
    still = tmp_path / "still"
    t = np.arange(0, 60, 1 / 100)
    write_recording(still, audio, SR, accel=(t, np.random.default_rng(0).normal([0, 0, 9.81], 0.01, (len(t), 3))))
    with pytest.raises(ImuImportError, match="cannot align audio and sensor clocks"):
        label_recording(still)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    sf.write(garbage / "audio.wav", audio, SR)
    (garbage / "accel.csv").write_text("when,what\n1,2\n")
    with pytest.raises(ImuImportError, match="need a timestamp column"):
        label_recording(garbage)
    # the CLI: one line on stderr, exit 2, no traceback
    res = CliRunner().invoke(app, ["data", "import-imu", str(slow), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and res.exception is None or isinstance(res.exception, SystemExit), res.output
    assert "Traceback" not in res.output and res.output.strip().splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["Accelerometer.csv", "phyphox_Raw Data.csv", "physics_toolbox.csv"])
def test_sensor_logger_exports_read_alike(name):
    m = read_motion_csv(SAMPLES / name)
    ref = read_motion_csv(SAMPLES / "Accelerometer.csv")
    assert len(m.t) == len(ref.t) and 95 < m.rate_hz < 105
    np.testing.assert_allclose(m.t - m.t[0], ref.t - ref.t[0], atol=2e-3)
    np.testing.assert_allclose(m.xyz, ref.xyz, atol=0.01)  # g with 4 decimals: 1 mm/s^2
    assert 9 < np.median(np.linalg.norm(m.xyz, axis=1)) < 25  # m/s^2 (running, gravity included), not g


def test_sensor_logger_folder_imports(tmp_path, run60):
    """A Sensor Logger export (no recording.json): Accelerometer.csv + a WAV; audio starts with the sensor."""
    audio, steps, info = run60
    t, xyz, _ = synthesize_accel(steps, info, 60.0, np.random.default_rng(3), offset_s=0.0)
    folder = tmp_path / "2024-05-01_07-30-00"
    folder.mkdir()
    sf.write(folder / "Microphone.wav", audio, SR, subtype="PCM_16")
    with (folder / "Accelerometer.csv").open("w") as f:
        f.write("time,seconds_elapsed,z,y,x\n")
        for ti, (x, y, z) in zip(t, xyz):
            f.write(f"{int(1.7e18 + ti * 1e9)},{ti:.6f},{z:.5f},{y:.5f},{x:.5f}\n")
    res, _, _ = label_recording(folder, ImportOptions(runner_id="ana"))
    n_est, n_true, med = scored(res, steps)
    assert abs(res.offset_s) <= 0.020 and med <= 0.040 and abs(n_est - n_true) <= 0.02 * n_true
    assert res.runner_id == "ana"


def test_recording_writer_round_trip(tmp_path):
    audio = np.sin(np.arange(16000) / 10).astype(np.float32) * 0.5
    with AudioRecorder(tmp_path / "mic", 16000, meta={"device": "test mic"}, audio_start_s=12.5) as rec:
        rec.write(audio[:8000])
        rec.write(audio[8000:])
    meta = read_meta(tmp_path / "mic")
    assert meta["audio"] == {"file": AUDIO, "sample_rate": 16000, "frames": 16000, "start_s": 12.5}
    assert meta["device"] == "test mic" and "accel" not in meta
    back, sr = sf.read(tmp_path / "mic" / AUDIO, dtype="float32")
    assert sr == 16000 and np.abs(back - audio).max() < 1e-4
    with pytest.raises(RecordingError, match="already holds a recording"):
        AudioRecorder(tmp_path / "mic", 16000)
    t = np.arange(5) / 100
    write_motion_csv(tmp_path / "a.csv", t, np.ones((5, 3)))
    m = (tmp_path / "a.csv").read_text().splitlines()
    assert m[0] == "t_s,x,y,z" and len(m) == 6
