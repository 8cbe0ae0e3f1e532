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
from edge.frontend import HOP_LENGTH, StreamingLogMel

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
