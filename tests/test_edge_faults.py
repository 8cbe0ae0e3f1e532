"""edge-run where a new user or a long run meets trouble: names it cannot record to, numbers that are
not numbers, a full disk, raw stereo on stdin, a damaged Ogg, M4A, a FIFO, and inputs that are no
run at all (silence, DC, a steady tone). Each answer is one line with the right exit code, and no
input or earlier output changes; the log and the recording stay whole.
"""

import csv
import errno
import io
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge.audio import load_audio
from edge.backends import load_model
from edge.cli import LOG_COLUMNS
from edge.golden import click_track
from edge.notices import InputCheck
from edge.runlog import RunLog
from edge.stream import count_offline
from tests import edge_cli_runner
from tests.edge_fixtures import copy_artifact, onset_artifacts

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
TOL = 1e-3


@pytest.fixture(scope="module")
def model():
    return onset_artifacts(kinds=("onnx",))["onnx"]


@pytest.fixture
def wav(tmp_path):
    """9 s of steps as 16-bit PCM (so a 16-bit recording of it is bit-identical)."""
    path = tmp_path / "run.wav"
    sf.write(path, click_track(9.0, seed=21)[0], SR, subtype="PCM_16")
    return path


def invoke(*args):
    r = edge_cli_runner.invoke(args)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)  # no traceback
    return r.exit_code, r.stdout, r.stderr


def errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("edge-run: error:")]


def warnings_(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("edge-run: warning:")]


def summary_of(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])["summary"]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: what "nothing changed" is checked against."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def offline(model, audio) -> float:
    backend, card = load_model(model)
    return count_offline(backend, card, audio).steps


def log_rows(path: Path) -> list[dict]:
    """The rows of a log, each checked whole (every column there) and the file ending a row."""
    text = path.read_bytes().decode()
    assert text.endswith("\r\n"), text[-80:]
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == LOG_COLUMNS
    assert all(len(r) == len(LOG_COLUMNS) for r in rows[1:]), rows[-1]
    return [dict(zip(LOG_COLUMNS, r)) for r in rows[1:]]


# --------------------------------------------------------------------------- usage errors, refused up front


