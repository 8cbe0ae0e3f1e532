"""The wide training data: runs of recorded one-shots and step-free runs (train/data/oneshots.py,
train/data/negatives.py), on the small corpus ``make test`` builds."""

from __future__ import annotations

import numpy as np
import pytest

from train.data.negatives import KINDS, step_free


@pytest.fixture(scope="module")
def corpus():
    from train.data.sounds import default_root, read_manifest

    try:
        rows = read_manifest(default_root())
    except Exception as e:
        pytest.skip(f"no sound corpus (make sounds-small): {e}")
    return default_root(), rows


def test_oneshot_runs_are_seeded_labelled_and_from_train_packages_only(corpus, tmp_path):
    from train.data.oneshots import oneshot_run, write_oneshot_runs
    from train.data.recordings import load_dataset, load_steps
    from train.data.sounds import REGISTRY
    from train.data.synth import Recorded

    root, rows = corpus
    out = write_oneshot_runs(tmp_path / "shots", runs=3, seconds=20, seed=4, sounds=root)
    recs = load_dataset(out)
    assert len(recs) == 3 and all(r.steps is not None for r in recs)
    for r in recs:
        steps = load_steps(r.steps)
        assert len(steps) > 10 and np.all(np.diff(steps) > 0.2) and steps[-1] < 20.0  # a runner's steps, inside the run
    import json

    used = json.loads((out / "oneshots.json").read_text())["packages"]
    split = {p.name: p.split for p in REGISTRY}
    assert used and all(split[p] == "train" for p in used)
    rec = Recorded.from_corpus(root)
    a, ta, _ = oneshot_run(4, 0, 20, rec.steps, rec.beds)
    b, tb, _ = oneshot_run(4, 0, 20, rec.steps, rec.beds)
    assert np.array_equal(a, b) and np.array_equal(ta, tb) and a.dtype == np.float32 and np.abs(a).max() <= 1.0
    with pytest.raises(FileExistsError):
        write_oneshot_runs(out, runs=1, seconds=10, seed=4, sounds=root)


def test_oneshot_runs_can_leave_a_packages_step_sounds_out(monkeypatch, tmp_path):
    """``without``: the named packages' one-shots make no step (their beds stay); a name no
    train-split package has, or leaving every step sound out, is one clear error."""
    from train.data import sounds
    from train.data.oneshots import write_oneshot_runs
    from train.data.synth import Recorded

    def clip(pkg, category, value):
        audio = np.full(4000, value, np.float32) if category in ("footstep", "impact") else np.full(64000, value, np.float32)
        return sounds.Clip(f"{pkg}:{category}", pkg, "train", category, "", "", 0.0, -20.0, "CC0-1.0", audio)

    clips = [clip("kit", "impact", 0.5), clip("kit", "music", 0.1), clip("shoes", "footstep", 0.25), clip("shoes", "ambience", 0.2)]
    monkeypatch.setattr(sounds, "load_clips", lambda root=None, split=None: clips)
    everything, some = Recorded.from_corpus("x"), Recorded.from_corpus("x", without=("kit",))
    assert sorted(float(s[0]) for s in everything.steps) == [0.25, 0.5]
    assert [float(s[0]) for s in some.steps] == [0.25]  # the kit's impact is gone ...
    assert len(some.beds) == len(everything.beds) and np.allclose(sorted(float(b[0]) for b in some.beds), [0.1, 0.2])  # ... its music stays
    with pytest.raises(ValueError, match="no train-split package of that name"):
        Recorded.from_corpus("x", without=("nosuch",))
    with pytest.raises(ValueError, match="no train-split footstep or impact"):
        Recorded.from_corpus("x", without=("kit", "shoes"))
    out = write_oneshot_runs(tmp_path / "shots", runs=1, seconds=10, seed=0, sounds="x", without=("kit",))
    import json

    assert json.loads((out / "oneshots.json").read_text())["without"] == ["kit"]


