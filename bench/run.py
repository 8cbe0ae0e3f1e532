"""``footfall bench``: every subject of an artifact folder measured side by side in one run.

:func:`run_bench` is the straight line: discover the subjects (:mod:`bench.subjects`) -> per-hop
latency at each thread count, interleaved (:mod:`bench.latency`) -> batch throughput of the
teacher on CUDA -> accuracy on the fold's test runs and agreement with the reference
(:mod:`bench.accuracy`) -> peak RSS, one fresh process per subject (:mod:`bench.memory`) ->
optionally the phone (:mod:`bench.adb`) -> ratios and goals. :mod:`bench.report` writes it out.

Every ratio against the reference (speed-up, relative accuracy cost) is computed from numbers
taken in this one run; absolute times on a shared machine are noise, the ratios much less so.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench import accuracy as acc_mod
from bench import latency as lat
from bench.subjects import BenchError, Discovery, Subject, discover, load_backend
from edge.contract import SAMPLE_RATE
from edge.util import jsonable, tool_versions

log = logging.getLogger("footfall.bench")

# the acceptance goals, checked on the student's int8 .pte at one thread
GOAL_RTF = 0.002
GOAL_SPEEDUP = 50.0
GOAL_REL_COST_PCT = 3.0
DEFAULT_RUNS, QUICK_RUNS = 200, 12  # timed hops per subject and thread count, without and with --quick
# why an absolute-time goal is shown and not judged (unless --absolute-goals)
ABSOLUTE_NOTE = "an absolute time, noise on a shared machine: information (--absolute-goals judges it)"


def verdict(goal: dict) -> str:
    """What became of a goal (a row of :meth:`BenchResult.goals` or ``bench.engine.goals``): ``pass``,
    ``fail``, ``info`` (measured and shown, not judged; its ``note`` says why) or ``not measured``."""
    if goal["passed"] is not None:
        return "pass" if goal["passed"] else "fail"
    return "not measured" if goal["value"] is None else "info"


def judged(goal: dict, meets, why_not_measured: str) -> dict:
    """``goal`` (with its ``value``) judged by ``meets(value)``, or not measured (``value`` None):
    then ``passed`` is None and ``note`` says why. Only a goal that was measured can fail."""
    if goal["value"] is None:
        return goal | {"passed": None, "note": why_not_measured}
    return goal | {"passed": bool(meets(goal["value"]))}


@dataclass
class BenchConfig:
    artifacts: Path
    teacher: Path | None = None
    student: Path | None = None
    data: Path | None = None  # dataset (contract 5); default: the one the cards were checked on
    fold: int | None = None  # default: the fold the models were trained for
    out: Path = Path("out/bench")
    threads: tuple[int, ...] = (1, 2)
    quick: bool = False
    runs: int | None = None  # hops timed per subject and thread count (default 200; quick 12)
    warmup: int | None = None  # (default 10; quick 2)
    block: int | None = None  # hops per interleaved block (default 10; quick 4)
    max_test_runs: int | None = None  # default all (quick 2)
    rss: bool = True
    cuda: bool | None = None  # time the teacher on CUDA too (default: when available)
    adb: str | None = None  # None: no phone; "": the only connected device; else a serial
    adb_path: Path | None = None
    executor_runner: Path | None = None
    benchmark_model: Path | None = None
    plots: bool = True
    absolute_goals: bool = False  # judge the goals stated in absolute time (RTF) too; by default they are information
    realset: Path | None = None  # the real-sound evaluation set (footfall data realset): every artifact's headline accuracy
    full_size: str | None = None  # "cnn14" or "cnn14:width=0.5": an untrained registry model timed as a latency-only reference
    full_size_runs: int | None = None  # hops timed for it (default 20; quick 4): a full-size Cnn14 takes ~1 s a hop here

    def __post_init__(self) -> None:
        self.artifacts, self.out = Path(self.artifacts), Path(self.out)
        self.threads = tuple(int(t) for t in self.threads)
        if not self.threads or min(self.threads) < 1:
            raise BenchError(f"--threads must list positive thread counts, got {self.threads}")
        self.runs = self.runs or (QUICK_RUNS if self.quick else DEFAULT_RUNS)
        self.warmup = self.warmup if self.warmup is not None else (2 if self.quick else 10)
        self.block = self.block or (4 if self.quick else 10)
        if self.quick and self.max_test_runs is None:
            self.max_test_runs = 2
        self.full_size_runs = self.full_size_runs or (4 if self.quick else 20)
        if self.full_size:
            parse_full_size(self.full_size)  # a bad spec fails before any work
        if self.runs < 1 or self.warmup < 0:
            raise BenchError(f"--runs must be >= 1 and --warmup >= 0, got {self.runs}, {self.warmup}")

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass
class BenchResult:
    config: dict
    machine: dict
    subjects: list[Subject]
    timings: dict[tuple[str, int], lat.Timing] = field(default_factory=dict)
    accuracy: dict[str, acc_mod.Accuracy] = field(default_factory=dict)
    memory: dict[str, dict] = field(default_factory=dict)
    throughput: list[dict] = field(default_factory=list)
    curves: dict = field(default_factory=dict)  # counts over time of one run
    test_set: str = ""
    real: dict = field(default_factory=dict)  # real_sound_accuracy(): the artifacts and the baselines on recorded sounds
    skipped: list[tuple[str, str]] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # not found: (what, how to make or pass it)
    notes: list[str] = field(default_factory=list)
    phone: object | None = None  # bench.adb.PhoneReport
    seconds: float = 0.0
    full_size: dict = field(default_factory=dict)  # the latency-only full-size reference (see _full_size)

    # -- derived -----------------------------------------------------------------------------
    @property
    def reference(self) -> Subject:
        return next(s for s in self.subjects if s.role == "reference" and s.device == "cpu")

    def subject(self, key: str) -> Subject:
        return next(s for s in self.subjects if s.key == key)

    def speedup(self, key: str, threads: int) -> float | None:
        """Reference p50 / subject p50, same thread count, this run."""
        ref, sub = self.timings.get((self.reference.key, threads)), self.timings.get((key, threads))
        return ref.p50 / sub.p50 if ref and sub and sub.p50 > 0 else None

    def headline(self) -> Subject | None:
        """The shipping candidate the goals are about: the student's int8 .pte (QAT first)."""
        cands = [s for s in self.subjects if s.format == "pte" and s.precision == "int8"]
        cands.sort(key=lambda s: s.quantization != "qat")
        return cands[0] if cands else None

    def goals(self) -> list[dict]:
        """The goals on the headline at one thread, each judged (``passed`` True or False) only when
        its figure was measured: the speed-up (a ratio to the reference timed interleaved in this
        run) and the accuracy cost. RTF is an absolute time: information unless the run asked for
        absolute goals. Without the headline every goal is there, not measured (see ``missing``)."""
        s = self.headline()
        t1 = min(self.config["threads"])
        key = s.key if s else None
        timing = self.timings.get((key, t1))
        sp = self.speedup(key, t1) if s else None
        acc = self.accuracy.get(key)

        def unmeasured(why: str) -> str:
            return why if s else "no student int8 .pte among the artifacts"

        rtf = {"goal": f"RTF <= {GOAL_RTF} ({t1} thread, p50 per hop)", "value": timing.rtf if timing else None, "unit": "",
               "subject": key}
        # RTF is a hop's wall time over the hop's audio time: nothing timed beside it cancels the load of a
        # shared machine, so it is information unless the run asks for absolute goals
        if timing and not self.config.get("absolute_goals"):
            rtf |= {"passed": None, "note": ABSOLUTE_NOTE}
        else:
            rtf = judged(rtf, lambda v: v <= GOAL_RTF, unmeasured(f"not timed at {t1} thread"))
        # the speed goal is against the full-size desktop reference when one was timed (--full-size); the
        # trained teacher is then shown for information (on a 2-core CPU it is the cpu preset's shrink)
        fs = (self.full_size or {}).get("threads", {})
        fs_row = fs.get(t1, fs.get(str(t1), {}))
        trained = judged({"goal": f">= {GOAL_SPEEDUP:g}x faster than the reference teacher on the same CPU ({t1} thread, p50 per hop)",
                          "value": sp, "unit": "x", "subject": key},
                         lambda v: v >= GOAL_SPEEDUP, unmeasured(f"the int8 .pte or the reference not timed at {t1} thread"))
        if "speedup_headline" in fs_row:
            fsp = fs_row["speedup_headline"]
            speed = [{"goal": f">= {GOAL_SPEEDUP:g}x faster than the full-size reference teacher ({self.full_size['spec']}, "
                              f"{self.full_size['params'] / 1e6:.1f} M parameters) on the same CPU ({t1} thread, p50 per hop)",
                      "value": fsp, "unit": "x", "passed": bool(fsp >= GOAL_SPEEDUP), "subject": key},
                     trained | {"goal": f"speed-up vs the trained reference teacher ({self.reference.label}; information, "
                                        f"not a goal: the 2-core CPU's shrink of the full-size model)", "passed": None}]
        else:
            speed = [trained]
        cost = judged({"goal": f"<= {GOAL_REL_COST_PCT:g} % relative accuracy cost (5-s MAE vs the reference)",
                       "value": acc.rel_mae_cost_pct if acc else None, "unit": "%", "subject": key},
                      lambda v: v <= GOAL_REL_COST_PCT,
                      unmeasured("its accuracy or the reference's not measured (see 'Not measured')" if self.test_set
                                 else "no labeled test data"))
        return [rtf, *speed, cost]

    def to_dict(self) -> dict:
        lat_rows = []
        for (key, threads), t in self.timings.items():
            row = t.summary()
            sp = self.speedup(key, threads)
            row["speedup_vs_reference"] = round(sp, 3) if sp else None
            lat_rows.append(row)
        return {
            "config": self.config, "machine": self.machine, "seconds": round(self.seconds, 1),
            "definitions": DEFINITIONS, "subjects": [s.to_dict() for s in self.subjects], "latency": lat_rows,
            "accuracy": {k: a.to_dict() for k, a in self.accuracy.items()}, "test_set": self.test_set, "real_sound": self.real,
            "memory": self.memory, "throughput": self.throughput, "goals": jsonable(self.goals()),
            "skipped": [{"what": w, "why": y} for w, y in self.skipped],
            "missing": [{"what": w, "how": h} for w, h in self.missing], "notes": self.notes,
            "phone": self.phone.to_dict() if self.phone is not None else None, "full_size": self.full_size,
        }


