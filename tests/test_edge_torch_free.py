"""edge/ never imports torch, train/ or export/: everything runs in a process where they cannot load.

Only running a ``.pte`` needs torch (ExecuTorch's Python bindings link libtorch); there it must
fail with a clear BackendError, not an ImportError from deep inside.
"""

import json
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from edge.golden import click_track
from tests.blocking import blocker
from tests.edge_fixtures import onset_artifacts

ROOT = Path(__file__).resolve().parents[1]

# edge/ must run with none of these importable
BLOCKER = blocker({"torch", "torchao", "executorch", "litert_torch", "train", "export", "tensorflow", "jax"},
                  "blocked: edge/ must not import it")

SCRIPT = BLOCKER + r"""
import json, pkgutil, importlib
import edge
names = sorted(m.name for m in pkgutil.iter_modules(edge.__path__))
for name in names:
    importlib.import_module(f"edge.{name}")
from edge.backends import BackendError, load_model
from edge.sources import FileSource
from edge.stream import StreamCounter, count_offline
from edge.audio import load_audio
counts = {}
for path in sys.argv[2:4]:
    backend, card = load_model(path)
    sc = StreamCounter(backend, card)
    for block in FileSource(sys.argv[1]):
        sc.push(block)
    sc.finish()
    counts[path] = (sc.steps, count_offline(backend, card, load_audio(sys.argv[1])).steps)
try:
    load_model(sys.argv[4])
    pte = "loaded?!"
except BackendError as e:
    pte = str(e)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "train", "export", "executorch"})
print(json.dumps({"modules": names, "counts": counts, "pte": pte, "heavy": heavy}))
"""


def test_edge_runs_without_torch(tmp_path):
    arts = onset_artifacts()
    wav = tmp_path / "run.wav"
    sf.write(wav, click_track(5.0, seed=2)[0], 16000)
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(wav), str(arts["onnx"]), str(arts["tflite_int8"]),
                        str(arts["pte"])], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"backends", "cli", "counter", "demo", "golden", "ringbuffer", "sources", "stream"} <= set(out["modules"])
    assert out["heavy"] == []
    for streamed, offline in out["counts"].values():
        assert abs(streamed - offline) <= 1e-3 and streamed > 1
    assert "needs executorch" in out["pte"] and "torch-free" in out["pte"]


def test_cli_runs_without_torch(tmp_path):
    wav = tmp_path / "run.wav"
    sf.write(wav, click_track(4.0, seed=2)[0], 16000)
    model = onset_artifacts()["tflite"]
    script = BLOCKER + "import sys\nfrom edge.cli import app\nsys.argv = ['edge-run'] + sys.argv[1:]\napp()\n"
    r = subprocess.run([sys.executable, "-c", script, str(wav), "--model", str(model), "--json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "summary" in json.loads(r.stdout.strip().splitlines()[-1])
