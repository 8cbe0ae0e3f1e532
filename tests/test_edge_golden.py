"""Golden vectors for the Java core: plain files that read back to what the Python runtime does."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.backends import load_model
from edge.frontend import log_mel, mel_filters
from edge.golden import OnsetBackend, click_track, onset_card, write_golden
from edge.stream import StreamCounter
from tests.edge_fixtures import onset_artifacts

ROOT = Path(__file__).resolve().parents[1]


def read_f32(folder: Path, name: str, index: dict) -> np.ndarray:
    meta = index["files"][name]
    assert meta["dtype"] == "float32" and meta["byte_order"] == "little" and meta["order"] == "C"
    return np.fromfile(folder / name, dtype="<f4").reshape(meta["shape"])


@pytest.mark.parametrize("seconds,window,hop", [(6.0, 200, 48), (1.337, 200, 48), (11.37, 128, 32)])
def test_golden_files_match_the_runtime(tmp_path, seconds, window, hop):
    card = onset_card(window, hop)
    index = write_golden(tmp_path, card=card, seconds=seconds, seed=1)
    assert json.loads((tmp_path / "index.json").read_text()) == json.loads(json.dumps(index))
    pcm = read_f32(tmp_path, "pcm.f32", index)
    np.testing.assert_array_equal(pcm, click_track(seconds, seed=1)[0])
    frames = read_f32(tmp_path, "logmel.f32", index)
    np.testing.assert_allclose(frames, log_mel(pcm), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(read_f32(tmp_path, "mel_filters.f32", index), mel_filters())
    inputs = read_f32(tmp_path, "window_input.f32", index)
    density = read_f32(tmp_path, "window_density.f32", index)
    committed = read_f32(tmp_path, "committed_density.f32", index)
    ups = index["updates"]
    assert inputs.shape == (len(ups), 64, window) and density.shape == (len(ups), window // 4)
    assert committed.shape == (len(pcm) // 160 // 4,)
    parts = [density[i, u["lo"] : u["hi"]] for i, u in enumerate(ups)]
    np.testing.assert_array_equal(np.concatenate(parts), committed)
    assert index["total_steps"] == pytest.approx(committed.astype(np.float64).sum(), abs=1e-9)

    # the streaming engine on the same PCM gives the same hops, counts and events (its frames,
    # computed block by block, equal the golden offline ones to float32 rounding: 1e-7 steps)
    sc = StreamCounter(OnsetBackend(window), card)
    streamed = []
    for i in range(0, len(pcm), 999):
        streamed += sc.push(pcm[i : i + 999])
    streamed += sc.finish()
    assert [u.window for u in streamed] == [u["window"] for u in ups]
    for s, g in zip(streamed, ups):
        assert s.steps == pytest.approx(g["steps"], abs=1e-6) and s.t_final == g["t_final"] and s.t == g["t"]
        assert s.tail == g["tail"]
        np.testing.assert_allclose(s.events, g["events"])
        start, n = g["start_frame"], min(window, frames.shape[1] - g["start_frame"])
        np.testing.assert_array_equal(inputs[g["window"], :, :n], frames[:, start : start + n])
        assert (inputs[g["window"], :, n:] == index["alignment"]["pad_log_mel"]).all()
    assert sc.counter.n_events == index["n_events"]

    rows = list(csv.DictReader(open(tmp_path / "updates.csv")))
    assert len(rows) == len(ups) and float(rows[-1]["steps"]) == ups[-1]["steps"]


def test_golden_cli_with_a_model(tmp_path):
    model = onset_artifacts(kinds=("onnx",))["onnx"]
    r = subprocess.run([sys.executable, "-m", "edge.golden", str(tmp_path), "--model", str(model), "--seconds", "3"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["model"]["artifact"] == model.name and index["n_samples"] == 48000
    backend, card = load_model(model)
    density = read_f32(tmp_path, "window_density.f32", index)
    inputs = read_f32(tmp_path, "window_input.f32", index)
    np.testing.assert_allclose(density[0], backend.run(inputs[0][None, None]), atol=1e-6)


def test_golden_cli_on_the_low_latency_schedule(tmp_path):
    """--low-latency writes the card's low-latency plan; a card without one is one line, exit 1."""
    model = ROOT / "edge" / "assets" / "mobilenetv2_int8.tflite"
    card = load_model(model)[1]
    r = subprocess.run([sys.executable, "-m", "edge.golden", str(tmp_path / "ll"), "--model", str(model), "--seconds", "3",
                        "--low-latency"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    al = json.loads((tmp_path / "ll" / "index.json").read_text())["alignment"]
    want = card.alignment(low_latency=True)
    assert (al["hop_frames"], al["lookahead_frames"]) == (want.hop_frames, want.lookahead_frames) != (card.hop_frames, None)
    r = subprocess.run([sys.executable, "-m", "edge.golden", str(tmp_path / "none"), "--low-latency"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "has no low-latency schedule" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "none").exists()
