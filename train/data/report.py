"""The dataset report of a synthetic dataset: counts, cadence and SNR histograms, a spectrogram.

Reads ``root/manifest.csv``, ``root/runs.jsonl`` (written by :mod:`train.data.synth`) and the
steps files; writes ``root/report/``: ``report.md``, ``summary.json``, ``cadence.png``,
``snr.png`` and ``spectrogram.png`` (8 s of one labeled run, log-mel with the step marks).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np

CADENCE_BINS = np.arange(90.0, 222.5, 2.5)  # steps / min
SNR_BINS = np.arange(-15.0, 31.0, 2.0)  # dB
EXCERPT_S = 8.0


def _read_manifest(root: Path) -> list[dict]:
    with (root / "manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _read_runs(root: Path) -> dict[str, dict]:
    path = root / "runs.jsonl"
    if not path.is_file():
        return {}
    return {d["run_id"]: d for d in (json.loads(line) for line in path.read_text().splitlines() if line.strip())}


def _read_steps(path: Path) -> tuple[np.ndarray, list[str]]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    return np.array([float(r[0]) for r in rows]), [r[1] if len(r) > 1 else "" for r in rows]


def instantaneous_cadence(times: np.ndarray, max_interval_s: float = 60.0 / 95) -> np.ndarray:
    """Steps per minute from consecutive step intervals; gaps longer than a 95-spm step (stops) are skipped."""
    d = np.diff(times)
    return 60.0 / d[(d > 0) & (d < max_interval_s)]


def summarize(root: str | Path) -> dict:
    """The report's numbers (what summary.json holds)."""
    root = Path(root)
    rows = _read_manifest(root)
    runs = _read_runs(root)
    labeled = [r for r in rows if r["steps"]]
    infos = [runs[r["run_id"]] for r in rows if r["run_id"] in runs]
    folds: dict[str, dict] = {}
    for r in rows:
        g = folds.setdefault(r["fold"], {"runners": set(), "runs": 0, "labeled": 0})
        g["runners"].add(r["runner_id"])
        g["runs"] += 1
        g["labeled"] += bool(r["steps"])
    n_labeled_steps = 0
    cadences = []
    for r in labeled:
        t, _ = _read_steps(root / r["steps"])
        n_labeled_steps += len(t)
        cadences.append(instantaneous_cadence(t))
    cad = np.concatenate(cadences) if cadences else np.zeros(0)
    snr = np.array([d["snr_db"] for d in infos])
    conf = [d.get("confounders", {}) for d in infos]

    def share(pred) -> float:
        return round(float(np.mean([bool(pred(c)) for c in conf])), 3) if conf else 0.0

    walk = sum(d["time_s"].get("walk", 0) for d in infos)
    stop = sum(d["time_s"].get("stop", 0) for d in infos)
    total_s = sum(d["duration_s"] for d in infos)
    return {
        "root": str(root.resolve()),
        "runs": len(rows),
        "runners": len({r["runner_id"] for r in rows}),
        "labeled_runs": len(labeled),
        "unlabeled_runs": len(rows) - len(labeled),
        "hours": round(total_s / 3600, 3),
        "steps_labeled": n_labeled_steps,
        "steps_all": int(sum(d["n_steps"] for d in infos)),
        "surfaces": dict(Counter(r["surface"] for r in rows).most_common()),
        "sessions": dict(Counter(r["session"] for r in rows).most_common()),
        "folds": {k: {"runners": len(v["runners"]), "runs": v["runs"], "labeled": v["labeled"]} for k, v in sorted(folds.items())},
        "cadence_spm": {
            "median": round(float(np.median(cad)), 1) if len(cad) else None,
            "p5": round(float(np.percentile(cad, 5)), 1) if len(cad) else None,
            "p95": round(float(np.percentile(cad, 95)), 1) if len(cad) else None,
            "histogram": {"edges": CADENCE_BINS.tolist(), "counts": np.histogram(cad, CADENCE_BINS)[0].tolist()},
        },
        "time_share": {"walk": round(walk / total_s, 3) if total_s else 0, "stop": round(stop / total_s, 3) if total_s else 0},
        "snr_db": {
            "median": round(float(np.median(snr)), 2) if len(snr) else None,
            "min": round(float(snr.min()), 2) if len(snr) else None,
            "max": round(float(snr.max()), 2) if len(snr) else None,
            "histogram": {"edges": SNR_BINS.tolist(), "counts": np.histogram(snr, SNR_BINS)[0].tolist()},
        },
        "confounders_share_of_runs": {
            "other_runners": share(lambda c: c.get("other_runners")),
            "traffic": share(lambda c: "traffic" in c.get("ambient_db", {})),
            "birds": share(lambda c: "birds" in c.get("ambient_db", {})),
            "speech": share(lambda c: "speech" in c.get("ambient_db", {})),
            "rain": share(lambda c: "rain" in c.get("ambient_db", {})),
            "music": share(lambda c: "music" in c.get("ambient_db", {})),
        },
        "clipped_runs": int(sum(d["phone"]["clipped_fraction"] > 1e-4 for d in infos)),
        "agc_runs": int(sum(d["phone"]["agc"] for d in infos)),
    }


