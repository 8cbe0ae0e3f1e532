"""The PSL ablation (the PSL paper's Tables 2/3, for counting): what each kind of label buys.

The same student (architecture, width, window, schedule) is trained on each kind of label and
scored on the paper's 5-s windows of the test runs, next to its teacher
(``train.distill.student``: the loss of each row):

============================  =========================================================================
row                           what the student learns from
============================  =========================================================================
``weak``                      each window's step count, through the sum of its probabilities
``true``                      the true step frames alone (shift-tolerant BCE; no teacher)
``psl``                       the teacher's step probabilities alone (alpha = 1, the PSL paper's choice)
``psl+true``                  both, at the base config's alpha (labeled runs only)
``psl+true+unlabeled``        the same plus the unlabeled training runs (PSL only): the default student
``teacher``                   the teacher itself on the 5-s windows (not trained here)
============================  =========================================================================

Columns: 5-s MAE, PCC and median total-count error of the counted steps with each 5-s window
run on its own (``mae``, the paper's protocol, the same for the teacher), and the MAE of the
student streamed at its own window with the edge runtime's alignment (``mae_stream``). Means over
the folds run.

Every condition is an ordinary ``footfall distill`` run in ``out/fold<k>/<row>/``; finished rows
(``test.json`` present) are reused, interrupted ones resume, so the ablation can be stopped and
restarted, and each row can be inspected alone. Under ``torchrun`` each student trains with DDP.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edge.contract import DENSITY_STRIDE, EVAL_WINDOW_FRAMES, FRAMES_PER_SECOND
from train.fit.config import ConfigError
from train.distill.student import DistillConfig, evaluate, train_student
from edge.util import atomic_write, write_json
from train.distill.psl import load_provenance

log = logging.getLogger("footfall.ablation")

COLUMNS = ("mae", "pcc", "tce_median", "mae_stream")


@dataclass
class Condition:
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)  # DistillConfig changes; empty for the teacher
    kind: str = "student"  # student | teacher


DEFAULT_ROW = "psl+true+unlabeled"  # the student the recipe trains


def conditions(alpha: float = 0.5, windows: Sequence[float] = ()) -> list[Condition]:
    """The rows of the ablation; ``windows`` adds the default row at other student windows."""
    rows = [Condition("weak", {"labels": "weak", "unlabeled": False}), Condition("true", {"labels": "true", "unlabeled": False}),
            Condition("psl", {"labels": "psl", "alpha": 1.0, "unlabeled": False}),
            Condition("psl+true", {"labels": "psl", "alpha": alpha, "unlabeled": False}),
            Condition(DEFAULT_ROW, {"labels": "psl", "alpha": alpha, "unlabeled": True})]
    rows += [Condition(f"{DEFAULT_ROW}@{w:g}s", {"labels": "psl", "alpha": alpha, "unlabeled": True, "window_s": float(w),
                       "train_hop_s": float(w) / 2}) for w in windows]
    rows += [Condition("teacher", kind="teacher")]
    return rows


def psl_for_fold(psl: str, fold: int) -> str:
    """``psl`` may hold ``{fold}`` (one teacher, hence one PSL folder, per fold)."""
    return psl.format(fold=fold) if "{fold}" in psl else psl


def _teacher_scores(psl_dir: str, cfg: DistillConfig) -> dict[str, dict]:
    import dataclasses

    from train.data.features import fold_recordings
    from train.distill.psl import load_teacher, resolve_device, teacher_window_s

    prov = load_provenance(psl_dir)
    device = resolve_device(cfg.device)
    model, meta = load_teacher(prov.teacher, map_location=device)
    w = round(teacher_window_s(meta) * FRAMES_PER_SECOND)  # its training window, streamed at half-window hops
    recs = fold_recordings(cfg.data, cfg.fold, "test", n_folds=cfg.n_folds)
    r = dataclasses.asdict(evaluate(model, recs, cfg.data, EVAL_WINDOW_FRAMES, None, cfg.eval_batch_size, device, cfg.fold))
    s = dataclasses.asdict(evaluate(model, recs, cfg.data, w, max(DENSITY_STRIDE, w // 2 // DENSITY_STRIDE * DENSITY_STRIDE), cfg.eval_batch_size, device, cfg.fold, stream=True))
    return {"direct": r, "stream": s, "teacher": prov.teacher, "teacher_sha256": prov.teacher_sha256, "window_frames": w}


def ablate(
    base: DistillConfig,
    out: str | Path,
    folds: Sequence[int] = (0,),
    windows: Sequence[float] = (),
    only: Sequence[str] = (),
) -> dict[str, Any]:
    """Run (or reuse) every condition on every fold; write ablation.{json,csv,md,png} into ``out``.

    ``base.psl`` may contain ``{fold}``. ``only`` restricts to the named rows. Returns the table.
    """
    import os

    out = Path(out).resolve()
    rank = int(os.environ.get("RANK", "0"))
    rows = conditions(base.alpha, windows)
    if only:
        unknown = sorted(set(only) - {c.name for c in rows})
        if unknown:
            raise ConfigError(f"--only {', '.join(unknown)}: unknown row(s); rows are {', '.join(c.name for c in rows)}")
        rows = [c for c in rows if c.name in only]
    if not base.psl:
        raise ConfigError("psl: the ablation needs a PSL folder (--psl DIR; may contain {fold})")
    results: dict[str, dict[int, dict]] = {c.name: {} for c in rows}
    for k in folds:
        psl_dir = psl_for_fold(base.psl, k)
        for c in rows:
            run_dir = out / f"fold{k}" / c.name
            test_path = run_dir / "test.json"
            if test_path.is_file():
                results[c.name][k] = json.loads(test_path.read_text())
                continue
            cfg = base.replace(fold=k, psl=psl_dir, out=str(run_dir), **c.overrides)
            if c.kind == "teacher":
                if rank == 0:
                    scores = _teacher_scores(psl_dir, cfg)
                    write_json(test_path, scores)
                    results[c.name][k] = json.loads(test_path.read_text())
                continue
            if rank == 0:
                log.info("ablation fold %d: %s", k, c.name)
            train_student(cfg, resume=True)
            if rank == 0:
                results[c.name][k] = json.loads(test_path.read_text())
    if rank != 0:
        return {}
    table = _table(rows, results, base, folds)
    _write_outputs(out, table)
    return table


def _table(rows: list[Condition], results: dict[str, dict[int, dict]], base: DistillConfig, folds: Sequence[int]) -> dict[str, Any]:
    out_rows = []
    for c in rows:
        per_fold = results[c.name]
        vals = {}
        for col in COLUMNS:
            key, metric = ("stream", "mae") if col == "mae_stream" else ("direct", col)
            v = np.array([r[key][metric] if r[key][metric] is not None else np.nan for r in per_fold.values()], np.float64)
            vals[col] = float(np.nanmean(v)) if np.isfinite(v).any() else math.nan
            vals[col + "_std"] = float(np.nanstd(v)) if np.isfinite(v).any() else math.nan
        out_rows.append({"row": c.name, "kind": c.kind, **{k: v for k, v in c.overrides.items()}, "folds": sorted(per_fold), **vals})
    by = {r["row"]: r for r in out_rows}
    ref_weak, ref_teacher = by.get("weak", {}).get("mae"), by.get("teacher", {}).get("mae")
    for r in out_rows:
        r["vs_weak_pct"] = 100 * (r["mae"] - ref_weak) / ref_weak if ref_weak else math.nan
        r["vs_teacher_pct"] = 100 * (r["mae"] - ref_teacher) / ref_teacher if ref_teacher else math.nan
    default = DEFAULT_ROW
    verdict = {}
    if default in by and "weak" in by and "teacher" in by:
        verdict = {
            "student": default,
            "psl_vs_weak_pct": by[default]["vs_weak_pct"],
            "beats_weak_by_20pct": bool(by[default]["vs_weak_pct"] <= -20.0),
            "psl_vs_teacher_pct": by[default]["vs_teacher_pct"],
            "within_15pct_of_teacher": bool(by[default]["vs_teacher_pct"] <= 15.0),
        }
    from train.models import build_model, count_params, macs_per_second

    student = build_model(base.model, **base.args_for())
    return {
        "student": base.model, "model_args": base.args_for(), "window_s": base.window_s, "alpha": base.alpha, "folds": list(folds),
        "params": count_params(student), "mmac_per_s": macs_per_second(student, base.window_frames) / 1e6,
        "data": base.data, "psl": base.psl, "rows": out_rows, "verdict": verdict,
    }


def _fmt(x: Any, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def markdown(table: dict[str, Any]) -> str:
    head = "| row | 5-s MAE | PCC | total err % (median) | 5-s MAE, streamed | vs weak | vs teacher |\n|---|---:|---:|---:|---:|---:|---:|\n"
    lines = [
        f"| {r['row']} | {_fmt(r['mae'])} ± {_fmt(r['mae_std'])} | {_fmt(r['pcc'])} | {_fmt(r['tce_median'], 1)} | {_fmt(r['mae_stream'])} | "
        f"{_fmt(r['vs_weak_pct'], 1)} % | {_fmt(r['vs_teacher_pct'], 1)} % |"
        for r in table["rows"]
    ]
    title = (f"PSL ablation: {table['student']} {table['model_args']} ({table['params'] / 1e6:.2f} M parameters, "
             f"{table['mmac_per_s']:.1f} MMAC per s of audio), {table['window_s']:g}-s window, alpha {table['alpha']:g}, "
             f"folds {table['folds']} (mean ± std over folds)\n\n")
    return title + head + "\n".join(lines) + "\n"


def _write_outputs(out: Path, table: dict[str, Any]) -> None:
    import csv
    import io

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "ablation.json", table)
    atomic_write(out / "ablation.md", markdown(table))
    buf = io.StringIO()
    cols = ["row", "kind", "labels", "alpha", "unlabeled", "window_s", *COLUMNS, *(c + "_std" for c in COLUMNS), "vs_weak_pct", "vs_teacher_pct"]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    w.writerows(table["rows"])
    atomic_write(out / "ablation.csv", buf.getvalue())
    _plot(out / "ablation.png", table)


def _plot(path: Path, table: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in table["rows"] if r["kind"] == "student"]
    teacher = next((r for r in table["rows"] if r["kind"] == "teacher"), None)
    fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2, 3.8))
    x = np.arange(len(rows))
    colors = ["tab:gray" if r["row"] == "weak" else "tab:green" if r["row"].startswith("true") else "tab:blue" for r in rows]
    ax.bar(x - 0.18, [r["mae"] for r in rows], 0.36, yerr=[r["mae_std"] if math.isfinite(r["mae_std"]) else 0 for r in rows], color=colors, label="5-s windows")
    ax.bar(x + 0.18, [r["mae_stream"] for r in rows], 0.36, color=colors, alpha=0.45, label="streamed at the student window")
    if teacher is not None and math.isfinite(teacher["mae"]):
        ax.axhline(teacher["mae"], color="k", ls="--", lw=1, label=f"teacher {teacher['mae']:.3f}")
        ax.axhline(teacher["mae"] * 1.15, color="k", ls=":", lw=0.8, label="teacher + 15 %")
    ax.set_xticks(x, [r["row"] for r in rows], rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("test 5-s MAE (steps)")
    ax.set_title(f"PSL ablation: {table['student']} {table['model_args']}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
