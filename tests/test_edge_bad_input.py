"""edge-run on bad input: one line saying what is wrong, a non-zero exit where the run failed, the
summary of what was counted so far, never a traceback, and never a lost input or earlier output.

Each case was measured on the previous edge-run (listed in ``edge/cli.py`` and ``edge/sources.py``).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

import edge.cli
from edge.audio import MIN_SAMPLE_RATE, load_audio
from edge.backends import load_model
from edge.cli import LOG_COLUMNS
from edge.golden import click_track
from edge.sources import CLIP_LEVEL, LEVEL_FLOOR_DB, MicError, Source
from edge.stream import count_offline
from tests import edge_cli_runner
from tests.edge_fixtures import onset_artifacts

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-3


@pytest.fixture(scope="module")
def model():
    return onset_artifacts(kinds=("onnx",))["onnx"]


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "run.wav"
    sf.write(path, click_track(6.0, seed=21)[0], 16000, subtype="FLOAT")
    return path


def invoke(*args):
    r = edge_cli_runner.invoke(args)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)  # no traceback
    return r.exit_code, r.stdout, r.stderr


def summary_of(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])["summary"]


def errors(stderr: str) -> list[str]:
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr
    return [line for line in lines if line.startswith("edge-run: error:")]


def offline(model, audio) -> float:
    backend, card = load_model(model)
    return count_offline(backend, card, audio).steps


# --------------------------------------------------------------------------- outputs never destroy anything


@pytest.mark.parametrize("how", ["same path", "hard link", "relative path"])
def test_record_onto_the_input_is_refused(model, wav, how, monkeypatch):
    before = wav.read_bytes()
    target = {"same path": wav, "hard link": wav.with_name("link.wav"), "relative path": Path("run.wav")}[how]
    if how == "hard link":
        os.link(wav, target)
    monkeypatch.chdir(wav.parent)
    for force in ([], ["--force"]):  # not even with --force
        code, out, err = invoke(wav, "--model", model, "--json", "--record", target, *force)
        assert code == 2 and out == ""
        (line,) = errors(err)
        assert "is the input file" in line
        assert wav.read_bytes() == before


def test_outputs_onto_the_model_are_refused(model, wav, tmp_path):
    code, _, err = invoke(wav, "--model", model, "--log", str(model) + ".card.json", "--force")
    assert code == 2 and "is the input file" in errors(err)[0]


def test_existing_outputs_need_force(model, wav, tmp_path):
    rec, log = tmp_path / "rec.wav", tmp_path / "hops.csv"
    rec.write_bytes(b"an earlier recording")
    log.write_text("an earlier log\n")
    code, out, err = invoke(wav, "--model", model, "--json", "--record", rec)
    assert code == 2 and out == "" and "--force" in errors(err)[0] and rec.read_bytes() == b"an earlier recording"
    code, out, err = invoke(wav, "--model", model, "--json", "--log", log)
    (line,) = errors(err)
    assert code == 2 and "--append" in line and "--force" in line and log.read_text() == "an earlier log\n"
    code, out, err = invoke(wav, "--model", model, "--json", "--log", log, "--append")  # not edge-run's header
    assert code == 2 and "not an edge-run log" in errors(err)[0] and log.read_text() == "an earlier log\n"
    code, out, err = invoke(wav, "--model", model, "--json", "--log", log, "--record", rec, "--force")
    assert code == 0, err
    assert log.read_text().splitlines()[0] == ",".join(LOG_COLUMNS)
    assert len(load_audio(rec)) == 6 * 16000


def test_outputs_in_a_missing_or_unwritable_folder(model, wav, tmp_path):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    for option in ("--log", "--record"):
        code, out, err = invoke(wav, "--model", model, option, tmp_path / "missing" / "out.x")
        assert code == 2 and out == "" and "does not exist" in errors(err)[0]
        assert not (tmp_path / "missing").exists()  # nothing is created
        code, _, err = invoke(wav, "--model", model, option, not_a_folder / "out.x")
        assert code == 2 and "is not a folder" in errors(err)[0]
        code, _, err = invoke(wav, "--model", model, option, tmp_path)
        assert code == 2 and "is a folder" in errors(err)[0]
    assert not_a_folder.read_text() == "x"


def test_missing_model_says_the_file_does_not_exist(wav, tmp_path):
    code, out, err = invoke(wav, "--model", tmp_path / "nope.tflite")
    assert code == 1 and out == ""
    assert errors(err) == [f"edge-run: error: {tmp_path / 'nope.tflite'}: no such model file"]


# --------------------------------------------------------------------------- failures mid-run keep what was counted


def corrupted(path: Path, pcm, **write_kw) -> Path:
    """``pcm`` encoded to ``path`` (soundfile), then 400 bytes in the middle of the file flipped."""
    sf.write(path, pcm, 16000, **write_kw)
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 400):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def test_broken_flac_frame_summarises_what_came_before(model, tmp_path):
    broken = corrupted(tmp_path / "broken.flac", click_track(9.0, seed=4)[0], subtype="PCM_16")
    before = broken.read_bytes()
    log, rec = tmp_path / "hops.csv", tmp_path / "heard.wav"
    code, out, err = invoke(broken, "--model", model, "--json", "--log", log, "--record", rec)
    assert code == 1
    (line,) = errors(err)
    assert "unreadable audio after" in line
    summary = summary_of(out)
    assert summary["error"] in line and 1.0 < summary["audio_s"] < 9.0 and summary["steps"] > 1
    heard = load_audio(rec)  # the recording and the log keep everything counted
    assert len(heard) == round(summary["audio_s"] * 16000)
    assert abs(summary["steps"] - offline(model, heard)) <= TOL
    rows = log.read_text().splitlines()
    assert float(rows[-1].split(",")[2]) == pytest.approx(summary["steps"])
    assert broken.read_bytes() == before


def test_block_statistics_are_the_plain_formulas_bit_for_bit():
    """A source's statistics of a block come from one float64 square of it (Source._observe):
    they stay the plain formulas' numbers, bit for bit, on any block (clipping at the float32 edge
    of CLIP_LEVEL, huge and subnormal samples, NaN/inf anywhere, empty): the samples up to the first
    NaN/inf counted, its index returned, |x| >= CLIP_LEVEL clipped, the level of the mean square."""
    rng = np.random.default_rng(3)
    edge_level = np.float32(CLIP_LEVEL)
    for i in range(600):
        n = int(rng.choice([0, 1, 7, 9, 128, 1600, 8193, 32000, rng.integers(0, 50000)]))
        scale = [1e-40, 1e-4, 0.3, 1.5, 1e30][i % 5]
        x = (rng.standard_normal(n) * scale).astype(np.float32)
        if n and i % 3 == 0:
            x[rng.integers(0, n, 5)] = rng.choice([edge_level, -edge_level, np.nextafter(edge_level, 0), 1.0], 5)
        if n and i % 4 == 0:
            x[rng.integers(0, n)] = rng.choice([np.nan, np.inf, -np.inf])
        finite = np.isfinite(x)
        first = None if finite.all() else int(np.flatnonzero(~finite)[0])
        head = x[:first]
        src = Source()
        assert src._observe(x) == first
        assert (src.samples, src.clipped) == (len(head), int(np.count_nonzero(np.abs(head) >= CLIP_LEVEL)))
        if len(head):
            rms = float(np.sqrt(np.mean(np.square(head, dtype=np.float64))))
            level = max(LEVEL_FLOOR_DB, 20 * np.log10(rms + 1e-12))
            assert type(src.level_db) is type(level) and np.float64(src.level_db).tobytes() == np.float64(level).tobytes()


class LostMic(Source):
    """A microphone that delivers 4 s of a run and then disappears."""

    description = "fake mic (16000 Hz)"

    def __init__(self, **kwargs) -> None:
        super().__init__(0.05, kwargs.get("stop"))

    def blocks(self):
        pcm = click_track(4.0, seed=5)[0]
        for i in range(0, len(pcm), 800):
            self._observe(pcm[i : i + 800])
            yield pcm[i : i + 800]
        raise MicError("input device 'fake' stopped delivering audio; list input devices with: edge-run --list-devices")


def test_lost_microphone_summarises_what_it_heard(model, monkeypatch):
    monkeypatch.setattr(edge.cli, "MicSource", LostMic)
    code, out, err = invoke("--mic", "--model", model, "--json")
    assert code == 1
    assert errors(err) == ["edge-run: error: input device 'fake' stopped delivering audio; list input devices with: "
                           "edge-run --list-devices"]
    summary = summary_of(out)
    assert summary["audio_s"] == 4.0 and summary["source"] == "fake mic (16000 Hz)"
    assert abs(summary["steps"] - offline(model, click_track(4.0, seed=5)[0])) <= TOL
    code, out, err = invoke("--mic", "--model", model)  # the same, in the runner's view
    assert code == 1 and "edge-run summary" in out and "stopped" in out and "steps" in out


# --------------------------------------------------------------------------- audio that counts wrong without a word


def test_low_rates_warn_and_too_low_rates_are_refused(model, tmp_path):
    pcm = click_track(6.0, seed=8)[0]
    low = tmp_path / "r8k.wav"
    sf.write(low, soxr.resample(pcm, 16000, 8000), 8000, subtype="PCM_16")
    code, out, err = invoke(low, "--model", model, "--json")
    assert code == 0 and not errors(err)
    warnings = [line for line in err.splitlines() if line.startswith("edge-run: warning:")]
    assert len(warnings) == 1 and "8000 Hz" in warnings[0] and "22 % of the model's mel bands are empty" in warnings[0]
    assert summary_of(out)["warnings"] == [warnings[0].removeprefix("edge-run: warning: ")]
    too_low = tmp_path / "r6k.wav"
    sf.write(too_low, soxr.resample(pcm, 16000, 6000), 6000, subtype="PCM_16")
    code, out, err = invoke(too_low, "--model", model, "--json")
    assert code == 1 and out == ""
    assert "too low to count" in errors(err)[0] and f"at least {MIN_SAMPLE_RATE} Hz" in errors(err)[0]


def test_truncated_wav_and_corrupt_ogg_warn_with_the_decoded_duration(model, tmp_path):
    pcm = click_track(9.0, seed=6)[0]
    full = tmp_path / "full.wav"
    sf.write(full, pcm, 16000, subtype="PCM_16")
    trunc = tmp_path / "trunc.wav"
    trunc.write_bytes(full.read_bytes()[: 44 + 3 * 32000])  # 3 s of the 9 s the header announces
    code, out, err = invoke(trunc, "--model", model, "--json")
    assert code == 0 and not errors(err)
    assert "decoded 3.0 s of the 9.0 s its header announces" in err
    assert summary_of(out)["audio_s"] == 3.0

    corrupt = corrupted(tmp_path / "corrupt.ogg", pcm, format="OGG")
    code, out, err = invoke(corrupt, "--model", model, "--json")
    assert code == 0 and not errors(err)
    (warning,) = [line for line in err.splitlines() if "its header announces" in line]
    decoded = summary_of(out)["audio_s"]
    assert decoded < 9.0 and f"decoded {decoded:.1f} s of the 9.0 s" in warning


def _stdin_run(model, data: bytes, *args):
    r = subprocess.run([sys.executable, "-m", "edge.cli", "-", "--model", str(model), "--json", *args], cwd=ROOT,
                       input=data, capture_output=True, timeout=120)
    assert "Traceback" not in r.stderr.decode(), r.stderr.decode()
    return r.returncode, r.stdout.decode(), r.stderr.decode()


@pytest.mark.parametrize("subtype,rate,channels", [("PCM_16", 48000, 2), ("FLOAT", 16000, 1), ("PCM_24", 22050, 1)])
def test_wav_on_stdin_is_read_by_its_header(model, tmp_path, subtype, rate, channels):
    pcm = soxr.resample(click_track(6.0, seed=9)[0], 16000, rate)
    x = np.stack([pcm, pcm * 0.5], axis=1) if channels == 2 else pcm
    path = tmp_path / "run.wav"
    sf.write(path, x, rate, subtype=subtype)
    code, out, err = _stdin_run(model, path.read_bytes())
    assert code == 0, err
    summary = summary_of(out)
    assert summary["source"] == f"stdin (WAV, {rate} Hz, {channels} ch)"
    assert summary["audio_s"] == pytest.approx(6.0, abs=1e-3)
    assert abs(summary["steps"] - offline(model, load_audio(path))) <= TOL  # not 2.6x high as raw PCM


def test_other_containers_on_stdin_are_decoded(model, tmp_path):
    path = tmp_path / "run.flac"
    sf.write(path, click_track(6.0, seed=10)[0], 16000)
    code, out, err = _stdin_run(model, path.read_bytes())
    assert code == 0, err
    summary = summary_of(out)
    assert summary["source"].startswith("stdin (file, 16000 Hz") and abs(summary["steps"] - offline(model, load_audio(path))) <= TOL


def test_raw_pcm_on_stdin_at_a_too_low_rate_is_refused(model):
    code, out, err = _stdin_run(model, np.zeros(16000, "<i2").tobytes(), "--stdin-rate", "4000")
    assert code == 1 and out == "" and "too low to count" in err and len(err.strip().splitlines()) == 1


def test_usage_of_append_and_force(model, wav, tmp_path):
    code, _, err = invoke(wav, "--model", model, "--append")
    assert code == 2 and "--append needs --log" in errors(err)[0]
    code, _, err = invoke(wav, "--model", model, "--log", tmp_path / "x.csv", "--append", "--force")
    assert code == 2 and "not both" in errors(err)[0]


def test_record_dir_writes_a_recording_folder_and_never_overwrites_one(model, wav, tmp_path):
    """--record-dir: the counted audio as a recording folder (footfall data import-imu's layout)."""
    from edge.recording import read_meta

    folder = tmp_path / "own-run"
    code, out, err = invoke(wav, "--model", model, "--json", "--record-dir", folder)
    assert code == 0, err
    meta = read_meta(folder)
    heard, rate = sf.read(folder / "audio.wav", dtype="float32")
    assert rate == 16000 and meta["audio"]["sample_rate"] == 16000 and meta["audio"]["frames"] == len(heard) > 0
    assert meta["recorded_by"] == "edge-run"
    before = (folder / "audio.wav").read_bytes()
    code, out, err = invoke(wav, "--model", model, "--json", "--record-dir", folder)
    (line,) = errors(err)
    assert code == 2 and "already holds a recording" in line and (folder / "audio.wav").read_bytes() == before
    code, _, err = invoke(wav, "--model", model, "--json", "--record-dir", wav.parent)
    assert code == 2 and "holds the input" in errors(err)[0]
