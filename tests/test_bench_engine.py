"""The engine bench (bench.engine) and the schedule choice (bench.schedule) on the bundled model,
and the step-to-count latency on a model that finds clicks (tests.edge_fixtures)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from bench import engine as E
from bench import schedule as S
from edge.backends import load_model
from edge.cli import ASSETS, bundled_model
from edge.counter import Alignment, CounterParams
from edge.frontend import SAMPLE_RATE
from edge.golden import click_track
from edge.stream import count_offline


@pytest.fixture(scope="module")
def bundled():
    path = bundled_model()
    if path is None:
        pytest.skip("no bundled model (make model)")
    return path


@pytest.fixture(scope="module")
def wav20(tmp_path_factory, bundled):
    return E.long_wav(ASSETS / "sample_run.wav", tmp_path_factory.mktemp("engine") / "run20.wav", 20.0)


def row(dataset, hop, la, mae, mean, p95):
    return S.ScheduleScore(dataset, hop, la, mae, 5.0, mean, p95, 2 * p95, 100 / hop, 3, 2.0, step_f=0.9)


def test_choose_takes_the_cheapest_fast_schedule_no_less_accurate_on_real_sound():
    rows = [row("real", 200, 20, 3.0, 1.4, 2.3), row("synthetic", 200, 20, 0.6, 1.4, 2.3),
            row("real", 28, 12, 2.9, 0.45, 0.78), row("synthetic", 28, 12, 0.9, 0.40, 0.62),
            row("real", 20, 20, 2.8, 0.48, 0.78), row("synthetic", 20, 20, 0.8, 0.44, 0.66),  # better but costlier
            row("real", 40, 12, 3.1, 0.50, 0.80), row("synthetic", 40, 12, 0.8, 0.46, 0.7),  # fast but less accurate
            row("real", 32, 12, 2.5, 0.47, 0.79), row("synthetic", 32, 12, 0.8, 0.52, 0.7)]  # slow on synthetic
    chosen, why = S.choose(rows, (200, 20))
    assert (chosen.hop_frames, chosen.lookahead_frames) == (28, 12) and "280 ms" in why and "2 schedules" in why
    fast = S.low_latency_schedule(rows, chosen, why)
    assert fast["hop_frames"] == 28 and fast["scores"]["synthetic"]["mae_5s"] == 0.9 and fast["scores"]["real"]["step_f"] == 0.9
    none, why = S.choose([r for r in rows if r.hop_frames == 200], (200, 20))
    assert none is None and "no schedule meets" in why


def test_plot_and_table(tmp_path):
    rows = [row("real", 200, 20, 3.0, 1.4, 2.3), row("real", 28, 12, 2.9, 0.45, 0.78)]
    assert S.plot(rows, tmp_path / "s.png", rows[1]).stat().st_size > 1000
    assert len(S.table(rows)) == 4 and "| real | 280 | 120 |" in S.table(rows)[3]
    assert "step F" in S.table(rows)[0] and "| 0.900 |" in S.table(rows)[3]


def check_lags(backend, card, audio, steps, exact: bool) -> None:
    """stream_run's events are the offline count's, and each matched step's lag is when its event
    can be emitted: once the committed logits (the lookahead behind the audio) are min_interval_s
    past it, at the next hop (up to a hop later), give or take the 50-ms match."""
    wait = CounterParams.from_dict(card.counter).min_interval_s
    for align in (Alignment(card.window_frames, 28, 4, 12), card.alignment()):
        events, lags = S.stream_run(backend, card, audio, align, steps)
        offline = np.asarray(count_offline(backend, card, audio, align=align).events)
        if exact:
            np.testing.assert_allclose(events, np.sort(offline))
        else:  # int8: a front-end frame computed in another block can differ in its last bit and,
            # rarely, land in the next quantization step (edge.frontend.frames_to_log_mel)
            assert abs(len(events) - len(offline)) <= 1
        lags = np.asarray(lags)
        assert len(lags) > 0.8 * len(steps)
        soonest = align.latency_s + wait - 0.05 - 0.04  # the match's tolerance and one output frame
        assert lags.min() >= soonest
        assert soonest < np.median(lags) < align.latency_s + wait + align.hop_frames / 100 + 0.1


def test_stream_run_lags_are_when_events_are_emitted():
    from tests.edge_fixtures import onset_artifacts

    backend, card = load_model(onset_artifacts(kinds=("onnx",))["onnx"])
    audio, steps = click_track(30.0, seed=7)
    check_lags(backend, card, audio.astype(np.float32), steps, exact=True)
    events, lags = S.stream_run(backend, card, audio.astype(np.float32), card.alignment(), np.zeros(0))
    assert len(events) > 70 and lags == []  # nothing to match: no lag


def test_stream_run_lags_on_the_bundled_model(bundled):
    from edge.audio import load_audio
    from train.data.recordings import load_steps

    backend, card = load_model(bundled)
    audio = load_audio(ASSETS / "sample_run.wav")[: 20 * SAMPLE_RATE]
    steps = load_steps(ASSETS / "sample_run.steps.csv")
    check_lags(backend, card, audio, steps[steps < 20.0], exact=False)


def test_cost_split_and_whole_process(bundled, wav20):
    backend, card = load_model(bundled)
    c = E.cost_split(bundled, wav20, rounds=1)
    assert c.windows == card.alignment().n_windows(round(c.audio_s * 100)) + 1
    assert min(c.decode, c.frontend, c.network, c.network_alone) > 0 and c.total >= c.network
    assert c.ratio == pytest.approx(c.total / c.network_alone)
    run = E.whole_process(wav20, bundled)
    assert run.steps == pytest.approx(count_offline(backend, card, sf.read(str(wav20), dtype="float32")[0]).steps, abs=1e-2)
    assert 0 < run.first_count_s < run.wall_s and run.peak_rss_mb > 10 and run.rss_mb
    assert E.macs_per_audio_second(card, Alignment(240, 24)) == pytest.approx(
        card.model["macs_per_second"] * 2.4 * 100 / 24)


def test_bench_engine_command(bundled, tmp_path):
    from footfall.cli import app

    res = CliRunner().invoke(app, ["bench-engine", "--minutes", "1", "--no-int8", "--out", str(tmp_path / "be")])
    assert res.exit_code in (0, 1), res.output  # 1: a goal failed on this machine; the report is written either way
    results = json.loads((tmp_path / "be" / "results.json").read_text())
    assert set(results["schedules"]) == {"default", "low-latency"} and results["machine"]["cpu_features"] is not None
    assert "## Goals" in (tmp_path / "be" / "report.md").read_text() and (tmp_path / "be" / "rss.png").exists()
    for g in results["goals"]:
        assert math.isfinite(g["value"]) and g["passed"] in (True, False)
    bad = CliRunner().invoke(app, ["bench-engine", "--model", str(tmp_path / "none.tflite")])
    assert bad.exit_code == 2 and "no such model file" in bad.stderr and "Traceback" not in bad.output
