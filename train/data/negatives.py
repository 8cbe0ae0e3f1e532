"""Sound with no runner in it, which must count nothing: training negatives and the test of them.

A phone in an armband hears a lot that is not a step: its own noise floor, mains hum, a fridge, a
fan, wind, traffic, a conversation, music. :func:`step_free` makes one such recording of a named
kind, seeded; :func:`write_negatives` writes a dataset (contract 5: every run labeled, with an
empty steps file) that training takes as an extra root, so the network sees them at zero steps.
The recorded kinds loop train-split beds of the sound corpus (never an eval package).

Kinds (:data:`KINDS`): digital ``silence``; a microphone's ``noise_floor`` (-80..-60 dBFS white
noise); ``hum`` (50 or 60 Hz with harmonics, steady or with a slow beat); ``white``, ``pink`` and
``brown`` noise at any level; a ``dc`` offset with a little noise; a steady ``tone``; a full-scale
``square`` wave; the generator's own ``wind``, ``traffic``, ``speech`` (babble), ``music`` and
``rain`` layers (``train.data.synth``) with no runner; ``bed``: a recorded ambience, wind or music
bed of the corpus, looped, or its recorded speech as a conversation (utterances drawn at random,
with pauses between them).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from edge.contract import SAMPLE_RATE

KINDS = ("silence", "noise_floor", "hum", "white", "pink", "brown", "dc", "tone", "square",
         "wind", "traffic", "speech", "music", "rain", "bed")


def _coloured(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with a 1 / f**exponent power spectrum, unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    spec[1:] /= f[1:] ** (exponent / 2.0)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


SPEECH_PAUSE_S = (0.3, 1.5)  # the pause between two utterances of a recorded conversation


def step_free(kind: str, seconds: float, seed: int, beds: tuple[np.ndarray, ...] = (), info: dict | None = None,
              categories: tuple[str, ...] = ()) -> np.ndarray:
    """``seconds`` of a step-free sound of ``kind`` (float32 mono 16 kHz, within [-1, 1]); a ``bed``
    puts the index of the bed it drew in ``info["bed"]``. ``categories``: each bed's category
    (:func:`corpus_beds`); with them a speech bed is a conversation (:func:`_conversation`), else
    every bed is looped."""
    if kind not in KINDS:
        raise ValueError(f"unknown step-free kind {kind!r}; expected one of {KINDS}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, KINDS.index(kind)]))
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    level = 10 ** (rng.uniform(-50.0, -10.0) / 20.0)  # RMS
    if kind == "silence":
        x = np.zeros(n)
    elif kind == "noise_floor":
        x = rng.standard_normal(n) * 10 ** (rng.uniform(-80.0, -60.0) / 20.0)
    elif kind == "hum":
        f0 = float(rng.choice([50.0, 60.0]))
        x = sum(rng.uniform(0.05, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 8))
        if rng.random() < 0.5:  # a fridge's compressor: a slow beat
            x = x * (1.0 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.1, 2.0) * t))
        x = x / np.sqrt(np.mean(x**2)) * level + rng.standard_normal(n) * level * 10 ** (rng.uniform(-40, -20) / 20)
    elif kind in ("white", "pink", "brown"):
        x = _coloured(rng, n, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind]) * level
    elif kind == "dc":
        x = np.full(n, rng.uniform(-0.5, 0.5)) + rng.standard_normal(n) * 10 ** (rng.uniform(-80.0, -50.0) / 20.0)
    elif kind == "tone":
        x = np.sin(2 * np.pi * rng.uniform(100.0, 4000.0) * t) * 10 ** (rng.uniform(-40.0, 0.0) / 20.0)
    elif kind == "square":
        x = np.sign(np.sin(2 * np.pi * rng.uniform(50.0, 1000.0) * t)) * rng.uniform(0.5, 1.0)
    elif kind in ("wind", "traffic", "speech", "music", "rain"):
        from train.data import synth

        if kind == "wind":
            x = synth._wind(rng, n, np.full(int(np.ceil(seconds * synth.CTRL_RATE)) + 1, rng.uniform(1.0, 5.0)), True)
        elif kind == "traffic":
            x = synth._traffic(rng, n, "asphalt")[0]
        elif kind == "speech":
            x = None
            while x is None:  # babble at a treadmill's rate of passers-by; redraw an empty one
                x = synth._speech(rng, n, "treadmill")[0]
        else:
            x = getattr(synth, f"_{kind}")(rng, n)[0]
        x = x / (np.sqrt(np.mean(x**2)) + 1e-12) * level
    else:  # bed
        if not beds:
            raise ValueError("kind 'bed' needs recorded beds (a sound corpus with train-split ambience, wind, speech or music)")
        i = int(rng.integers(len(beds)))
        if info is not None:
            info["bed"] = i
        if categories and categories[i] == "speech":
            x = _conversation(rng, n, [b for b, c in zip(beds, categories) if c == "speech"], beds[i])
        else:
            bed = beds[i].astype(np.float64)
            x = np.resize(bed, n) if len(bed) else np.zeros(n)
            x = np.roll(x, int(rng.integers(max(len(bed), 1))))
        x = x / (np.sqrt(np.mean(x**2)) + 1e-12) * level
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def _conversation(rng: np.random.Generator, n: int, utterances: list[np.ndarray], first: np.ndarray) -> np.ndarray:
    """``n`` samples of talk: ``first``, then utterances drawn at random, each after a pause of
    :data:`SPEECH_PAUSE_S`. A recorded prompt lasts one to three seconds; looped, it repeats its
    syllables every loop, a rhythm that no talk has (a 1.1-s line looped for a minute was counted as
    110 steps a minute)."""
    parts: list[np.ndarray] = []
    total, clip = 0, first
    while total < n:
        pause = np.zeros(int(rng.uniform(*SPEECH_PAUSE_S) * SAMPLE_RATE))
        parts += [clip.astype(np.float64), pause]
        total += len(clip) + len(pause)
        clip = utterances[int(rng.integers(len(utterances)))]
    return np.concatenate(parts)[:n]


BED_SPLITS = ("train", "val", "eval")  # the splits that hold beds


def corpus_beds(sounds: str | Path | None, split: str = "train") -> tuple[tuple[np.ndarray, ...], tuple[str, ...]]:
    """The beds (ambience, wind, speech, music) of one split of a sound corpus, listed so that a
    uniform draw takes each category equally often, and the category of each; ((), ()) without a
    corpus. ``train`` for training negatives; ``val`` for the step-free runs that choose epochs and
    counters (speech and music no model trained on); ``eval`` for a step-free evaluation set of
    sounds no model trained on."""
    if sounds is None:
        return (), ()
    from train.data.sounds import SoundsError, load_clips
    from train.data.synth import BED_CATEGORIES, balanced_beds

    if split not in BED_SPLITS:
        raise SoundsError(f"split {split!r}: recorded beds are in {' and '.join(BED_SPLITS)} packages only")
    listed = balanced_beds([(c.category, (c.category, c.audio.astype(np.float32))) for c in load_clips(sounds, split=split)
                            if c.category in BED_CATEGORIES])
    if not listed:
        raise SoundsError(f"{sounds}: no {split}-split beds; build the corpus with `footfall data sounds --profile full`")
    return tuple(a for _, a in listed), tuple(c for c, _ in listed)


BED_SLOTS = 4  # a recorded bed's turns in one rotation of the kinds (the others take one each)


def rotation(recorded: bool) -> list[str]:
    """The kinds :func:`write_negatives` takes in turn: each kind once and, with a corpus, a recorded
    bed :data:`BED_SLOTS` times (4 runs in 18). Recorded ambience, speech and music are what a phone
    mostly hears; at one turn in 15 a set of 156 runs held about three minutes of recorded music, and
    the student counted a music bed's beat as 113-127 steps a minute."""
    kinds = [k for k in KINDS if k != "bed"]
    return kinds + ["bed"] * BED_SLOTS if recorded else kinds


