"""Golden vectors for the Java core: plain files that read back to what the Python runtime does."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.backends import load_model
from edge.card import load_card, write_card
from edge.counter import Alignment, Counter, CounterParams, count_events
from edge.frontend import log_mel, mel_filters
from edge.golden import (
    CASE_PARAMS,
    GOLDEN_FORMAT,
    STREAM_STATE,
    OnsetBackend,
    StreamOnsetBackend,
    _case_tracks,
    click_track,
    counter_cases,
    counter_constants,
    onset_card,
    stream_card,
    write_golden,
)
from edge.stream import StreamCounter, count_offline
from tests.edge_fixtures import copy_artifact, onset_artifacts

ROOT = Path(__file__).resolve().parents[1]


def read_f32(folder: Path, name: str, index: dict) -> np.ndarray:
    meta = index["files"][name]
    assert meta["dtype"] == "float32" and meta["byte_order"] == "little" and meta["order"] == "C"
    return np.fromfile(folder / name, dtype="<f4").reshape(meta["shape"])


@pytest.mark.parametrize("seconds,window,hop", [(6.0, 200, 48), (1.337, 200, 48), (11.37, 128, 32)])
def test_golden_files_match_the_runtime(tmp_path, seconds, window, hop):
    card = onset_card(window, hop)
    index = write_golden(tmp_path, card=card, seconds=seconds, seed=1)
    assert index["format"] == GOLDEN_FORMAT == "footfall-golden/2"
    assert json.loads((tmp_path / "index.json").read_text()) == json.loads(json.dumps(index))
    assert index["output"] == "step_onset_logit" and index["card_schema"] == 2 and index["card"]["schema"] == 2
    assert index["counter"] == CounterParams().to_dict() and index["counter_constants"] == counter_constants(CounterParams())
    assert index["counter_constants"]["threshold_logit"] == CounterParams().threshold_logit
    pcm = read_f32(tmp_path, "pcm.f32", index)
    np.testing.assert_array_equal(pcm, click_track(seconds, seed=1)[0])
    frames = read_f32(tmp_path, "logmel.f32", index)
    np.testing.assert_allclose(frames, log_mel(pcm), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(read_f32(tmp_path, "mel_filters.f32", index), mel_filters())
    inputs = read_f32(tmp_path, "window_input.f32", index)
    logits = read_f32(tmp_path, "window_logits.f32", index)
    committed = read_f32(tmp_path, "committed_logits.f32", index)
    ups = index["updates"]
    assert inputs.shape == (len(ups), 64, window) and logits.shape == (len(ups), window // 4)
    assert committed.shape == (len(pcm) // 160 // 4,)
    parts = [logits[i, u["lo"] : u["hi"]] for i, u in enumerate(ups)]
    np.testing.assert_array_equal(np.concatenate(parts), committed)

    # the counts are edge.counter's on the committed logits, and the offline runtime's
    totals = index["totals"]
    events = [e for u in ups for e in u["events"]]
    assert events == totals["events"] == list(count_events(committed, card.counter_params()))
    assert totals["n_events"] == totals["steps"] == len(events) == ups[-1]["steps"]  # the last update carries the final count
    offline = count_offline(OnsetBackend(window), card, pcm)
    assert offline.events == totals["events"] and offline.steps == totals["steps"]
    assert (offline.active_s, offline.mean_cadence_spm, offline.peak_cadence_spm) == (
        totals["active_s"], totals["mean_cadence_spm"], totals["peak_cadence_spm"])
    if seconds > 5:  # a click track: every click counted once, in the same 40-ms frame
        steps = click_track(seconds, seed=1)[1]
        assert len(events) == len(steps) and np.abs(np.asarray(events) - steps).max() < 0.04
        assert totals["active_s"] > 0.6 * seconds and 150 < totals["mean_cadence_spm"] < 190

    # the streaming engine on the same PCM gives the same hops, counts and events (its frames,
    # computed block by block, equal the golden offline ones to float32 rounding)
    sc = StreamCounter(OnsetBackend(window), card)
    streamed = []
    for i in range(0, len(pcm), 999):
        streamed += sc.push(pcm[i : i + 999])
    streamed += sc.finish()
    assert [u.window for u in streamed] == [u["window"] for u in ups]
    for s, g in zip(streamed, ups):
        assert s.steps == g["steps"] and s.t_final == g["t_final"] and s.t == g["t"] and s.tail == g["tail"]
        assert s.cadence_spm == pytest.approx(g["cadence_spm"], rel=1e-6)
        np.testing.assert_allclose(s.events, g["events"], rtol=0, atol=1e-6)
        start, n = g["start_frame"], min(window, frames.shape[1] - g["start_frame"])
        np.testing.assert_array_equal(inputs[g["window"], :, :n], frames[:, start : start + n])
        assert (inputs[g["window"], :, n:] == index["alignment"]["pad_log_mel"]).all()
    assert sc.counter.n_events == totals["n_events"]

    rows = list(csv.DictReader(open(tmp_path / "updates.csv")))
    assert len(rows) == len(ups) and float(rows[-1]["steps"]) == ups[-1]["steps"]
    assert [r["cadence_state"] for r in rows] == [u["cadence_state"] for u in ups]
    assert [[float(e) for e in r["events"].split()] for r in rows] == [u["events"] for u in ups]


def test_the_card_counter_parameters_are_the_ones_written_and_counted_with(tmp_path):
    """A card's non-default counter parameters reach the index and the counts; they change them."""
    params = {"threshold": 0.5, "switch_prob": 0.2, "lag_s": 1.0}
    pcm, steps = click_track(8.0, seed=4, drop=(6,))
    index = write_golden(tmp_path, card=onset_card(200, 48, counter=params), pcm=pcm)
    assert index["card"]["counter"] == params
    assert index["counter"] == CounterParams(**params).to_dict()
    assert index["counter_constants"] == counter_constants(CounterParams(**params)) != counter_constants(CounterParams())
    assert index["counter_constants"]["threshold_logit"] == 0.0 and index["counter_constants"]["lag_frames"] == 50
    committed = read_f32(tmp_path, "committed_logits.f32", index)
    assert index["totals"]["events"] == list(count_events(committed, CounterParams(**params)))
    every = count_events(committed, CounterParams())
    assert len(every) == len(steps) + 1  # every click, and the dropped one where the cadence puts it
    gap = count_events(committed, CounterParams(threshold=0.5, switch_prob=0.4, tempo_lambda=10.0))
    assert len(gap) == len(steps) and np.abs(gap - steps).max() < 0.04  # stops cheap: every click, the dropped one a gap
    assert index["totals"]["n_events"] < len(steps)  # a missed step costs, stops are cheap: the gap stops the runner


