"""Peak resident memory of one subject.

:func:`measure` (the full bench): a fresh child process per subject (``python -m bench.memory``):
import the runtime, note the RSS (``runtime_mb``: the interpreter plus the runtime's libraries --
large for anything that imports torch, which a phone's C++ runtime does not), reset the peak where
Linux allows it (``/proc/self/clear_refs`` = 5), load the model, stream ``hops`` hops through it,
then read the peak (``VmHWM``). ``peak_mb`` is the whole process; ``model_mb`` = peak - runtime_mb
is what the model, its arena and the streaming buffers add.

:func:`in_process` (``--quick``): the same reset-load-stream-read in the bench process itself,
which saves a process start (seconds: torch imports) per subject; only ``model_mb`` is meaningful.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _rss_kb() -> int:
    return _status_kb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_kb() -> int:
    return _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _stream(backend, card, hops: int, threads: int) -> None:
    """Load-and-run part shared by both methods: ``hops`` hops of a click track through a warm stream."""
    import numpy as np

    from bench.latency import HopRunner
    from edge.golden import click_track

    audio = click_track((card.window_frames + card.hop_frames * (hops + 1)) / 100 + 1, seed=3)[0].astype(np.float32)
    runner = HopRunner("rss", backend, card, audio)
    for _ in range(hops):
        runner.hop()


def in_process(subject, threads: int = 1, hops: int = 5, model=None) -> dict:
    """The quick method: in this process, peak reset before loading ``subject`` (``model_mb`` only
    means something when the peak could be reset; ``runtime_mb`` is this process, not a runtime's)."""
    from bench.subjects import load_backend

    before = _rss_kb()
    reset = _reset_peak()
    backend = load_backend(subject, threads, model)
    _stream(backend, subject.stream_card(), hops, threads)
    peak = _peak_kb()
    del backend
    return {"method": "in-process", "runtime_mb": before / 1024, "peak_mb": peak / 1024,
            "model_mb": max(peak - before, 0) / 1024 if reset else None, "peak_reset": reset, "hops": hops, "threads": threads}


def child(fmt: str, path: str, window: int, hop: int, threads: int, hops: int) -> dict:
    """Runs inside the fresh process: import the runtime, note the RSS, load, stream, read the peak."""
    if fmt in ("pytorch", "pte"):
        import torch  # noqa: F401  (the .pte bindings link libtorch: it belongs to the runtime)
    if fmt == "pte":
        import executorch.runtime  # noqa: F401
    elif fmt == "tflite":
        import ai_edge_litert.interpreter  # noqa: F401
    elif fmt == "onnx":
        import onnxruntime  # noqa: F401
    from bench.latency import numpy_blas_single_thread
    from bench.subjects import Subject, load_backend

    numpy_blas_single_thread()  # as in the timing loop (the limit holds until the process ends)
    runtime_kb = _rss_kb()
    reset = _reset_peak()
    subject = Subject(key="rss", role="student", format=fmt, precision="", path=Path(path), window_frames=window, hop_frames=hop)
    if fmt != "pytorch":
        from edge.card import load_verified_card

        subject.card = load_verified_card(path)
    backend = load_backend(subject, threads)
    _stream(backend, subject.stream_card(), hops, threads)
    peak_kb = _peak_kb()
    return {"method": "fresh process", "runtime_mb": runtime_kb / 1024, "peak_mb": peak_kb / 1024,
            "model_mb": max(peak_kb - runtime_kb, 0) / 1024, "peak_reset": reset, "hops": hops, "threads": threads}


def measure(fmt: str, path: str | Path, window: int, hop: int, threads: int = 1, hops: int = 20, timeout: float = 300) -> dict:
    """Peak RSS of a fresh process running ``hops`` hops of the subject; ``{"error": ...}`` on failure."""
    cmd = [sys.executable, "-m", "bench.memory", fmt, str(path), str(window), str(hop), str(threads), str(hops)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:200]}"}
    return json.loads(lines[-1])


if __name__ == "__main__":
    fmt_, path_, window_, hop_, threads_, hops_ = sys.argv[1:7]
    print(json.dumps(child(fmt_, path_, int(window_), int(hop_), int(threads_), int(hops_))))