DEFINITIONS = {
    "per_hop": "one StreamCounter.push of one hop of new audio into a warm stream: the incremental front end for the hop's "
               "samples, the ring buffer, one model invocation on one window (the card's; the teacher's own 5-s window for "
               "the reference) and the counter's commit",
    "model_ms": "the model invocation alone (perf_counter; CUDA events around copy-in, forward and copy-out on CUDA)",
    "rtf": "p50 per-hop time / hop duration",
    "speedup": "reference teacher p50 per-hop time / subject p50 per-hop time, same thread count, same run, same CPU",
    "accuracy": "test runs of the fold: 5-s MAE / PCC on the paper's non-overlapping windows, median total-count error over "
                "runs, from each subject's step events; students count by streaming (edge.stream.count_offline), the teacher "
                "on its own window schedule (train.evaluate.predict)",
    "step_f": "per step: each counted step matched one to one to a true step within +-50 ms; F = 2 matched / (counted + true), "
              "pooled over the runs; timing error = counted - true time of the matched steps",
    "rel_mae_cost": "(MAE - MAE_reference) / MAE_reference",
    "count_diff": "per 5-s window: subject count - reference count",
}


# the instruction-set extensions that decide which int8/fp32 kernels the runtimes pick (XNNPACK,
# LiteRT, ONNX Runtime): a speed quoted without them cannot be compared across machines
CPU_FEATURES = ("sse4_2", "avx", "fma", "avx2", "avx_vnni", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "sve", "i8mm")


