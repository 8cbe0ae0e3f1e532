"""The runner's view of edge-run, read off a real terminal (a pseudo-terminal), and a quiet start.

The live view redraws in place with cursor movements; :func:`screen` replays the output
through a minimal terminal (cursor up, erase line, carriage return) and returns the final screen,
and :func:`frames` reads every frame that was drawn. Also its parts: the steps shown one by one
(``StepReveal`` after ``display_delay_s``), the level meter, the summary's rows.
"""

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge.backends import load_model
from edge.cli import (LEVEL_LOUD_DBFS, LEVEL_QUIET_DBFS, LevelMeter, StepReveal, display_delay_s, level_bar,
                      level_verdict, summary_rows)
from edge.counter import Alignment
from edge.golden import click_track
from edge.stream import StreamCounter
from tests.edge_fixtures import onset_artifacts

ROOT = Path(__file__).resolve().parents[1]
DEBUG_WORDS = ("inference", "alignment", "latency", "calibration", "dropped", "exact")
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def screen(raw: str) -> list[str]:
    """The screen a terminal shows after ``raw``: CSI A (up), K/2K (erase line), CR, LF; other
    escape sequences (colours, cursor visibility) are dropped."""
    lines, row, col = [""], 0, 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r|\n|[^\x1b\r\n]+", raw):
        if token == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        elif token == "\r":
            col = 0
        elif token.startswith("\x1b["):
            n = int(re.sub(r"\D", "", token[2:-1]) or 1) if token[-1] == "A" else 0
            if token[-1] == "A":
                row = max(0, row - n)
            elif token[-1] == "K":
                lines[row] = lines[row][:col] if not token.startswith("\x1b[2") else ""
        elif not token.startswith("\x1b"):
            line = lines[row].ljust(col)
            lines[row] = line[:col] + token + line[col + len(token):]
            col += len(token)
    return [line.rstrip() for line in lines]


def frames(raw: str) -> list[dict[str, str]]:
    """Every live frame drawn before the summary: ``{row label: value}`` (a frame starts with its
    "steps" row)."""
    drawn = []
    for line in ESCAPE.sub("", raw.split("edge-run summary")[0]).replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        m = re.fullmatch(r"\s*(steps|cadence|elapsed|level|exact|inference|dropped|model)(?:  (.*))?", line)
        if m and m.group(1) == "steps":
            drawn.append({})
        if m and drawn:
            drawn[-1][m.group(1)] = m.group(2) or ""
    return drawn


def output_lines(raw: str) -> list[str]:
    """The text lines written (escape sequences dropped), as a pipe would have them."""
    return ESCAPE.sub("", raw).replace("\r\n", "\n").replace("\r", "\n").split("\n")


