"""The benchmark suite (pytest-benchmark): per-hop latency of every subject of an artifact folder.

By default it runs in quick mode -- a few rounds per benchmark -- on the tiny scenario of
:mod:`tests.bench_tiny` (built once, cached), so ``make test`` keeps it from rotting. For real numbers
point it at an export and ask for more rounds::

    FOOTFALL_BENCH_ARTIFACTS=out/export FOOTFALL_BENCH_TEACHER=teacher.pt FOOTFALL_BENCH_ROUNDS=200 \\
        .venv/bin/python -m pytest bench/test_bench.py --benchmark-columns=median,iqr,max

Each benchmark is one hop as ``bench.latency`` defines it (``StreamCounter.push`` of one hop of
audio: incremental front end + one model window + counter), so these numbers and the report's are
the same quantity; the report (``footfall bench``) additionally interleaves the subjects, which
is what its ratios rely on.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bench.latency import HopRunner, numpy_blas_single_thread
from bench.subjects import discover, load_backend
from edge.frontend import HOP_LENGTH, SAMPLE_RATE, StreamingLogMel

ROUNDS = int(os.environ.get("FOOTFALL_BENCH_ROUNDS", "5"))
WARMUP = max(1, min(10, ROUNDS // 10))
THREADS = tuple(int(t) for t in os.environ.get("FOOTFALL_BENCH_THREADS", "1,2").split(","))
# subjects by kind: the two PyTorch ones by key, the artifacts by "format precision"
KINDS = ("teacher-cpu", "student-pytorch", "pte int8", "pte fp32", "tflite int8", "tflite fp32", "onnx int8", "onnx fp32")


@pytest.fixture(scope="module", autouse=True)
def front_end_on_one_thread():
    """numpy's BLAS on one thread, as in `footfall bench` (see bench.latency.numpy_blas_single_thread)."""
    limit, _ = numpy_blas_single_thread()
    with limit:
        yield


@pytest.fixture(scope="module")
def found():
    """(Discovery, models, stream audio) of $FOOTFALL_BENCH_ARTIFACTS, else of the tiny scenario."""
    from edge.golden import click_track

    folder = os.environ.get("FOOTFALL_BENCH_ARTIFACTS")
    if folder:
        disc, models = discover(Path(folder), os.environ.get("FOOTFALL_BENCH_TEACHER"), cuda=False)
    else:
        from tests.bench_tiny import tiny_scenario

        disc, models = discover(tiny_scenario().artifacts, cuda=False)
    return disc, models, click_track(20.0, seed=2)[0].astype(np.float32)


def _runner(found, kind: str, threads: int) -> HopRunner:
    disc, models, audio = found
    subject = next((s for s in disc.subjects if kind in (s.key, f"{s.format} {s.precision}")), None)
    if subject is None:
        pytest.skip(f"no {kind} subject among the artifacts")
    backend = load_backend(subject, threads, models.get(subject.key))
    return HopRunner(subject.key, backend, subject.stream_card(), audio)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("kind", KINDS)
def test_hop(benchmark, found, kind, threads):
    runner = _runner(found, kind, threads)
    benchmark.group = f"per hop, {threads} thread(s)"
    result = benchmark.pedantic(runner.hop, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    hop_ms, model_ms = result
    assert 0 < model_ms <= hop_ms  # the model invocation is part of the hop
    assert runner.counter.windows == ROUNDS + WARMUP + 1  # + the window of the initial fill: one window per hop
    benchmark.extra_info.update({"hop_s": runner.hop_s, "window_frames": runner.counter.card.window_frames,
                                 "rtf_last": hop_ms / 1e3 / runner.hop_s})


def test_frontend_hop(benchmark, found):
    """The incremental front end alone on one hop of audio (the floor under every edge subject)."""
    disc, _, audio = found
    hop = disc.subjects[-1].hop_frames * HOP_LENGTH
    fe = StreamingLogMel()
    fe.push(audio[:hop])
    blocks = iter(np.resize(audio, (ROUNDS + WARMUP + 1) * hop).reshape(-1, hop))
    benchmark.group = "front end"
    frames = benchmark.pedantic(lambda: fe.push(next(blocks)), rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    assert frames.shape[1] == hop // HOP_LENGTH


@pytest.fixture(scope="module")
def bundled():
    """The bundled model and 10 s of its sample run (edge.cli.bundled_model, the card's schedule)."""
    import soundfile as sf

    from edge.backends import load_model
    from edge.cli import bundled_model

    path = bundled_model()
    if path is None:
        pytest.skip("no bundled model")
    backend, card = load_model(path, threads=1)
    audio, _ = sf.read(str(path.parent / "sample_run.wav"), dtype="float32")
    return backend, card, audio[: 10 * SAMPLE_RATE]


def test_bundled_engine_10s(benchmark, bundled):
    """edge-run's engine on 10 s of audio in 2-s blocks (front end, windows of the card's
    schedule, counter); compare with test_bundled_network_10s: the same windows, network alone."""
    from edge.stream import StreamCounter

    backend, card, audio = bundled

    def run():
        engine = StreamCounter(backend, card)
        for s in range(0, len(audio), 2 * SAMPLE_RATE):
            engine.push(audio[s : s + 2 * SAMPLE_RATE])
        engine.finish()
        return engine.latency.n

    benchmark.group = "bundled model, 10 s of audio"
    windows = benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    assert windows == card.alignment().n_windows(len(audio) // HOP_LENGTH) + 1  # + the tail window
    benchmark.extra_info["windows"] = windows


def test_bundled_network_10s(benchmark, bundled):
    backend, card, audio = bundled
    windows = card.alignment().n_windows(len(audio) // HOP_LENGTH) + 1
    x = np.full((1, 1, 64, card.window_frames), -6.0, np.float32)
    benchmark.group = "bundled model, 10 s of audio"
    benchmark.pedantic(lambda: [backend.run(x) for _ in range(windows)], rounds=ROUNDS, warmup_rounds=1, iterations=1)
    benchmark.extra_info["windows"] = windows