def test_the_oneshots_command_refuses_an_unknown_package_in_one_line(corpus, tmp_path):
    from typer.testing import CliRunner

    from footfall.cli import app

    root, _ = corpus
    r = CliRunner().invoke(app, ["data", "oneshots", "--out", str(tmp_path / "o"), "--runs", "1", "--seconds", "10",
                                 "--sounds", str(root), "--without", "nosuch-data"])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and "nosuch-data" in lines[0] and "Traceback" not in r.output, r.output


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "bed"])
def test_step_free_kinds_are_seeded_and_in_range(kind):
    a, b = step_free(kind, 3.0, 5), step_free(kind, 3.0, 5)
    assert a.dtype == np.float32 and len(a) == 48_000 and np.array_equal(a, b)
    assert np.abs(a).max() <= 1.0 and np.isfinite(a).all()
    if kind != "silence":
        assert not np.array_equal(a, step_free(kind, 3.0, 6))


def test_negatives_dataset_is_labelled_with_no_steps(tmp_path):
    from train.data.negatives import write_negatives
    from train.data.recordings import load_dataset, load_steps

    out = write_negatives(tmp_path / "neg", runs=len(KINDS) - 1, seconds=2.0, seed=3)
    recs = load_dataset(out)
    assert sorted({r.session for r in recs}) == sorted(k for k in KINDS if k != "bed")  # no corpus: no bed
    assert all(len(load_steps(r.steps)) == 0 for r in recs)


def test_a_speech_bed_is_a_conversation_not_one_prompt_looped():
    """A recorded speech bed strings utterances drawn at random with pauses of SPEECH_PAUSE_S between
    them (a prompt looped for a minute repeats its syllables every loop: a rhythm, not talk); the
    other beds loop as before, and a bed list without categories loops every bed."""
    from train.data.negatives import SPEECH_PAUSE_S, SAMPLE_RATE, step_free

    rng = np.random.default_rng(0)
    prompts = tuple((rng.standard_normal(int(s * SAMPLE_RATE)) * 0.1).astype(np.float32) for s in (0.8, 1.1, 1.3))
    music = (np.sin(np.arange(SAMPLE_RATE * 2) * 0.05) * 0.3).astype(np.float32)
    beds, categories = (*prompts, music), ("speech", "speech", "speech", "music")
    seen = set()
    for seed in range(40):
        info: dict = {}
        talk = step_free("bed", 20.0, seed, beds, info, categories)
        assert np.array_equal(talk, step_free("bed", 20.0, seed, beds, {}, categories))  # seeded
        if categories[info["bed"]] != "speech":
            assert np.array_equal(talk, step_free("bed", 20.0, seed, beds))  # music loops as without categories
            continue
        loud = np.abs(talk) > 0
        edges = np.flatnonzero(np.diff(loud.astype(np.int8)))
        gaps = np.diff(edges)[1::2] / SAMPLE_RATE if loud[0] else np.diff(edges)[::2] / SAMPLE_RATE
        lengths = np.diff(edges)[0::2] / SAMPLE_RATE if loud[0] else np.diff(edges)[1::2] / SAMPLE_RATE
        assert len(gaps) >= 8 and SPEECH_PAUSE_S[0] - 0.01 <= gaps.min() and gaps.max() <= SPEECH_PAUSE_S[1] + 0.01
        seen |= {round(v, 1) for v in lengths[1:]}  # whole utterances (the last may be cut by the run's end)
        assert not np.array_equal(talk, step_free("bed", 20.0, seed, beds))  # not the looped prompt
    assert {0.8, 1.1, 1.3} <= seen  # every prompt was drawn


def test_recorded_beds_take_four_turns_of_the_negatives_rotation():
    """With a corpus, recorded beds (ambience, speech, music) are 4 runs in 18, every other kind one."""
    from train.data.negatives import BED_SLOTS, rotation

    with_corpus = rotation(True)
    assert len(with_corpus) == len(KINDS) - 1 + BED_SLOTS
    assert with_corpus.count("bed") == BED_SLOTS == 4
    assert all(with_corpus.count(k) == 1 for k in KINDS if k != "bed")
    assert "bed" not in rotation(False)


