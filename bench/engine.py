"""What ``edge-run`` costs beside its network: the engine bench of one artifact (the bundled model).

Every figure is per second of audio and comes with its ratio to the network's own invocations
for the same audio, measured in the same run (absolute times on a shared machine are noise;
these ratios much less so):

- :func:`cost_split`: in one process, ``edge-run``'s loop (file source -> ``StreamCounter``)
  split into decoding, front end, network (the backend's ``run``, input quantization included)
  and glue (ring buffer, alignment, counter, Python), beside the network alone
  (``Backend.run`` on a fixed window, as many times as the loop ran it);
- :func:`whole_process`: ``edge-run FILE --json`` as a user runs it, one inference thread:
  wall time to the first count (cold start) and to the end, peak RSS, and the RSS sampled
  through the run (flat or growing), on a 60-s, a 10-min (the goals') and a long file, each
  run :data:`WHOLE_RUNS` times and the run of the median wall time kept (:func:`median_run`);
  the cold start is the median first count of the 60-s runs; beside
  it the start-up floor, the ratio to the network that a process costing nothing but its
  start-up and its network would reach on the 10-min file;
- :func:`macs_per_audio_second`: the network's multiply-accumulates per second of audio with
  the window overlap of the schedule (a window of W frames every H frames: W / H times the
  MACs of the audio itself).

Both schedules of the card are measured: ``default`` (a window every ``hop_frames``) and
``low-latency`` (``edge-run --low-latency``: a short hop and lookahead); step-to-count latency
and accuracy per schedule are :mod:`bench.schedule`'s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from edge.counter import Alignment
from edge.frontend import FRAMES_PER_SECOND, N_MELS, SAMPLE_RATE
from edge.util import atomic_write, write_json

ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class CostSplit:
    """Milliseconds per audio second (median over ``rounds``)."""

    audio_s: float
    windows: int
    decode: float
    frontend: float
    network: float
    glue: float
    total: float
    network_alone: float  # the same number of Backend.run calls on a fixed window

    @property
    def ratio(self) -> float:
        """The engine's in-process cost over its network's alone."""
        return self.total / self.network_alone

    def to_dict(self) -> dict:
        return asdict(self) | {"ratio": round(self.ratio, 3)}


def cost_split(artifact: str | Path, wav: str | Path, align: Alignment | None = None, rounds: int = 3) -> CostSplit:
    """``edge-run``'s in-process cost on ``wav``, split (module docstring); one thread."""
    from bench.latency import numpy_blas_single_thread
    from edge.backends import load_model
    from edge.cli import FILE_BLOCK_S
    from edge.sources import FileSource
    from edge.stream import StreamCounter, schedule

    backend, card = load_model(artifact, threads=1)
    align = schedule(card, align)
    block_s = max(FILE_BLOCK_S, align.hop_frames / FRAMES_PER_SECOND)  # as edge-run reads a file
    rows = []
    ctx, _ = numpy_blas_single_thread()
    with ctx:
        for _ in range(rounds + 1):  # the first round warms caches and imports, and is dropped
            t0 = time.perf_counter()
            n = sum(len(b) for b in FileSource(wav, block_s=block_s))
            decode = time.perf_counter() - t0
            engine = StreamCounter(backend, card, align=align)
            t0 = time.perf_counter()
            for block in FileSource(wav, block_s=block_s):
                engine.push(block)
            engine.finish()
            loop = time.perf_counter() - t0
            windows = engine.latency.n
            x = np.full((1, 1, N_MELS, card.window_frames), -6.0, np.float32)
            x += np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
            t0 = time.perf_counter()
            for _ in range(windows):
                backend.run(x)
            alone = time.perf_counter() - t0
            rows.append((decode, engine.frontend_ms / 1e3, engine.latency.total_ms / 1e3, loop, alone))
    audio_s = n / SAMPLE_RATE
    decode, frontend, network, loop, alone = (float(np.median(c)) * 1e3 / audio_s for c in zip(*rows[1:]))
    return CostSplit(audio_s=audio_s, windows=windows, decode=decode, frontend=frontend, network=network,
                     glue=max(0.0, loop - decode - frontend - network), total=loop, network_alone=alone)


