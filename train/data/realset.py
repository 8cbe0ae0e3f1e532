"""The real-sound evaluation set: runs assembled from recorded sounds of held-out packages only.

Why: the synthetic test fold measures how well a model learned the generator; this set measures
whether it counts *recorded* footsteps. Its footstep one-shots and ambience beds come
only from packages whose split is ``eval`` in :data:`train.data.sounds.REGISTRY`, so no training
data (the generator draws from ``train`` packages) ever contains them; :func:`build_realset`
refuses any clip from a ``train`` package.

Each run reuses the generator's runner/plan machinery (:mod:`train.data.synth`: a sampled
runner with its cadence set to the run's target, ``make_plan`` -> ``cadence_curve`` ->
``step_times``), so step times are exact and cadence varies like a real run (surges, walks,
stops). At every step a recorded footstep of the run's sound family is placed with its onset
on the step time: the near foot louder than the far one, per-step gain jitter. Recorded beds
(ambience, wind, sometimes speech) are looped under it at the run's SNR, from barely audible
steps to loud ones; a phone's high-pass/low-pass colours the mix, and the whole run is set to a
level drawn over tens of dB (the counter must not care).

The output is a dataset in the recordings format (contract 5): manifest.csv, audio/*.flac,
steps/*.csv, plus runs.jsonl (per run: source package, family, clips, SNR, level, cadence) and
realset.json (seed, parameters, the packages and versions used). Same seed and corpus, same set.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from scipy import signal

from edge.frontend import SAMPLE_RATE
from train.data.sounds import MANIFEST as SOUNDS_MANIFEST
from train.data.sounds import Clip, SoundsError, check_not_reserved, default_root, file_sha256, load_clips, registry

N_RUNS = 18  # two per footstep group of the full eval corpus (9 groups)
RUN_SECONDS = 70.0
MIN_RUN_SECONDS, MAX_RUN_SECONDS = 10.0, 3600.0  # --seconds: a 10-s window at least, an hour at most
SEED = 2025
N_FOLDS = 5  # folds let tuned baselines (onset, naive) cross-validate on the set itself
SPM = (140.0, 200.0)  # target running cadence, spread evenly over the runs
SNR_DB = (-9.0, 21.0)  # step power vs. the beds (after the phone filters), spread evenly
LEVEL_DBFS = (-46.0, -14.0)  # RMS of the finished run, spread evenly (tens of dB)
FAR_FOOT_DB = (2.0, 12.0)  # the far foot is quieter by this much (armband on one arm)
STEP_JITTER_DB = 2.5  # per-step gain jitter (std)
PLAN_SURFACES = ("treadmill", "asphalt")  # make_plan's habits: steady with surges / hills, walks and traffic stops
BED_CROSSFADE_S = 0.05
SPEECH_P = 0.35  # share of runs with a speech distractor
SPEECH_DB = (-12.0, 0.0)  # speech level relative to the beds
HP_HZ, LP_HZ = (100.0, 200.0), (6000.0, 7800.0)  # phone microphone band
META = "realset.json"
# the splits a real-sound set is built from: ``eval`` (the evaluation set every result is reported
# on) and ``val`` (the validation set that chooses epochs and counter thresholds, so nothing is
# chosen on the runs a result is reported on)
HELD_OUT = ("eval", "val")

_TAG_REALSET = 25  # the random streams of this set never collide with the generator's


class RealsetError(ValueError):
    """Bad input to the real-sound set builder (one line)."""


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), _TAG_REALSET, *map(int, key)]))


def _group(c: Clip) -> str:
    """The sound group a run uses: package plus surface where known, else the file family."""
    return f"{c.package}:{c.surface or c.family}"


def eval_clips(sounds: str | Path | None, split: str = "eval") -> tuple[dict[str, list[Clip]], list[Clip], list[Clip]]:
    """Footsteps by group, beds (ambience + wind) and speech of one held-out split (``eval`` or
    ``val``); refuses a clip of any other split."""
    if split not in HELD_OUT:
        raise RealsetError(f"split {split!r}: a real-sound set is built from {' or '.join(HELD_OUT)} packages")
    reg = registry()
    held = load_clips(sounds, split=split)
    for c in held:
        check_not_reserved(c.package)
        role = reg[c.package].split if c.package in reg else c.split
        if c.split != split or role != split:
            raise SoundsError(f"{c.clip_id}: package {c.package} has split {role!r}; this real-sound set takes {split} packages only")
    # the footsteps are the held-out split's; the beds too for the evaluation set, while the
    # validation set's beds and talk are the train split's (val packages hold no ambience; their
    # speech and music are for the step-free choosing runs, footfall data negatives --split val)
    bed_split = "train" if split == "val" else split
    under = held if bed_split == split else load_clips(sounds, split=bed_split)
    steps: dict[str, list[Clip]] = {}
    for c in held:
        if c.category == "footstep":
            steps.setdefault(_group(c), []).append(c)
    beds = [c for c in under if c.category in ("ambience", "wind")]
    speech = [c for c in under if c.category == "speech"]
    if not steps:
        raise SoundsError(f"no footstep clips of a {split} package in the corpus; build it with `footfall data sounds --profile full`")
    if not beds:
        raise SoundsError(f"no ambience/wind clips of a {bed_split} package in the corpus; build it with `footfall data sounds --profile full`")
    return dict(sorted(steps.items())), beds, speech


@dataclass(frozen=True)
class RunSpec:
    index: int
    run_id: str
    group: str  # footstep sound group (package:surface-or-family)
    spm: float
    snr_db: float
    level_dbfs: float
    plan_surface: str
    fold: int


def plan_realset(groups: Sequence[str], n_runs: int, seed: int) -> list[RunSpec]:
    """Cadences, SNRs and levels spread evenly and shuffled independently; groups taken in turn."""
    if n_runs < N_FOLDS:
        raise RealsetError(f"--runs {n_runs}: need at least {N_FOLDS} (the tuned baselines cross-validate over {N_FOLDS} folds)")
    rng = _rng(seed, 0)
    spm = rng.permutation(np.linspace(*SPM, n_runs))
    snr = rng.permutation(np.linspace(*SNR_DB, n_runs))
    level = rng.permutation(np.linspace(*LEVEL_DBFS, n_runs))
    order = rng.permutation(len(groups))
    return [RunSpec(i, f"real{seed}_{i:02d}", groups[int(order[i % len(groups)])], round(float(spm[i]), 2), round(float(snr[i]), 2),
                    round(float(level[i]), 2), PLAN_SURFACES[i % len(PLAN_SURFACES)], i % N_FOLDS) for i in range(n_runs)]


def _bed(rng: np.random.Generator, clip: Clip, n: int) -> np.ndarray:
    """``clip`` looped from a random offset to ``n`` samples, joins crossfaded."""
    x = clip.audio.astype(np.float64)
    fade = min(int(BED_CROSSFADE_S * SAMPLE_RATE), len(x) // 4)
    start = int(rng.integers(len(x)))
    if len(x) - start <= fade:  # too little left to crossfade into the next loop: start from the top
        start = 0
    out = np.zeros(n + len(x))
    pos, seg = 0, x[start:]
    ramp = np.linspace(0, 1, fade) if fade else np.zeros(0)
    while pos < n:
        seg = seg.copy()
        if pos and fade:
            seg[:fade] *= ramp
            out[pos - fade : pos] *= ramp[::-1]
            pos -= fade
        out[pos : pos + len(seg)] += seg
        pos += len(seg)
        seg = x
    return out[:n]


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x))) + 1e-20


def synthesize_real_run(spec: RunSpec, steps: dict[str, list[Clip]], beds: Sequence[Clip], speech: Sequence[Clip],
                        seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """One run -> (audio float32 at SAMPLE_RATE, step times s, info). Deterministic in (spec, clips, seconds, seed)."""
    from train.data.synth import CTRL_RATE, cadence_curve, make_plan, sample_runner, step_times

    runner = replace(sample_runner(seed, spec.index), run_spm=spec.spm)
    prng, srng, rng = _rng(seed, 1, spec.index), _rng(seed, 2, spec.index), _rng(seed, 3, spec.index)
    n = int(round(seconds * SAMPLE_RATE))
    n_ctrl = int(np.ceil(seconds * CTRL_RATE)) + 1
    plan = make_plan(prng, runner, spec.plan_surface, seconds)
    cad = cadence_curve(plan, n_ctrl, prng, ramp_s=float(prng.uniform(3, 6)))
    times, feet = step_times(cad, seconds, srng, runner.stride_cv, runner.stride_rho, runner.lr_timing)

    # steps: a recorded one-shot per step, onset on the step time
    pool = steps[spec.group]
    near_foot = int(rng.integers(2))
    far_db = float(rng.uniform(*FAR_FOOT_DB))
    track = np.zeros(n + SAMPLE_RATE * 2)
    used: set[str] = set()
    for t, foot in zip(times, feet):
        c = pool[int(rng.integers(len(pool)))]
        used.add(c.clip_id)
        gain_db = (0.0 if foot == near_foot else -far_db) + rng.normal(0.0, STEP_JITTER_DB)
        s = int(round(t * SAMPLE_RATE)) - int(round(c.onset_s * SAMPLE_RATE))
        x = c.audio.astype(np.float64) * 10 ** (gain_db / 20)
        if s < 0:
            x, s = x[-s:], 0
        track[s : s + len(x)] += x
    track = track[:n]

    # beds: one ambience or wind bed, often a second; speech sometimes
    k = 1 + int(rng.random() < 0.5)
    picks = [beds[int(i)] for i in rng.choice(len(beds), size=min(k, len(beds)), replace=False)]
    bed = np.zeros(n)
    for j, c in enumerate(picks):
        bed += _bed(rng, c, n) * (10 ** (-rng.uniform(0, 8) / 20) if j else 1.0)
    talk = []
    if speech and rng.random() < SPEECH_P:
        sp = np.zeros(n)
        for _ in range(int(rng.integers(2, 6))):
            c = speech[int(rng.integers(len(speech)))]
            s = int(rng.integers(max(1, n - len(c.audio))))
            seg = c.audio[: n - s].astype(np.float64)
            sp[s : s + len(seg)] += seg
            talk.append(c.clip_id)
        bed += sp * np.sqrt(_power(bed) / _power(sp)) * 10 ** (rng.uniform(*SPEECH_DB) / 20)

    # the phone's band, then the SNR (step power vs beds, as the phone hears them), then the level
    hp = signal.butter(2, float(rng.uniform(*HP_HZ)), "highpass", fs=SAMPLE_RATE, output="sos")
    lp = signal.butter(4, float(rng.uniform(*LP_HZ)), "lowpass", fs=SAMPLE_RATE, output="sos")
    track = signal.sosfilt(lp, signal.sosfilt(hp, track))
    bed = signal.sosfilt(lp, signal.sosfilt(hp, bed))
    bed *= np.sqrt(_power(track) / _power(bed) / 10 ** (spec.snr_db / 10))
    mix = track + bed
    mix *= 10 ** (spec.level_dbfs / 20) / np.sqrt(_power(mix))
    clipped = float(np.mean(np.abs(mix) > 1.0))
    audio = np.clip(mix, -1.0, 1.0).astype(np.float32)
    info = {
        "run_id": spec.run_id, "group": spec.group, "package": spec.group.split(":", 1)[0], "spm_target": spec.spm,
        "snr_db": spec.snr_db, "level_dbfs": spec.level_dbfs, "plan_surface": spec.plan_surface, "fold": spec.fold,
        "steps": int(len(times)), "mean_spm": round(60.0 * len(times) / seconds, 2), "far_foot_db": round(far_db, 2),
        "step_clips": sorted(used), "beds": [c.clip_id for c in picks], "speech": talk, "clipped_fraction": round(clipped, 6),
        "packages": sorted({c.split(":", 1)[0] for c in [*used, *(b.clip_id for b in picks), *talk]}),
        "feet": "".join("LR"[int(f)] for f in feet),
    }
    return audio, times, info


def build_realset(out: str | Path, sounds: str | Path | None = None, n_runs: int = N_RUNS, seconds: float = RUN_SECONDS,
                  seed: int = SEED, force: bool = False, progress: Optional[Callable[[str, int, int], None]] = None,
                  split: str = "eval") -> Path:
    """Write a real-sound set of ``split``'s packages to ``out`` (contract 5) -> ``out``: the
    evaluation set (``eval``) or the validation set (``val``). Refuses to overwrite without ``force``."""
    from train.data.recordings import Recording, write_manifest
    from train.data.synth import write_audio, write_steps

    out = Path(out)
    if not MIN_RUN_SECONDS <= seconds <= MAX_RUN_SECONDS:  # NaN too
        raise RealsetError(f"--seconds {seconds:g}: runs need at least {MIN_RUN_SECONDS:g} s (the metrics use 5- and 10-s "
                           f"windows) and at most {MAX_RUN_SECONDS:g} s")
    if out.exists() and any(out.iterdir()) and not force:
        raise RealsetError(f"{out} exists and is not empty; give --force to replace it")
    sounds = Path(sounds) if sounds is not None else default_root()
    steps, beds, speech = eval_clips(sounds, split)
    specs = plan_realset(list(steps), n_runs, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (tmp / "audio").mkdir()
        (tmp / "steps").mkdir()
        recs, infos = [], []
        for spec in specs:
            if progress:
                progress(spec.run_id, spec.index, len(specs))
            audio, times, info = synthesize_real_run(spec, steps, beds, speech, seconds, seed)
            write_audio(tmp / "audio" / f"{spec.run_id}.flac", audio)
            write_steps(tmp / "steps" / f"{spec.run_id}.csv", times, info.pop("feet"))
            surface = spec.group.split(":", 1)[1]
            recs.append(Recording(spec.run_id, spec.run_id, tmp / "audio" / f"{spec.run_id}.flac",
                                  tmp / "steps" / f"{spec.run_id}.csv", surface, info["package"], spec.fold))
            infos.append(info)
        if progress:
            progress("", len(specs), len(specs))
        write_manifest(tmp, recs)  # paths relative to the folder: valid after the move
        with (tmp / "runs.jsonl").open("w") as f:
            for info in infos:
                f.write(json.dumps(info) + "\n")
        used = sorted({p for i in infos for p in i["packages"]})
        idx = {p: json.loads((sounds / p / "index.json").read_text()) for p in used if (sounds / p / "index.json").is_file()}
        meta = {
            "builder": "train.data.realset", "seed": seed, "runs": n_runs, "seconds": seconds,
            "spm": SPM, "snr_db": SNR_DB, "level_dbfs": LEVEL_DBFS, "far_foot_db": FAR_FOOT_DB, "step_jitter_db": STEP_JITTER_DB,
            "split": split, "packages": {p: {"version": idx[p]["version"] if p in idx else "", "split": split,
                                              "licence": sorted({c["licence"] for c in idx[p]["clips"]}) if p in idx else []} for p in used},
            "sounds_manifest_sha256": file_sha256(sounds / SOUNDS_MANIFEST),
            "groups": list(steps),
        }
        (tmp / META).write_text(json.dumps(meta, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def check_realset(root: str | Path) -> list[str]:
    """Packages a real-sound set names that are not of its split (empty: clean): every package of an
    evaluation set is an ``eval`` one; a validation set's footsteps are ``val`` packages, its beds ``train`` ones."""
    root = Path(root)
    reg = registry()
    names: set[str] = set()
    meta = json.loads((root / META).read_text())
    split = meta.get("split", "eval")
    steps: set[str] = set()
    names.update(meta["packages"])
    with (root / "runs.jsonl").open() as f:
        for line in f:
            info = json.loads(line)
            names.update(info["packages"])
            names.update(c.split(":", 1)[0] for c in info["step_clips"] + info["beds"] + info["speech"])
            steps.update(c.split(":", 1)[0] for c in info["step_clips"])
    # an evaluation set is all eval packages; a validation set's steps are val packages, its beds train ones
    allowed = {p: ({split} if split == "eval" or p in steps else {"train"}) for p in names}
    bad = []
    for p in sorted(names):
        if p in reg and reg[p].split not in allowed[p]:
            bad.append(f"{p}: split {reg[p].split}")
        try:
            check_not_reserved(p)
        except SoundsError as e:
            bad.append(str(e))
    return bad


def dataset_digest(root: str | Path) -> str:
    """sha256 over the audio and steps files of a set (determinism checks)."""
    root = Path(root)
    h = hashlib.sha256()
    for p in sorted(list((root / "audio").glob("*")) + list((root / "steps").glob("*"))):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()
