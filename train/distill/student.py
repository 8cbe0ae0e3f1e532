"""Distillation of a teacher into a small student with pseudo-strong labels (PSL).

A student (MobileNetV2 at a width multiplier, or Cnn6) sees short windows (2 s by default, the
streaming window of ``edge``) and learns, per *loss segment* of ``segment_s`` seconds inside the
window, the soft step count its labels give that stretch of audio:

    loss = alpha * MSE(seg(pred), seg(psl)) + (1 - alpha) * MSE(seg(pred), seg(weak))

- ``seg(pred)``: the student's density summed over each loss segment (fractional frames exact);
- ``seg(psl)``: the pseudo-strong labels (teacher counts per ``segment_s`` segment), or, for the
  ablation, the weak labels (``labels="weak"``) or the true per-segment counts (``labels="true"``);
- ``seg(weak)``: the run's 5-s window counts spread evenly (the paper's label propagation).

``alpha`` is the PSL paper's mix (its Table 3); labeled runs use it, unlabeled runs (no weak
label) are PSL-only (alpha = 1). Labels are piecewise-constant curves over the run
(:func:`train.distill.psl.label_curve`), so a window need not align with the label segments.

Only frames covered by whole 5-s windows are used, so every label kind sees the same audio.
Unlabeled runs come from the training groups only (runner independence: never a test or
validation runner's audio). Students are evaluated like every model here: on the test runs'
non-overlapping 5-s windows (:func:`evaluate`).
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

from edge.frontend import FRAMES_PER_SECOND, HOP_LENGTH, LOG_EPS, N_MELS, log_mel
from train.fit.config import ConfigError, TrainConfig, _check_choice, split_list
from train.data.recordings import Recording
from edge.contract import DENSITY_STRIDE, EVAL_WINDOW_FRAMES, EVAL_WINDOW_S
from train.distill.psl import (
    DENSITY_FPS,
    PSLError,
    Predictor,
    interval_sums,
    label_curve,
    load_provenance,
    load_segments,
    n_segments,
    predict_track,
    segment_frames,
    segment_matrix,
    true_segments,
    stream_track,
    write_json,
)
from train.fit.trainer import Task, barrier, fit, open_run

log = logging.getLogger("footfall.distill")

WEAK_WINDOW_S = float(EVAL_WINDOW_S)  # the weak label: the paper's 5-s window count
LABEL_KINDS = ("psl", "weak", "true")
STUDENTS = ("mobilenetv2", "cnn6")


# --------------------------------------------------------------------------- the loss


def check_alpha(alpha: float) -> float:
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1] (1 = PSL only, 0 = weak labels only), got {alpha}")
    return float(alpha)


def segment_counts(density: torch.Tensor, seg_matrix: torch.Tensor) -> torch.Tensor:
    """(B, W') density @ (W', S) overlaps -> (B, S) counts per loss segment."""
    return density @ seg_matrix


def distill_loss(
    pred: torch.Tensor,
    psl_seg: torch.Tensor,
    weak_seg: torch.Tensor,
    alpha: torch.Tensor | float,
    seg_matrix: torch.Tensor,
) -> torch.Tensor:
    """The PSL paper's teacher/weak mix on segment counts, one visible weighted sum.

    pred (B, W') student density; psl_seg, weak_seg (B, S) target counts per loss segment;
    alpha () or (B,) in [0, 1] (per sample: unlabeled runs carry alpha = 1); seg_matrix (W', S).
    """
    if isinstance(alpha, (int, float)):
        check_alpha(alpha)  # per-sample tensors come from a checked config (no device sync here)
    seg = segment_counts(pred.float(), seg_matrix)
    mse_psl = (seg - psl_seg).square().mean(dim=1)  # (B,)
    mse_weak = (seg - weak_seg).square().mean(dim=1)
    return (alpha * mse_psl + (1 - alpha) * mse_weak).mean()


# --------------------------------------------------------------------------- targets


def labeled_span(n_frames: int) -> int:
    """Density frames covered by whole 5-s windows of a run of ``n_frames`` front-end frames."""
    weak = segment_frames(WEAK_WINDOW_S)
    return int(n_segments(n_frames // DENSITY_STRIDE, weak) * weak)


@dataclass
class RunTargets:
    """One run's labels as cumulative curves over density frames (see ``train.distill.psl.label_curve``)."""

    primary: tuple[np.ndarray, np.ndarray]  # PSL (or weak / true, for the ablation)
    weak: tuple[np.ndarray, np.ndarray] | None  # 5-s counts spread; None for unlabeled runs
    span: int  # density frames covered by whole 5-s windows


def run_targets(
    rec: Recording,
    n_frames: int,
    steps: np.ndarray | None,
    labels: str,
    segment_s: float,
    psl: dict[str, np.ndarray] | None,
) -> RunTargets:
    """Label curves of one run: ``labels`` in {psl, weak, true} at ``segment_s`` resolution."""
    span = labeled_span(n_frames)
    weak_frames = segment_frames(WEAK_WINDOW_S)
    weak = label_curve(true_segments(steps, span, WEAK_WINDOW_S), weak_frames) if steps is not None else None
    if labels == "psl":
        if psl is None or rec.run_id not in psl:
            raise PSLError(f"run {rec.run_id!r} has no pseudo-strong labels; relabel its dataset with `footfall psl relabel`")
        seg = segment_frames(segment_s)
        counts = psl[rec.run_id][: n_segments(span, seg)]
        primary = label_curve(counts, seg)
    elif labels == "true":
        if steps is None:
            raise ValueError(f"run {rec.run_id!r} is unlabeled; true per-segment counts need step times")
        primary = label_curve(true_segments(steps, span, segment_s), segment_frames(segment_s))
    elif labels == "weak":
        if weak is None:
            raise ValueError(f"run {rec.run_id!r} is unlabeled; weak labels need step times")
        primary = weak
    else:
        raise ValueError(f"labels {labels!r}; expected one of {', '.join(LABEL_KINDS)}")
    return RunTargets(primary, weak, span)


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
    """Short student windows with their segment targets.

    ``ds[i] -> (x (1, 64, W), target (2 S + 1,))`` with target = [psl_seg (S,) | weak_seg (S,) |
    alpha]: S loss segments of ``loss_seg_frames`` density frames from the window start that tile
    the whole window, the last one shorter where the window is not a whole number of segments
    (a 2.4-s window at 1 s: 1 + 1 + 0.4 s). Every density frame a streaming counter may commit
    is trained. (Until 2026-11-30 the partial segment was left out: the last 0.4 s of a 2.4-s
    window had no target, the edge counter committed 0.2 s of it per 2-s hop, and a student
    counted steps there in silence.) One tensor, so the trainer's ``train_step`` carries it;
    :func:`unpack` splits it. Unlabeled runs
    have weak_seg = 0 and alpha = 1. Windows lie on a ``hop_frames`` grid inside each run's
    5-s-window span.
    """

    def __init__(
        self,
        recs: Sequence[Recording],
        logmels: Sequence[np.ndarray],
        targets: Sequence[RunTargets],
        window_frames: int,
        hop_frames: int,
        loss_segment_s: float,
        alpha: float,
        quiet_fraction: float = 0.0,
        seed: int = 0,
        stretch: float = 0.0,
    ) -> None:
        check_alpha(alpha)
        if not 0.0 <= stretch < 1.0:
            raise ValueError(f"stretch {stretch}: must be in [0, 1)")
        if window_frames % DENSITY_STRIDE or hop_frames % DENSITY_STRIDE:
            raise ValueError(f"window ({window_frames}) and hop ({hop_frames}) must be multiples of {DENSITY_STRIDE} frames")
        self.window_frames, self.hop_frames = window_frames, hop_frames
        wd = window_frames // DENSITY_STRIDE
        self.loss_seg_frames = min(segment_frames(loss_segment_s), float(wd))
        self.n_segs = int(math.ceil(wd / self.loss_seg_frames - 1e-9))  # the last one may be partial
        self.seg_matrix = torch.from_numpy(segment_matrix(wd, self.loss_seg_frames, self.n_segs))  # (W', S), clipped at W'
        seg_lo = np.arange(self.n_segs) * self.loss_seg_frames  # loss segments relative to the window
        seg_len = np.minimum(seg_lo + self.loss_seg_frames, wd) - seg_lo

        index, rows = [], []
        for r, t in enumerate(targets):
            starts = np.arange(0, t.span * DENSITY_STRIDE - window_frames + 1, hop_frames, dtype=np.int64)
            if not len(starts):
                continue
            a = (starts // DENSITY_STRIDE)[:, None] + seg_lo[None, :]  # (n, S) density frames
            psl_seg, weak_seg = self._segment_targets(t, a, a + seg_len)
            a_col = np.full((len(starts), 1), alpha if t.weak is not None else 1.0)
            index.append(np.stack([np.full(len(starts), r), starts], axis=1))
            rows.append(np.concatenate([psl_seg, weak_seg, a_col], axis=1))
        self._mels = [torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32)) for m in logmels]
        self._runs = list(targets)
        self.stretch = stretch
        self._seg_lo, self._seg_len = seg_lo, seg_len
        n_run = sum(len(i) for i in index)
        self.n_quiet = int(round(quiet_fraction * n_run))
        if self.n_quiet:
            quiet = quiet_logmels(self.n_quiet, window_frames, seed)
            index.append(np.stack([len(self._mels) + np.arange(self.n_quiet), np.zeros(self.n_quiet, np.int64)], axis=1))
            rows.append(np.concatenate([np.zeros((self.n_quiet, 2 * self.n_segs)), np.full((self.n_quiet, 1), alpha)], axis=1))
            self._mels += [torch.from_numpy(q) for q in quiet]
        self.recs = list(recs)
        self.index = np.concatenate(index) if index else np.zeros((0, 2), np.int64)
        packed = np.concatenate(rows) if rows else np.zeros((0, 2 * self.n_segs + 1))
        self.targets = torch.from_numpy(packed.astype(np.float32))

    def __len__(self) -> int:
        return len(self.index)

    @staticmethod
    def _segment_targets(run: RunTargets, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Label mass of the segments [a, b) (density frames): primary, and weak (0 if unlabeled)."""
        psl = interval_sums(run.primary, a, b)
        return psl, (interval_sums(run.weak, a, b) if run.weak is not None else np.zeros_like(psl))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        r, s = self.index[i]
        if self.stretch and r < len(self._runs):
            return self._stretched(int(r), int(s), self.targets[i])
        return self._mels[r][:, s : s + self.window_frames].unsqueeze(0), self.targets[i]

    def _stretched(self, r: int, s: int, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The window read at a random rate: ``rate`` input frames per output frame, log-uniform
        in [1/(1 + stretch), 1 + stretch], centred on the window; the targets are the label mass
        of the stretched segments (the curves read any interval), so a window played 10 % faster
        shows its runner at 10 % more steps per second and is labeled so. Impacts get 10 % shorter
        too, which a real runner's do not; kept small, it widens the cadences a student sees
        beyond its training runners'. Draws from torch's RNG (checkpointed on CPU, 0 workers)."""
        w, run, mel = self.window_frames, self._runs[r], self._mels[r]
        avail = run.span * DENSITY_STRIDE  # front-end frames under whole 5-s windows
        log_max = math.log1p(self.stretch)
        rate = math.exp((float(torch.rand(())) * 2 - 1) * log_max)
        length = w * rate
        if length > avail:
            return mel[:, s : s + w].unsqueeze(0), target
        start = min(max(s + (w - length) / 2, 0.0), avail - length)
        pos = start + (torch.arange(w, dtype=torch.float64) + 0.5) * rate - 0.5  # centre of output frame j
        pos = pos.clamp(0, mel.shape[1] - 1)
        i0 = pos.floor().long()
        i1 = (i0 + 1).clamp(max=mel.shape[1] - 1)
        frac = (pos - i0).to(torch.float32)
        x = mel[:, i0] * (1 - frac) + mel[:, i1] * frac
        a = start / DENSITY_STRIDE + self._seg_lo * rate  # segment edges in input density frames
        psl, weak = self._segment_targets(run, a, a + self._seg_len * rate)
        n = self.n_segs
        out = target.clone()
        out[:n], out[n : 2 * n] = torch.from_numpy(psl.astype(np.float32)), torch.from_numpy(weak.astype(np.float32))
        return x.unsqueeze(0), out

    def loss_fn(self) -> "PackedLoss":
        return PackedLoss(self.seg_matrix, self.n_segs)


def unpack(target: torch.Tensor, n_segs: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, 2 S + 1) -> psl_seg (B, S), weak_seg (B, S), alpha (B,)."""
    return target[:, :n_segs], target[:, n_segs : 2 * n_segs], target[:, 2 * n_segs]


class PackedLoss:
    """``loss_fn(density, packed_target)`` for ``train.fit.trainer.train_step``: :func:`distill_loss`."""

    def __init__(self, seg_matrix: torch.Tensor, n_segs: int) -> None:
        self.seg_matrix, self.n_segs = seg_matrix, n_segs

    def __call__(self, density: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.seg_matrix.device != density.device:
            self.seg_matrix = self.seg_matrix.to(density.device)
        psl_seg, weak_seg, alpha = unpack(target, self.n_segs)
        return distill_loss(density, psl_seg, weak_seg, alpha, self.seg_matrix)


def _psl_segments(psl_dir: str | Path | None, data: str | Path, fold: int, segment_s: float) -> dict[str, np.ndarray]:
    """The PSL labels of ``segment_s`` in ``psl_dir``, checked to be ``data``'s, by fold ``fold``'s teacher."""
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
    return load_segments(psl_dir, segment_s)


def build_distill_data(
    data: str | Path,
    fold: int,
    split: str,
    labels: str,
    segment_s: float,
    psl_dir: str | Path | None,
    window_frames: int,
    hop_frames: int,
    alpha: float,
    unlabeled: bool,
    n_folds: int = 5,
    extra: Sequence[tuple[str | Path, str | Path | None]] = (),
    **windows: Any,
) -> DistillWindows:
    """The windows of one side of fold ``fold`` with their targets.

    ``unlabeled`` adds the unlabeled runs of the same side (PSL labels only). PSL labels of
    ``segment_s`` are read from ``psl_dir`` (derived from its tracks if that length was not
    written). ``extra`` adds every run of other datasets, as ``(dataset, its PSL folder)``
    pairs (the folder is not read for weak or true labels): extra training data from runners
    of another population, who must not run in ``data``. ``windows`` (``quiet_fraction``,
    ``seed``, ``stretch``) go to :class:`DistillWindows`.
    """
    from train.data.features import extra_recordings, fold_recordings, recording_features
    from train.data.recordings import load_dataset

    check_alpha(alpha)
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
    all_recs, mels, targets = [], [], []
    for root, recs, psl_folder in sources:
        if not unlabeled:
            recs = [r for r in recs if r.steps is not None]
        psl = _psl_segments(psl_folder, root, fold, segment_s) if labels == "psl" else None
        for rec in recs:
            mel, steps = recording_features(rec, root)
            all_recs.append(rec)
            mels.append(mel)
            targets.append(run_targets(rec, mel.shape[1], steps, labels, segment_s, psl))
    return DistillWindows(all_recs, mels, targets, window_frames, hop_frames, segment_s, alpha, **windows)


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
):
    """5-s window metrics (MAE, PCC, total-count error ...) of ``model`` on the labeled ``recs``.

    The model gives a density track per run, which is summed over the paper's non-overlapping 5-s
    windows (:func:`train.evaluate.metrics.evaluate_runs` at 25 frames/s). The track comes either from
    windows of ``window_frames`` at ``hop_frames`` with overlaps averaged
    (:func:`train.distill.psl.predict_track`; ``window_frames=500`` with the default hop is the paper's
    protocol: each 5-s window predicted on its own), or, with ``stream=True``, from the edge
    runtime's streaming alignment (:func:`train.distill.psl.stream_track`: what a phone running the
    model with that window and hop counts). ``model`` may be any callable (B, 1, 64, W) ->
    (B, W // 4): an eval-mode module, or a converted int8 PT2E graph of fixed W.
    """
    from train.data.features import recording_features, step_frames
    from train.evaluate.metrics import evaluate_runs

    hop_frames = window_frames if hop_frames is None else hop_frames
    track_fn = stream_track if stream else predict_track
    preds, trues = [], []
    for rec in recs:
        mel, steps = recording_features(rec, data, mmap=True)
        if steps is None:
            continue
        track = track_fn(model, mel, window_frames, hop_frames, batch_size, device)
        preds.append(track)
        trues.append(step_frames(steps, len(track), fps=DENSITY_FPS))
    return evaluate_runs(preds, trues, window_frames=round(WEAK_WINDOW_S * DENSITY_FPS), fps=DENSITY_FPS, fold=fold)


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

    # the defaults are the shipped student's recipe (docs/EXPERIMENTS.md; scripts/make_model.sh adds
    # only the data, the schedule preset and the PSL folders)
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
    labels: str = "psl"  # psl | weak | true (the last two for the ablation)
    segment_s: float = 1.0  # label resolution = loss segment (clipped to the window)
    alpha: float = 0.5  # weight of the PSL term; 1 - alpha on the weak label (PSL paper, Table 3; 0.5 validated best)
    unlabeled: bool = True  # add the unlabeled runs of the training groups (PSL only)
    val_window_s: float = 5.0  # model selection on the paper's windows
    stream_hop_s: float = 2.0  # hop of the streaming evaluation and of the exported cards (a multiple of 40 ms)
    ema_decay: float = 0.0  # exponential moving average of the weights (0: off); validation, best.pt and the test use it
    quiet_fraction: float = 0.0  # extra step-free quiet windows (silence, a mic's noise floor) per run window, at 0 steps
    mix_prob: float = 0.0  # share of training windows mixed with another window of the batch (augment_batch)
    mix_db_low: float = -20.0  # level of the mixed-in window against the window: uniform in [low, high] dB
    mix_db_high: float = -8.0
    gain_db: float = 0.0  # random gain of every training window, uniform in +-gain_db dB (augment_batch)
    stretch: float = 0.0  # training windows read at a random rate in [1/(1+s), 1+s], labels to match (DistillWindows)
    init: str = ""  # fine-tune: start from this student checkpoint's weights (same model and config; fresh optimizer, schedule, epochs)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("labels", self.labels, LABEL_KINDS)
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay: {self.ema_decay}; must be in [0, 1) (0 = no weight averaging, e.g. 0.99)")
        if not 0.0 <= self.quiet_fraction <= 0.5:
            raise ConfigError(f"quiet_fraction: {self.quiet_fraction}; must be in [0, 0.5] (quiet windows per run window, e.g. 0.05)")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha: {self.alpha}; must be in [0, 1] (1 = PSL only, 0 = weak labels only)")
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
        if self.segment_s <= 0 or abs(self.segment_s * FRAMES_PER_SECOND - round(self.segment_s * FRAMES_PER_SECOND)) > 1e-6:
            raise ConfigError(f"segment_s: {self.segment_s}; must be a positive whole number of 10-ms frames")
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
    """A student for :func:`train.fit.trainer.fit`: its windows and segment targets, the PSL/weak loss,
    batch augmentation, the weight average, the init weights, and what ``best.pt`` says."""
    from train.data.features import fold_windows
    from train.fit.dataset import WindowDataset

    train_ds = build_distill_data(
        cfg.data, cfg.fold, "train", cfg.labels, cfg.segment_s, cfg.psl or None, cfg.window_frames, cfg.hop_frames,
        cfg.alpha, cfg.unlabeled, cfg.n_folds, extra=cfg.extra_sources(), quiet_fraction=cfg.quiet_fraction, seed=cfg.seed, stretch=cfg.stretch,
    )
    val_ds = WindowDataset(fold_windows(cfg.data, cfg.fold, cfg.val_window_frames, None, split="val", n_folds=cfg.n_folds), "count")
    if len(val_ds) == 0:
        raise ConfigError(f"fold {cfg.fold}: no validation windows of {cfg.val_window_s:g} s")
    summary = (f"{cfg.model} on fold {cfg.fold}, {cfg.labels} labels (segment {cfg.segment_s:g} s, alpha {cfg.alpha:g}, unlabeled {cfg.unlabeled}): "
               f"{len(train_ds)} train windows of {cfg.window_s:g} s ({train_ds.n_quiet} of them quiet), {len(val_ds)} val windows of {cfg.val_window_s:g} s")

    def augment(x: torch.Tensor) -> torch.Tensor:
        return augment_batch(x, cfg.mix_prob, (cfg.mix_db_low, cfg.mix_db_high), cfg.gain_db)

    return Task(
        train_ds, val_ds, summary, loss_fn=train_ds.loss_fn(), true_counts=None, augment=augment, ema_decay=cfg.ema_decay,
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
        "distill": {"labels": cfg.labels, "segment_s": cfg.segment_s, "alpha": cfg.alpha, "unlabeled": cfg.unlabeled},
    }
    if cfg.psl:
        prov = load_provenance(cfg.psl)
        extra["distill"].update(psl=cfg.psl, teacher=prov.teacher, teacher_sha256=prov.teacher_sha256, teacher_name=prov.teacher_name)
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


