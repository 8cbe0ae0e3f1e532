"""`footfall bench`: thin typer layer over :func:`bench.run.run_bench` and :mod:`bench.report`.

Exit codes: 0 report written and no goal that was measured failed; 1 report written but a measured
goal FAILed (the summary says which; a tiny or untrained model fails them by design, so a smoke run
expects 1); 2 bad input (one line, no traceback). What the bench did not find (the int8 .pte the
goals are about, a test set) is listed as "not found" with how to make it, and the goals that
depend on it are "not measured": not a failure. Goals stated in absolute time are information on a
shared machine unless ``--absolute-goals`` asks for them to be judged.

The phone is ``--adb [--serial SERIAL]`` rather than ``--adb [SERIAL]``: typer has no options with
an optional value. ``$ANDROID_SERIAL`` (adb's own variable) also picks the phone.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer

from edge.util import fail as _fail

def _threads(value: str) -> tuple[int, ...]:
    try:
        threads = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        threads = ()
    if not threads or min(threads) < 1:
        _fail(f"--threads {value!r}: expected positive integers separated by commas, e.g. 1,2")
    return threads


def bench_command(
    artifacts: Path = typer.Option(Path("out/export"), "--artifacts", help="folder of exported artifacts with their cards "
                                   "(`footfall export --out`), usually with the student checkpoint"),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="reference teacher checkpoint (default: the one teacher .pt in --artifacts)"),
    student: Optional[Path] = typer.Option(None, "--student", help="float student checkpoint (default: the one the cards name, "
                                           "or the one student .pt in --artifacts)"),
    data: Optional[Path] = typer.Option(None, "--data", help="dataset for accuracy (default: the one the cards were checked on)"),
    realset: Optional[Path] = typer.Option(None, "--realset", help="the real-sound set (footfall data realset): the headline accuracy, beside the metronome and onset counter"),
    fold: Optional[int] = typer.Option(None, "--fold", help="test split of this fold (default: the fold the models were trained for)"),
    out: Path = typer.Option(Path("out/bench"), "--out", help="report folder: report.md, results.json, PNG plots"),
    quick: bool = typer.Option(False, "--quick", help="checks that everything works, numbers rough: 12 timed hops per subject "
                               "instead of 200 (2 warm-up instead of 10), 2 test runs scored, peak RSS in the bench process "
                               "(the model's share only) instead of a fresh process per subject, 5 CUDA and 4 full-size "
                               "iterations instead of 20; the teacher is still timed interleaved with every subject"),
    threads: str = typer.Option("1,2", "--threads", help="thread counts to time, comma-separated"),
    runs: Optional[int] = typer.Option(None, "--runs", help="timed hops per subject and thread count (default 200; --quick 12)"),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="warm-up hops (default 10; --quick 2)"),
    max_test_runs: Optional[int] = typer.Option(None, "--max-test-runs", help="score at most this many test runs"),
    rss: bool = typer.Option(True, "--rss/--no-rss", help="peak RSS of each subject in a fresh process"),
    cuda: Optional[bool] = typer.Option(None, "--cuda/--no-cuda", help="also time the teacher on CUDA (default: when available)"),
    adb: bool = typer.Option(False, "--adb", help="also time the artifacts on an Android phone over adb"),
    serial: Optional[str] = typer.Option(None, "--serial", help="with --adb: the phone's serial (default: $ANDROID_SERIAL, "
                                         "else the only connected device)"),
    adb_path: Optional[Path] = typer.Option(None, "--adb-path", help="the adb program (default: PATH, $ANDROID_HOME/platform-tools)"),
    executor_runner: Optional[Path] = typer.Option(None, "--executor-runner", help="ExecuTorch executor_runner for Android "
                                                   "(default: $EXECUTORCH_RUNNER or an ExecuTorch build folder)"),
    benchmark_model: Optional[Path] = typer.Option(None, "--benchmark-model", help="LiteRT benchmark_model for Android "
                                                   "(default: $LITERT_BENCHMARK_MODEL or a LiteRT/TensorFlow folder)"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="draw the PNG plots"),
    absolute_goals: bool = typer.Option(False, "--absolute-goals", help="also judge the goal stated in absolute time (RTF); "
                                        "by default it is information: absolute times on a shared machine are noise"),
    full_size: Optional[str] = typer.Option(None, "--full-size", help="also time an untrained full-size model as a latency-only "
                                            "reference, e.g. cnn14 (the paper's, 75.9 M parameters) or cnn14:width=0.5"),
) -> None:
    """Benchmark every artifact against the reference teacher: per-hop latency (p50/p90/p99, RTF) at
    each thread count, accuracy on the test runs and agreement with the reference, size, MACs,
    peak RSS; GPU throughput on CUDA; optionally the phone. Writes a markdown report with plots."""
    from bench.report import summary_lines, write_report
    from bench.run import BenchConfig, run_bench
    from bench.subjects import BenchError

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if "torch" not in sys.modules:
        # libgomp reads this when torch loads. Its default (spin at barriers) made 2-thread PyTorch
        # 40x slower than 1 thread on a busy 2-core machine (564 ms vs 13 ms a window), which would
        # flatter every ratio against the PyTorch reference; passive waiting keeps it fair.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        cfg = BenchConfig(artifacts=artifacts, teacher=teacher, student=student, data=data, fold=fold, out=out,
                          threads=_threads(threads), quick=quick, runs=runs, warmup=warmup, max_test_runs=max_test_runs,
                          rss=rss, cuda=cuda, adb=(serial or os.environ.get("ANDROID_SERIAL", "")) if adb else None,
                          adb_path=adb_path, executor_runner=executor_runner, benchmark_model=benchmark_model, plots=plots,
                          absolute_goals=absolute_goals, full_size=full_size, realset=realset)
        result = run_bench(cfg, progress=lambda msg: typer.echo(f"bench: {msg}", err=True))
    except BenchError as e:
        _fail(str(e))
    path = write_report(result, cfg.out, plots=cfg.plots)
    typer.echo("\n".join(summary_lines(result, path)))
    failed = [g["goal"] for g in result.goals() if g["passed"] is False]
    if failed:
        typer.echo(f"bench: {len(failed)} goal(s) FAILED (report written: {path}): {'; '.join(failed)}", err=True)
        raise typer.Exit(1)


def schedule_command(
    model: Path = typer.Option(..., "--model", help="the artifact (with its card) whose streaming schedule to choose"),
    realset: Path = typer.Option(Path("data/realset"), "--realset", help="the real-sound set (footfall data realset): the headline"),
    data: Optional[Path] = typer.Option(Path("data/synth_default"), "--data", help="a generated dataset: its --fold test runs are scored too"),
    fold: int = typer.Option(0, "--fold", help="test split of this fold of --data"),
    out: Path = typer.Option(Path("out/schedule"), "--out", help="report folder: report.md, results.json, schedule.png"),
    apply: bool = typer.Option(False, "--apply", help="write the chosen schedule into the model's card as its low-latency schedule (edge-run --low-latency)"),
) -> None:
    """Choose a model's low-latency schedule (edge-run --low-latency): every hop/lookahead of a grid
    scored for accuracy (5-s MAE beside the metronome) and step-to-count latency on the real-sound
    set and a synthetic test fold; the choice is the cheapest that counts a step within 0.5 s
    (p95 0.8 s) without losing accuracy on real sound against the default schedule (a window every
    hop_frames)."""
    from bench import schedule as S
    from edge.card import CardError, load_verified_card, write_card
    from edge.counter import Alignment
    from edge.util import atomic_write, write_json
    from train.data.folds import split
    from train.data.recordings import labeled, load_dataset

    try:
        card = load_verified_card(model)
    except CardError as e:
        _fail(str(e))
    if card.streaming:
        _fail(f"{model}: a streaming model takes each packet once and has no schedule to choose; "
              f"footfall bench-engine --model {model} --realset {realset} measures its step-to-shown latency")
    sets = {}
    for name, root, test_fold in (("real", realset, None), ("synthetic", data, fold)):
        if root is None:
            continue
        if not (root / "manifest.csv").is_file():
            _fail(f"{root}: no dataset here (build it: footfall data realset --out {root} / footfall data synth --out {root})")
        runs = labeled(load_dataset(root, n_folds=5))
        sets[name] = split(runs, test_fold, 5)[2] if test_fold is not None else runs
    say = lambda m: typer.echo(f"schedule: {m}", err=True)  # noqa: E731
    current = card.alignment()
    grid = [(h, la) for h, la in S.GRID if la is None or la <= card.window_frames - h]
    measured = {(h, Alignment(card.window_frames, h, card.density_stride, la).latency_frames) for h, la in grid}
    if (current.hop_frames, current.latency_frames) not in measured:  # the default itself is the yardstick
        grid.insert(0, (current.hop_frames, current.lookahead_frames))
    rows = S.sweep(model, sets, grid, progress=say)
    chosen, why = S.choose(rows, (current.hop_frames, current.latency_frames))
    out.mkdir(parents=True, exist_ok=True)
    S.plot(rows, out / "schedule.png", chosen)
    write_json(out / "results.json", {"model": str(model), "chosen": chosen.to_dict() if chosen else None,
                                      "why": why, "rows": [r.to_dict() for r in rows]}, indent=1)
    atomic_write(out / "report.md", "\n".join([f"# Streaming schedule of {model.name}", "", f"Low-latency schedule: {why}.", "",
                                              "![latency against accuracy](schedule.png)", "", *S.table(rows), ""]))
    typer.echo(f"{why}\nreport: {out / 'report.md'}")
    if apply and chosen is not None:
        card.low_latency = S.low_latency_schedule(rows, chosen, why)
        write_card(card, model)
        typer.echo(f"{model.name}: low-latency schedule written into its card (edge-run --low-latency)")
    elif apply:
        _fail(f"nothing applied: {why}", 1)


def engine_command(
    model: Optional[Path] = typer.Option(None, "--model", help="the artifact with its card (default: the bundled model)"),
    compare: Optional[Path] = typer.Option(None, "--compare", help="another artifact measured the same way in the same run "
                                           "(e.g. the windowed model beside the streaming one)"),
    out: Path = typer.Option(Path("out/bench-engine"), "--out", help="report folder: report.md, results.json, rss.png"),
    minutes: float = typer.Option(60.0, "--minutes", help="length of the long file (the bundled sample run repeated), at "
                                  "least 1; the whole-process goals are judged on a 10-min file, so from 10 up"),
    realset: Optional[Path] = typer.Option(None, "--realset", help="the real-sound set: step-to-count latency of each schedule"),
    int8: bool = typer.Option(True, "--int8/--no-int8", help="also export the architecture in fp32 and int8 and time both per runtime"),
    absolute_goals: bool = typer.Option(False, "--absolute-goals", help="also judge the goals stated in absolute time (ms per "
                                        "audio second, cold start); by default they are information: noise on a shared machine"),
) -> None:
    """What edge-run costs beside its network: in-process split (decode, front end, network, glue),
    whole-process time on a 60-s and a long file, cold start, RSS, and int8 against fp32 per
    runtime; every figure with its ratio to the network alone, for a streaming model's one schedule, or
    a windowed card's default schedule (a window every hop_frames) and its low-latency one (edge-run
    --low-latency); with --compare, a second artifact beside it. Step-to-shown latency on the sample run
    and (--realset) the real-sound set. Exit 1 only when a
    judged goal fails: ratios measured in this run, memory and step-to-count latency; absolute
    times are shown, not judged, unless --absolute-goals."""
    from bench.engine import engine_bench, goals_table, report
    from edge.card import CardError
    from edge.cli import bundled_model

    # checked here rather than by typer's range, whose refusal is a framed box, not one line
    if not 1 <= minutes < math.inf:  # NaN too
        _fail(f"--minutes {minutes:g}: expected at least 1 (the length of the long file in minutes)")
    artifact = model or bundled_model()
    if artifact is None or not Path(artifact).is_file():
        _fail(f"--model {artifact}: no such model file")
    if compare is not None and not Path(compare).is_file():
        _fail(f"--compare {compare}: no such model file")
    if realset is not None and not (realset / "manifest.csv").is_file():
        _fail(f"--realset {realset}: no dataset here (build it: footfall data realset --out {realset})")
    try:  # the WAVs and exports it measures with live in a temporary folder: --out gets the report only
        with tempfile.TemporaryDirectory(prefix="footfall-bench-engine-") as work:
            res = engine_bench(Path(artifact), Path(work), minutes=minutes, int8=int8, realset=realset,
                               absolute_goals=absolute_goals, say=lambda m: typer.echo(f"bench-engine: {m}", err=True),
                               compare=compare)
    except (CardError, RuntimeError) as e:
        _fail(str(e).splitlines()[0])
    path = report(res, out)
    failed = [g for g in res["goals"] if g["passed"] is False]
    typer.echo("\n".join(goals_table(res, markdown=False)))
    typer.echo(f"report: {path}")
    if failed:
        names = "; ".join(f"{g['schedule']}: {g['goal']}" for g in failed)
        typer.echo(f"bench-engine: {len(failed)} goal(s) FAILED (report written: {path}): {names}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_command)
    app.command("bench-schedule")(schedule_command)
    app.command("bench-engine")(engine_command)