def test_a_streaming_card_runs_each_packet_once_from_a_reset_state(tmp_path):
    """A stateful model: packets of 8 frames taken once, the tail the rest as one padded packet,
    the model reset at the start; a short decision lag counts every click once, each that lag after it."""
    card = stream_card(8, counter={"lag_s": 1.0})
    index = write_golden(tmp_path, card=card, seconds=6.07, seed=4)  # 607 frames: 75 packets and a tail of 1 output frame
    assert index["card"]["state"] == list(STREAM_STATE) and index["alignment"]["stateful"] is True
    assert index["counter"] == CounterParams(lag_s=1.0).to_dict()
    ups = index["updates"]
    assert [(u["start_frame"], u["lo"], u["hi"]) for u in ups] == [(8 * k, 0, 2) for k in range(75)] + [(600, 0, 1)]
    assert ups[-1]["tail"] and not any(u["tail"] for u in ups[:-1])
    inputs = read_f32(tmp_path, "window_input.f32", index)
    frames = read_f32(tmp_path, "logmel.f32", index)
    np.testing.assert_array_equal(inputs[-1][:, :7], frames[:, 600:])
    assert (inputs[-1][:, 7:] == index["alignment"]["pad_log_mel"]).all()
    committed = read_f32(tmp_path, "committed_logits.f32", index)
    totals, steps = index["totals"], click_track(6.07, seed=4)[1]
    assert totals["events"] == list(count_events(committed, card.counter_params()))
    assert len(totals["events"]) == len(steps) and np.abs(np.asarray(totals["events"]) - steps).max() < 0.04
    # each step is counted once the committed audio is the lag (and at most a block and a packet) past it
    waits = [u["t_final"] - e for u in ups for e in u["events"] if e not in totals["flushed_events"]]
    assert len(waits) >= 10 and all(1.0 <= w < 1.5 for w in waits), waits

    # the offline and the streaming runtime on the same backend, one stream after another: each
    # starts from reset(), so both give the golden logits and counts
    pcm = read_f32(tmp_path, "pcm.f32", index)
    backend = StreamOnsetBackend(8)
    for _ in range(2):
        offline = count_offline(backend, card, pcm, keep=True)
        np.testing.assert_array_equal(offline.logits, committed)
        assert offline.events == totals["events"] and offline.windows == len(ups)
        sc = StreamCounter(backend, card, keep=True)
        streamed = []
        for i in range(0, len(pcm), 777):
            streamed += sc.push(pcm[i : i + 777])
        streamed += sc.finish()
        assert [(u.window, u.steps, u.t_final, u.tail) for u in streamed] == [(u["window"], u["steps"], u["t_final"], u["tail"]) for u in ups]
        np.testing.assert_allclose(sc.result().logits, committed, rtol=0, atol=1e-5)
        assert len(sc.result().events) == totals["n_events"]

    # the state matters: without the reset, or with a tail that reaches back (a windowed model's
    # rule), other logits are committed
    stale = StreamOnsetBackend(8)
    stale.reset = lambda: None
    count_offline(stale, card, pcm)
    assert not np.array_equal(count_offline(stale, card, pcm, keep=True).logits, committed)
    windowed = Alignment(8, 8).plan(frames.shape[1])
    assert windowed[:-1] == [(u["start_frame"], u["lo"], u["hi"]) for u in ups[:-1]]
    assert windowed[-1] == (596, 1, 2)  # the tail would run frames 596-599 a second time
    backend.reset()
    x = np.full((1, 1, 64, 8), index["alignment"]["pad_log_mel"], dtype=np.float32)
    parts = []
    for start, lo, hi in windowed:
        x[0, 0, :, : min(8, 607 - start)] = frames[:, start : start + 8]
        parts.append(backend.run(x)[lo:hi])
    reached_back = np.concatenate(parts)
    np.testing.assert_array_equal(reached_back[:-1], committed[:-1])
    assert reached_back[-1] != committed[-1]