def cpu_features(cpuinfo: str | None = None) -> list[str]:
    """The :data:`CPU_FEATURES` this CPU has, from ``/proc/cpuinfo`` (``flags`` on x86, ``Features`` on Arm)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    have: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            have.update(value.split())
    return [f for f in CPU_FEATURES if f in have]


def machine_info() -> dict:
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cpu_features": cpu_features(), "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads_default": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (libgomp spins at barriers)"),
            "load_avg_start": [round(v, 2) for v in os.getloadavg()],
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info | tool_versions("executorch", "ai-edge-litert", "onnxruntime")


def _stream_audio(test_set: acc_mod.TestSet | None, seconds: float = 60.0) -> tuple[np.ndarray, str]:
    """Real audio to stream through the timing loop: the first test run's, else a click track."""
    if test_set is not None and test_set.runs:
        from edge.audio import load_audio

        run = test_set.runs[0]
        return load_audio(run.audio)[: int(seconds * SAMPLE_RATE)], f"test run {run.run_id}"
    from edge.golden import click_track

    return click_track(seconds, seed=1)[0].astype(np.float32), "a synthetic click track (no dataset)"


def _windows_of(audio: np.ndarray, window: int, n: int = 8) -> np.ndarray:
    from edge.stream import offline_log_mel

    mel = offline_log_mel(audio)
    starts = np.linspace(0, max(mel.shape[1] - window, 0), n).astype(int)
    out = np.stack([mel[:, s : s + window] for s in starts])[:, None]
    if out.shape[-1] < window:  # audio shorter than a window: pad with silence
        from edge.counter import PAD_LOG_MEL

        out = np.pad(out, ((0, 0), (0, 0), (0, 0), (0, window - out.shape[-1])), constant_values=PAD_LOG_MEL)
    return np.ascontiguousarray(out, np.float32)