def test_negatives_of_chosen_kinds_only(tmp_path):
    """``kinds`` (``footfall data negatives --kinds``): those kinds in turn; unknown ones, none, or
    ``bed`` without a corpus are refused with one line."""
    from train.data.negatives import write_negatives
    from train.data.recordings import load_dataset

    out = write_negatives(tmp_path / "neg", runs=3, seconds=1.0, seed=0, kinds=["hum", "dc"])
    assert [r.session for r in load_dataset(out)] == ["hum", "dc", "hum"]
    for kinds, needle in [(["hum", "fridge"], "fridge"), ([], "no step-free kinds"), (["bed"], "--sounds")]:
        with pytest.raises(ValueError, match=needle):
            write_negatives(tmp_path / "bad", runs=2, seconds=1.0, kinds=kinds)


def test_a_kit_gets_one_timbre_resampled_and_coloured_within_its_ranges():
    """kit_timbre: one resampling factor and at most one resonance for all of a kit's one-shots,
    drawn from the named ranges, seeded; each one-shot peak-normalised again."""
    from train.data import oneshots as osh

    rng = np.random.default_rng(0)
    kit = [rng.standard_normal(4000) * np.exp(-np.arange(4000) / 400.0) for _ in range(3)]
    factors = []
    for seed in range(40):
        info: dict = {}
        out = osh.kit_timbre(kit, np.random.default_rng(seed), info)
        f = info["kit_stretch"]
        factors.append(f)
        assert osh.KIT_STRETCH[0] <= f <= osh.KIT_STRETCH[1]
        assert len({len(o) for o in out}) == 1 and abs(len(out[0]) - 4000 * f) <= 3  # one factor for the whole kit (f is rounded)
        assert all(np.isclose(np.abs(o).max(), 1.0) for o in out)
        if "kit_eq" in info:
            f0, g, q = info["kit_eq"]
            assert osh.KIT_EQ_HZ[0] - 1 <= f0 <= osh.KIT_EQ_HZ[1] + 1 and osh.KIT_EQ_DB[0] <= g <= osh.KIT_EQ_DB[1]
        again: dict = {}
        assert all(np.array_equal(a, b) for a, b in zip(out, osh.kit_timbre(kit, np.random.default_rng(seed), again))) and again == info
    assert min(factors) < 0.8 and max(factors) > 1.3  # wide: lower and higher than the recordings


def test_the_peaking_eq_has_its_gain_at_its_centre_and_none_far_away():
    from scipy import signal

    from train.data.oneshots import SR, _peaking

    b, a = _peaking(500.0, 12.0, 2.0)
    w, h = signal.freqz(b, a, worN=[500.0, 20.0, 7000.0], fs=SR)
    db = 20 * np.log10(np.abs(h))
    assert db[0] == pytest.approx(12.0, abs=0.01) and abs(db[1]) < 0.5 and abs(db[2]) < 0.5


def test_beds_are_drawn_by_category_equally_often():
    """balanced_beds: each bed category listed as often as the largest (the same arrays, repeated),
    so the corpus's many short speech prompts do not crowd out its few music and ambience beds."""
    from train.data.synth import balanced_beds

    talk = [np.full(10, i, np.float32) for i in range(8)]
    music = [np.full(10, 100, np.float32)]
    room = [np.full(10, 200 + i, np.float32) for i in range(3)]
    beds = balanced_beds([("speech", a) for a in talk] + [("music", music[0])] + [("ambience", a) for a in room])
    assert len(beds) == 3 * 8
    kinds = [("speech" if b[0] < 100 else "music" if b[0] == 100 else "ambience") for b in beds]
    assert {k: kinds.count(k) for k in set(kinds)} == {"speech": 8, "music": 8, "ambience": 8}
    assert all(any(b is a for b in beds) for a in talk + music + room)  # every clip kept, none copied
    assert balanced_beds([]) == ()