def test_every_case_parameter_set_changes_what_some_track_counts():
    """Each of CASE_PARAMS's sets moves the count of some case track off the defaults' (and each
    tracker parameter is moved by some set): the Java twin is held to every parameter's effect;
    the constants of each set are what Java derives."""
    tracks = _case_tracks(0)
    events = lambda x, p: list(count_events(x, CounterParams(**p)))  # noqa: E731
    default = {name: events(x, {}) for name, x in tracks.items()}
    assert CASE_PARAMS[0] == {} and len(CASE_PARAMS) == len({json.dumps(p, sort_keys=True) for p in CASE_PARAMS})
    for p in CASE_PARAMS[1:]:
        assert any(events(x, p) != default[name] for name, x in tracks.items()), p
    assert {k for p in CASE_PARAMS for k in p} == set(CounterParams().to_dict())
    doc = counter_cases(0)
    assert [c["params"] for c in doc["cases"][: len(CASE_PARAMS)]] == [CounterParams(**p).to_dict() for p in CASE_PARAMS]
    for case in doc["cases"][: len(CASE_PARAMS)]:
        assert case["constants"] == counter_constants(CounterParams.from_dict(case["params"]))
    blocks = {c["constants"]["block"] for c in doc["cases"]}
    lags = {c["constants"]["lag_frames"] for c in doc["cases"]}
    assert {10, 12, 13, 16} <= blocks and {0, 12, 150, 475} <= lags  # an odd block; 12.5 frames of lag rounded to even; 9.5 s > RETRO_S


def test_the_case_tracks_show_the_tracker_at_work():
    """What the case tracks are made to show, under the defaults and the sets made for it."""
    tracks = _case_tracks(0)
    count = lambda name, **p: count_events(tracks[name], CounterParams(**p))  # noqa: E731
    # a far foot at half strength: every step; at a threshold of p 0.5 it is no step (the near foot alone)
    assert len(count("far_foot")) == 70 and len(count("far_foot", threshold=0.5)) == 35
    # the metronome's 50 beats and its 4 missing ones (one, two, one); with a dear missed step and
    # cheap stops the gap of two stops the runner
    assert len(count("metronome")) == 54 and len(count("metronome", threshold=0.5, switch_prob=0.2)) == 52
    # a runner: the run, the stop without the knock in it, the walk to the last frame
    runner = count("runner")
    assert not any(13.2 < t < 18.9 for t in runner) and runner[0] == pytest.approx(2.02, abs=0.02)
    gaps = np.diff(runner[runner < 13.2])
    assert 0.3 < gaps.min() and gaps.max() < 0.4  # the missed and quiet steps in, the echo out
    assert runner[-1] == (2 * (len(tracks["runner"]) - 1) + 1) / 50  # the step in the last frame
    # 60 spm: a runner only with the widest range; lone knocks and silence: nothing
    assert len(count("sixty", min_spm=30.0, max_spm=300.0)) == 16
    assert len(count("knocks")) == len(count("silence")) == len(count("short")) == len(count("empty")) == 0
    assert len(count("knocks", threshold=0.002)) > 0 and len(count("short", switch_prob=0.2)) == 1