def real_sound_accuracy(subjects, realset: Path, say=lambda m: None) -> dict:
    """Every exported artifact on the real-sound set, as the edge runtime counts it, beside the
    metronome and the onset counter on the same runs (``train.evaluate.realeval``)."""
    from dataclasses import asdict

    from train.evaluate.realeval import evaluate_artifact

    from train.data.recordings import DatasetError

    say(f"real-sound set {realset}: baselines")
    try:
        base = evaluate_artifact(None, realset, counters=("metronome", "onset"))
    except (DatasetError, ValueError, OSError) as e:
        raise BenchError(f"--realset {realset}: {str(e).splitlines()[0]}") from e
    out = {"set": str(realset), "runs": base.overall["metronome"].n_runs,
           "baselines": {k: asdict(v) for k, v in base.overall.items()}, "subjects": {}}
    for s in subjects:
        if s.format in ("pte", "tflite", "onnx"):
            say(f"real-sound set: {s.key}")
            out["subjects"][s.key] = asdict(evaluate_artifact(s.path, realset, counters=("model",)).overall["model"])
    return out


def run_bench(cfg: BenchConfig, discovery: tuple[Discovery, dict] | None = None, progress=None) -> BenchResult:
    """Measure everything (see the module docstring) -> :class:`BenchResult` (nothing written yet)."""
    limit, note = lat.numpy_blas_single_thread()
    with limit:
        result = _run_bench(cfg, discovery, progress)
    result.notes.append(note)
    return result


