"""Distillation of a teacher into a small student with pseudo-strong labels (PSL).

A student (MobileNetV2 at a width multiplier, or Cnn6) sees short windows (2.4 s, the streaming
window of ``edge``) and learns, per output frame (25 /s), the probability that a step lands
there. Its targets, per window of ``W'`` output frames:

- ``p`` (W',): the teacher's step probabilities (``train.distill.psl``: ``sigmoid`` of its
  committed logits), on every run, labeled or not;
- ``y`` (W',): the true steps per frame, from the step times, on labeled runs.

The loss of a batch is one visible weighted sum (:func:`distill_loss`). With ``L`` its windows of
labeled runs, ``U`` those of unlabeled runs and ``B = |L| + |U|``::

    loss = |L| / B * (alpha * soft_bce(z_L, p_L) + (1 - alpha) * ShiftTolerantBCE(z_L, y_L))
         + |U| / B * soft_bce(z_U, p_U)

``soft_bce`` compares the logits ``z`` with the teacher's probabilities frame by frame,
``ShiftTolerantBCE`` with the true step frames, forgiving a frame of jitter
(:mod:`train.fit.losses`). ``alpha`` is the PSL paper's mix (its Table 3); unlabeled runs are
PSL only (alpha = 1). For the ablation a student can also learn without a teacher:
``labels="true"`` is the true step frames alone (alpha = 0), ``labels="weak"`` the step count of
each window alone, through the sum of its probabilities (:func:`train.fit.losses.weak_count_loss`).

Unlabeled runs come from the training groups only (runner independence: never a test or
validation runner's audio). Students are evaluated like every model here: their step events
(``edge.counter``) on the test runs' non-overlapping 5-s windows (:func:`evaluate`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from edge.contract import DENSITY_FPS, DENSITY_STRIDE, EVAL_WINDOW_FRAMES, EVAL_WINDOW_S
from edge.counter import CounterParams, count_events
from edge.frontend import FRAMES_PER_SECOND, HOP_LENGTH, LOG_EPS, N_MELS, log_mel
from edge.util import write_json
from train.data.recordings import Recording
from train.distill.psl import PSL_VERSION, PSLError, Predictor, committed_logits, load_labels, load_provenance, window_events
from train.fit.config import ConfigError, TrainConfig, _check_choice, split_list
from train.fit.losses import ShiftTolerantBCE, soft_bce, weak_count_loss
from train.fit.trainer import Task, barrier, fit, open_run

log = logging.getLogger("footfall.distill")

LABEL_KINDS = ("psl", "true", "weak")
STUDENTS = ("mobilenetv2", "cnn6")


# --------------------------------------------------------------------------- the loss


def check_alpha(alpha: float) -> float:
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1] (1 = the teacher's probabilities only, 0 = the true step frames only), got {alpha}")
    return float(alpha)


def distill_loss(
    logits: torch.Tensor,
    probs: torch.Tensor,
    steps: torch.Tensor,
    labeled: torch.Tensor,
    alpha: float,
    bce: ShiftTolerantBCE | None = None,
) -> torch.Tensor:
    """The PSL paper's teacher/label mix on step frames (the module docstring's sum).

    logits (B, T') the student's; probs (B, T') the teacher's step probabilities; steps (B, T')
    true steps per frame; labeled (B,) 1 for a window of a labeled run (or a quiet window), 0
    for one of an unlabeled run; alpha in [0, 1]. Each group's term is the plain loss of its
    windows, weighed by its share of the batch, so a window counts as much whatever its batch holds.
    """
    check_alpha(alpha)
    bce = bce or ShiftTolerantBCE()
    lab = labeled > 0.5
    n, n_lab = logits.shape[0], int(lab.sum())
    loss = logits.new_zeros(())
    if n_lab:
        z, p, y = logits[lab], probs[lab], steps[lab]
        loss = loss + n_lab / n * (alpha * soft_bce(z, p) + (1 - alpha) * bce(z, y))
    if n_lab < n:
        loss = loss + (n - n_lab) / n * soft_bce(logits[~lab], probs[~lab])
    return loss


def unpack(target: torch.Tensor, n_frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, 2 T' + 1) -> teacher probabilities (B, T'), true steps per frame (B, T'), labeled (B,)."""
    if target.shape[-1] != 2 * n_frames + 1:
        raise ValueError(f"packed target of {target.shape[-1]} values for {n_frames} output frames; expected {2 * n_frames + 1}")
    return target[:, :n_frames], target[:, n_frames : 2 * n_frames], target[:, 2 * n_frames]


class PackedLoss:
    """``loss_fn(logits, packed_target)`` for ``train.fit.trainer.train_step``: the loss of ``labels``.

    psl: :func:`distill_loss` at ``alpha``; true: the same at alpha = 0 (no teacher term); weak:
    each window's step count through the sum of its probabilities (``weak_count_loss``).
    """

    def __init__(self, alpha: float, labels: str = "psl") -> None:
        _check_choice("labels", labels, LABEL_KINDS)
        self.labels = labels
        self.alpha = check_alpha(alpha) if labels == "psl" else 0.0
        self.bce = ShiftTolerantBCE()

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        probs, steps, labeled = unpack(target, logits.shape[1])
        if self.labels == "weak":
            return weak_count_loss(logits, steps.sum(dim=-1))
        return distill_loss(logits, probs, steps, labeled, self.alpha, self.bce)


# --------------------------------------------------------------------------- targets


def stretch_steps(steps_s: np.ndarray, start: float, rate: float, n_out: int) -> np.ndarray:
    """True steps per output frame of a window read from front-end frame ``start`` at ``rate``
    input frames per output frame: each step moves with the time axis, to output frame
    ``floor((100 t - start) / (4 rate))``; (n_out,) float32. Rate 1 from a whole output frame is
    ``train.data.features.step_frames`` of the window."""
    k = np.floor((np.asarray(steps_s, np.float64) * FRAMES_PER_SECOND - start) / (DENSITY_STRIDE * rate) + 1e-9).astype(np.int64)
    k = k[(k >= 0) & (k < n_out)]
    return np.bincount(k, minlength=n_out).astype(np.float32)


def stretch_probabilities(probs: np.ndarray, start: float, rate: float, n_out: int) -> np.ndarray:
    """The teacher's probabilities of a window read from front-end frame ``start`` at ``rate``; (n_out,) float32.

    Label frame ``m`` (centre at front-end frame ``4 m + 2``) moves with the time axis, as a step
    at its centre would (:func:`stretch_steps`). Frames that land in one output frame (a sped-up
    window) combine as the probability of at least one step, ``1 - prod(1 - p)``; an output frame
    no centre lands in (a slowed window has more frames than its stretch of the run) gets 0. Peaks
    keep their height and place, and rate 1 from a whole output frame is the plain slice.
    """
    p = np.asarray(probs, np.float64)
    m0 = max(0, int(math.floor(start / DENSITY_STRIDE)) - 1)
    m1 = min(len(p), int(math.ceil((start + n_out * DENSITY_STRIDE * rate) / DENSITY_STRIDE)) + 1)
    m = np.arange(m0, m1)
    k = np.floor((DENSITY_STRIDE * m + DENSITY_STRIDE / 2 - start) / (DENSITY_STRIDE * rate) + 1e-9).astype(np.int64)
    keep = (k >= 0) & (k < n_out)
    log_miss = np.zeros(n_out)
    with np.errstate(divide="ignore"):  # p = 1: log(0) = -inf, a certain step
        np.add.at(log_miss, k[keep], np.log1p(-np.clip(p[m[keep]], 0.0, 1.0)))
    return (1.0 - np.exp(log_miss)).astype(np.float32)


QUIET_DBFS = (-120.0, -50.0)  # white-noise levels of the quiet windows (a phone's self-noise to a quiet room)
QUIET_ZERO_SHARE = 0.25  # of the quiet windows: digital silence (a muted or gated microphone)


def quiet_logmels(n: int, window_frames: int, seed: int) -> np.ndarray:
    """``n`` step-free log-mel windows (n, 64, window_frames): digital silence or white noise at
    ``QUIET_DBFS`` (level per window), through the one front end.

    The synthetic runs are never quiet, so a student never sees a phone lying still: one shipped
    candidate counted 16.7 steps in 10 s of digital silence. Training on these at zero steps
    teaches it that no sound is no step.
    """
    rng = np.random.default_rng([seed, 0x51E7])
    out = np.empty((n, N_MELS, window_frames), dtype=np.float32)
    for i in range(n):
        if rng.random() < QUIET_ZERO_SHARE:
            pcm = np.zeros(window_frames * HOP_LENGTH, dtype=np.float32)
        else:
            level = 10 ** (rng.uniform(*QUIET_DBFS) / 20)
            pcm = (rng.standard_normal(window_frames * HOP_LENGTH) * level).astype(np.float32)
        out[i] = log_mel(pcm)
    return out


class DistillWindows(Dataset):
    """Short student windows with their frame targets.

    ``ds[i] -> (x (1, 64, W), target (2 W' + 1,))``, ``W' = W // 4`` output frames, with target =
    [teacher probabilities (W') | true steps per frame (W') | labeled]: one tensor, so the
    trainer's ``train_step`` carries it; :func:`unpack` splits it. Windows lie on a
    ``hop_frames`` grid over each run's whole output frames. A run without teacher labels
    (``probs[r]`` None: true or weak labels) has zero probabilities; an unlabeled run
    (``steps[r]`` None) zero step frames and labeled 0. ``quiet_fraction`` adds step-free quiet
    windows (:func:`quiet_logmels`) after the run windows: labeled, every target 0.

    ``stretch`` > 0 reads each run window at a random rate (:meth:`_stretched`), its targets moved
    to match (:func:`stretch_steps`, :func:`stretch_probabilities`).
    """

    def __init__(
        self,
        recs: Sequence[Recording],
        logmels: Sequence[np.ndarray],
        probs: Sequence[np.ndarray | None],
        steps: Sequence[np.ndarray | None],
        window_frames: int,
        hop_frames: int,
        quiet_fraction: float = 0.0,
        seed: int = 0,
        stretch: float = 0.0,
    ) -> None:
        from train.data.features import step_frames

        if not 0.0 <= stretch < 1.0:
            raise ValueError(f"stretch {stretch}: must be in [0, 1)")
        if window_frames % DENSITY_STRIDE or hop_frames % DENSITY_STRIDE or hop_frames <= 0:
            raise ValueError(f"window ({window_frames}) and hop ({hop_frames}) must be positive multiples of {DENSITY_STRIDE} frames")
        if not len(recs) == len(logmels) == len(probs) == len(steps):
            raise ValueError(f"{len(recs)} runs, {len(logmels)} log-mels, {len(probs)} label tracks, {len(steps)} step lists")
        self.recs = list(recs)
        self.window_frames, self.hop_frames, self.stretch = window_frames, hop_frames, stretch
        self.window_d = wd = window_frames // DENSITY_STRIDE
        self._mels, self._probs, self._frames, self._steps, self._labeled = [], [], [], [], []
        index = []
        for r, (rec, mel, p, st) in enumerate(zip(recs, logmels, probs, steps)):
            d = mel.shape[1] // DENSITY_STRIDE
            if p is not None and len(p) != d:
                raise PSLError(f"run {rec.run_id!r}: {len(p)} label frames for {d} output frames of audio; relabel its dataset")
            self._mels.append(torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32)))
            self._probs.append(torch.from_numpy(np.ascontiguousarray(p, dtype=np.float32)) if p is not None else torch.zeros(d))
            self._frames.append(torch.from_numpy(step_frames(st, d, fps=DENSITY_FPS)) if st is not None else torch.zeros(d))
            self._steps.append(None if st is None else np.asarray(st, np.float64))
            self._labeled.append(torch.tensor([0.0 if st is None else 1.0]))
            starts = np.arange(0, d * DENSITY_STRIDE - window_frames + 1, hop_frames, dtype=np.int64)
            index.append(np.stack([np.full(len(starts), r), starts], axis=1))
        self.n_runs = len(self._mels)
        n_run = sum(len(i) for i in index)
        self.n_quiet = int(round(quiet_fraction * n_run))
        if self.n_quiet:
            for q in quiet_logmels(self.n_quiet, window_frames, seed):
                self._mels.append(torch.from_numpy(q))
                self._probs.append(torch.zeros(wd))
                self._frames.append(torch.zeros(wd))
                self._steps.append(np.zeros(0))
                self._labeled.append(torch.tensor([1.0]))
            index.append(np.stack([self.n_runs + np.arange(self.n_quiet), np.zeros(self.n_quiet, np.int64)], axis=1))
        self.index = np.concatenate(index) if index else np.zeros((0, 2), np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def n_unlabeled(self) -> int:
        """Windows of unlabeled runs (PSL only)."""
        labeled = np.array([float(f) for f in self._labeled])
        return int((labeled[self.index[:, 0]] == 0).sum())

    def _target(self, r: int, d: int, probs: torch.Tensor | None = None, frames: torch.Tensor | None = None) -> torch.Tensor:
        wd = self.window_d
        p = self._probs[r][d : d + wd] if probs is None else probs
        y = self._frames[r][d : d + wd] if frames is None else frames
        return torch.cat([p, y, self._labeled[r]])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        r, s = (int(v) for v in self.index[i])
        if self.stretch and r < self.n_runs:
            return self._stretched(r, s)
        return self._mels[r][:, s : s + self.window_frames].unsqueeze(0), self._target(r, s // DENSITY_STRIDE)

    def _stretched(self, r: int, s: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The window read at a random rate: ``rate`` input frames per output frame, log-uniform
        in [1/(1 + stretch), 1 + stretch], centred on the window; its targets moved with the time
        axis, so a window played 10 % faster shows its runner at 10 % more steps per second and is
        labeled so. Impacts get 10 % shorter too, which a real runner's do not; kept small, it
        widens the cadences a student sees beyond its training runners'. Draws from torch's RNG
        (checkpointed on CPU, 0 workers)."""
        w, mel = self.window_frames, self._mels[r]
        avail = mel.shape[1] // DENSITY_STRIDE * DENSITY_STRIDE  # front-end frames of whole output frames
        rate = math.exp((float(torch.rand(())) * 2 - 1) * math.log1p(self.stretch))
        length = w * rate
        if length > avail:
            return mel[:, s : s + w].unsqueeze(0), self._target(r, s // DENSITY_STRIDE)
        start = min(max(s + (w - length) / 2, 0.0), avail - length)
        pos = start + (torch.arange(w, dtype=torch.float64) + 0.5) * rate - 0.5  # centre of output frame j
        pos = pos.clamp(0, mel.shape[1] - 1)
        i0 = pos.floor().long()
        i1 = (i0 + 1).clamp(max=mel.shape[1] - 1)
        frac = (pos - i0).to(torch.float32)
        x = mel[:, i0] * (1 - frac) + mel[:, i1] * frac
        probs = torch.from_numpy(stretch_probabilities(self._probs[r].numpy(), start, rate, self.window_d))
        steps = self._steps[r]
        frames = torch.from_numpy(stretch_steps(steps, start, rate, self.window_d)) if steps is not None else torch.zeros(self.window_d)
        return x.unsqueeze(0), self._target(r, 0, probs, frames)


def _psl_labels(psl_dir: str | Path | None, data: str | Path, fold: int) -> dict[str, np.ndarray]:
    """The step probabilities in ``psl_dir``, checked to be ``data``'s, by fold ``fold``'s teacher."""
    if psl_dir is None:
        raise PSLError("PSL labels need --psl DIR (made by `footfall psl relabel`)")
    prov = load_provenance(psl_dir)
    if Path(prov.dataset).resolve() != Path(data).resolve():
        raise PSLError(f"{psl_dir}: labels of dataset {prov.dataset}, not {Path(data).resolve()}")
    teacher_fold = prov.teacher_meta.get("fold")
    if teacher_fold is not None and int(teacher_fold) != fold:
        raise PSLError(
            f"{psl_dir}: the teacher was trained on fold {teacher_fold}, whose training runners include fold {fold}'s test runners; "
            f"train fold {teacher_fold}, or relabel with fold {fold}'s teacher"
        )
    return load_labels(psl_dir)


def build_distill_data(
    data: str | Path,
    fold: int,
    split: str,
    labels: str,
    psl_dir: str | Path | None,
    window_frames: int,
    hop_frames: int,
    unlabeled: bool,
    n_folds: int = 5,
    extra: Sequence[tuple[str | Path, str | Path | None]] = (),
    **windows: Any,
) -> DistillWindows:
    """The windows of one side of fold ``fold`` with their targets.

    ``unlabeled`` adds the unlabeled runs of the same side (PSL labels only). The teacher's
    probabilities are read from ``psl_dir`` (labels "psl" only). ``extra`` adds every run of
    other datasets, as ``(dataset, its PSL folder)`` pairs (the folder is not read for true or
    weak labels): extra training data from runners of another population, or step-free runs
    (``train.data.negatives``), who must not run in ``data``. ``windows`` (``quiet_fraction``,
    ``seed``, ``stretch``) go to :class:`DistillWindows`.
    """
    from train.data.features import extra_recordings, fold_recordings, recording_features
    from train.data.recordings import load_dataset

    _check_choice("labels", labels, LABEL_KINDS)
    if unlabeled and labels != "psl":
        raise ValueError(f"unlabeled runs can only be used with PSL labels, not {labels!r}")
    sources = [(data, fold_recordings(data, fold, split, n_folds=n_folds, only_labeled=False), psl_dir)]
    if extra:
        main_runners = {r.runner_id for r in load_dataset(data, n_folds=n_folds)}
        for root, extra_psl in extra:
            try:
                sources.append((root, extra_recordings(root, main_runners), extra_psl))
            except ValueError as e:  # a runner in both datasets: bad input, one line
                raise ConfigError(str(e)) from None
    all_recs, mels, probs, steps = [], [], [], []
    for root, recs, psl_folder in sources:
        if not unlabeled:
            recs = [r for r in recs if r.steps is not None]
        psl = _psl_labels(psl_folder, root, fold) if labels == "psl" else None
        for rec in recs:
            if psl is not None and rec.run_id not in psl:
                raise PSLError(f"run {rec.run_id!r} has no pseudo-strong labels in {psl_folder}; relabel its dataset with `footfall psl relabel`")
            mel, st = recording_features(rec, root)
            all_recs.append(rec)
            mels.append(mel)
            probs.append(psl[rec.run_id] if psl is not None else None)
            steps.append(st)
    return DistillWindows(all_recs, mels, probs, steps, window_frames, hop_frames, **windows)


def augment_batch(x: torch.Tensor, mix_prob: float, mix_db: tuple[float, float], gain_db: float) -> torch.Tensor:
    """Training-time augmentation of a batch of log-mel windows (B, 1, N_MELS, W); targets unchanged.

    Both act on mel power, exactly: a window's power is ``exp(x) - LOG_EPS`` (the front end's
    ``log(mel + LOG_EPS)`` undone).

    - mix: with probability ``mix_prob`` a window gets another window of the batch added at
      ``mix_db`` (uniform, dB of power) below its own level: another runner, a different surface
      and noise faintly under the wearer's steps. The count stays the wearer's, so the student
      learns to count the dominant footfalls, not every impact it hears (a partner alongside).
    - gain: every window scaled by a uniform ``+-gain_db`` dB (arm position, phone AGC).

    Draws from torch's global RNG, which training checkpoints capture, so a resumed run
    augments exactly as an uninterrupted one.
    """
    if mix_prob <= 0 and gain_db <= 0:
        return x
    b = x.shape[0]
    power = (x.exp() - LOG_EPS).clamp_min(0)
    if mix_prob > 0 and b > 1:
        mixed = torch.rand(b, device=x.device) < mix_prob
        other = (torch.arange(b, device=x.device) + torch.randint(1, b, (1,), device=x.device)) % b  # never itself
        level = torch.rand(b, device=x.device) * (mix_db[1] - mix_db[0]) + mix_db[0]
        own = power.mean(dim=(1, 2, 3))
        theirs = power[other].mean(dim=(1, 2, 3)).clamp_min(1e-12)
        g = torch.where(mixed, own / theirs * 10.0 ** (level / 10.0), torch.zeros_like(own))
        power = power + g[:, None, None, None] * power[other]
    if gain_db > 0:
        gain = 10.0 ** ((torch.rand(b, device=x.device) * 2 - 1) * gain_db / 10.0)
        power = power * gain[:, None, None, None]
    return torch.log(power + LOG_EPS)



# --------------------------------------------------------------------------- evaluation


def evaluate(
    model: Predictor,
    recs: Sequence[Recording],
    data: str | Path,
    window_frames: int = EVAL_WINDOW_FRAMES,
    hop_frames: int | None = None,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    fold: int = -1,
    stream: bool = False,
    params: CounterParams | None = None,
):
    """5-s window metrics (MAE, PCC, total-count error ...) of the steps ``model`` counts in the labeled ``recs``.

    Steps are events (``edge.counter``, parameters ``params``), placed on the 25-fps output grid
    and scored on the paper's non-overlapping 5-s windows as the true steps are
    (:func:`train.evaluate.metrics.evaluate_runs`). The model runs either on non-overlapping
    windows of ``window_frames``, each counted on its own (:func:`train.distill.psl.window_events`;
    500 frames is the paper's protocol and the training loop's validation), or, with
    ``stream=True``, as the edge runtime runs it: windows every ``hop_frames`` committing their
    centre hop, the committed track counted as one stream (:func:`train.distill.psl.committed_logits`:
    what a phone running the model with that window and hop counts). ``model`` may be any
    callable (B, 1, 64, W) -> (B, W // 4) logits: an eval-mode module, or a converted int8 PT2E
    graph of fixed W.
    """
    from train.data.features import recording_features, step_frames
    from train.evaluate.metrics import evaluate_runs
    from train.evaluate.predict import event_frames

    if not stream and hop_frames not in (None, window_frames):
        raise ValueError(f"hop {hop_frames}: windows counted on their own do not overlap; pass stream=True to run at a hop")
    preds, trues = [], []
    for rec in recs:
        mel, steps = recording_features(rec, data, mmap=True)
        if steps is None:
            continue
        d = mel.shape[1] // DENSITY_STRIDE
        if stream:
            events = count_events(committed_logits(model, mel, window_frames, hop_frames or window_frames, batch_size, device), params)
        else:
            events = window_events(model, mel, window_frames, batch_size, device, params)
        preds.append(event_frames(events, d, fps=DENSITY_FPS))
        trues.append(step_frames(steps, d, fps=DENSITY_FPS))
    return evaluate_runs(preds, trues, window_frames=EVAL_WINDOW_S * DENSITY_FPS, fps=DENSITY_FPS, fold=fold)


# --------------------------------------------------------------------------- config


# the shipped student: MobileNetV2 at width 0.35 with expansion 4 (not 6), without the 320-channel
# row, a 160-channel last conv: 0.18 M parameters (docs/EXPERIMENTS.md)
SHIPPED_STUDENT: dict[str, Any] = {
    "width": 0.35,
    "last_channels": 160,
    "blocks": ((1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 3, 2), (4, 64, 4, 2), (4, 96, 3, 1), (4, 160, 3, 2)),
}


@dataclass
class DistillConfig(TrainConfig):
    """A student training run: :class:`train.fit.config.TrainConfig` plus what distillation adds.

    The inherited fields keep their meaning (optimizer, schedule, early stopping, runtime, DDP);
    ``window_s`` is the student's window and ``train_hop_s`` the grid of its training windows.
    Validation (model selection) uses the paper's 5-s windows of the validation runs.
    """

    # the defaults are the shipped student's architecture and window (train/recipes/*.yaml add the data,
    # the preset and, for the PSL variant, the PSL folders)
    model: str = "mobilenetv2"
    model_args: dict[str, dict[str, Any]] = field(default_factory=lambda: {"mobilenetv2": dict(SHIPPED_STUDENT)})
    out: str = "runs/distill"
    window_s: float = 2.4  # the shipped student's window (240 frames)
    train_hop_s: float | None = 2.4
    batch_size: int = 64
    epochs: int = 17
    early_stop_patience: int = 12
    psl: str = ""  # PSL folder (footfall psl relabel); needed for labels="psl"
    extra_psl: str = ""  # comma-separated PSL folders of the extra_train datasets, in their order (labels="psl")
    labels: str = "psl"  # psl | true | weak (the last two without a teacher, for the ablation)
    alpha: float = 0.5  # weight of the teacher's probabilities; 1 - alpha on the true step frames (labeled runs; PSL paper, Table 3)
    unlabeled: bool = True  # add the unlabeled runs of the training groups (PSL only)
    val_window_s: float = 5.0  # model selection on the paper's windows
    stream_hop_s: float = 2.0  # hop of the streaming evaluation and of the exported cards (a multiple of 40 ms)
    ema_decay: float = 0.0  # exponential moving average of the weights (0: off); validation, best.pt and the test use it
    quiet_fraction: float = 0.0  # extra step-free quiet windows (silence, a mic's noise floor) per run window, every target 0
    mix_prob: float = 0.0  # share of training windows mixed with another window of the batch (augment_batch)
    mix_db_low: float = -20.0  # level of the mixed-in window against the window: uniform in [low, high] dB
    mix_db_high: float = -8.0
    gain_db: float = 0.0  # random gain of every training window, uniform in +-gain_db dB (augment_batch)
    stretch: float = 0.0  # training windows read at a random rate in [1/(1+s), 1+s], frame targets moved to match (DistillWindows)
    init: str = ""  # fine-tune: start from this student checkpoint's weights (same model and config; fresh optimizer, schedule, epochs)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("labels", self.labels, LABEL_KINDS)
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay: {self.ema_decay}; must be in [0, 1) (0 = no weight averaging, e.g. 0.99)")
        if not 0.0 <= self.quiet_fraction <= 0.5:
            raise ConfigError(f"quiet_fraction: {self.quiet_fraction}; must be in [0, 0.5] (quiet windows per run window, e.g. 0.05)")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha: {self.alpha}; must be in [0, 1] (1 = the teacher's probabilities only, 0 = the true step frames only)")
        if not 0.0 <= self.mix_prob <= 1.0:
            raise ConfigError(f"mix_prob: {self.mix_prob}; must be in [0, 1] (share of training windows mixed with another, e.g. 0.5)")
        if not self.mix_db_low <= self.mix_db_high <= 0.0:
            raise ConfigError(
                f"mix_db_low, mix_db_high: {self.mix_db_low}, {self.mix_db_high}; need low <= high <= 0 dB (the mixed-in window is the quieter one)"
            )
        if not 0.0 <= self.stretch <= 0.5:
            raise ConfigError(f"stretch: {self.stretch}; must be in [0, 0.5] (rate change of the training windows, e.g. 0.15)")
        if not 0.0 <= self.gain_db <= 40.0:
            raise ConfigError(f"gain_db: {self.gain_db}; must be in [0, 40] dB (random gain of +-gain_db, e.g. 6)")
        if self.labels == "psl" and not self.psl:
            raise ConfigError("psl: PSL labels need a PSL folder (--psl DIR, made by `footfall psl relabel`)")
        if self.unlabeled and self.labels != "psl":
            raise ConfigError(f"unlabeled: runs without steps can only be trained on PSL labels, not {self.labels!r}; set unlabeled=false")
        for name in ("window_s", "val_window_s", "stream_hop_s"):
            frames = getattr(self, name) * FRAMES_PER_SECOND
            if round(frames) <= 0 or abs(frames - round(frames)) > 1e-6 or round(frames) % DENSITY_STRIDE:
                raise ConfigError(f"{name}: {getattr(self, name)}; must be a positive multiple of 40 ms (4 front-end frames)")
        if self.hop_frames % DENSITY_STRIDE:
            raise ConfigError(f"train_hop_s: {self.train_hop_s}; must be a multiple of 40 ms (4 front-end frames)")
        if self.stream_hop_s > self.window_s:
            raise ConfigError(f"stream_hop_s: {self.stream_hop_s} is longer than the window {self.window_s}")
        if self.labels == "psl" and len(self.extra_psl_dirs) != len(self.extra_roots):
            raise ConfigError(
                f"extra_psl: {len(self.extra_psl_dirs)} PSL folder(s) for {len(self.extra_roots)} extra_train dataset(s); "
                "relabel each extra dataset with the same teacher (`footfall psl relabel`) and list the folders in the same order"
            )

    @property
    def extra_psl_dirs(self) -> list[str]:
        """The ``extra_psl`` folders, in order."""
        return split_list(self.extra_psl)

    def extra_sources(self) -> list[tuple[str, str | None]]:
        """(dataset, PSL folder or None) of every extra training dataset (build_distill_data's ``extra``)."""
        psl = self.extra_psl_dirs if self.labels == "psl" else [None] * len(self.extra_roots)
        return list(zip(self.extra_roots, psl))

    @property
    def val_window_frames(self) -> int:
        return round(self.val_window_s * FRAMES_PER_SECOND)

    @property
    def stream_hop_frames(self) -> int:
        return round(self.stream_hop_s * FRAMES_PER_SECOND)


# Presets (``--preset``): runtime and schedule only; the student, labels and data stay the caller's.
# cpu: MobileNetV2 x0.5 trains at roughly 30 two-second windows/s on 2 cores (fp32, batch 64), so
# non-overlapping training windows and a short schedule keep one student near 15-20 minutes on the
# default synthetic set (~4,300 windows per fold). gpu: overlapping windows, a long schedule.
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"batch_size": 8, "epochs": 1, "max_steps": 4, "device": "auto", "threads": 1, "progress": False, "tensorboard": False,
              "model_args": {"mobilenetv2": {"width": 0.25, "head_channels": 16, "head_dilations": [1]}}},
    "cpu": {"train_hop_s": 2.0, "batch_size": 64, "epochs": 8, "plateau_patience": 2, "early_stop_patience": 4, "device": "cpu",
            "precision": "fp32", "threads": 0},
    "gpu": {"train_hop_s": 0.5, "batch_size": 64, "epochs": 80, "early_stop_patience": 15, "device": "cuda", "precision": "auto", "num_workers": -1},
}


def load_distill_config(preset_name: str | None = None, path: str | Path | None = None, overrides: dict[str, Any] | list[str] | None = None) -> DistillConfig:
    """Defaults <- a preset of :data:`PRESETS` <- YAML file <- overrides -> a checked DistillConfig."""
    from train.fit.config import apply_overrides, merge, read_yaml

    values: dict[str, Any] = {}
    where = "distill config"
    if preset_name:
        if preset_name not in PRESETS:
            raise ConfigError(f"preset {preset_name!r}: unknown; expected one of {', '.join(PRESETS)}")
        values, where = merge(values, PRESETS[preset_name]), f"preset {preset_name}"
    if path is not None:
        values, where = merge(values, read_yaml(path)), str(path)
    if overrides:
        values = apply_overrides(values, overrides)
    return DistillConfig.from_dict(values, where=where)


# --------------------------------------------------------------------------- training


@dataclass
class DistillResult:
    out: Path
    best_path: Path
    best_val_mae: float
    best_epoch: int
    stop_reason: str
    test: dict  # {"direct": FoldResult dict, "stream": FoldResult dict}


def student_task(cfg: DistillConfig) -> Task:
    """A student for :func:`train.fit.trainer.fit`: its windows and frame targets, the teacher/label
    loss, batch augmentation, the weight average, the init weights, and what ``best.pt`` says.
    Validation counts the events of the validation runs' 5-s windows (the loop's ``predict_counts``)."""
    from train.data.features import fold_windows
    from train.fit.dataset import WindowDataset

    train_ds = build_distill_data(
        cfg.data, cfg.fold, "train", cfg.labels, cfg.psl or None, cfg.window_frames, cfg.hop_frames, cfg.unlabeled, cfg.n_folds,
        extra=cfg.extra_sources(), quiet_fraction=cfg.quiet_fraction, seed=cfg.seed, stretch=cfg.stretch,
    )
    val_ds = WindowDataset(fold_windows(cfg.data, cfg.fold, cfg.val_window_frames, None, split="val", n_folds=cfg.n_folds), "count")
    if len(val_ds) == 0:
        raise ConfigError(f"fold {cfg.fold}: no validation windows of {cfg.val_window_s:g} s")
    mix = f"alpha {cfg.alpha:g}, unlabeled {cfg.unlabeled}" if cfg.labels == "psl" else "no teacher"
    summary = (f"{cfg.model} on fold {cfg.fold}, {cfg.labels} labels ({mix}): {len(train_ds)} train windows of {cfg.window_s:g} s "
               f"({train_ds.n_unlabeled()} of unlabeled runs, {train_ds.n_quiet} quiet), {len(val_ds)} val windows of {cfg.val_window_s:g} s")

    def augment(x: torch.Tensor) -> torch.Tensor:
        return augment_batch(x, cfg.mix_prob, (cfg.mix_db_low, cfg.mix_db_high), cfg.gain_db)

    return Task(
        train_ds, val_ds, summary, loss_fn=PackedLoss(cfg.alpha, cfg.labels), true_counts=None, augment=augment, ema_decay=cfg.ema_decay,
        init=(lambda model: _init_weights(model, cfg.init)) if cfg.init else None,
        windows={"window_s": cfg.window_frames, "val_window_s": cfg.val_window_frames}, best_extra=_checkpoint_extra(cfg),
    )


def train_student(cfg: DistillConfig, resume: bool = False, evaluate_test: bool = True) -> DistillResult:
    """Train the student of ``cfg`` on its labels; files go to ``cfg.out``.

    The loop is the teachers' (:func:`train.fit.trainer.fit` with :func:`student_task`): the same
    process group, schedule, checkpoints (``last.pt`` at each epoch end and every
    ``ckpt_every_steps`` steps) and exact resume. Under ``torchrun`` every rank calls this; rank 0
    writes. The best checkpoint (validation 5-s MAE) is scored on the test runs (``test.json``).
    """
    psl = cfg.psl if cfg.labels == "psl" else ""  # weak and true labels never read a PSL folder
    extra_psl = cfg.extra_psl_dirs if cfg.labels == "psl" else []
    checks = [("data", cfg.data), ("psl", psl), *(("extra_train", p) for p in cfg.extra_roots), *(("extra_psl", p) for p in extra_psl)]
    for name, path in checks:
        if path and not Path(path).is_dir():
            raise ConfigError(f"{name}: {path}: no such folder")
    if not cfg.data:
        raise ConfigError("data: no dataset folder given (--data DIR)")
    resolve = lambda paths: ",".join(str(Path(p).resolve()) for p in paths)  # noqa: E731
    cfg = cfg.replace(data=str(Path(cfg.data).resolve()), out=str(Path(cfg.out).resolve()), psl=str(Path(psl).resolve()) if psl else "",
                      extra_train=resolve(cfg.extra_roots), extra_psl=resolve(extra_psl))
    with open_run(cfg, resume) as run:
        if run.state is None and cfg.init and not Path(cfg.init).is_file():  # before minutes of data loading
            raise ConfigError(f"init: {cfg.init}: no such checkpoint")
        res = fit(cfg, run, lambda: student_task(cfg))
        test = {}
        if evaluate_test and run.env.is_main:
            test = evaluate_checkpoint(res.best_path, cfg)
            write_json(res.out / "test.json", {"config": cfg.to_dict(), "best_epoch": res.best_epoch, "best_val_mae": res.best_val_mae, **test})
            log.info("test 5-s MAE %.3f (stream %.3f), PCC %.3f -> %s", test["direct"]["mae"], test["stream"]["mae"], test["direct"]["pcc"], res.out / "test.json")
        barrier(run.env)
    return DistillResult(res.out, res.best_path, res.best_val_mae, res.best_epoch, res.stop_reason, test)


def _init_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load the weights of the student checkpoint ``path`` into ``model`` (``init``: fine-tuning).

    The checkpoint must hold the same model with the same config; anything else is a one-line
    :class:`ConfigError`, never a half-loaded model. (:func:`train_student` checks that the file
    exists before it loads any data.)
    """
    from train.models import CheckpointError, load_checkpoint

    path = Path(path)
    try:
        init, meta = load_checkpoint(path)
    except FileNotFoundError:
        raise ConfigError(f"init: {path}: no such checkpoint") from None
    except CheckpointError as e:
        raise ConfigError(f"init: {e}") from None
    want = dataclasses.asdict(model.config)
    if meta["name"] != model.name or meta["config"] != want:
        diff = sorted(k for k in want if meta["config"].get(k) != want[k]) if meta["name"] == model.name else ["model"]
        raise ConfigError(f"init: {path} holds {meta['name']} with another config ({', '.join(diff)} differ); fine-tuning needs the same model and model_args")
    model.load_state_dict(init.state_dict())
    log.info("fine-tuning from %s (epoch %s, val 5-s MAE %s)", path, meta.get("epoch", "?"), meta.get("val_mae", "?"))


def _checkpoint_extra(cfg: DistillConfig) -> dict[str, Any]:
    """What a student checkpoint says about itself beyond its weights (plain Python only)."""
    extra: dict[str, Any] = {
        "fold": cfg.fold, "data": cfg.data, "window_s": cfg.window_s, "window_frames": cfg.window_frames,
        "stream_hop_s": cfg.stream_hop_s, "train_config": cfg.to_dict(),
        "distill": {"labels": cfg.labels, "alpha": cfg.alpha, "unlabeled": cfg.unlabeled, "target": "step-onset frames"},
    }
    if cfg.psl:
        prov = load_provenance(cfg.psl)
        extra["distill"].update(psl=cfg.psl, psl_version=PSL_VERSION, teacher=prov.teacher, teacher_sha256=prov.teacher_sha256,
                                teacher_name=prov.teacher_name)
    return extra


def evaluate_checkpoint(path: str | Path, cfg: DistillConfig, split: str = "test", device: str | torch.device = "cpu") -> dict[str, dict]:
    """Score a student checkpoint on one side of its fold, both ways (see :func:`evaluate`)."""
    from train.data.features import fold_recordings
    from train.models import load_checkpoint

    model, _ = load_checkpoint(path, map_location=device)
    recs = fold_recordings(cfg.data, cfg.fold, split, n_folds=cfg.n_folds)
    direct = evaluate(model, recs, cfg.data, cfg.val_window_frames, None, cfg.eval_batch_size, device, cfg.fold)
    stream = evaluate(model, recs, cfg.data, cfg.window_frames, cfg.stream_hop_frames, cfg.eval_batch_size, device, cfg.fold, stream=True)
    return {"direct": dataclasses.asdict(direct), "stream": dataclasses.asdict(stream)}