def _key(**params) -> str:
    return json.dumps(CounterParams(**params).to_dict(), sort_keys=True)


def test_counter_cases_are_the_counter_on_their_tracks_in_any_chunks():
    """counter_cases(): per chunk what Counter.commit returned; the chunks do not change the count."""
    doc = counter_cases(3)
    assert doc["format"] == GOLDEN_FORMAT and doc["fps"] == 25
    names = {c["name"] for c in doc["cases"]}
    assert names >= {"runner", "slowdown", "far_foot", "metronome", "sixty", "knocks", "noise", "integers", "plateaus",
                     "two_levels", "silence", "one_frame", "short", "empty"}
    assert len(doc["cases"]) == len(names) * len(CASE_PARAMS)
    json.loads(json.dumps(doc))  # plain JSON
    metronome = {}
    for case in doc["cases"]:
        params = CounterParams.from_dict(case["params"])
        logits = np.asarray(case["logits"], dtype=np.float64)
        assert np.array_equal(logits.astype(np.float32), logits)  # float32 values, exact in JSON
        events = [e for ch in case["chunks"] for e in ch["events"]] + case["flushed"]
        assert sum(ch["n"] for ch in case["chunks"]) == len(logits)
        assert events == list(count_events(logits, params))  # chunking changes nothing
        assert case["totals"]["n_events"] == len(events)
        whole = Counter(params=params)
        whole.commit(logits)
        whole.flush()
        assert (whole.active_frames, whole.peak_cadence) == (case["totals"]["active_frames"], case["totals"]["peak_cadence_spm"])
        assert (whole.cadence_spm(), whole.t_decided) == (case["totals"]["cadence_spm"], case["totals"]["t_decided"])
        if case["name"] == "metronome":
            metronome[_key(**case["params"])] = len(events)
        if case["name"] in ("silence", "empty"):
            assert events == [] and case["totals"]["active_s"] == 0.0
    # 50 beats, 4 missing (one, two, one): the tracker counts all 4; with a dear missed step and
    # cheap stops the gap of two stops the runner
    assert metronome[_key()] == 54 and metronome[_key(threshold=0.5, switch_prob=0.2)] == 52


def test_golden_cli_with_a_model(tmp_path):
    model = onset_artifacts(kinds=("onnx",))["onnx"]
    r = subprocess.run([sys.executable, "-m", "edge.golden", str(tmp_path), "--model", str(model), "--seconds", "3"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["model"]["artifact"] == model.name and index["n_samples"] == 48000
    backend, card = load_model(model)
    assert index["card"]["sha256"] == card.sha256 and index["counter"] == card.counter_params().to_dict()
    logits = read_f32(tmp_path, "window_logits.f32", index)
    inputs = read_f32(tmp_path, "window_input.f32", index)
    np.testing.assert_allclose(logits[0], backend.run(inputs[0][None, None]), atol=1e-5)


def test_golden_cli_on_the_low_latency_schedule(tmp_path):
    """--low-latency writes the card's low-latency plan; a card without one is one line, exit 1."""
    model = copy_artifact(onset_artifacts(kinds=("onnx",))["onnx"], tmp_path / "model")
    card = load_card(model)
    card.low_latency = {"hop_frames": 28, "lookahead_frames": 12}
    write_card(card, model)
    r = subprocess.run([sys.executable, "-m", "edge.golden", str(tmp_path / "ll"), "--model", str(model), "--seconds", "3",
                        "--low-latency"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    al = json.loads((tmp_path / "ll" / "index.json").read_text())["alignment"]
    want = card.alignment(low_latency=True)
    assert (al["hop_frames"], al["lookahead_frames"]) == (want.hop_frames, want.lookahead_frames) == (28, 12) != (card.hop_frames, None)
    r = subprocess.run([sys.executable, "-m", "edge.golden", str(tmp_path / "none"), "--low-latency"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "has no low-latency schedule" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "none").exists()