def _run_bench(cfg: BenchConfig, discovery: tuple[Discovery, dict] | None, progress) -> BenchResult:
    say = progress or (lambda msg: log.info("%s", msg))
    t_start = time.perf_counter()
    disc, models = discovery or discover(cfg.artifacts, cfg.teacher, cfg.student, cfg.cuda)
    result = BenchResult(cfg.to_dict(), machine_info(), disc.subjects, skipped=list(disc.skipped), missing=list(disc.missing))
    students = [s for s in disc.subjects if s.role == "student"]
    if not [s for s in students if not s.is_torch]:
        result.notes.append(f"{cfg.artifacts}: no edge artifact with a valid card: only PyTorch subjects measured")
    say(f"{len(disc.subjects)} subjects: " + ", ".join(s.key for s in disc.subjects))

    # -- data --------------------------------------------------------------------------------
    data = cfg.data or disc.dataset
    fold = cfg.fold if cfg.fold is not None else (disc.fold if disc.fold is not None else 0)
    test_set = None
    if data is not None:
        test_set = acc_mod.load_test_set(data, fold, cfg.max_test_runs)
        result.test_set = test_set.describe()
        say(result.test_set)
    else:
        result.missing.append(("labeled test data (accuracy is not measured; timing streams a click track)",
                               "pass it with: --data DATASET, the dataset the artifacts were exported with "
                               "(or make one with: footfall data synth --out DATASET)"))
    audio, audio_what = _stream_audio(test_set)
    result.notes.append(f"timing loop streams {audio_what}")
    if cfg.realset is not None:
        result.real = real_sound_accuracy(disc.subjects, Path(cfg.realset), say)
    else:
        result.notes.append("no real-sound set (--realset): the accuracy below is on generated audio only")

    # -- latency -----------------------------------------------------------------------------
    loaded_ok = set()
    for threads in cfg.threads:
        runners = {}
        for s in disc.subjects:
            if s.device == "cuda" and threads != cfg.threads[0]:
                continue  # the GPU is timed once; CPU threads do not matter to it
            try:
                backend = load_backend(s, threads, models.get(s.key))
                runners[s.key] = lat.HopRunner(s.key, backend, s.stream_card(), audio, s.device)
                loaded_ok.add(s.key)
            except Exception as e:  # a runtime missing here: reported, the others go on
                why = f"cannot run at {threads} thread(s): {str(e).splitlines()[0]}"
                result.skipped.append((s.key, why))
                say(f"  {s.key}: not timed ({why})")
        say(f"timing {len(runners)} subjects at {threads} thread(s): {cfg.warmup} warm-up + {cfg.runs} hops each, interleaved")
        timings = lat.measure(runners, cfg.runs, cfg.warmup, cfg.block, threads, progress=_rounds(say))
        result.timings.update({(k, threads): t for k, t in timings.items()})
        del runners

    if cfg.full_size:
        result.full_size = _full_size(cfg, result, disc, models, audio, say)

    # -- GPU throughput ----------------------------------------------------------------------
    gpu = next((s for s in disc.subjects if s.device == "cuda"), None)
    if gpu is not None:
        windows = _windows_of(audio, gpu.window_frames)
        rows = lat.batch_throughput(models[gpu.key], windows, (1, 32, 256), "cuda", gpu.hop_s, iters=5 if cfg.quick else 20)
        result.throughput = [{"subject": gpu.key, **r.to_dict()} for r in rows]
        say("teacher throughput on CUDA: " + ", ".join(f"b{r.batch} {r.windows_per_s:.0f} win/s" for r in rows))
    else:
        result.notes.append("no CUDA device: the reference runs on the CPU; GPU throughput (batch 1/32/256) not measured")

    # -- accuracy ----------------------------------------------------------------------------
    if test_set is not None:
        _accuracy(result, disc, models, test_set, max(cfg.threads), say)

    # -- memory ------------------------------------------------------------------------------
    if cfg.rss:
        from bench import memory

        for s in disc.subjects:
            if s.device != "cpu" or s.key not in loaded_ok:
                continue
            if cfg.quick:  # no process start per subject; only the model's share is meaningful
                say(f"model RSS of {s.key} (in this process: quick mode)")
                result.memory[s.key] = memory.in_process(s, 1, 5, models.get(s.key))
            else:
                say(f"peak RSS of {s.key} (fresh process)")
                result.memory[s.key] = memory.measure(s.format, s.path, s.window_frames, s.hop_frames, 1, 20)

    # -- phone -------------------------------------------------------------------------------
    if cfg.adb is not None:
        from bench import adb

        tools = adb.find_tools(cfg.adb_path, cfg.executor_runner, cfg.benchmark_model)
        say("phone: " + (f"adb {tools.adb}" if tools.adb else "no adb"))
        result.phone = adb.run_phone([s for s in disc.subjects if not s.is_torch], cfg.adb or None, tools, cfg.threads,
                                     cfg.runs, cfg.warmup)
    result.machine["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    result.seconds = time.perf_counter() - t_start
    say(f"done: {len(disc.subjects)} subjects in {result.seconds:.0f} s")
    return result


def _rounds(say):
    """The timing loop's progress: one line for every round of interleaved blocks, the last included."""
    return lambda r, n: say(f"  round {r}/{n}")


def parse_full_size(spec: str) -> tuple[str, dict]:
    """``"cnn14"`` or ``"cnn14:width=0.5,classes=1"`` -> (registry name, config overrides)."""
    from train.fit.config import ConfigError, parse_override
    from train.models import list_models

    name, _, args = spec.partition(":")
    name = name.strip()
    if name not in list_models():
        raise BenchError(f"--full-size {spec!r}: unknown model {name!r}; expected one of {', '.join(list_models())}")
    overrides = {}
    for item in filter(None, (a.strip() for a in args.split(","))):
        try:
            keys, value = parse_override(item)
        except ConfigError:
            raise BenchError(f"--full-size {spec!r}: expected NAME[:key=value,...], e.g. cnn14:width=0.5") from None
        overrides[".".join(keys)] = value
    return name, overrides


def _full_size(cfg: BenchConfig, result: BenchResult, disc: Discovery, models: dict, audio: np.ndarray, say) -> dict:
    """Time an untrained full-size architecture (the paper's Cnn14 by default: 75.9 M parameters) on
    the reference's window, interleaved with the trained reference and the headline int8 .pte.

    The reference a CPU-only run can train is a narrow teacher; the desktop reference of the paper
    is the full-width one. Its weights do not change its cost, so an untrained copy gives its
    latency, and the ratios come from one interleaved measurement (fewer hops than the main
    table: one full-size hop takes about a second here). Accuracy does not apply to it.
    """
    from bench.subjects import torch_subject
    from train.models import build_model

    name, overrides = parse_full_size(cfg.full_size)
    try:
        model = build_model(name, **overrides)
    except Exception as e:  # a bad config key: one line
        raise BenchError(f"--full-size {cfg.full_size!r}: {str(e).splitlines()[0]}") from None
    ref, head = result.reference, result.headline()
    subject, model, _ = torch_subject(Path(f"untrained-{name}"), "reference", ref.hop_frames, model=model, meta={},
                                      window_frames=ref.window_frames)
    out = {"spec": cfg.full_size, "model": name, "overrides": overrides, "params": subject.params, "macs_per_window": subject.macs,
           "window_frames": subject.window_frames, "runs": cfg.full_size_runs, "threads": {}}
    timed = {"full-size": (subject, model)} | {s.key: (s, models.get(s.key)) for s in (ref, head) if s is not None}
    for threads in cfg.threads:
        runners = {k: lat.HopRunner(k, load_backend(s, threads, m), s.stream_card(), audio) for k, (s, m) in timed.items()}
        say(f"full-size {name} (untrained, latency only) at {threads} thread(s): {cfg.full_size_runs} hops, interleaved with "
            + ", ".join(k for k in runners if k != "full-size"))
        t = lat.measure(runners, cfg.full_size_runs, 1, 2, threads, progress=_rounds(say))
        row = {"p50_ms": t["full-size"].p50, "rtf": t["full-size"].rtf, "reference_p50_ms": t[ref.key].p50,
               "x_reference": t["full-size"].p50 / t[ref.key].p50}
        if head is not None:
            row |= {"headline": head.key, "headline_p50_ms": t[head.key].p50, "speedup_headline": t["full-size"].p50 / t[head.key].p50}
        out["threads"][str(threads)] = row
    return out


def _accuracy(result: BenchResult, disc: Discovery, models: dict, test_set: acc_mod.TestSet, threads: int, say) -> None:
    """Step events of every subject on every test run; metrics; the counts-over-time curves."""
    runs = test_set.runs
    truths = [r.truth for r in runs]
    ref = result.reference
    gpu = next((s for s in disc.subjects if s.device == "cuda"), None)
    say(f"accuracy of the reference on {len(test_set.runs)} test runs ({'cuda' if gpu else 'cpu'})")
    ref_model = models[gpu.key] if gpu else models[ref.key]
    ref_events = [acc_mod.reference_events(ref_model, r, ref.window_frames, "cuda" if gpu else "cpu") for r in runs]
    ref_acc = acc_mod.score(ref.key, ref_events, runs)
    result.accuracy[ref.key] = ref_acc
    if gpu:
        result.accuracy[gpu.key] = acc_mod.score(gpu.key, ref_events, runs)
    events_by_key = {ref.key: ref_events}
    from edge.audio import load_audio

    for s in disc.subjects:
        if s.role != "student":
            continue
        try:
            backend = load_backend(s, threads, models.get(s.key))
        except Exception as e:
            result.skipped.append((s.key, f"accuracy not measured: {str(e).splitlines()[0]}"))
            continue
        say(f"accuracy of {s.key}")
        events = [acc_mod.stream_events(backend, s.stream_card(), load_audio(r.audio)) for r in runs]
        events_by_key[s.key] = events
        result.accuracy[s.key] = acc_mod.score(s.key, events, runs, ref_events, ref_acc.mae)
    student = next((s for s in disc.subjects if s.role == "student" and s.is_torch), None)
    base = result.accuracy.get(student.key) if student else None
    if base is not None and base.mae > 0:
        for key, a in result.accuracy.items():
            if key != ref.key and key != student.key and math.isfinite(a.mae):
                a.rel_mae_cost_vs_student_pct = 100.0 * (a.mae - base.mae) / base.mae
    # counts over time of the longest test run: truth, reference, the edge int8 model
    i = int(np.argmax([r.n_frames for r in runs]))
    edge_key = next((k for k in _int8_preference(disc.subjects) if k in events_by_key), None)
    step = 100  # one point per second

    def cumulative(events: np.ndarray) -> list[float]:
        return np.cumsum(acc_mod.frames_of(events, runs[i]))[::step].tolist()

    curves = {"run_id": runs[i].run_id, "t_s": (np.arange(0, truths[i].size, step) / 100.0).tolist(),
              "truth": np.cumsum(truths[i])[::step].tolist(), "reference": cumulative(ref_events[i]),
              "reference_key": ref.key}
    if edge_key:
        curves["edge"] = cumulative(events_by_key[edge_key][i])
        curves["edge_key"] = edge_key
    result.curves = curves


def _int8_preference(subjects: list[Subject]) -> list[str]:
    order = {"pte": 0, "tflite": 1, "onnx": 2}
    int8 = [s for s in subjects if s.precision == "int8" and not s.is_torch]
    return [s.key for s in sorted(int8, key=lambda s: (s.quantization != "qat", order.get(s.format, 9)))]