@dataclass
class ProcessRun:
    audio_s: float
    first_count_s: float  # spawn -> first per-hop line on stdout
    wall_s: float  # spawn -> exit
    peak_rss_mb: float
    rss_mb: list[tuple[float, float]]  # (wall s, RSS MB) samples through the run
    steps: float
    wall_s_runs: list[float] = field(default_factory=list)  # every run's wall time, when this is the median of several

    @property
    def ms_per_audio_s(self) -> float:
        return self.wall_s * 1e3 / self.audio_s

    def to_dict(self) -> dict:
        return asdict(self) | {"ms_per_audio_s": round(self.ms_per_audio_s, 3)}


def _rss_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of a live process in MB, from /proc (None once it is gone)."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


def whole_process(wav: str | Path, artifact: str | Path | None = None, extra: list[str] | None = None,
                  sample_s: float = 0.05) -> ProcessRun:
    """Run ``edge-run WAV --json`` once (one inference thread, numpy on one thread) and time it."""
    import soundfile as sf

    cmd = [sys.executable, "-m", "edge.cli", str(wav), "--json", "--threads", "1"]
    cmd += ["--model", str(artifact)] if artifact else []
    cmd += extra or []
    env = os.environ | ONE_THREAD_ENV
    samples: list[tuple[float, float]] = []
    peak = [0.0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)

    def watch() -> None:
        while proc.poll() is None:
            r = _rss_mb(proc.pid)
            if r:
                samples.append((round(time.perf_counter() - t0, 3), round(r[0], 1)))
                peak[0] = max(peak[0], r[1])
            time.sleep(sample_s)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    first = proc.stdout.readline()
    first_s = time.perf_counter() - t0
    rest, err = proc.communicate()
    wall = time.perf_counter() - t0
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"edge-run exited {proc.returncode}: {err.strip().splitlines()[-1] if err.strip() else ''}")
    summary = json.loads((first + rest).strip().splitlines()[-1])["summary"]
    return ProcessRun(audio_s=sf.info(str(wav)).frames / sf.info(str(wav)).samplerate, first_count_s=first_s, wall_s=wall,
                      peak_rss_mb=peak[0], rss_mb=samples, steps=summary["steps"])


WHOLE_RUNS = 3  # whole-process runs per file: one run on a shared machine is one draw of its noise


