"""The synthetic data generator: reproducible, exact steps, the recordings format, runner folds."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from train.data import synth
from train.data.recordings import load_dataset, load_steps
from train.data.synth import RUN_SPM, SR, SURFACES, WALK_SPM, synthesize_run


@pytest.fixture(scope="module")
def short_run():
    return synthesize_run(seed=3, runner=1, run=0, duration_s=8.0, surface="gravel")


def test_same_seed_same_bytes_other_seed_differs(short_run):
    audio, steps, info = short_run
    again, steps2, info2 = synthesize_run(seed=3, runner=1, run=0, duration_s=8.0, surface="gravel")
    assert audio.tobytes() == again.tobytes()
    assert steps.tobytes() == steps2.tobytes()
    assert info == info2
    other, _, _ = synthesize_run(seed=4, runner=1, run=0, duration_s=8.0, surface="gravel")
    assert other.tobytes() != audio.tobytes()


def test_audio_is_finite_float32_in_range(short_run):
    audio, _, info = short_run
    assert audio.dtype == np.float32 and audio.shape == (8 * SR,)
    assert np.isfinite(audio).all()
    assert np.abs(audio).max() <= 1.0
    assert audio.std() > 1e-3  # not silent
    assert info["duration_s"] == 8.0


def test_steps_are_exact_sorted_unique_sample_aligned_in_range(short_run):
    audio, steps, info = short_run
    assert steps.dtype == np.float64 and len(steps) > 5
    assert np.all(np.diff(steps) > 0)
    assert steps[0] >= 0 and steps[-1] < len(audio) / SR
    np.testing.assert_allclose(steps * SR, np.round(steps * SR), atol=1e-6)  # onsets sit on samples
    written = np.array([float(f"{t:.{synth.STEPS_DECIMALS}f}") for t in steps])  # as the CSV holds them
    np.testing.assert_array_equal(np.round(written * SR), np.round(steps * SR))
    assert len(info["feet"]) == len(steps) and set(info["feet"]) <= {"L", "R"}
    assert info["n_steps"] == len(steps)


@pytest.mark.parametrize("surface", SURFACES)
def test_every_surface_synthesises(surface):
    audio, steps, info = synthesize_run(seed=1, runner=2, run=1, duration_s=3.0, surface=surface)
    assert info["surface"] == surface and info["session"] == synth.session_of(surface)
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0


def test_impact_kernels_start_at_their_onset():
    """A label is the kernel's first sample: the impact's energy arrives right after it."""
    rng = np.random.default_rng(0)
    runner = synth.sample_runner(0, 0)
    for surface in SURFACES:
        k = synth._impact_kernels(rng, synth.SURFACE_SOUNDS[surface], runner.shoe, "heel", 70.0, np.zeros(16, bool), np.zeros(16, bool))
        energy = np.cumsum(k**2, axis=1)
        peak_ms = np.argmax(np.abs(k), axis=1) / SR * 1000
        assert np.all(energy[:, int(0.05 * SR)] > 0.5), surface  # half the energy within 50 ms
        assert np.median(peak_ms) < 40, surface


def test_cadence_plans_stay_in_the_running_and_walking_ranges():
    for i, surface in enumerate(SURFACES * 2):
        runner = synth.sample_runner(5, i)
        rng = np.random.default_rng(i)
        plan = synth.make_plan(rng, runner, surface, 240.0)
        assert plan[0].start_s == 0 and plan[-1].end_s == 240.0
        for seg in plan:
            if seg.kind == "stop":
                assert seg.spm == 0
            elif seg.kind == "walk":
                assert WALK_SPM[0] <= seg.spm <= WALK_SPM[1]
            else:
                assert RUN_SPM[0] <= seg.spm <= RUN_SPM[1]
        n_ctrl = 240 * synth.CTRL_RATE + 1
        cad = synth.cadence_curve(plan, n_ctrl, rng)
        moving = cad[cad > 0]
        assert moving.min() >= WALK_SPM[0] - 2 and moving.max() <= RUN_SPM[1]
        # the steps follow the plan: inside a long steady segment, the median cadence is the target
        times, feet = synth.step_times(cad, 240.0, rng, runner.stride_cv, runner.stride_rho, runner.lr_timing)
        seg = max((s for s in plan if s.kind == "run"), key=lambda s: s.end_s - s.start_s, default=None)
        if seg is not None and seg.end_s - seg.start_s > 30:
            inner = times[(times > seg.start_s + 8) & (times < seg.end_s - 8)]
            measured = 60 / np.median(np.diff(inner))
            assert abs(measured - seg.spm) < 0.05 * seg.spm
        assert set(np.unique(feet)) <= {0, 1}


def test_dataset_plan_folds_runner_independent_and_labeled_runs_in_every_fold():
    surfaces, folds, unlabeled = synth.plan_dataset(runners=20, runs=3, seed=0, unlabeled_fraction=0.2)
    assert sorted(set(folds.values())) == [0, 1, 2, 3, 4]
    assert sorted(np.bincount(list(folds.values()))) == [4] * 5  # balanced
    assert 9 <= len(unlabeled) <= 15
    for g in range(5):
        members = [(i, r) for i in range(20) for r in range(3) if folds[synth.runner_id(0, i)] == g]
        assert any(m not in unlabeled for m in members)
    assert set(surfaces.values()) <= set(SURFACES)
    with pytest.raises(ValueError, match="at least 5"):
        synth.plan_dataset(runners=3, runs=1, seed=0, unlabeled_fraction=0.2)


def test_tiny_dataset_through_the_cli(tmp_path):
    from train.cli.data import register

    app = typer.Typer()
    register(app)
    out = tmp_path / "synth"
    args = ["data", "synth", "--out", str(out), "--runners", "5", "--runs", "2", "--minutes", "0.04",
            "--seed", "7", "--unlabeled-fraction", "0.3", "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    with (out / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["run_id", "runner_id", "audio", "steps", "surface", "session", "fold"]
    assert len(rows) == 10
    recs = load_dataset(out)  # the team's validating loader accepts it
    by_runner = {}
    for r in recs:
        by_runner.setdefault(r.runner_id, set()).add(r.fold)
        assert r.duration_s == pytest.approx(2.4)
    assert all(len(f) == 1 for f in by_runner.values())  # runner-independent folds
    unlabeled = [r for r in recs if r.steps is None]
    assert unlabeled and len(unlabeled) < len(recs)
    assert not any((out / "steps" / f"{r.run_id}.csv").exists() for r in unlabeled)
    for r in recs:
        if r.steps is not None:
            t = load_steps(r.steps, r.duration_s)
            assert len(t) > 0
            with r.steps.open() as f:
                header = f.readline().strip()
            assert header == "time_s,foot"
    infos = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert [d["run_id"] for d in infos] == [r.run_id for r in recs]
    for name in ("report.md", "summary.json", "cadence.png", "snr.png", "spectrogram.png"):
        assert (out / "report" / name).is_file(), name

    # a file holds exactly synthesize_run's audio for that (seed, runner, run, surface), 16-bit
    import soundfile as sf

    rec = recs[3]
    runner, run = int(rec.runner_id[-3:]), int(rec.run_id.rsplit("_", 1)[1])
    audio, steps, _ = synthesize_run(7, runner, run, 2.4, rec.surface)
    pcm, sr = sf.read(rec.audio, dtype="int16")
    assert sr == SR
    np.testing.assert_array_equal(pcm, np.round(audio * 32767).astype(np.int16))
    if rec.steps is not None:
        np.testing.assert_allclose(load_steps(rec.steps), steps, atol=1e-9)


def test_cli_rejects_too_few_runners(tmp_path):
    from train.cli.data import register

    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["data", "synth", "--out", str(tmp_path / "x"), "--runners", "2"])
    assert result.exit_code == 2
    assert "at least 5" in result.output


def _pool(seed: int = 0) -> synth.Recorded:
    """A stand-in corpus: decaying noise bursts as one-shots, brown noise as a bed."""
    rng = np.random.default_rng(seed)
    t = np.arange(2000) / SR
    shots = tuple((rng.standard_normal(2000) * np.exp(-t / 0.01)).astype(np.float32) for _ in range(4))
    bed = np.cumsum(rng.standard_normal(SR)).astype(np.float32)
    return synth.Recorded(shots, (bed / np.abs(bed).max(),), ("stand-in",))


def test_recorded_sounds_mix_in_without_touching_steps_or_the_procedural_runs(short_run):
    audio, steps, info = short_run
    rec = _pool()
    mixed, steps2, info2 = synthesize_run(seed=3, runner=1, run=0, duration_s=8.0, surface="gravel", recorded=rec)
    again, _, _ = synthesize_run(seed=3, runner=1, run=0, duration_s=8.0, surface="gravel", recorded=rec)
    assert mixed.tobytes() == again.tobytes()  # reproducible by seed
    assert steps2.tobytes() == steps.tobytes()  # the labels do not move
    assert mixed.tobytes() != audio.tobytes()
    assert 0 < info2["recorded"]["steps"] <= len(steps) and info2["recorded"]["packages"] == ["stand-in"]
    assert -30 <= info2["recorded"]["level_db"] <= 10 and "recorded_bed" in info2["confounders"]["ambient_db"]
    assert "recorded" not in info and synthesize_run(seed=3, runner=1, run=0, duration_s=8.0, surface="gravel")[0].tobytes() == audio.tobytes()


def test_recorded_levels_span_tens_of_db():
    """The domain randomisation of level: runs' RMS spread over more than 20 dB."""
    rec = _pool()
    rms = [20 * np.log10(np.sqrt(np.mean(synthesize_run(seed=5, runner=r, run=0, duration_s=4.0, recorded=rec)[0].astype(np.float64) ** 2)))
           for r in range(6)]
    assert max(rms) - min(rms) > 20, rms


def test_recorded_kernels_start_at_their_onset_and_keep_unit_energy():
    rng = np.random.default_rng(0)
    kern = np.zeros((50, synth.IMPACT_LEN))
    kern[:, 0] = 1.0
    out, n = synth._recorded_kernels(rng, synth.Recorded(_pool().steps, (), step_share=(1.0, 1.0)), kern)
    assert n == 50
    assert np.allclose(np.sum(out**2, axis=1), 1.0, atol=1e-6)
    energy = np.cumsum(out**2, axis=1)
    assert np.all(energy[:, 400] > 0.5)  # the bursts decay within ~25 ms of their start