@pytest.mark.parametrize("name", ["heard.flac", "heard.mp3", "heard", "heard.wav.txt"])
def test_record_needs_a_wav_name_and_nothing_is_created(model, wav, tmp_path, name):
    before = snapshot(tmp_path)
    code, out, err = invoke(wav, "--model", model, "--log", tmp_path / "run.csv", "--record", tmp_path / name)
    assert code == 2 and out == ""
    (line,) = errors(err)
    assert f"--record {tmp_path / name}" in line and ".wav" in line and len(err.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before  # no header-only log, no recording
    code, _, err = invoke(wav, "--model", model, "--json", "--log", tmp_path / "run.csv", "--record", tmp_path / "heard.WAV")
    assert code == 0, err  # the next run is not blocked


def test_a_log_is_not_left_behind_by_a_run_refused_after_opening_it(model, wav, tmp_path):
    folder = tmp_path / "own-run"
    assert invoke(wav, "--model", model, "--json", "--record-dir", folder)[0] == 0
    before = snapshot(tmp_path)
    code, out, err = invoke(wav, "--model", model, "--json", "--log", tmp_path / "run.csv", "--record-dir", folder)
    (line,) = errors(err)
    assert code == 2 and out == "" and "already holds a recording" in line
    assert snapshot(tmp_path) == before
    assert invoke(wav, "--model", model, "--json", "--log", tmp_path / "run.csv")[0] == 0


@pytest.mark.parametrize("option,value", [
    ("--seconds", "nan"), ("--seconds", "inf"), ("--seconds", "1e308"), ("--seconds", "-inf"),
    ("--hop-ms", "nan"), ("--hop-ms", "inf"), ("--lookahead-ms", "nan"), ("--block-ms", "nan"), ("--block-ms", "inf"),
    ("--block-ms", "0"), ("--threads", "0"), ("--threads", "-1"), ("--threads", "1000"), ("--stdin-channels", "0"),
    ("--stdin-channels", "65"),
])
def test_numbers_that_are_not_finite_or_in_range_are_usage_errors(model, wav, tmp_path, option, value):
    log = tmp_path / "earlier.csv"
    assert invoke(wav, "--model", model, "--json", "--log", log)[0] == 0
    before = snapshot(tmp_path)
    code, out, err = invoke(wav, "--model", model, "--log", log, "--append", option, value)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == errors(err) and len(errors(err)) == 1
    assert errors(err)[0].startswith(f"edge-run: error: {option} ") and "give a number of" in errors(err)[0]
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- a full disk


class FullDisk:
    """``os.write`` for one file takes ``room`` bytes in all, then writes what fits and fails with ENOSPC,
    as a full disk does; every other file is written as usual."""

    def __init__(self, monkeypatch, path: Path, room: int) -> None:
        self.path, self.room, self.real = path, room, os.write
        monkeypatch.setattr(os, "write", self)

    def __call__(self, fd, data):
        try:
            ours = self.path.exists() and os.path.samestat(os.fstat(fd), os.stat(self.path))
        except OSError:
            ours = False
        if not ours:
            return self.real(fd, data)
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = self.real(fd, bytes(data)[: self.room])
        self.room -= n
        return n


def test_disk_full_while_logging_keeps_whole_rows_and_the_summary(model, wav, tmp_path, monkeypatch):
    log = tmp_path / "run.csv"
    disk = FullDisk(monkeypatch, log, room=700)
    before = wav.read_bytes()
    code, out, err = invoke(wav, "--model", model, "--json", "--log", log)
    assert code == 1
    (line,) = errors(err)
    assert line.startswith(f"edge-run: error: --log {log}: cannot write (No space left on device); the log keeps the ")
    summary = summary_of(out)  # the summary of what was counted comes first
    assert summary["error"] == line.removeprefix("edge-run: error: ") and summary["audio_s"] > 0
    rows = log_rows(log)
    assert 0 < len(rows) and log.stat().st_size <= 700 and f"keeps the {len(rows)} rows" in line
    steps = [float(r["steps"]) for r in rows]
    assert steps == sorted(steps) and steps[-1] <= summary["steps"]
    assert wav.read_bytes() == before

    log.unlink()  # the runner's view says the same
    disk.room = 700
    code, out, err = invoke(wav, "--model", model, "--log", log)
    assert code == 1 and "edge-run summary" in out and "stopped" in out and len(errors(err)) == 1
    log_rows(log)


def test_disk_full_while_recording_keeps_whole_blocks_of_what_was_counted(model, wav, tmp_path, monkeypatch):
    rec = tmp_path / "heard.wav"
    FullDisk(monkeypatch, rec, room=44 + 2 * 2 * SR + 1000)  # the header, one 2-s block and a bit
    before = wav.read_bytes()
    code, out, err = invoke(wav, "--model", model, "--json", "--record", rec)
    assert code == 1
    (line,) = errors(err)
    assert line == (f"edge-run: error: --record {rec}: cannot write (No space left on device); "
                    "the recording keeps the 2.0 s before it")
    summary = summary_of(out)
    heard, rate = sf.read(rec, dtype="float32")  # a valid WAV: its header says what it holds
    assert rate == SR and len(heard) == 2 * SR == round(summary["audio_s"] * SR)
    assert abs(summary["steps"] - offline(model, heard)) <= TOL  # it holds exactly what was counted
    assert wav.read_bytes() == before


def test_a_disk_full_before_the_first_block_leaves_no_file_behind(model, wav, tmp_path, monkeypatch):
    rec, log = tmp_path / "heard.wav", tmp_path / "run.csv"
    disk = FullDisk(monkeypatch, rec, room=44 + 100)  # the header fits, the first block does not
    code, out, err = invoke(wav, "--model", model, "--json", "--record", rec, "--log", log)
    assert code == 1
    assert errors(err) == [f"edge-run: error: --record {rec}: cannot write (No space left on device); nothing was recorded"]
    assert summary_of(out)["audio_s"] == 0.0
    assert not rec.exists() and not log.exists()  # an empty recording and a header-only log would block the next run
    disk.room = 10**9
    code, _, err = invoke(wav, "--model", model, "--json", "--record", rec, "--log", log)
    assert code == 0, err


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs /dev/null")
@pytest.mark.parametrize("option", ["--log", "--record"])
def test_outputs_onto_a_device_are_refused(model, wav, option):
    code, out, err = invoke(wav, "--model", model, option, "/dev/null", "--force")
    assert code == 2 and out == ""
    assert errors(err) == [f"edge-run: error: {option} /dev/null: is not a regular file (a device or a pipe); give a file name"]
    assert Path("/dev/null").is_char_device()


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE (POSIX)")
@pytest.mark.parametrize("option,name,limit", [("--log", "run.csv", 900), ("--record", "heard.wav", 100_000)])
def test_a_file_size_limit_from_the_os_is_met_like_a_full_disk(model, tmp_path, option, name, limit):
    """The kernel refuses the writes here (EFBIG past RLIMIT_FSIZE): the same path as ENOSPC, for real."""
    import resource

    audio = tmp_path / "run.wav"
    sf.write(audio, click_track(20.0, seed=22)[0], SR, subtype="PCM_16")
    before = audio.read_bytes()
    out_path = tmp_path / name

    def limit_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = subprocess.run([sys.executable, "-m", "edge.cli", str(audio), "--model", str(model), "--json", option, str(out_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, preexec_fn=limit_files,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.returncode == 1, r.stderr
    (line,) = errors(r.stderr)
    assert line.startswith(f"edge-run: error: {option} {out_path}: cannot write (File too large)")
    summary = summary_of(r.stdout)
    assert 0 < summary["audio_s"] < 20.0 and summary["error"] in line
    assert out_path.stat().st_size <= limit
    if option == "--log":
        assert log_rows(out_path)
    else:
        heard, _ = sf.read(out_path, dtype="float32")
        assert len(heard) == round(summary["audio_s"] * SR)
    assert audio.read_bytes() == before


# --------------------------------------------------------------------------- inputs


def _stdin_run(model, data: bytes, *args):
    r = subprocess.run([sys.executable, "-m", "edge.cli", "-", "--model", str(model), "--json", *args], cwd=ROOT,
                       input=data, capture_output=True, timeout=120)
    assert "Traceback" not in r.stderr.decode(), r.stderr.decode()
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def test_raw_stereo_on_stdin_with_stdin_channels(model, tmp_path):
    pcm = click_track(6.0, seed=9)[0]
    stereo = np.stack([pcm, 0.5 * pcm], axis=1)
    as_wav = tmp_path / "stereo.wav"
    sf.write(as_wav, stereo, SR, subtype="PCM_16")
    raw = sf.read(as_wav, dtype="int16")[0].astype("<i2").tobytes()  # interleaved L R L R ...
    code, out, err = _stdin_run(model, raw, "--stdin-channels", "2")
    assert code == 0, err
    summary = summary_of(out)
    assert summary["source"] == "stdin (s16le, 16000 Hz, 2 ch)" and summary["audio_s"] == 6.0
    assert abs(summary["steps"] - offline(model, load_audio(as_wav))) <= TOL
    help_text = edge_cli_runner.invoke(["--help"], env={"COLUMNS": "200"}).stdout
    assert "--stdin-channels" in help_text and "interleaved" in help_text
    code, out, err = _stdin_run(model, raw, "--stdin-channels", "0")
    assert code == 2 and out == "" and err.strip().splitlines() == ["edge-run: error: --stdin-channels 0: give a number of "
                                                                   "channels from 1 to 64"]


def _ogg(tmp_path, seconds=20.0) -> bytes:
    path = tmp_path / "whole.ogg"
    sf.write(path, click_track(seconds, seed=23)[0], SR, format="OGG")
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["random bytes appended", "cut short"])
def test_a_damaged_ogg_is_counted_with_a_warning_saying_where(model, tmp_path, damage):
    whole = _ogg(tmp_path)
    half = whole[: len(whole) // 2]
    if damage == "random bytes appended":
        half += np.random.default_rng(0).integers(0, 256, len(whole) // 2, dtype=np.uint8).tobytes()
    path = tmp_path / "damaged.ogg"
    path.write_bytes(half)
    code, out, err = invoke(path, "--model", model, "--json")
    assert code == 0 and not errors(err)
    summary = summary_of(out)
    (warning,) = warnings_(err)
    assert 5.0 < summary["audio_s"] < 15.0
    assert f"{path}: the file is damaged after {summary['audio_s']:.1f} s" in warning
    assert summary["warnings"] == [warning.removeprefix("edge-run: warning: ")]
    assert path.read_bytes() == half
    code, out, err = _stdin_run(model, half)  # the same file on stdin
    assert code == 0 and "stdin: the file is damaged after" in err


def test_a_whole_ogg_has_no_warning(model, tmp_path):
    path = tmp_path / "whole.ogg"
    path.write_bytes(_ogg(tmp_path))
    code, out, err = invoke(path, "--model", model, "--json")
    assert code == 0 and warnings_(err) == [] and summary_of(out)["warnings"] == []


def test_m4a_is_refused_with_the_ffmpeg_line(model, tmp_path):
    m4a = tmp_path / "run 1.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isommp42" + bytes(200))  # an MP4 file's first box
    before = snapshot(tmp_path)
    code, out, err = invoke(m4a, "--model", model, "--log", tmp_path / "run.csv")
    (line,) = errors(err)
    assert code == 1 and out == "" and "MP4/M4A" in line and "ffmpeg -i 'run 1.m4a' 'run 1.wav'" in line
    assert snapshot(tmp_path) == before
    code, out, err = _stdin_run(model, m4a.read_bytes())
    assert code == 1 and out == "" and "MP4/M4A" in err and "ffmpeg" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_file_is_read_like_stdin(model, wav, tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    data = wav.read_bytes()

    def feed():
        with open(fifo, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    r = subprocess.run([sys.executable, "-m", "edge.cli", str(fifo), "--model", str(model), "--json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    writer.join(timeout=10)
    assert r.returncode == 0, r.stderr
    assert "Seek" not in r.stderr and "Traceback" not in r.stderr
    summary = summary_of(r.stdout)
    assert summary["source"] == f"{fifo} (WAV, 16000 Hz, 1 ch)" and summary["audio_s"] == 9.0
    assert abs(summary["steps"] - offline(model, load_audio(wav))) <= TOL


# --------------------------------------------------------------------------- outputs a runner keeps


def test_record_is_16_bit_pcm_and_bit_identical_to_16_bit_input(model, wav, tmp_path):
    rec = tmp_path / "heard.wav"
    code, out, err = invoke(wav, "--model", model, "--json", "--record", rec)
    assert code == 0, err
    assert sf.info(rec).subtype == "PCM_16" and rec.stat().st_size == 44 + 2 * 9 * SR
    np.testing.assert_array_equal(sf.read(rec, dtype="int16")[0], sf.read(wav, dtype="int16")[0])
    assert abs(summary_of(out)["steps"] - offline(model, load_audio(rec))) <= TOL


def test_appended_logs_mark_each_run_and_its_source(model, wav, tmp_path):
    log = tmp_path / "runs.csv"
    other = tmp_path / "other.wav"
    sf.write(other, click_track(6.0, seed=24)[0], SR, subtype="PCM_16")
    assert invoke(wav, "--model", model, "--json", "--log", log)[0] == 0
    first = log.read_bytes()
    assert invoke(other, "--model", model, "--json", "--log", log, "--append")[0] == 0
    assert log.read_bytes().startswith(first)  # the earlier rows are untouched
    rows = log_rows(log)
    runs = [(r["run"], r["source"]) for r in rows]
    assert sorted(set(runs)) == [("1", "run.wav (16000 Hz, 1 ch, 9.0 s)"), ("2", "other.wav (16000 Hz, 1 ch, 6.0 s)")]
    assert runs == sorted(runs)  # one run after the other
    assert float([r for r in rows if r["run"] == "2"][0]["t"]) < float(rows[0]["t"]) + 1  # time starts again


def test_a_log_created_without_rows_is_removed(tmp_path):
    log = RunLog(tmp_path / "run.csv", LOG_COLUMNS, "nothing")
    assert (tmp_path / "run.csv").read_bytes() == (",".join(LOG_COLUMNS) + "\r\n").encode()
    log.close()
    assert not (tmp_path / "run.csv").exists()


# --------------------------------------------------------------------------- inputs that are no run


def _counted(model, tmp_path, audio, *args):
    path = tmp_path / "input.wav"
    sf.write(path, audio, SR, subtype="PCM_16")
    before = path.read_bytes()
    code, out, err = invoke(path, "--model", model, "--json", *args)
    assert code == 0 and not errors(err), err
    code, view, _ = invoke(path, "--model", model, *args)  # the runner's view shows it too
    assert code == 0
    assert path.read_bytes() == before
    return summary_of(out), view


def test_ten_minutes_of_digital_silence_say_no_running_heard(model, tmp_path):
    summary, view = _counted(model, tmp_path, np.zeros(600 * SR, np.float32))
    assert summary["audio_s"] == 600.0
    (notice,) = summary["notices"]
    assert notice.startswith("no running heard: the input is silent (digital silence)")
    assert "notice" in view and "no running heard" in view


@pytest.mark.parametrize("kind,expect", [
    ("DC", "no running heard: the input is a constant (DC) level"),
    ("440-Hz tone", "the input is a steady tone (strongest at 440 Hz)"),
    ("mains hum", "the input is a steady tone (strongest at 50 Hz)"),
    ("square wave", "the input is a steady tone (strongest at 100 Hz)"),
])
def test_a_steady_tone_or_dc_is_named(model, tmp_path, kind, expect):
    t = np.arange(30 * SR) / SR
    audio = {
        "DC": np.full(len(t), 0.25),
        "440-Hz tone": 0.3 * np.sin(2 * np.pi * 440 * t),
        "mains hum": 0.3 * np.sin(2 * np.pi * 50 * t) + 0.1 * np.sin(2 * np.pi * 150 * t),
        "square wave": 0.3 * np.sign(np.sin(2 * np.pi * 100 * t + 0.1)),
    }[kind].astype(np.float32)
    summary, view = _counted(model, tmp_path, audio)
    (notice,) = summary["notices"]
    assert notice.startswith(expect), notice
    assert "notice" in view


def test_a_run_has_no_notice(model, tmp_path):
    summary, view = _counted(model, tmp_path, click_track(30.0, seed=25)[0])
    assert summary["steps"] > 30 and summary["notices"] == [] and "notice" not in view


def test_input_check_is_blocking_independent():
    """The notices do not depend on how the audio is cut into blocks."""
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(25 * SR) / SR)).astype(np.float32)
    results = []
    for block in (800, 1600, 32000, 25 * SR):
        check = InputCheck()
        for i in range(0, len(x), block):
            check.observe(x[i : i + block])
        results.append((check.notices(0), round(check.level_dbfs, 3)))
    assert all(r == results[0] for r in results) and results[0][0]


@pytest.mark.parametrize("what", ["the bundled sample run", "white noise", "brown noise"])
def test_real_runs_and_noise_are_not_called_a_tone(what):
    rng = np.random.default_rng(26)
    if what == "the bundled sample run":
        path = ROOT / "edge" / "assets" / "sample_run.wav"
        if not path.exists():
            pytest.skip("no bundled sample run")
        x = load_audio(path)
    elif what == "white noise":
        x = (0.1 * rng.standard_normal(30 * SR)).astype(np.float32)
    else:
        x = np.cumsum(rng.standard_normal(30 * SR)).astype(np.float32) * 1e-3
        x -= x.mean()
    check = InputCheck()
    for i in range(0, len(x), 2 * SR):
        check.observe(x[i : i + 2 * SR])
    assert check.tone_hz() is None and check.notices(steps=100) == []


# --------------------------------------------------------------------------- stdout that goes away


def _long_wav(tmp_path) -> Path:
    path = tmp_path / "long.wav"
    sf.write(path, click_track(60.0, seed=27)[0], SR, subtype="PCM_16")
    return path


def test_a_closed_stdout_is_refused_before_counting(model, wav, tmp_path):
    log = tmp_path / "run.csv"
    before = snapshot(tmp_path)
    r = subprocess.run([sys.executable, "-m", "edge.cli", str(wav), "--model", str(model), "--json", "--log", str(log)],
                       cwd=ROOT, capture_output=False, stderr=subprocess.PIPE, text=True, timeout=120,
                       preexec_fn=lambda: os.close(1))  # started as `edge-run ... >&-`
    assert r.returncode == 2
    assert errors(r.stderr) == r.stderr.strip().splitlines() == [
        "edge-run: error: stdout is closed; edge-run writes its summary there: redirect it to a file or /dev/null"]
    assert snapshot(tmp_path) == before  # no header-only log


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("view", [["--json"], []])
def test_a_full_stdout_says_what_was_counted_and_the_log_stays_whole(model, tmp_path, view):
    audio, log = _long_wav(tmp_path), tmp_path / "run.csv"
    before = audio.read_bytes()
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "edge.cli", str(audio), "--model", str(model), "--log", str(log), *view],
                           cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 1
    (line,) = errors(r.stderr)
    assert r.stderr.strip().splitlines() == [line]
    assert line.startswith("edge-run: error: stdout: cannot write (No space left on device); ") and " steps counted in " in line
    rows = log_rows(log)
    assert line.endswith(f"counted in {float(rows[-1]['t']):.1f} s of audio")  # the log holds all that was counted
    assert audio.read_bytes() == before


def test_a_pipe_closed_by_its_reader_says_what_was_counted(model, tmp_path):
    """`edge-run --json ... | head -1`: the run stops at the next hop, and says so on stderr."""
    audio, log = _long_wav(tmp_path), tmp_path / "run.csv"
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", str(audio), "--model", str(model), "--json", "--log", str(log)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        json.loads(proc.stdout.readline())  # the first hop, then the reader goes away
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1
    (line,) = errors(err)
    assert err.strip().splitlines() == [line] and line.startswith("edge-run: error: stdout: cannot write (Broken pipe); ")
    rows = log_rows(log)
    assert 1 <= len(rows) and line.endswith(f"counted in {float(rows[-1]['t']):.1f} s of audio")


def test_sigterm_flushes_the_log_and_prints_the_summary(model, tmp_path):
    audio, log = _long_wav(tmp_path), tmp_path / "run.csv"
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", str(audio), "--model", str(model), "--json", "--realtime",
                             "--log", str(log)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        hops = [json.loads(proc.stdout.readline()) for _ in range(2)]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and not errors(err), err
    summary = summary_of(out)
    assert summary["interrupted"] is True and 1.0 < summary["audio_s"] < 60.0
    rows = log_rows(log)
    assert len(rows) == len(hops) + len(out.strip().splitlines()) - 1  # every hop printed is in the log
    assert float(rows[-1]["steps"]) == summary["steps"]


# --------------------------------------------------------------------------- the model and its card


def _card_damaged(path: Path, how: str) -> None:
    card = Path(str(path) + ".card.json")
    if how == "binary":
        card.write_bytes(bytes(range(256)))
    elif how == "a folder":
        card.unlink()
        card.mkdir()
    elif how == "unreadable":
        card.chmod(0)
    else:  # the counter's parameters
        data = json.loads(card.read_text())
        data["counter"] = {"threshold 1.5": {"threshold": 1.5}, "an unknown key": {"thresold": 0.3},
                           "NaN": {"lag_s": float("nan")}}[how]
        card.write_text(json.dumps(data))


@pytest.mark.parametrize("how,expect", [
    ("binary", "malformed model card ('utf-8' codec can't decode"),
    ("a folder", "cannot read the model card (Is a directory)"),
    pytest.param("unreadable", "cannot read the model card (Permission denied)",
                 marks=pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")),
    ("threshold 1.5", "bad counter: counter threshold 1.5 must be a probability in (0, 1)"),
    ("an unknown key", "bad counter: unknown counter parameters ['thresold']"),
    ("NaN", "bad counter: counter lag_s nan must be a number"),
])
def test_a_card_that_cannot_be_read_or_holds_a_bad_counter_is_one_line(model, wav, tmp_path, how, expect):
    copy = copy_artifact(Path(model), tmp_path / "model dir")  # a path with a space too
    _card_damaged(copy, how)
    before = snapshot(tmp_path)
    code, out, err = invoke(wav, "--model", copy, "--log", tmp_path / "run.csv")
    assert code == 1 and out == ""
    (line,) = errors(err)
    assert err.strip().splitlines() == [line] and expect in line and copy.name in line
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_model_is_one_line(model, wav, tmp_path):
    copy = copy_artifact(Path(model), tmp_path / "m")
    copy.chmod(0)
    code, out, err = invoke(wav, "--model", copy)
    assert code == 1 and errors(err) == [f"edge-run: error: {copy}: cannot read the model (Permission denied)"]


@pytest.mark.parametrize("name", ["student_float.pt", "run.wav"])
def test_a_file_that_is_no_model_says_how_to_make_one(wav, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(wav.read_bytes())
    code, out, err = invoke(wav, "--model", path)
    assert code == 1 and out == ""
    assert errors(err) == [f"edge-run: error: {path}: not a model edge-run runs (.tflite, .pte or .onnx); a checkpoint "
                           "(.pt) becomes one with `footfall export`"]


# --------------------------------------------------------------------------- more inputs a new user meets


def _odd_input(tmp_path, what: str) -> Path:
    pcm = click_track(6.0, seed=28)[0]
    if what == "a folder":
        path = tmp_path / "runs"
        path.mkdir()
    elif what == "0 bytes":
        path = tmp_path / "run.wav"
        path.write_bytes(b"")
    elif what == "inf samples":
        pcm[SR * 3] = np.inf
        path = tmp_path / "inf.wav"
        sf.write(path, pcm, SR, subtype="FLOAT")
    elif what == "OGG named .wav":
        path = tmp_path / "run.wav"
        sf.write(path, pcm, SR, format="OGG")
    else:  # one sample
        path = tmp_path / "one.wav"
        sf.write(path, pcm[:1], SR, subtype="PCM_16")
    return path


@pytest.mark.parametrize("what,code,expect", [
    ("a folder", 1, "is a folder, not an audio file"),
    ("0 bytes", 1, "unreadable audio"),
    ("inf samples", 1, "NaN/inf samples (first at input sample 48000, 3.00 s); refusing to count on them"),
    ("OGG named .wav", 0, None),
    ("one sample", 0, None),
])
def test_odd_inputs_are_counted_or_refused_in_one_line(model, tmp_path, what, code, expect):
    path = _odd_input(tmp_path, what)
    before = snapshot(tmp_path)
    got, out, err = invoke(path, "--model", model, "--json")
    assert got == code
    if expect is None:
        summary = summary_of(out)
        assert not errors(err) and summary["notices"] == []  # a sample is no DC level
        if what == "OGG named .wav":  # read by its content, not its name
            assert summary["audio_s"] == 6.0 and abs(summary["steps"] - offline(model, load_audio(path))) <= TOL
    else:
        (line,) = errors(err)
        assert err.strip().splitlines() == [line] and expect in line
    assert snapshot(tmp_path) == before
