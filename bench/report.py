"""The bench report: ``report.md``, ``results.json`` and three plots in one folder, and a terminal
summary of the same numbers.

Plots: ``pareto.png`` (5-s MAE against p50 per-hop latency at one thread, the Pareto front drawn),
``latency.png`` (per-hop latency distributions, one panel per thread count) and ``counts.png``
(cumulative step count over one test run: truth, the reference, the edge int8 model).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from bench.run import DEFAULT_RUNS, DEFINITIONS, BenchResult, verdict

PLOTS = ("pareto.png", "latency.png", "counts.png")


def _f(v, digits: int = 3, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{v:,}{unit}"
    return f"{v:.{digits}f}{unit}"


def _sig(v, digits: int = 3) -> str:
    """Significant digits, for numbers spanning decades (latency, RTF)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.{digits}g}"


def _size(n: int | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _macs(n: int | None) -> str:
    if not n:
        return "—"
    return f"{n / 1e9:.2f} G" if n >= 1e9 else f"{n / 1e6:.1f} M"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


# ----------------------------------------------------------------------------- markdown


def real_sound_lines(res) -> list[str]:
    """The headline: each artifact on the real-sound set, the metronome and the onset counter beside it."""
    real = res.real
    lines = ["## Accuracy on recorded sounds (the real-sound set: held-out source packages)", "",
             f"`{real['set']}`, {real['runs']} runs; 5-s windows, each counter on the same runs, as the edge runtime counts. "
             "Step F: each counted step matched one to one to a true step within +-50 ms; timing: the matched steps' error.", "",
             "| counter | 5-s MAE | PCC | total-count error median / worst | cadence MAE (spm) | step F (P / R) | timing error median (ms) |",
             "|---|---|---|---|---|---|---|"]
    by_key = {s.key: s for s in res.subjects}
    rows = [(by_key[k].label if k in by_key else k, v) for k, v in real["subjects"].items()]
    titles = {"metronome": "metronome, 170 spm", "onset": "onset counter (tuned per fold)",
              "madmom": "madmom CNN onsets (tuned per fold)", "madmom-tempo": "madmom CNN onsets + beat tracking (tuned per fold)"}
    rows += [(titles.get(k, k), v) for k, v in real["baselines"].items()]
    for name, v in rows:
        lines.append(f"| {name} | {_f(v['mae'])} | {_f(v['pcc'])} | {_f(v['tce_median'], 1, ' %')} / {_f(v['tce_max'], 1, ' %')} | "
                     f"{_f(v['cadence_mae'], 1)} | {_f(v.get('step_f'))} ({_f(v.get('step_precision'), 2)} / {_f(v.get('step_recall'), 2)}) | "
                     f"{_f(v.get('timing_median_ms'), 1)} |")
    return lines + [""]


def markdown(res: BenchResult, plots: list[str]) -> str:
    cfg, m = res.config, res.machine
    ref = res.reference
    lines = [f"# footfall bench — {m.get('date', '')}", ""]
    lines += [
        f"- machine: {m.get('cpu')} ({m.get('cores')} cores){', GPU ' + m['gpu'] if m.get('gpu') else ''}; "
        f"load average {m.get('load_avg_start')} at the start, {m.get('load_avg_end')} at the end",
        f"- CPU features (read from this machine): {', '.join(m.get('cpu_features') or []) or 'none detected'}",
        f"- versions: torch {m.get('torch')}, executorch {m.get('executorch', '—')}, ai-edge-litert {m.get('ai-edge-litert', '—')}, "
        f"onnxruntime {m.get('onnxruntime', '—')}; Python {m.get('python')}; OMP_WAIT_POLICY {m.get('omp_wait_policy')}",
        f"- artifacts: `{cfg['artifacts']}`; reference: `{ref.path}` ({ref.model_name}, {_f(ref.params)} parameters, "
        f"window {ref.window_frames} frames)",
        f"- test data: {res.test_set or 'none (accuracy not measured)'}",
        f"- timing: {cfg['warmup']} warm-up + {cfg['runs']} hops per subject and thread count, subjects interleaved in blocks "
        f"of {cfg['block']}{' (quick mode: too few runs for stable percentiles)' if cfg['quick'] else ''}; took {res.seconds:.0f} s",
        *([f"- {quick_left_out(res)}"] if cfg["quick"] else []),
        "",
        ratios_sentence(res),
        "",
    ]

    lines += ["## Goals (the student's int8 .pte)", "",
              "Only a goal that was measured and missed fails the bench; 'info' is measured and shown, not judged.", ""]
    rows = []
    for g in res.goals():
        v = verdict(g)
        rows.append([g["goal"], goal_value(g), "**FAIL**" if v == "fail" else v, g.get("note", "")])
    lines += _table(["goal", "value", "", "note"], rows) + [""]
    if res.missing:
        lines += ["## Not found", "", "What the bench looked for and did not find; what depends on it is not measured, "
                  "which is not a failure.", ""]
        lines += [f"- {what} ({how})" for what, how in res.missing] + [""]

    lines += ["## Latency per hop", "",
              f"Hop {ref.hop_s:.2f} s ({ref.hop_frames} frames). Per hop = {DEFINITIONS['per_hop']}. "
              f"RTF = {DEFINITIONS['rtf']}. Speed-up = {DEFINITIONS['speedup']}.", ""]
    for t in cfg["threads"]:
        lines += [f"### {t} thread{'s' if t > 1 else ''}", ""]
        rows = []
        for s in res.subjects:
            timing = res.timings.get((s.key, t))
            if timing is None:
                continue
            hp, mp = timing.percentiles("hop"), timing.percentiles("model")
            sp = res.speedup(s.key, t)
            rows.append([s.label + (" (reference)" if s is ref else ""), _sig(hp["p50"]), _sig(hp["p90"]), _sig(hp["p99"]),
                         _sig(hp["min"]), _sig(mp["p50"]), _sig(timing.rtf), "1" if s is ref else (_sig(sp) + "x" if sp else "—"),
                         str(len(timing.hop_ms))])
        lines += _table(["subject", "p50 ms", "p90 ms", "p99 ms", "min ms", "model p50 ms", "RTF", "speed-up", "runs"], rows) + [""]
    if any(s.device == "cuda" for s in res.subjects):
        lines += ["The CUDA teacher is timed once (CPU threads do not apply); its model time comes from CUDA events "
                  "around copy-in, forward and copy-out, synchronised.", ""]

    if res.full_size:
        lines += _full_size_section(res)

    if res.real:
        lines += real_sound_lines(res)
    if res.accuracy:
        lines += ["## Accuracy on the test runs, and agreement with the reference", "",
                  f"{DEFINITIONS['accuracy']}. Step F = {DEFINITIONS['step_f']}. Relative cost = {DEFINITIONS['rel_mae_cost']} "
                  f"('vs fp32 student': the same against the PyTorch student, i.e. what export and int8 cost); "
                  f"d = {DEFINITIONS['count_diff']}.", ""]
        rows = []
        for s in res.subjects:
            a = res.accuracy.get(s.key)
            if a is None:
                continue
            cd = a.count_diff or {}
            rows.append([s.label + (" (reference)" if s is ref else ""), _f(a.mae), _f(a.pcc), _f(a.tce_median, 2),
                         _f(a.cadence_mae, 2), _f(a.step_f), _f(a.timing_median_ms, 1),
                         "0" if s is ref else _f(a.rel_mae_cost_pct, 2, " %"),
                         _f(a.rel_mae_cost_vs_student_pct, 2, " %"), _f(cd.get("mean_abs")), _f(cd.get("mean")),
                         _f(cd.get("max_abs")), str(a.n_windows)])
        lines += _table(["subject", "5-s MAE", "PCC", "total err %", "cadence MAE spm", "step F", "timing err ms (median)",
                         "rel. MAE cost", "vs fp32 student",
                         r"mean \|d\|", "mean d", r"max \|d\|", "5-s windows"], rows) + [""]

    lines += ["## Size, cost and memory", "",
              "MACs per window = one model invocation (convolutions and linear layers). Peak RSS: a fresh process "
              "streaming 1-thread hops; 'runtime' is the process before the model is loaded (the interpreter and the "
              "runtime's libraries; anything running a .pte from Python imports libtorch), 'model' what loading and "
              "streaming add." + (" Quick mode measures in the bench process itself: only the model's share is shown."
                                  if any(m.get("method") == "in-process" for m in res.memory.values()) else ""), ""]
    rows = []
    for s in res.subjects:
        mem = res.memory.get(s.key, {})
        if "error" in mem:
            mem_cols = [mem["error"][:60], "", ""]
        elif mem.get("method") == "in-process":  # --quick: the bench process's own numbers mean nothing per subject
            mem_cols = ["—", "—", _f(mem.get("model_mb"), 1, " MB")]
        else:
            mem_cols = [_f(mem.get("peak_mb"), 1, " MB"), _f(mem.get("runtime_mb"), 1, " MB"), _f(mem.get("model_mb"), 1, " MB")]
        shown_backend = s.backend and s.backend not in ("litert", "onnxruntime", "pytorch")  # say XNNPACK, not "LiteRT (litert)"
        rows.append([s.label, s.runtime + (f" ({s.backend})" if shown_backend else ""), s.quantization,
                     _size(s.size_bytes), _f(s.params), _macs(s.macs), f"{s.window_frames}", *mem_cols])
    lines += _table(["subject", "runtime", "quant.", "file", "params", "MACs/window", "window", "peak RSS", "runtime RSS",
                     "model RSS"], rows) + [""]

    if res.throughput:
        lines += ["## Reference throughput on the GPU", "",
                  "Batches of real log-mel windows; CUDA events around the forward pass, synchronised. Streams = "
                  "windows/s x hop duration: real-time streams one GPU could serve at this hop.", ""]
        rows = [[str(r["batch"]), _sig(r["ms_per_batch"]), _sig(r["windows_per_s"], 4), _sig(r["streams"], 4), r.get("error", "")]
                for r in res.throughput]
        lines += _table(["batch", "ms / batch", "windows / s", "streams", ""], rows) + [""]

    if res.phone is not None:
        lines += _phone_section(res)

    if plots:
        lines += ["## Plots", ""]
        titles = {"pareto.png": "Accuracy against latency (1 thread; lower left is better)",
                  "latency.png": "Per-hop latency distributions", "counts.png": "Counts over one test run"}
        for p in plots:
            lines += [f"![{titles.get(p, p)}]({p})", ""]
    if res.skipped or res.notes:
        lines += ["## Not measured, and notes", ""]
        lines += [f"- {what}: {why}" for what, why in res.skipped]
        lines += [f"- {n}" for n in res.notes]
        lines += [""]
    lines += ["## Definitions", ""] + [f"- **{k}**: {v}" for k, v in DEFINITIONS.items()] + [""]
    return "\n".join(lines)


def ratios_sentence(res: BenchResult) -> str:
    """What the speed-ups of this run rest on, said from what was timed (a subject, the reference
    too, can fail to run at some thread count), and what the absolute times are worth."""
    cfg, ref = res.config, res.reference
    timed = [t for t in cfg["threads"] if any(res.speedup(s.key, t) for s in res.subjects if s is not ref)]
    if timed:
        text = (f"Speed-ups are ratios to the reference teacher, timed interleaved with the other subjects in this run "
                f"({cfg['runs']} hops each{', quick mode: rough' if cfg['quick'] else ''}) at {', '.join(map(str, timed))} thread(s)")
        untimed = [str(t) for t in cfg["threads"] if t not in timed]
        if untimed:
            text += f"; at {', '.join(untimed)} thread(s) the reference was not timed beside a subject: no speed-up there"
    else:
        text = "No speed-up in this run: the reference teacher was not timed beside any subject (see 'Not measured')"
    judged = "the RTF goal is judged on them (--absolute-goals)" if cfg.get("absolute_goals") else "shown, not judged"
    return f"{text}. Absolute times (ms, RTF) on a shared machine are noise (min is the least disturbed hop): {judged}."


def quick_left_out(res: BenchResult) -> str:
    """What --quick left out of this run, from its configuration."""
    cfg = res.config
    left = [f"{cfg['runs']} timed hops per subject" + (f" (not {DEFAULT_RUNS})" if cfg["runs"] < DEFAULT_RUNS else ""),
            f"at most {cfg['max_test_runs']} test runs scored" if cfg["max_test_runs"] else "",
            "peak RSS measured in the bench process (the model's share only), not in a fresh process per subject" if cfg["rss"] else ""]
    return "quick mode: " + "; ".join(x for x in left if x)


def _full_size_section(res: BenchResult) -> list[str]:
    fs = res.full_size
    lines = [f"## Full-size reference `{fs['spec']}` (untrained; latency only)", "",
             f"{fs['model']} with {_f(fs['params'])} parameters and {_macs(fs['macs_per_window'])} MACs per "
             f"{fs['window_frames']}-frame window: the architecture a GPU-trained desktop reference would have. Weights do "
             f"not change its cost, so an untrained copy is timed; accuracy does not apply. {fs['runs']} hops per thread count, "
             "interleaved with the trained reference and the headline int8 .pte (fewer hops than above: ratios are rougher).", ""]
    rows = [[t, _sig(r["p50_ms"]), _sig(r["rtf"]), _sig(r["reference_p50_ms"]), _sig(r["x_reference"]) + "x",
             _sig(r.get("headline_p50_ms")), (_sig(r["speedup_headline"]) + "x") if "speedup_headline" in r else "—"]
            for t, r in fs["threads"].items()]
    return lines + _table(["threads", "full-size p50 ms", "RTF", "trained reference p50 ms", "full-size / reference",
                           "int8 .pte p50 ms", "speed-up of the int8 .pte"], rows) + [""]


def _phone_section(res: BenchResult) -> list[str]:
    ph = res.phone
    dev = ph.device or {}
    lines = ["## On the phone", ""]
    if ph.serial:
        lines += [f"Device {ph.serial}: {dev.get('model') or '?'} ({dev.get('soc') or '?'}, {dev.get('abi') or '?'}, "
                  f"Android {dev.get('android') or '?'}). Model invocation only (the runners feed a fixed input; the front end "
                  "is not included); RTF = p50 (or mean) / hop.", ""]
    rows = []
    for r in ph.rows:
        t = r.timing
        if t is None:
            rows.append([r.key, str(r.threads), "—", "—", "—", "—", "—", "—", r.error])
            continue
        rows.append([r.key, str(r.threads), t.tool, _sig(t.mean_ms), _sig(t.p50_ms), _sig(t.p99_ms if t.p99_ms is not None else t.p95_ms),
                     _sig(r.rtf), _f(t.peak_mem_mb, 1, " MB"), r.error])
    if rows:
        lines += _table(["artifact", "threads", "tool", "mean ms", "p50 ms", "p99 (p95) ms", "RTF", "peak mem", "note"], rows) + [""]
    if ph.missing:
        lines += ["Missing for the phone run:", ""] + [f"- {m}" for m in ph.missing] + [""]
    return lines


# ----------------------------------------------------------------------------- plots


def _plain_ticks(ax) -> None:
    """Log-axis ticks as 0.5, 2, 300 rather than 5x10^-1."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.tick_params(axis="x", which="minor", labelsize=7)


def _save(fig, path: Path) -> str:
    """Lay ``fig`` out, write it to ``path`` (120 dpi) and close it -> the file's name."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path.name


def _plots(res: BenchResult, out: Path) -> tuple[list[str], list[str]]:
    """Write the PNGs -> (written names, notes on those not drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written, notes = [], []
    t1 = min(res.config["threads"])
    ref = res.reference

    # accuracy vs latency
    pts = [(s, res.timings[(s.key, t1)].p50, res.accuracy[s.key].mae) for s in res.subjects
           if (s.key, t1) in res.timings and s.key in res.accuracy and math.isfinite(res.accuracy[s.key].mae)]
    if pts:
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        x_max = max(p[1] for p in pts)
        for i, (s, x, y) in enumerate(sorted(pts, key=lambda p: p[1])):
            marker = "*" if s.role == "reference" else ("s" if s.is_torch else "o")
            ax.scatter(x, y, s=120 if marker == "*" else 50, marker=marker, color="C3" if s.role == "reference" else "C0", zorder=3)
            right = x == x_max  # the slowest point's label goes to its left, inside the axes
            dy = (i % 3 - 1) * 9  # neighbours in latency get labels at staggered heights
            ax.annotate(s.label, (x, y), textcoords="offset points", xytext=(-6 if right else 6, dy), ha="right" if right else "left",
                        va="center", fontsize=7)
        front, best = [], math.inf
        for s, x, y in sorted(pts, key=lambda p: p[1]):
            if y < best:
                front.append((x, y))
                best = y
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="C2", alpha=0.6, label="Pareto front")
        ax.set_xscale("log")
        _plain_ticks(ax)
        ax.set_xlabel(f"p50 per-hop latency, ms ({t1} thread; log scale)")
        ax.set_ylabel("5-s MAE (steps)")
        ax.set_title("Accuracy against latency")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        written.append(_save(fig, out / "pareto.png"))
    else:
        notes.append("pareto.png not drawn: no accuracy (no labeled test data)")

    # latency distributions
    threads = [t for t in res.config["threads"] if any(k[1] == t for k in res.timings)]
    if threads:
        keys = [s.key for s in res.subjects]
        labels = {s.key: s.label for s in res.subjects}
        fig, axes = plt.subplots(1, len(threads), figsize=(6 * len(threads), 0.45 * len(keys) + 1.8), squeeze=False, sharey=True)
        for ax, t in zip(axes[0], threads):
            ks = [k for k in keys if (k, t) in res.timings]
            data = [res.timings[(k, t)].hop_ms for k in ks]
            ax.boxplot(data, orientation="horizontal", whis=(1, 99), showfliers=True, flierprops={"markersize": 2})
            ax.set_yticks(range(1, len(ks) + 1), [labels[k] for k in ks], fontsize=7)
            ax.set_xscale("log")
            _plain_ticks(ax)
            ax.set_xlabel("per-hop latency, ms (log; whiskers p1-p99)")
            ax.set_title(f"{t} thread{'s' if t > 1 else ''}")
            ax.axvline(ref.hop_s * 1e3 * 0.002, color="C3", ls=":", lw=1, label="RTF 0.002")
            ax.grid(True, axis="x", which="both", alpha=0.3)
            ax.legend(fontsize=7, loc="upper right")
        written.append(_save(fig, out / "latency.png"))

    # counts over time
    c = res.curves
    if c:
        fig, ax = plt.subplots(figsize=(7.5, 4))
        ax.plot(c["t_s"], c["truth"], color="k", lw=1.5, label="truth")
        ax.plot(c["t_s"], c["reference"], color="C3", lw=1.2, label=f"reference ({res.subject(c['reference_key']).label})")
        if "edge" in c:
            ax.plot(c["t_s"], c["edge"], color="C0", lw=1.2, ls="--", label=f"edge ({res.subject(c['edge_key']).label})")
        ax.set_xlabel("time, s")
        ax.set_ylabel("cumulative steps")
        ax.set_title(f"Counts over run {c['run_id']}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        written.append(_save(fig, out / "counts.png"))
    else:
        notes.append("counts.png not drawn: no labeled test run")
    return written, notes


# ----------------------------------------------------------------------------- writing


def write_report(res: BenchResult, out: str | Path, plots: bool = True) -> Path:
    """Write report.md, results.json and the plots into ``out`` -> the markdown's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if plots:
        written, notes = _plots(res, out)
        res.notes.extend(n for n in notes if n not in res.notes)
    data = res.to_dict()
    data["plots"] = written
    data["raw_latency_ms"] = {f"{k}@{t}": np.round(v.hop_ms, 5).tolist() for (k, t), v in res.timings.items()}
    data["curves"] = res.curves
    (out / "results.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    path = out / "report.md"
    path.write_text(markdown(res, written) + "\n")
    return path


def goal_value(goal: dict) -> str:
    """A goal's value with its unit: ``227.0x``, ``-19.0 %``, ``0.002015`` (a ratio such as RTF)."""
    v = goal["value"]
    if v is None:
        return "—"
    return {"x": f"{v:.1f}x", "%": f"{v:.1f} %"}.get(goal.get("unit", ""), f"{v:.4g}")


def summary_lines(res: BenchResult, report: Path | None = None) -> list[str]:
    """A compact plain-text summary for the terminal: one line per subject, then the goals."""
    t1 = min(res.config["threads"])
    ref = res.reference
    head = f"{'subject':<42} {'p50 ms':>9} {'RTF':>9} {'speed-up':>9} {'5-s MAE':>8} {'rel cost':>9} {'size':>9}"
    lines = [f"per hop at {t1} thread (hop {ref.hop_s:.2f} s), accuracy on {res.test_set or 'no test data'}"]
    lines += [f"{quick_left_out(res)}: ratios are rough"] if res.config["quick"] else []
    lines += [head, "-" * len(head)]
    for s in res.subjects:
        t = res.timings.get((s.key, t1))
        a = res.accuracy.get(s.key)
        sp = res.speedup(s.key, t1)
        cost = "ref" if s is ref else (_f(a.rel_mae_cost_pct, 1, "%") if a else "—")
        lines.append(f"{s.label[:42]:<42} {_sig(t.p50 if t else None):>9} {_sig(t.rtf if t else None):>9} "
                     f"{('ref' if s is ref else (_sig(sp) + 'x' if sp else '—')):>9} {_f(a.mae if a else None):>8} {cost:>9} "
                     f"{_size(s.size_bytes):>9}")
    lines.append("")
    labels = {"pass": "PASS", "fail": "FAIL", "info": "INFO", "not measured": "N/A "}
    for g in res.goals():
        lines.append(f"{labels[verdict(g)]}  {g['goal']}: {goal_value(g)}" + (f" ({g['note']})" if g.get("note") else ""))
    lines += [f"not found: {what} ({how})" for what, how in res.missing]
    for t, r in (res.full_size or {}).get("threads", {}).items():
        if "speedup_headline" in r:
            lines.append(f"full-size {res.full_size['spec']} (untrained, latency only), {t} thread(s): {r['p50_ms']:.4g} ms a hop; "
                         f"the int8 .pte is {r['speedup_headline']:.4g}x faster")
    if res.phone is not None:
        n = sum(r.timing is not None for r in res.phone.rows)
        lines.append(f"phone: {n} timings" + (f"; missing: {len(res.phone.missing)} (see the report)" if res.phone.missing else ""))
    if report is not None:
        lines.append(f"report: {report}")
    return lines
