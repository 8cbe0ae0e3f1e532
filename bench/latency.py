"""Per-hop latency, real-time factor and batch throughput.

Per hop (the definition every number in the report uses): one ``StreamCounter.push`` of one hop of
new audio (``hop_frames * 160`` samples) into a stream already a window long. That is the
incremental front end for the hop's samples, the ring-buffer write and read, **one model
invocation on one window** and the counter's commit -- all the work a phone does per hop. For the
reference teacher it is the same push with the teacher's own window (5 s) in its ring, i.e. the
teacher run on its own window once per hop. ``model_ms`` is the model invocation alone (CUDA
events for a CUDA teacher; ``perf_counter`` otherwise).

RTF = per-hop time / hop duration (p50 unless said otherwise): the fraction of one core-second
(or of the given threads) spent per second of audio.

The subjects are timed **interleaved**: after a warm-up, rounds of ``block`` hops go to each
subject in turn (the order rotating every round), with a short pause between blocks so that
spinning worker threads of the previous runtime go idle. Load changes on a shared machine then
hit every subject alike, which is what makes the ratios against the reference meaningful even
when the absolute numbers are not.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from edge.frontend import FRAMES_PER_SECOND, HOP_LENGTH
from edge.stream import StreamCounter

PERCENTILES = (50, 90, 99)
BLOCK_GAP_S = 0.005  # pause between blocks: lets OpenMP / ORT worker threads stop spinning


def numpy_blas_single_thread():
    """A context limiting numpy's own OpenBLAS to one thread (the models' runtimes keep theirs).

    The front end's mel projection is a small matrix product; with numpy's OpenBLAS on its
    default of one thread per core, on a busy 2-core machine it took 44-60 ms per hop instead of
    0.3 ms (threads spinning against the load). A phone runs the front end on one audio thread,
    so the bench does too. Returns ``(context, note)``; without ``threadpoolctl`` the context does
    nothing and the note says so.
    """
    import contextlib

    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return contextlib.nullcontext(), "threadpoolctl missing: numpy's BLAS threads not limited (the front end may be slow)"
    # numpy's wheel ships its BLAS in numpy.libs/; torch's BLAS and OpenMP pools are left alone
    prefixes = {i["prefix"]: 1 for i in threadpool_info() if i.get("user_api") == "blas" and "numpy" in i["filepath"]}
    if not prefixes:
        return contextlib.nullcontext(), "numpy's BLAS not found by threadpoolctl: its threads not limited"
    return threadpool_limits(limits=prefixes), f"numpy's BLAS ({', '.join(prefixes)}) limited to 1 thread: the front end runs on one thread, as on a phone"


@dataclass
class Timing:
    """Per-hop times of one subject at one thread count (milliseconds, in run order)."""

    key: str
    threads: int
    hop_s: float
    hop_ms: np.ndarray
    model_ms: np.ndarray
    device: str = "cpu"

    def percentiles(self, which: str = "hop") -> dict[str, float]:
        x = self.hop_ms if which == "hop" else self.model_ms
        return {f"p{q}": float(np.percentile(x, q)) for q in PERCENTILES} | {"mean": float(x.mean()), "min": float(x.min()), "max": float(x.max())}

    @property
    def p50(self) -> float:
        return float(np.percentile(self.hop_ms, 50))

    @property
    def rtf(self) -> float:
        """Real-time factor of the median hop."""
        return self.p50 / 1e3 / self.hop_s

    def summary(self) -> dict:
        hop, model = self.percentiles("hop"), self.percentiles("model")
        return {
            "key": self.key, "threads": self.threads, "device": self.device, "runs": int(len(self.hop_ms)),
            "hop_ms": {k: round(v, 4) for k, v in hop.items()},
            "model_ms": {k: round(v, 4) for k, v in model.items()},
            "frontend_ms_p50": round(float(np.percentile(self.hop_ms - self.model_ms, 50)), 4),
            "rtf": round(self.rtf, 6),
            "rtf_p99": round(hop["p99"] / 1e3 / self.hop_s, 6),
        }


class HopRunner:
    """A warm stream for one subject: every :meth:`hop` pushes one hop of audio and runs one window.

    ``audio`` (16-kHz mono float32) is cycled; the stream is first filled with one window of it,
    so that each hop-sized push completes exactly one window (``Alignment.window_end``).
    """

    def __init__(self, key: str, backend, card, audio: np.ndarray, device: str = "cpu") -> None:
        self.key, self.backend, self.device = key, backend, device
        self.counter = StreamCounter(backend, card)
        self.block = card.hop_frames * HOP_LENGTH
        self.hop_s = card.hop_frames / FRAMES_PER_SECOND
        fill = card.window_frames * HOP_LENGTH
        reps = math.ceil((fill + 4 * self.block) / max(len(audio), 1)) + 1
        self.audio = np.ascontiguousarray(np.tile(np.asarray(audio, np.float32), reps) if reps > 1 else audio, np.float32)
        self.pos = 0
        self._push(fill)

    def _push(self, n: int):
        end = self.pos + n
        if end > len(self.audio):  # wrap around: the stream goes on with the start of the audio
            self.pos, end = 0, n
        updates = self.counter.push(self.audio[self.pos : end])
        self.pos = end
        return updates

    def hop(self) -> tuple[float, float]:
        """One hop -> (whole push ms, model invocation ms)."""
        t0 = time.perf_counter()
        updates = self._push(self.block)
        hop_ms = (time.perf_counter() - t0) * 1e3
        if len(updates) != 1:
            raise RuntimeError(f"{self.key}: a hop ran {len(updates)} windows, expected 1 (stream misaligned)")
        event_ms = getattr(self.backend, "last_event_ms", None)
        return hop_ms, (event_ms if event_ms is not None else updates[0].latency_ms)


def measure(runners: dict[str, HopRunner], runs: int, warmup: int, block: int = 10, threads: int = 1,
            gap_s: float = BLOCK_GAP_S, progress=None) -> dict[str, Timing]:
    """Time ``runs`` hops of every runner, interleaved in blocks (see the module docstring)."""
    if runs < 1 or block < 1:
        raise ValueError(f"runs and block must be >= 1, got {runs}, {block}")
    for runner in runners.values():
        for _ in range(warmup):
            runner.hop()
    keys = list(runners)
    rounds = math.ceil(runs / block)
    hop_ms = {k: [] for k in keys}
    model_ms = {k: [] for k in keys}
    for r in range(rounds):
        order = keys[r % len(keys):] + keys[: r % len(keys)]
        for key in order:
            time.sleep(gap_s)
            runner = runners[key]
            for _ in range(block):
                h, m = runner.hop()
                hop_ms[key].append(h)
                model_ms[key].append(m)
        if progress is not None:
            progress(r + 1, rounds)
    return {
        k: Timing(k, threads, runners[k].hop_s, np.asarray(hop_ms[k]), np.asarray(model_ms[k]), runners[k].device)
        for k in keys
    }


@dataclass
class Throughput:
    batch: int
    ms_per_batch: float  # median
    windows_per_s: float
    streams: float  # real-time streams served: windows/s x hop duration
    error: str = ""
    timer: str = "perf_counter"

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def batch_throughput(model, windows: np.ndarray, batches=(1, 32, 256), device: str = "cpu", hop_s: float = 0.48,
                     iters: int = 10, warmup: int = 3) -> list[Throughput]:
    """Windows per second of ``model`` at each batch size (windows cycled from ``windows`` (N, 1, 64, W)).

    On CUDA every batch is timed with CUDA events around the forward pass (inputs already on the
    device) and synchronised; out-of-memory is reported for that batch size, not raised.
    """
    import torch

    dev = torch.device(device)
    model = model.to(dev).eval()
    out = []
    for b in batches:
        idx = np.arange(b) % len(windows)
        x = torch.from_numpy(np.ascontiguousarray(windows[idx], np.float32)).to(dev)
        times = []
        try:
            with torch.inference_mode():
                for i in range(warmup + iters):
                    if dev.type == "cuda":
                        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                        start.record()
                        model(x)
                        end.record()
                        end.synchronize()
                        ms = float(start.elapsed_time(end))
                    else:
                        t0 = time.perf_counter()
                        model(x)
                        ms = (time.perf_counter() - t0) * 1e3
                    if i >= warmup:
                        times.append(ms)
        except torch.OutOfMemoryError as e:
            torch.cuda.empty_cache()
            out.append(Throughput(b, math.nan, math.nan, math.nan, error=f"out of memory ({str(e).splitlines()[0][:80]})"))
            continue
        med = float(np.median(times))
        wps = b / (med / 1e3)
        out.append(Throughput(b, med, wps, wps * hop_s, timer="cuda events" if dev.type == "cuda" else "perf_counter"))
        del x
    return out
