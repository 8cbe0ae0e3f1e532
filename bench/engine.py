"""What ``edge-run`` costs beside its network: the engine bench of one artifact (the bundled model).

Every figure is per second of audio and comes with its ratio to the network's own invocations
for the same audio, measured in the same run (absolute times on a shared machine are noise;
these ratios much less so):

- :func:`cost_split`: in one process, ``edge-run``'s loop (file source -> ``StreamCounter``)
  split into decoding, front end, network (the backend's ``run``, input quantization included)
  and glue (ring buffer, alignment, counter, Python), beside the network alone
  (``Backend.run`` on a fixed window, as many times as the loop ran it);
- :func:`whole_process`: ``edge-run FILE --json`` as a user runs it, one inference thread:
  wall time to the first count (cold start) and to the end, peak RSS, and the RSS sampled
  through the run (flat or growing);
- :func:`macs_per_audio_second`: the network's multiply-accumulates per second of audio with
  the window overlap of the schedule (a window of W frames every H frames: W / H times the
  MACs of the audio itself).

The schedule (hop, lookahead) is the card's unless given; step-to-count latency and accuracy per
schedule are :mod:`bench.schedule`'s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge.counter import Alignment
from edge.frontend import FRAMES_PER_SECOND, HOP_LENGTH, N_MELS, SAMPLE_RATE

ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class CostSplit:
    """Milliseconds per audio second (median over ``rounds``)."""

    audio_s: float
    windows: int
    decode: float
    frontend: float
    network: float
    glue: float
    total: float
    network_alone: float  # the same number of Backend.run calls on a fixed window

    @property
    def ratio(self) -> float:
        """The engine's in-process cost over its network's alone."""
        return self.total / self.network_alone

    def to_dict(self) -> dict:
        return asdict(self) | {"ratio": round(self.ratio, 3)}


def cost_split(artifact: str | Path, wav: str | Path, align: Alignment | None = None, rounds: int = 3) -> CostSplit:
    """``edge-run``'s in-process cost on ``wav``, split (module docstring); one thread."""
    from bench.latency import numpy_blas_single_thread
    from edge.backends import load_model
    from edge.cli import FILE_BLOCK_S
    from edge.sources import FileSource
    from edge.stream import StreamCounter, schedule

    backend, card = load_model(artifact, threads=1)
    align = schedule(card, align)
    block_s = max(FILE_BLOCK_S, align.hop_frames / FRAMES_PER_SECOND)  # as edge-run reads a file
    rows = []
    ctx, _ = numpy_blas_single_thread()
    with ctx:
        for _ in range(rounds + 1):  # the first round warms caches and imports, and is dropped
            t0 = time.perf_counter()
            n = sum(len(b) for b in FileSource(wav, block_s=block_s))
            decode = time.perf_counter() - t0
            engine = StreamCounter(backend, card, align=align)
            t0 = time.perf_counter()
            for block in FileSource(wav, block_s=block_s):
                engine.push(block)
            engine.finish()
            loop = time.perf_counter() - t0
            windows = engine.latency.n
            x = np.full((1, 1, N_MELS, card.window_frames), -6.0, np.float32)
            x += np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
            t0 = time.perf_counter()
            for _ in range(windows):
                backend.run(x)
            alone = time.perf_counter() - t0
            rows.append((decode, engine.frontend_ms / 1e3, engine.latency.total_ms / 1e3, loop, alone))
    audio_s = n / SAMPLE_RATE
    decode, frontend, network, loop, alone = (float(np.median(c)) * 1e3 / audio_s for c in zip(*rows[1:]))
    return CostSplit(audio_s=audio_s, windows=windows, decode=decode, frontend=frontend, network=network,
                     glue=max(0.0, loop - decode - frontend - network), total=loop, network_alone=alone)


@dataclass
class ProcessRun:
    audio_s: float
    first_count_s: float  # spawn -> first per-hop line on stdout
    wall_s: float  # spawn -> exit
    peak_rss_mb: float
    rss_mb: list[tuple[float, float]]  # (wall s, RSS MB) samples through the run
    steps: float

    @property
    def ms_per_audio_s(self) -> float:
        return self.wall_s * 1e3 / self.audio_s

    def to_dict(self) -> dict:
        return asdict(self) | {"ms_per_audio_s": round(self.ms_per_audio_s, 3)}


def _rss_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of a live process in MB, from /proc (None once it is gone)."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


def whole_process(wav: str | Path, artifact: str | Path | None = None, extra: list[str] | None = None,
                  sample_s: float = 0.05) -> ProcessRun:
    """Run ``edge-run WAV --json`` once (one inference thread, numpy on one thread) and time it."""
    import soundfile as sf

    cmd = [sys.executable, "-m", "edge.cli", str(wav), "--json", "--threads", "1"]
    cmd += ["--model", str(artifact)] if artifact else []
    cmd += extra or []
    env = os.environ | ONE_THREAD_ENV
    samples: list[tuple[float, float]] = []
    peak = [0.0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)

    def watch() -> None:
        while proc.poll() is None:
            r = _rss_mb(proc.pid)
            if r:
                samples.append((round(time.perf_counter() - t0, 3), round(r[0], 1)))
                peak[0] = max(peak[0], r[1])
            time.sleep(sample_s)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    first = proc.stdout.readline()
    first_s = time.perf_counter() - t0
    rest, err = proc.communicate()
    wall = time.perf_counter() - t0
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"edge-run exited {proc.returncode}: {err.strip().splitlines()[-1] if err.strip() else ''}")
    summary = json.loads((first + rest).strip().splitlines()[-1])["summary"]
    return ProcessRun(audio_s=sf.info(str(wav)).frames / sf.info(str(wav)).samplerate, first_count_s=first_s, wall_s=wall,
                      peak_rss_mb=peak[0], rss_mb=samples, steps=summary["steps"])


def macs_per_audio_second(card, align: Alignment) -> float:
    """Network MACs per second of audio: the card's MACs per window times windows per second."""
    per_window = card.model.get("macs_per_second", 0) * card.window_frames / FRAMES_PER_SECOND
    return per_window * FRAMES_PER_SECOND / align.hop_frames


def long_wav(src: str | Path, out: Path, seconds: float) -> Path:
    """``src`` repeated to ``seconds`` as 16-bit PCM (a long run for the whole-process figures)."""
    import soundfile as sf

    if out.exists() and sf.info(str(out)).duration >= seconds:
        return out
    audio, rate = sf.read(str(src), dtype="float32", always_2d=False)
    n = int(seconds * rate)
    out.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(str(out), "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for s in range(0, n, len(audio)):
            f.write(audio[: min(len(audio), n - s)])
    return out


def rss_growth_mb(run: ProcessRun, skip_s: float = 2.0) -> float:
    """RSS at the end minus RSS once the run has started (after ``skip_s``): flat is ~0."""
    late = [m for t, m in run.rss_mb if t >= skip_s]
    return late[-1] - late[0] if len(late) >= 2 else 0.0