def median_run(runs: list[ProcessRun]) -> ProcessRun:
    """The run of the median wall time (an odd number of runs of one file), with every run's wall time."""
    ordered = sorted(runs, key=lambda r: r.wall_s)
    return replace(ordered[len(ordered) // 2], wall_s_runs=[round(r.wall_s, 4) for r in runs])


def macs_per_audio_second(card, align: Alignment) -> float:
    """Network MACs per second of audio: the card's MACs per window times windows per second."""
    per_window = card.model.get("macs_per_second", 0) * card.window_frames / FRAMES_PER_SECOND
    return per_window * FRAMES_PER_SECOND / align.hop_frames


def long_wav(src: str | Path, out: Path, seconds: float) -> Path:
    """``src`` repeated to ``seconds`` as 16-bit PCM (a long run for the whole-process figures)."""
    import soundfile as sf

    if out.exists() and sf.info(str(out)).duration >= seconds:
        return out
    audio, rate = sf.read(str(src), dtype="float32", always_2d=False)
    n = int(seconds * rate)
    out.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(str(out), "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for s in range(0, n, len(audio)):
            f.write(audio[: min(len(audio), n - s)])
    return out


def rss_growth_mb(run: ProcessRun, skip_s: float = 2.0) -> float:
    """RSS at the end minus RSS once the run has started (after ``skip_s``): flat is ~0."""
    late = [m for t, m in run.rss_mb if t >= skip_s]
    return late[-1] - late[0] if len(late) >= 2 else 0.0


@dataclass
class PrecisionSpeed:
    runtime: str  # litert | executorch | onnxruntime
    fp32_ms: float  # per invoke, median over rounds
    int8_ms: float
    speedup: float  # median over rounds of fp32 / int8 measured back to back
    partitions: dict  # precision -> XNNPACK partitions (1: the whole graph delegated); None for onnxruntime

    def to_dict(self) -> dict:
        return asdict(self)


# (runtime, extension) timed int8 against fp32; the int8 goal is 1.5x in LiteRT and ExecuTorch
# (XNNPACK) and faster than fp32 (> 1x) in every runtime
RUNTIMES = (("litert", "tflite"), ("executorch", "pte"), ("onnxruntime", "onnx"))
INT8_GOAL_RUNTIMES = ("litert", "executorch")


def int8_speedups(card, out: Path, rounds: int = 40, calls: int = 10, say=lambda m: None) -> list[PrecisionSpeed]:
    """int8 against fp32 in each runtime, for the card's architecture (random weights: speed only).

    Exports the card's model config through ``export.targets`` to ``.tflite``, ``.pte`` and
    ``.onnx`` in both precisions (PTQ on 16 random log-mel windows), then times the six interleaved, one thread:
    ``rounds`` rounds of ``calls`` invocations each, the order rotating, so that load on a shared
    machine hits every artifact alike; the speed-up is the median of the per-round ratios.
    """
    import torch

    from edge.backends import load_backend
    from export.targets import to_onnx, to_pte, to_tflite
    from train.models import build_model

    torch.manual_seed(0)
    config = dict(card.model.get("config", {}))
    if card.streaming:  # the card's packet, whatever the checkpoint's config said
        config["packet_frames"] = card.window_frames
    model = build_model(card.model["name"], **config).eval()
    x = torch.randn(1, 1, N_MELS, card.window_frames) * 2 - 6
    calib = [torch.randn(1, 1, N_MELS, card.window_frames) * 2 - 6 for _ in range(16)]
    if card.streaming:  # its step: packet and state in, logits and state out; calibrated on a streamed run
        from export.pipeline import stream_inputs, stream_step

        packets = (torch.randn(64, 1, N_MELS, card.window_frames) * 2 - 6).numpy()
        calib = stream_inputs(model, packets, np.zeros(len(packets), int), max_inputs=16)
        model = stream_step(model)
        x = model.example_inputs()
    out.mkdir(parents=True, exist_ok=True)
    paths, parts = {}, {}
    for runtime, ext in RUNTIMES:
        export = {"tflite": to_tflite, "pte": to_pte, "onnx": to_onnx}[ext]
        for precision in ("fp32", "int8"):
            say(f"  exporting {runtime} {precision}")
            extra = {"state_names": [n for n, _ in card.state_shapes()]} if ext == "onnx" and card.streaming else {}
            e = export(model, x, out / f"{card.model['name']}_{precision}.{ext}", precision, calib if precision == "int8" else None,
                       **extra)
            paths[runtime, precision] = e.path
            parts.setdefault(runtime, {})[precision] = e.info.get("delegated_subgraphs")
    backends = {k: load_backend(p, threads=1) for k, p in paths.items()}
    say(f"  timing the {len(backends)} artifacts interleaved: {rounds} rounds of {calls} invocations each")
    window = (x[0] if isinstance(x, tuple) else x).numpy()
    times: dict = {k: [] for k in backends}
    keys = list(backends)
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[: r % len(keys)]:
            t0 = time.perf_counter()
            for _ in range(calls):
                backends[k].run(window)
            times[k].append((time.perf_counter() - t0) / calls * 1e3)
    rows = []
    for runtime, _ in RUNTIMES:
        f, i = np.asarray(times[runtime, "fp32"]), np.asarray(times[runtime, "int8"])
        rows.append(PrecisionSpeed(runtime, float(np.median(f)), float(np.median(i)), float(np.median(f / i)), parts[runtime]))
    return rows


# the engine goals, checked on the bundled model at one thread
GOAL_FILE_MIN = 10.0  # the whole-process goals are for a 10-min file (start-up amortised over 10 min)
GOALS = {
    "engine_ratio": 1.5,  # in-process cost / the network's own invokes
    "process_ratio": 2.0,  # whole-process edge-run on the 10-min file / the network's own invokes
    "process_ms_per_s": 1.5,  # whole-process ms per audio second (the 10-min file)
    "cold_start_s": 0.3,  # spawn -> first count (.tflite)
    "int8_speedup": 1.5,  # int8 over fp32 per runtime (on a CPU with AVX2 or better)
    "rss_mb": 100.0,  # peak RSS, flat over the long file
    "latency_mean_s": 0.5,  # step-to-shown latency of a windowed schedule (edge-run's default hop), mean ...
    "latency_p95_s": 0.8,  # ... and p95
    # a streaming model, which never recomputes a window, is held to more:
    "streaming_latency_mean_s": 0.3,
    "streaming_latency_p95_s": 0.45,
    "streaming_process_ms_per_s": 1.0,  # whole-process ms per audio second, one thread, the 10-min file
}
# why a goal is shown and not judged
ABSOLUTE_NOTE = "absolute time: not judged (--absolute-goals)"
NO_AVX2_NOTE = "no AVX2 here: the goal is for a CPU with AVX2 or better"


def _schedules(card) -> list[tuple[str, Alignment]]:
    """The schedules of a card the bench measures: a streaming model's one (``streaming``), a windowed
    model's ``default`` and, when its card has one, ``low-latency``."""
    if card.streaming:
        return [("streaming", card.alignment())]
    default, fast = card.alignment(), card.alignment(low_latency=True)
    return [("default", default)] + ([] if fast == default else [("low-latency", fast)])


def _labelled_runs(root: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    from edge.audio import load_audio
    from train.data.recordings import labeled, load_dataset, load_steps

    return [(load_audio(r.audio), load_steps(r.steps)) for r in labeled(load_dataset(root, n_folds=5))]


def shown_lags(backend, card, align: Alignment, runs) -> list[float]:
    """When a runner sees each step, after it lands (s): the stream's step-to-count lag
    (:func:`bench.schedule.stream_run`), or the live view's display delay
    (:func:`edge.cli.display_delay_s`) where that is longer (the view shows a step no sooner)."""
    from bench.schedule import stream_run
    from edge.cli import display_delay_s

    delay = display_delay_s(align, card.counter_params())
    return [max(lag, delay) for audio, steps in runs for lag in stream_run(backend, card, audio, align, steps)[1]]


def engine_bench(artifact: Path, work: Path, minutes: float = 60.0, int8: bool = True, realset: Path | None = None,
                 absolute_goals: bool = False, say=lambda m: None, compare: Path | None = None) -> dict:
    """Every figure of the engine bench (module docstring) for ``artifact`` (and ``compare``, another
    artifact measured the same way in the same run: the windowed model beside the streaming one);
    returns a JSON-able dict. ``work``: a folder for what the bench makes to measure with (the long
    WAVs, 21 MB for a 10-min run, and the int8/fp32 exports), not the report's.
    ``absolute_goals``: judge the goals stated in absolute time too (see :func:`goals`)."""
    from bench.run import machine_info
    from edge.backends import load_model
    from edge.card import load_verified_card

    t_start = time.perf_counter()
    cards = [(Path(artifact), load_verified_card(artifact))]
    if compare is not None:
        cards.append((Path(compare), load_verified_card(compare)))
    sample = Path(artifact).parent / "sample_run.wav"
    if not sample.is_file():
        from edge.cli import ASSETS

        sample = ASSETS / "sample_run.wav"
    files = {"60 s": long_wav(sample, work / "audio" / "run_60s.wav", 60.0)}
    for m in dict.fromkeys((min(GOAL_FILE_MIN, minutes), minutes)):  # the goals' file, then the long one
        files[f"{m:g} min"] = long_wav(sample, work / "audio" / f"run_{m:g}min.wav", m * 60.0)
    goal_file = f"{min(GOAL_FILE_MIN, minutes):g} min"

    def shown(path: Path) -> str:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else str(path)

    res: dict = {"artifact": shown(artifact), "compare": None if compare is None else shown(compare), "machine": machine_info(),
                 "absolute_goals": absolute_goals, "schedules": {}}
    # where step-to-count latency is measured: the sample run (its steps ship beside it) and the real-sound set
    latency_sets = {}
    sample_steps = sample.with_name("sample_run.steps.csv")
    if sample_steps.is_file():
        from edge.audio import load_audio
        from train.data.recordings import load_steps

        latency_sets["sample"] = [(load_audio(sample), load_steps(sample_steps))]
    if realset is not None:
        latency_sets["real-sound set"] = _labelled_runs(realset)
    for path, card in cards:
        backend = load_model(path)[0] if latency_sets else None
        for name, align in _schedules(card):
            key = name if path == Path(artifact) else f"{path.stem} {name}"
            say(f"cost split, {key} schedule (hop {align.hop_frames * 10} ms)")
            split = cost_split(path, files["60 s"], align)
            extra = [] if card.streaming else ["--hop-ms", str(align.hop_frames * 10)] + (
                [] if align.lookahead_frames is None else ["--lookahead-ms", str(align.lookahead_frames * 10)])
            runs, tries = {}, {}
            for label, wav in files.items():
                say(f"whole process, {key} schedule, {label}: {WHOLE_RUNS} runs, the median kept")
                tries[label] = [whole_process(wav, path, extra) for _ in range(WHOLE_RUNS)]
                runs[label] = median_run(tries[label])
            say(f"cold start, {key} schedule: the median first count of the {WHOLE_RUNS} runs on the 60-s file")
            cold = float(np.median([r.first_count_s for r in tries["60 s"]]))
            long_run = runs[f"{minutes:g} min"]
            net_ms_per_s = split.network_alone
            goal_s = runs[goal_file].audio_s
            res["schedules"][key] = {
                "artifact": shown(path), "streaming": card.streaming,
                "hop_ms": align.hop_frames * 10, "lookahead_ms": align.latency_frames * 10,
                "windows_per_s": FRAMES_PER_SECOND / align.hop_frames,
                "macs_per_audio_s": macs_per_audio_second(card, align),
                "cost_split": split.to_dict(),
                "process": {k: v.to_dict() | {"ratio_to_network": round(v.ms_per_audio_s / net_ms_per_s, 3)} for k, v in runs.items()},
                "cold_start_s": cold,
                "goal_file": goal_file,
                # the least whole-process / network ratio on the goals' file of an engine that cost nothing
                # but its measured start-up (spawn to first count) and its network
                "startup_floor_ratio": round((cold * 1e3 / goal_s + net_ms_per_s) / net_ms_per_s, 3),
                "rss_growth_mb": rss_growth_mb(long_run),
            }
            for set_name, set_runs in latency_sets.items():
                say(f"step-to-shown latency, {key} schedule: {len(set_runs)} run(s) of the {set_name}")
                lags = shown_lags(backend, card, align, set_runs)
                entry = {"mean": float(np.mean(lags)), "p95": float(np.percentile(lags, 95)), "max": float(np.max(lags)),
                         "set": str(realset) if set_name != "sample" else shown(sample), "steps": len(lags)}
                res["schedules"][key].setdefault("latency_s", {})[set_name] = entry
        if int8:
            say(f"int8 against fp32, {path.name}: the architecture exported in both precisions per runtime")
            rows = [r.to_dict() | {"artifact": shown(path)} for r in int8_speedups(card, work / "int8" / path.stem, say=say)]
            res.setdefault("int8", []).extend(rows)
    res["goals"] = goals(res)
    say(f"done in {time.perf_counter() - t_start:.0f} s")
    return res


def goals(res: dict) -> list[dict]:
    """The engine goals, for each schedule (latency only where the real-sound set was given).

    Each row has its value, unit, comparison and limit, and ``passed``: True or False where the
    goal is judged, None where its figure is shown and not judged (``note`` says why). How each is
    judged on a shared machine, where load changes wall times from one minute to the next:

    - the cost ratios (in-process and whole process over the network alone) and int8 over fp32
      are ratios between figures measured in this run (int8 and fp32 interleaved): judged;
    - the whole-process goals name a 10-min file (start-up amortised over 10 minutes): measured
      on a shorter file (``--minutes`` under 10), they are shown and not judged;
    - ms per audio second and cold start are absolute wall times with no reference timed beside
      them, noise here: shown and not judged unless ``res["absolute_goals"]``;
    - peak RSS is memory and step-to-count latency is audio time (when the stream counts a step),
      neither a wall time: judged;
    - the int8 goal of 1.5x is for a CPU with AVX2 or better: shown and not judged without it.
    """
    absolute = bool(res.get("absolute_goals"))
    rows = []

    def row(schedule: str, goal: str, value: float, unit: str, op: str, limit: float, note: str = "") -> None:
        meets = {"<=": value <= limit, ">=": value >= limit, ">": value > limit}[op]
        rows.append({"schedule": schedule, "goal": goal, "value": value, "unit": unit, "op": op, "limit": limit,
                     "passed": None if note else meets} | ({"note": note} if note else {}))

    for name, s in res["schedules"].items():
        label = s["goal_file"]
        run = s["process"][label]
        long_run = s["process"][list(s["process"])[-1]]
        # start-up weighs more on a shorter file, so a shorter file's whole-process figures are not the goals' own
        short = "" if label == f"{GOAL_FILE_MIN:g} min" else f"on the {label} file: the goal is for {GOAL_FILE_MIN:g} min"
        row(name, "in-process cost / network alone", s["cost_split"]["ratio"], "x", "<=", GOALS["engine_ratio"])
        row(name, f"whole process / network alone, {label} file", run["ratio_to_network"], "x", "<=", GOALS["process_ratio"], short)
        # wall time per audio second and to the first count: nothing timed beside them cancels the load, so
        # they move with the machine's other work (the ratio goals above carry the engine's cost instead)
        streaming = bool(s.get("streaming"))
        row(name, f"whole process, ms per audio second, {label} file", run["ms_per_audio_s"], "ms/s", "<=",
            GOALS["streaming_process_ms_per_s" if streaming else "process_ms_per_s"], short or ("" if absolute else ABSOLUTE_NOTE))
        row(name, "cold start to first count", s["cold_start_s"], "s", "<=", GOALS["cold_start_s"], "" if absolute else ABSOLUTE_NOTE)
        row(name, "peak RSS", long_run["peak_rss_mb"], "MB", "<=", GOALS["rss_mb"])  # memory: load does not move it
        prefix = "streaming_" if streaming else ""
        for set_name, la in s.get("latency_s", {}).items():  # audio time (when a step is shown), not wall time: judged
            row(name, f"step-to-shown latency, mean, {set_name}", la["mean"], "s", "<=", GOALS[prefix + "latency_mean_s"])
            row(name, f"step-to-shown latency, p95, {set_name}", la["p95"], "s", "<=", GOALS[prefix + "latency_p95_s"])
    avx2 = "avx2" in res["machine"].get("cpu_features", [])

    def where(r: dict) -> str:  # the artifact whose architecture an int8 row timed, when two were benched
        return Path(r["artifact"]).stem if res.get("compare") and r.get("artifact") else "-"

    for r in res.get("int8", []):
        if r["runtime"] in INT8_GOAL_RUNTIMES:
            row(where(r), f"int8 / fp32 speed, {r['runtime']}", r["speedup"], "x", ">=", GOALS["int8_speedup"], "" if avx2 else NO_AVX2_NOTE)
        else:  # "faster than fp32 in every runtime"
            row(where(r), f"int8 / fp32 speed, {r['runtime']}", r["speedup"], "x", ">", 1.0)
    return rows


def _sig3(v: float) -> str:
    """Three significant digits, trailing zeros kept (2.90, 0.192, 54.4); whole numbers from 100 up."""
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:#.3g}".rstrip(".")


def figure(v: float | None, unit: str = "") -> str:
    """A figure as the tables show it, with its unit: milliseconds with two decimals (finer digits are
    below the noise of a shared machine), anything else to three significant digits."""
    if v is None:
        return "-"
    if unit.startswith("ms"):
        return f"{v:.2f}" + (f" {unit}" if unit != "ms" else "")
    return _sig3(v) + ("x" if unit == "x" else f" {unit}" if unit else "")


def table(header: list[str], rows: list[list[str]], align: str, markdown: bool = True) -> list[str]:
    """Rows under a header in aligned columns (``align``: ``l`` or ``r`` per column, numbers right):
    a markdown table padded so that its source reads as a table too, or plain text for a terminal."""
    widths = [max(len(c) for c in column) for column in zip(header, *rows)]

    def line(cells: list[str]) -> str:
        padded = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(cells, widths, align)]
        return "| " + " | ".join(padded) + " |" if markdown else "  ".join(padded).rstrip()

    if not markdown:
        return [line(header), *map(line, rows)]
    rule = "|" + "|".join("-" * (w + 1) + ":" if a == "r" else "-" * (w + 2) for w, a in zip(widths, align)) + "|"
    return [line(header), rule, *map(line, rows)]


def goals_table(res: dict, markdown: bool = True) -> list[str]:
    """The goals in aligned columns: schedule, goal, value, limit, result and why a goal is not judged."""
    from bench.run import verdict

    rows = [[g["schedule"], g["goal"], figure(g["value"], g["unit"]), f"{g['op']} {figure(g['limit'], g['unit'])}",
             verdict(g).upper() if g["passed"] is not None else verdict(g), g.get("note", "")] for g in res["goals"]]
    return table(["schedule", "goal", "value", "limit", "result", "note"], rows, "llrrll", markdown)


def report(res: dict, out: Path) -> Path:
    """``report.md`` (and ``rss.png``) in ``out`` from :func:`engine_bench`'s result."""
    m = res["machine"]
    title = Path(res["artifact"]).name + (f" beside {Path(res['compare']).name}" if res.get("compare") else "")
    lines = [f"# edge-run engine bench: {title}", "",
             f"Machine: {m.get('cpu', '?')}, {m.get('cores')} cores; CPU features: {', '.join(m.get('cpu_features', [])) or 'none detected'}; "
             f"load average at the start {m.get('load_avg_start')}. One inference thread, numpy on one thread. "
             "Every ratio is between figures measured in this one run; absolute times on a shared machine are noise, "
             "shown and " + ("judged (--absolute-goals)." if res.get("absolute_goals") else "not judged."), ""]
    for name, s in res["schedules"].items():
        c = s["cost_split"]
        what = (f"each {s['hop_ms']}-ms packet once, its state carried" if s.get("streaming") else
                f"a window every {s['hop_ms']} ms, lookahead {s['lookahead_ms']} ms")
        lines += [f"## `{name}` ({Path(s.get('artifact', res['artifact'])).name}): {what}", "",
                  f"Network: {figure(s['windows_per_s'])} windows per audio second, {figure(s['macs_per_audio_s'] / 1e6)} MMAC "
                  "per audio second (window overlap included).", ""]
        lines += table(["in-process, ms per audio second", "decode", "front end", "network", "glue", "total", "network alone",
                        "total / network alone"],
                       [[f"{c['audio_s']:.0f}-s file", *(figure(c[k], "ms") for k in ("decode", "frontend", "network", "glue", "total",
                                                                                       "network_alone")), figure(c["ratio"], "x")]],
                       "lrrrrrrr") + [""]
        lines += table(["whole process (edge-run FILE --json), the median run", "first count (s)", "wall (s)", "ms per audio second",
                        "/ network alone", "peak RSS (MB)", "every run's wall (s)"],
                       [[label, figure(p["first_count_s"]), figure(p["wall_s"]), figure(p["ms_per_audio_s"], "ms"),
                         figure(p["ratio_to_network"], "x"), figure(p["peak_rss_mb"]),
                         ", ".join(figure(w) for w in p.get("wall_s_runs") or [p["wall_s"]])] for label, p in s["process"].items()],
                       "lrrrrrr")
        lines += ["", f"Cold start to the first count (median of the 60-s runs): {figure(s['cold_start_s'], 's')}. RSS growth over the long file: "
                  f"{s['rss_growth_mb']:.1f} MB."]
        lines += [f"Start-up floor: a process that cost nothing but that start-up and the network would take "
                  f"{figure(s['startup_floor_ratio'], 'x')} the network alone on the {s['goal_file']} file."]
        for set_name, la in s.get("latency_s", {}).items():
            lines += [f"Step-to-shown latency on the {set_name} ({la['steps']} steps): mean {figure(la['mean'], 's')}, "
                      f"p95 {figure(la['p95'], 's')}, max {figure(la['max'], 's')}."]
        lines.append("")
    if res.get("int8"):
        lines += ["## int8 against fp32 (each card's architecture, random weights)", ""]
        lines += table(["architecture", "runtime", "fp32 ms/call", "int8 ms/call", "int8 speed-up", "XNNPACK partitions (fp32, int8)"],
                       [[Path(r.get("artifact", res["artifact"])).stem, r["runtime"], figure(r["fp32_ms"], "ms"), figure(r["int8_ms"], "ms"), figure(r["speedup"], "x"),
                         ", ".join("-" if r["partitions"].get(p) is None else str(r["partitions"][p]) for p in ("fp32", "int8"))]
                        for r in res["int8"]], "llrrrr") + [""]
    lines += ["## Goals", "", "Only a goal that is judged (PASS or FAIL) and missed fails the bench; 'info' is shown, not judged "
              "(the note says why).", ""]
    lines += goals_table(res)
    out.mkdir(parents=True, exist_ok=True)
    _rss_plot(res, out / "rss.png")
    lines += ["", "![RSS through the long file](rss.png)", ""]
    write_json(out / "results.json", res, indent=1)
    return atomic_write(out / "report.md", "\n".join(lines))


def _rss_plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, s in res["schedules"].items():
        label, p = list(s["process"].items())[-1]  # the long file
        t, mb = zip(*p["rss_mb"]) if p["rss_mb"] else ((), ())
        ax.plot(t, mb, label=f"{name}, {label} file")
    ax.axhline(GOALS["rss_mb"], color="red", ls=":", lw=1, label="goal")
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("RSS (MB)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