def write_negatives(out: str | Path, *, runs: int = 40, seconds: float = 30.0, seed: int = 0,
                    sounds: str | Path | None = None, force: bool = False, split: str = "train",
                    kinds: Sequence[str] | None = None) -> Path:
    """A dataset of ``runs`` step-free runs (``kinds`` in turn, by default :func:`rotation`), every
    one labeled with no steps.

    Runners are ``neg<seed>_<k>`` (one per run, in 5 folds), so it joins a training side as an
    extra root without sharing a runner with the main dataset. ``split``: whose recorded beds
    (:func:`corpus_beds`): ``eval`` makes a step-free *evaluation* set (``footfall eval`` reports the
    steps a counter finds in it) of sounds no model trained on. Refuses an existing dataset unless
    ``force``.
    """
    from train.data.synth import write_audio

    out = Path(out)
    if (out / "manifest.csv").exists() and not force:
        raise FileExistsError(f"{out}: a dataset is already there (pass force to replace it)")
    beds, categories = corpus_beds(sounds, split)
    if kinds is None:
        kinds = rotation(bool(beds))
    elif unknown := sorted(set(kinds) - set(KINDS)):
        raise ValueError(f"step-free kind(s) {', '.join(unknown)}: expected some of {', '.join(KINDS)}")
    elif not kinds:
        raise ValueError("no step-free kinds given")
    elif "bed" in kinds and not beds:
        raise ValueError("kind 'bed' loops the recorded beds of a sound corpus: give its folder (--sounds)")
    kinds = list(kinds)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "steps").mkdir(exist_ok=True)
    rows = []
    for i in range(runs):
        kind = kinds[i % len(kinds)]
        run_id = f"neg{seed}_{i:03d}_{kind}"
        info: dict = {}
        write_audio(out / "audio" / f"{run_id}.flac", step_free(kind, seconds, seed * 1000 + i, beds, info, categories))
        (out / "steps" / f"{run_id}.csv").write_text("time_s,foot\n")
        session = f"bed:{categories[info['bed']]}" if "bed" in info else kind  # a recorded bed says which kind of bed
        rows.append({"run_id": run_id, "runner_id": f"neg{seed}_{i:03d}", "audio": f"audio/{run_id}.flac",
                     "steps": f"steps/{run_id}.csv", "surface": "none", "session": session, "fold": i % 5})
    with (out / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "negatives.json").write_text(json.dumps({"runs": runs, "seconds": seconds, "seed": seed, "kinds": kinds,
                                                    "sounds": str(sounds) if sounds else None, "split": split}, indent=2))
    return out
