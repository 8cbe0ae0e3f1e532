"""The runner's view of edge-run, read off a real terminal (a pseudo-terminal), and a quiet start.

The live view redraws in place with cursor movements; :func:`screen` replays the output
through a minimal terminal (cursor up, erase line, carriage return) and returns the final screen.
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

from edge.golden import click_track
from tests.edge_fixtures import onset_artifacts

ROOT = Path(__file__).resolve().parents[1]
DEBUG_WORDS = ("inference", "alignment", "latency", "calibration", "dropped", "exact")


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
    lines = screen(raw)
    text = "\n".join(lines)
    steps = re.search(r"^\s*steps\s+(\d+)\s*$", text, re.M)
    assert steps and int(steps.group(1)) > 5, text  # a whole number
    assert re.search(r"^\s*cadence\s+\d+ spm\s*$", text, re.M), text
    assert re.search(r"^\s*elapsed\s+00:08\s*$", text, re.M), text  # mm:ss
    assert re.search(r"^\s*level\s+[█░]+\s+-?\d+ dBFS\s*$", text, re.M), text
    for row in ("duration", "active time", "mean cadence", "peak cadence"):
        assert re.search(rf"^\s*{row}\s+\S", text, re.M), (row, text)
    assert not any(word in text for word in DEBUG_WORDS), text  # no engine figures without --verbose
    # while it ran, the cadence was blank at first (too little audio to say), then a number
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    blank, shown = re.search(r"cadence *\r\n", frames), re.search(r"cadence +\d+ spm *\r\n", frames)
    assert blank and shown and blank.start() < shown.start(), "the cadence was not blank at the start"


def test_silence_reads_no_steps_and_verbose_adds_the_engine(model, tmp_path):
    wav = tmp_path / "quiet.wav"
    rng = np.random.default_rng(0)
    sf.write(wav, (rng.standard_normal(6 * 16000) * 1e-4).astype(np.float32), 16000, subtype="FLOAT")
    code, raw = run_in_pty([wav, "--model", model, "--verbose"])
    assert code == 0, raw
    text = "\n".join(screen(raw))
    assert re.search(r"^\s*steps\s+0\s*$", text, re.M) and re.search(r"^\s*cadence\s+no steps\s*$", text, re.M), text
    assert re.search(r"^\s*mean cadence\s+—\s*$", text, re.M) and re.search(r"^\s*active time\s+00:00\s*$", text, re.M), text
    assert all(word in text for word in ("inference", "alignment", "exact count")), text


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