def run_in_pty(args: list[str], timeout: float = 120.0) -> tuple[int, str]:
    """Run ``python -m edge.cli ARGS`` with stdout and stderr on a pseudo-terminal; (exit code, output)."""
    primary, secondary = pty.openpty()
    env = dict(os.environ, COLUMNS="100", LINES="40", TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", *map(str, args)], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, close_fds=True)
    os.close(secondary)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([primary], [], [], timeout)
            if not ready:
                raise TimeoutError("edge-run went quiet")
            try:
                data = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(primary)
        code = proc.wait(timeout=30)
    return code, b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def model():
    return onset_artifacts(kinds=("tflite",))["tflite"]


def test_live_view_on_a_terminal(model, tmp_path):
    wav = tmp_path / "run.wav"
    sf.write(wav, click_track(8.0, seed=2)[0], 16000, subtype="FLOAT")
    code, raw = run_in_pty([wav, "--model", model, "--realtime", "--block-ms", "50"])
    assert code == 0, raw
    assert "\x1b[" in raw  # a live view: redrawn in place
    drawn = frames(raw)
    assert len(drawn) >= 5 * 8, len(drawn)  # redrawn at least 5 times a second
    assert {"00:00", "00:07"} <= {f["elapsed"] for f in drawn}, drawn[-1]  # mm:ss
    for f in drawn:
        assert re.fullmatch(r"\d+", f["steps"]), f  # a whole number
        assert re.fullmatch(r"[█░]+\|[█░]+\|[█░]+ -?\d+ dBFS(  too (quiet|loud))?", f["level"]), f
    # the cadence was blank at first (too little audio to say), then a number
    cadences = [f["cadence"] for f in drawn]
    assert cadences[0] == "" and any(re.fullmatch(r"\d+ spm", c) for c in cadences), cadences
    # the count rises one step at a time (not a window's batch at once), never past the final count
    shown = [int(f["steps"]) for f in drawn]
    rises = [b - a for a, b in zip(shown, shown[1:]) if b != a]
    assert all(r > 0 for r in rises) and len(rises) >= 8 and rises.count(1) >= 0.8 * len(rises), shown
    # the summary takes the frame's place: the screen holds the summary alone, with the exact count
    lines = screen(raw)
    text = "\n".join(lines)
    assert [line for line in lines if line][0].startswith("edge-run summary"), text
    steps = re.search(r"^\s*steps\s+(\d+)$", text, re.M)
    assert steps and int(steps.group(1)) >= max(shown) and int(steps.group(1)) > 5, text
    for row in ("duration", "active time", "mean cadence", "peak cadence"):
        assert re.search(rf"^\s*{row}\s+\S", text, re.M), (row, text)
    assert not re.search(r"^\s*(cadence|elapsed|level)\b", text, re.M), text  # one mean and one peak cadence only
    assert not any(word in text for word in DEBUG_WORDS), text  # no engine figures without --verbose
    assert not [line for line in output_lines(raw) if line.endswith(" ")]  # frames and summary alike


def test_silence_reads_no_steps_and_verbose_adds_the_engine(model, tmp_path):
    wav = tmp_path / "quiet.wav"
    rng = np.random.default_rng(0)
    sf.write(wav, (rng.standard_normal(6 * 16000) * 1e-4).astype(np.float32), 16000, subtype="FLOAT")
    code, raw = run_in_pty([wav, "--model", model, "--verbose", "--realtime"])
    assert code == 0, raw
    last = frames(raw)[-1]
    assert last["steps"] == "0" and last["cadence"] == "no steps" and last["level"].endswith("too quiet"), last
    text = "\n".join(screen(raw))
    assert re.search(r"^\s*steps\s+0$", text, re.M) and re.search(r"^\s*mean cadence\s+no steps$", text, re.M), text
    assert re.search(r"^\s*active time\s+00:00$", text, re.M) and "peak cadence" not in text and "—" not in text, text
    assert all(word in text for word in ("inference", "alignment", "exact count")), text
    assert "{" not in text and "xrun" not in text  # --verbose speaks in words, not JSON


@pytest.mark.parametrize("kind", ["tflite", "pte"])
def test_start_up_is_quiet(kind, tmp_path):
    """Nothing on stderr a user cannot act on (LiteRT's delegate line, torchao's .so notes, cpuinfo)."""
    if kind == "pte":
        pytest.importorskip("executorch")
    art = onset_artifacts(kinds=(kind,))[kind]
    wav = tmp_path / "run.wav"
    sf.write(wav, click_track(3.0, seed=2)[0], 16000)
    r = subprocess.run([sys.executable, "-m", "edge.cli", str(wav), "--model", str(art), "--json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_seconds_header_and_a_short_run_on_a_terminal(model, tmp_path):
    """--seconds: the header says what is counted; a run too short for a peak cadence shows the
    mean alone (no lonely dash)."""
    wav = tmp_path / "run.wav"
    sf.write(wav, click_track(20.0, seed=4)[0], 16000, subtype="FLOAT")
    code, raw = run_in_pty([wav, "--model", model, "--seconds", "4"])
    assert code == 0, raw
    lines = [line for line in screen(raw) if line]
    assert lines[0] == "edge-run summary  run.wav (16000 Hz, 1 ch, first 4 s of 20.0 s)", lines
    assert "—" not in "\n".join(lines) and re.search(r"^mean cadence  \d+ spm$", "\n".join(lines), re.M), lines


# --------------------------------------------------------------------------- the parts


def test_display_delay_is_the_longest_wait_for_a_window():
    """Once a run is counted, every step is counted within display_delay_s of landing, and the bound
    is tight (within 100 ms) on each schedule: the default one, a low-latency one, a long hop."""
    model = onset_artifacts(kinds=("onnx",))["onnx"]
    backend, card = load_model(model)
    params = card.counter_params()
    for align in (card.alignment(), Alignment(card.window_frames, 28, 4, 12), Alignment(card.window_frames, 100, 4)):
        delay = display_delay_s(align, params)
        waits = []
        for seed in range(3):
            engine = StreamCounter(backend, card, align=align)
            pcm = click_track(20.0, seed=seed, spm=150 + 20 * seed)[0]
            run = []
            for i in range(0, len(pcm), 800):
                for u in engine.push(pcm[i : i + 800]):
                    run += [u.t - t for t in u.events]
            waits += run[4:]  # a run's first steps may wait for the run to be confirmed
        assert max(waits) <= delay and max(waits) > delay - 0.1, (align, delay, max(waits))


def test_steps_are_shown_one_by_one_at_their_time():
    reveal = StepReveal(delay_s=1.5, spacing_s=0.25)
    steps = [0.3 + 0.35 * i for i in range(12)]  # 171 spm
    shown_at = {}
    for k in range(100):  # a frame every 50 ms of audio
        clock = 2.2 + 0.05 * k
        if k == 0:
            reveal.add(steps[:4], clock)  # a train's first 4 steps, counted late: due already
        if k == 20:
            reveal.add(steps[4:10], clock)  # a window's batch of 6, on time
        before = reveal.shown
        if reveal.advance(clock) != before:
            assert reveal.shown == before + 1, clock  # never two at once
            shown_at[reveal.shown] = clock
    assert reveal.shown == 10  # only what was counted
    assert np.diff([shown_at[n] for n in range(1, 5)]) == pytest.approx([0.25] * 3)  # late ones: one by one
    for n in range(5, 11):  # the rest at their own rhythm, the delay after they landed
        assert shown_at[n] == pytest.approx(steps[n - 1] + 1.5, abs=0.05 + 1e-9)


def test_level_meter_is_steady_and_marks_the_good_range():
    """Block levels swinging 24 dB at a runner's rhythm move the meter by a few dB; a new level is
    reached within a second going up and more slowly going down."""
    meter, shown = LevelMeter(), []
    for k in range(200):  # 50-ms blocks: a step's block every 7th (0.35 s)
        shown.append(meter.update(-36.0 if k % 7 == 0 else -60.0, 0.05))
    settled = shown[60:]
    assert max(settled) - min(settled) < 6.0
    meter = LevelMeter()
    meter.update(-60.0, 0.05)
    for _ in range(20):
        up = meter.update(-30.0, 0.05)
    assert up > -32.0  # 1 s after a rise
    for _ in range(6):
        down = meter.update(-60.0, 0.05)
    assert down > -40.0  # 0.3 s after a fall it still reads near the level
    assert level_verdict(LEVEL_QUIET_DBFS - 1) == "too quiet" and level_verdict(LEVEL_LOUD_DBFS + 1) == "too loud"
    assert level_verdict(-30.0) == ""
    bars = [level_bar(db) for db in (-120.0, -50.0, -30.0, -10.0, 0.0)]
    assert len({len(b) for b in bars}) == 1 and len({b.index("|") for b in bars}) == 1  # the marks stay put
    assert [b.count("█") for b in bars] == sorted(b.count("█") for b in bars)


def test_summary_rows_show_one_mean_and_one_peak_cadence():
    base = {"steps": 14.0, "audio_s": 5.0, "active_s": 4.0, "mean_cadence_spm": 168.2, "peak_cadence_spm": 171.0}
    assert summary_rows(base)[3:] == [("mean cadence", "168 spm"), ("peak cadence", "171 spm")]
    short = summary_rows(base | {"peak_cadence_spm": None})
    assert [k for k, _ in short if "cadence" in k] == ["mean cadence"]
    none = summary_rows(base | {"steps": 0.0, "mean_cadence_spm": None, "peak_cadence_spm": None})
    assert ("mean cadence", "no steps") in none and not any("—" in v for _, v in none)


def test_readme_gives_the_bundled_models_display_delay_and_the_good_level():
    from edge.card import load_card
    from edge.cli import bundled_model

    artifact = bundled_model()
    if artifact is None:
        pytest.skip("no bundled model yet (make model)")
    card = load_card(artifact)
    default, low = (display_delay_s(card.alignment(low_latency=fast), card.counter_params()) for fast in (False, True))
    readme = " ".join((ROOT / "README.md").read_text().split())
    if card.streaming:  # one schedule
        assert f"{default:.2f} s with the bundled streaming model" in readme
    else:
        assert f"{default:.1f} s on the bundled model's default schedule, {low:.1f} s with `--low-latency`" in readme
    assert f"({LEVEL_QUIET_DBFS:.0f} to {LEVEL_LOUD_DBFS:.0f} dBFS)" in readme
