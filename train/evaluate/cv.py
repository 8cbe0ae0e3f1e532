"""Cross-validation: the seed paper's Table II for footfall's models and baselines.

For each model and each fold k: train on the fold's train groups (early stopping on its
validation group), reload the best checkpoint, and score the test group with
:func:`train.evaluate.metrics.evaluate_runs` (non-overlapping windows). The naive (mean train count) and
onset baselines of :mod:`train.evaluate.baselines` are scored on the same folds. The table gives
mean ± std over folds; a PNG shows predicted against true window counts, all folds pooled.

Files under ``out``: ``<model>/fold<k>/`` (each training run, plus ``test.json``),
``table_ii.md``, ``table_ii.csv``, ``cv_results.json``, ``counts.png``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from edge.util import write_json
from train.fit.config import ConfigError, TrainConfig
from train.evaluate.metrics import FoldResult, results_json, summarize

log = logging.getLogger("footfall.cv")

TABLE_COLUMNS = (("pcc", "PCC"), ("mae", "MAE"), ("cmae", "cMAE"), ("tce_median", "total err %"))
BASELINE_TITLES = {"naive": "Naive baseline", "onset": "Onset counter (tuned on train)"}


@dataclass
class CVRow:
    """One line of Table II: a model or baseline, its per-fold results, and pooled window counts."""

    name: str
    kind: str  # "model" or "baseline"
    results: list[FoldResult]
    pred: np.ndarray  # pooled predicted window counts of all test folds (empty for baselines)
    true: np.ndarray

    @property
    def title(self) -> str:
        return BASELINE_TITLES.get(self.name, self.name) if self.kind == "baseline" else self.name


def _fold_result(d: dict) -> FoldResult:
    return FoldResult(**{k: (math.nan if v is None else v) if k != "extra" else v for k, v in d.items()})


def _test_fold(cfg: TrainConfig, model_name: str, k: int, out: Path, resume: bool, env, device, precision) -> tuple[FoldResult, np.ndarray, np.ndarray]:
    """Train (or reuse) model ``model_name`` on fold ``k`` and score its best checkpoint on the test group."""
    from train.evaluate.predict import evaluate_model
    from train.models import load_checkpoint
    from train.fit.trainer import all_gather_objects, train

    fold_dir = out / model_name / f"fold{k}"
    done = fold_dir / "test.json"
    if resume and done.is_file():
        saved = json.loads(done.read_text())
        log.info("%s fold %d: reusing %s", model_name, k, done)
        return _fold_result(saved["result"]), np.asarray(saved["pred"]), np.asarray(saved["true"])
    fold_cfg = cfg.replace(model=model_name, fold=k, out=str(fold_dir))
    result = train(fold_cfg, resume=resume)
    payload = None
    if env.is_main:  # one rank scores the test group; the others wait for its numbers
        model, _meta = load_checkpoint(result.best_path, map_location=device)
        res, runs = evaluate_model(model, cfg.data, k, "test", cfg.window_s, cfg.n_folds, device, precision, cfg.eval_batch_size)
        pred, true = runs.window_counts()
        payload = {"result": asdict(res), "pred": pred.tolist(), "true": true.tolist()}
        write_json(done, payload, indent=None)
        log.info("%s fold %d test: MAE %.3f PCC %.3f (%d windows)", model_name, k, res.mae, res.pcc, res.n_windows)
    payload = all_gather_objects(env, payload)[0]
    return _fold_result(payload["result"]), np.asarray(payload["pred"]), np.asarray(payload["true"])


def run_cv(
    cfg: TrainConfig,
    models: Sequence[str],
    folds: Sequence[int],
    out: str | Path,
    baselines: Sequence[str] = ("naive", "onset"),
    resume: bool = False,
) -> list[CVRow]:
    """Cross-validate ``models`` (and ``baselines``) on ``folds`` of ``cfg.data``; write and print Table II."""
    from train.evaluate.baselines import BASELINES, evaluate_baseline
    from train.data.recordings import load_dataset
    from train.fit.trainer import barrier, distributed, resolve_device, resolve_precision

    if not models and not baselines:
        raise ConfigError("nothing to cross-validate: give --model and/or --baselines")
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ConfigError(f"--baselines: unknown {', '.join(unknown)}; expected some of {', '.join(BASELINES)}")
    if baselines and abs(cfg.window_s / 5 - round(cfg.window_s / 5)) > 1e-9:
        raise ConfigError(f"window_s: the baselines score {cfg.window_s:g}-s windows only in multiples of 5 s; set window_s or pass --baselines ''")
    bad = [k for k in folds if not 0 <= k < cfg.n_folds]
    if bad:
        raise ConfigError(f"folds {bad} out of range; expected 0..{cfg.n_folds - 1}")
    if not cfg.data or not Path(cfg.data).is_dir():
        raise ConfigError(f"data: {cfg.data or '(none)'}: no such dataset folder (--data DIR)")
    cfg = cfg.replace(data=str(Path(cfg.data).resolve()))
    out = Path(out).resolve()
    recs = load_dataset(cfg.data, n_folds=cfg.n_folds)  # validate before any training

    rows: list[CVRow] = []
    with distributed(resolve_device(cfg).type) as env:
        device = resolve_device(cfg, env.local_rank)
        precision = resolve_precision(cfg, device)
        for name in models:
            results, preds, trues = [], [], []
            for k in folds:
                res, p, t = _test_fold(cfg, name, k, out, resume, env, device, precision)
                results.append(res)
                preds.append(p)
                trues.append(t)
            rows.append(CVRow(name, "model", results, np.concatenate(preds), np.concatenate(trues)))
        if env.is_main:
            for name in baselines:
                log.info("baseline %s on folds %s", name, ",".join(map(str, folds)))
                run = evaluate_baseline(recs, cfg.data, name, cfg.window_s, folds=list(folds), n_folds=cfg.n_folds)
                rows.append(CVRow(name, "baseline", run.results, np.zeros(0), np.zeros(0)))
            save_table(rows, out, folds)
        barrier(env)
    return rows


def _fmt(mean: float, std: float, digits: int) -> str:
    if not math.isfinite(mean):
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def table_rows(rows: Sequence[CVRow]) -> list[list[str]]:
    """[title, PCC, MAE, cMAE, total err %] strings, mean ± std over folds."""
    out = []
    for row in rows:
        s = summarize(row.results)
        out.append([row.title] + [_fmt(s[key]["mean"], s[key]["std"], 1 if key == "tce_median" else 3) for key, _ in TABLE_COLUMNS])
    return out


def save_table(rows: Sequence[CVRow], out: Path, folds: Sequence[int]) -> None:
    """Print Table II and write it as markdown, CSV and JSON, plus the counts PNG."""
    from rich.console import Console
    from rich.table import Table

    out.mkdir(parents=True, exist_ok=True)
    window_s = rows[0].results[0].window_s if rows and rows[0].results else float("nan")
    title = f"Table II: {len(folds)}-fold runner-independent cross-validation, {window_s:g}-s windows (mean ± std over folds)"
    header = ["Model"] + [t for _, t in TABLE_COLUMNS]
    body = table_rows(rows)

    table = Table(title=title)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for r in body:
        table.add_row(*r)
    Console().print(table)

    md = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    md += ["| " + " | ".join(r) + " |" for r in body]
    (out / "table_ii.md").write_text("\n".join(md) + "\n")

    with (out / "table_ii.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "kind", "folds"] + [f"{k}_{stat}" for k, _ in TABLE_COLUMNS for stat in ("mean", "std")])
        for row in rows:
            s = summarize(row.results)
            w.writerow([row.name, row.kind, len(row.results)] + [f"{s[k][stat]:.6g}" for k, _ in TABLE_COLUMNS for stat in ("mean", "std")])

    write_json(out / "cv_results.json", {row.name: results_json(row.results, kind=row.kind) for row in rows})
    plot_counts([r for r in rows if r.kind == "model"], out / "counts.png")
    log.info("wrote %s, table_ii.csv, cv_results.json, counts.png", out / "table_ii.md")


def plot_counts(rows: Sequence[CVRow], path: Path) -> Path | None:
    """Predicted vs true window counts, one panel per model, test folds pooled."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 4.2), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, row in zip(axes[0], rows):
        s = summarize(row.results)
        jitter = rng.uniform(-0.2, 0.2, len(row.true))  # true counts are integers: spread the columns
        ax.scatter(row.true + jitter, row.pred, s=6, alpha=0.35, linewidths=0)
        lo = float(min(row.true.min(initial=0), row.pred.min(initial=0)))
        hi = float(max(row.true.max(initial=1), row.pred.max(initial=1)))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="ideal")
        ax.set_xlabel("true steps per window")
        ax.set_ylabel("predicted steps per window")
        ax.set_title(f"{row.title}\nMAE {s['mae']['mean']:.3f}  PCC {s['pcc']['mean']:.3f}")
        ax.set_aspect("equal", adjustable="box")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