def _pick_run(root: Path, rows: list[dict], runs: dict[str, dict]) -> dict | None:
    """A labeled run with an SNR near the dataset median (a typical one, not the easiest)."""
    lab = [r for r in rows if r["steps"]]
    if not lab:
        return None
    snr = {r["run_id"]: runs.get(r["run_id"], {}).get("snr_db", 0.0) for r in lab}
    med = float(np.median(list(snr.values())))
    return min(lab, key=lambda r: (abs(snr[r["run_id"]] - med), r["run_id"]))


def _excerpt_start(times: np.ndarray, duration: float) -> float:
    """Start of an 8-s stretch with the most steps (running, not standing)."""
    if duration <= EXCERPT_S or len(times) == 0:
        return 0.0
    starts = np.arange(0.0, duration - EXCERPT_S, 1.0)
    counts = np.searchsorted(times, starts + EXCERPT_S) - np.searchsorted(times, starts)
    return float(starts[int(np.argmax(counts))])


def write_report(root: str | Path) -> Path:
    """Write ``root/report/`` (PNG figures, summary.json, report.md) -> the report.md path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edge.audio import load_audio
    from edge.frontend import SAMPLE_RATE, log_mel

    root = Path(root)
    out = root / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(root)
    rows = _read_manifest(root)
    runs = _read_runs(root)

    # cadence histogram
    fig, ax = plt.subplots(figsize=(7, 3.2))
    h = summary["cadence_spm"]["histogram"]
    ax.bar(h["edges"][:-1], h["counts"], width=np.diff(h["edges"]), align="edge", color="tab:blue")
    for lo, hi, name in ((100, 125, "walking"), (140, 200, "running")):
        ax.axvspan(lo, hi, color="0.85", zorder=0)
        ax.text((lo + hi) / 2, ax.get_ylim()[1] * 0.92, name, ha="center", fontsize=8)
    ax.set(xlabel="instantaneous cadence (steps/min)", ylabel="steps", title="cadence of labeled steps")
    fig.tight_layout()
    fig.savefig(out / "cadence.png", dpi=100)
    plt.close(fig)

    # SNR histogram
    fig, ax = plt.subplots(figsize=(7, 3.2))
    h = summary["snr_db"]["histogram"]
    ax.bar(h["edges"][:-1], h["counts"], width=np.diff(h["edges"]), align="edge", color="tab:orange")
    ax.set(xlabel="SNR (dB): step energy vs. everything else, 250-4000 Hz", ylabel="runs", title="per-run SNR")
    fig.tight_layout()
    fig.savefig(out / "snr.png", dpi=100)
    plt.close(fig)

    # one spectrogram with the step marks
    pick = _pick_run(root, rows, runs)
    spectro = None
    if pick is not None:
        audio = load_audio(root / pick["audio"])
        times, feet = _read_steps(root / pick["steps"])
        t0 = _excerpt_start(times, len(audio) / SAMPLE_RATE)
        seg = audio[int(t0 * SAMPLE_RATE) : int((t0 + EXCERPT_S) * SAMPLE_RATE)]
        mel = log_mel(seg)
        sel = (times >= t0) & (times < t0 + EXCERPT_S)
        fig, (a0, a1) = plt.subplots(2, 1, figsize=(12, 6), sharex=True, gridspec_kw={"height_ratios": [1, 2]})
        a0.plot(np.arange(len(seg)) / SAMPLE_RATE, seg, lw=0.3, color="k")
        a0.set(ylabel="amplitude", ylim=(-1.05, 1.05))
        a1.imshow(mel, origin="lower", aspect="auto", extent=(0, len(seg) / SAMPLE_RATE, 0, mel.shape[0]), cmap="magma")
        a1.set(xlabel=f"time (s) from {t0:.0f} s", ylabel="mel band")
        for t, foot in zip(times[sel] - t0, np.array(feet)[sel]):
            color = "tab:cyan" if foot == "L" else "tab:green"
            a0.axvline(t, color=color, lw=0.8)
            a1.axvline(t, color=color, lw=0.8, ls=":")
        info = runs.get(pick["run_id"], {})
        a0.set_title(f"{pick['run_id']} ({pick['surface']}, SNR {info.get('snr_db', float('nan')):.1f} dB): "
                     f"step onsets L (cyan) / R (green)")
        fig.tight_layout()
        fig.savefig(out / "spectrogram.png", dpi=90)
        plt.close(fig)
        spectro = pick["run_id"]
    summary["spectrogram_run"] = spectro
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    s = summary
    lines = [
        f"# Synthetic dataset report: {root.name}",
        "",
        f"{s['runs']} runs ({s['labeled_runs']} labeled, {s['unlabeled_runs']} unlabeled for PSL) by {s['runners']} runners, "
        f"{s['hours']:.2f} h, {s['steps_labeled']} labeled steps ({s['steps_all']} in all runs).",
        "",
        "| fold | runners | runs | labeled |",
        "|---:|---:|---:|---:|",
        *(f"| {k} | {v['runners']} | {v['runs']} | {v['labeled']} |" for k, v in s["folds"].items()),
        "",
        "Surfaces: " + ", ".join(f"{k} {v}" for k, v in s["surfaces"].items()) + ".  ",
        "Sessions: " + ", ".join(f"{k} {v}" for k, v in s["sessions"].items()) + ".",
        "",
        f"Cadence (labeled steps): median {s['cadence_spm']['median']} spm, 5-95 % {s['cadence_spm']['p5']}-{s['cadence_spm']['p95']} spm; "
        f"walking {100 * s['time_share']['walk']:.0f} % and standing {100 * s['time_share']['stop']:.0f} % of the time.",
        "",
        f"SNR (step energy vs. everything else, 250-4000 Hz, after the phone's high-pass): median {s['snr_db']['median']} dB, "
        f"range {s['snr_db']['min']} to {s['snr_db']['max']} dB.",
        "",
        "Share of runs with: " + ", ".join(f"{k.replace('_', ' ')} {100 * v:.0f} %" for k, v in s["confounders_share_of_runs"].items())
        + f"; AGC {s['agc_runs']} runs, clipping {s['clipped_runs']} runs.",
        "",
        "![cadence](cadence.png)",
        "",
        "![snr](snr.png)",
        "",
    ]
    if spectro:
        lines += [f"Spectrogram: 8 s of `{spectro}` (a run near the median SNR), step onsets marked.", "", "![spectrogram](spectrogram.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
