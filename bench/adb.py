"""``footfall bench --adb [SERIAL]``: time the artifacts on an Android phone with the runtimes'
own benchmark binaries, and parse their output into the bench report.

============  ==================================================  ==================================
artifact      binary on the phone                                 its timing output
============  ==================================================  ==================================
``.pte``      ExecuTorch ``executor_runner`` (built with XNNPACK;  ``Iteration i of N: x ms`` (recent
              ``xnn_executor_runner`` in older trees)              runners), ``Model executed
                                                                  successfully N time(s) in X ms.``
``.tflite``   LiteRT / TFLite ``benchmark_model``                  ``count=.. min=.. max=.. avg=..
                                                                  std=.. [p5=.. median=.. p95=..]``
                                                                  (us), peak memory footprint
``.onnx``     none wired (ONNX Runtime's ``onnxruntime_perf_test``
              would do): reported as missing
============  ==================================================  ==================================

The binaries are the user's (``--executor-runner PATH`` / ``--benchmark-model PATH``) or found in
the usual SDK folders (:func:`find_tools`); they are pushed with the artifacts to
:data:`REMOTE_DIR`. Phone numbers are the model invocation alone (the runners feed the model
a fixed input; the front end is not part of them): the report says so beside them. Whatever is
absent -- adb, a device, a binary, a runner for a format -- becomes a line in
:attr:`PhoneReport.missing` saying what to install or pass, never an exception.

Everything that talks to the phone goes through one ``runner(cmd, timeout) -> (rc, output)``
callable, so command construction and parsing are tested with recorded outputs
(``tests/data/adb/``) and no phone.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REMOTE_DIR = "/data/local/tmp/footfall"
ELF_MACHINES = {0x03: "x86", 0x28: "arm", 0x3E: "x86_64", 0xB7: "aarch64"}

Runner = Callable[[Sequence[str], float], tuple[int, str]]


class PhoneError(RuntimeError):
    """A binary ran but failed, or printed nothing this module can read; the message is one line."""


def subprocess_runner(cmd: Sequence[str], timeout: float) -> tuple[int, str]:
    """The real runner: stdout and stderr together, as a terminal would show them."""
    try:
        proc = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return 124, f"timed out after {timeout:.0f} s: {' '.join(cmd)}\n{e.output or ''}"
    except OSError as e:
        return 127, f"cannot run {cmd[0]}: {e}"
    return proc.returncode, proc.stdout


# ----------------------------------------------------------------------------- finding the tools


def _home_dirs(env: Mapping[str, str], names: Sequence[str], defaults: Sequence[str]) -> list[Path]:
    dirs = [Path(env[n]) for n in names if env.get(n)]
    home = Path(env.get("HOME", str(Path.home())))
    return dirs + [home / d for d in defaults]


# relative paths, inside an SDK / source folder, where the build puts the Android binaries
EXECUTOR_RUNNER_PATHS = (
    "cmake-android-out/executor_runner",
    "cmake-android-out/backends/xnnpack/xnn_executor_runner",
    "cmake-out-android/executor_runner",
    "cmake-out-android/backends/xnnpack/xnn_executor_runner",
    "build-android/executor_runner",
    "executor_runner",
)
BENCHMARK_MODEL_PATHS = (
    "bazel-bin/tflite/tools/benchmark/benchmark_model",
    "bazel-bin/tensorflow/lite/tools/benchmark/benchmark_model",
    "android_aarch64_benchmark_model",
    "benchmark_model",
)
ADB_PATHS = ("platform-tools/adb",)


def _first_file(dirs: Sequence[Path], rels: Sequence[str]) -> Path | None:
    for d in dirs:
        for rel in rels:
            p = d / rel
            if p.is_file():
                return p
    return None


def elf_arch(path: str | Path) -> str | None:
    """The ELF machine of a binary ("aarch64", "x86_64", ...); None when it is not an ELF file."""
    try:
        head = Path(path).read_bytes()[:20]
    except OSError:
        return None
    if head[:4] != b"\x7fELF" or len(head) < 20:
        return None
    little = head[5] == 1
    machine = int.from_bytes(head[18:20], "little" if little else "big")
    return ELF_MACHINES.get(machine, f"machine 0x{machine:x}")


@dataclass
class PhoneTools:
    adb: str | None
    executor_runner: Path | None
    benchmark_model: Path | None
    notes: list[str] = field(default_factory=list)  # found but doubtful (e.g. an x86 binary)


def find_tools(adb: str | Path | None = None, executor_runner: str | Path | None = None, benchmark_model: str | Path | None = None,
               env: Mapping[str, str] | None = None) -> PhoneTools:
    """Locate adb and the two runners: the given paths, else environment variables, else SDK folders.

    executor_runner: ``$EXECUTORCH_RUNNER``, else ``{$EXECUTORCH_ROOT, $EXECUTORCH_HOME, ~/executorch}``
    / one of :data:`EXECUTOR_RUNNER_PATHS`. benchmark_model: ``$LITERT_BENCHMARK_MODEL``, else
    ``{$LITERT_ROOT, $TENSORFLOW_ROOT, ~/litert, ~/LiteRT, ~/tensorflow}`` / one of
    :data:`BENCHMARK_MODEL_PATHS`. adb: ``PATH``, else ``{$ANDROID_HOME, $ANDROID_SDK_ROOT,
    /usr/lib/android-sdk}/platform-tools/adb``.
    """
    env = os.environ if env is None else env
    notes = []
    if adb is None:
        adb = shutil.which("adb", path=env.get("PATH"))
        if adb is None:
            found = _first_file(_home_dirs(env, ("ANDROID_HOME", "ANDROID_SDK_ROOT"), ()) + [Path("/usr/lib/android-sdk")], ADB_PATHS)
            adb = str(found) if found else None
    elif not Path(adb).is_file() and shutil.which(str(adb)) is None:
        notes.append(f"--adb-path {adb}: no such program")
        adb = None

    def pick(explicit, var, homes, defaults, rels, what):
        if explicit is not None:
            p = Path(explicit)
            if not p.is_file():
                notes.append(f"{what} {p}: no such file")
                return None
            return p
        if env.get(var) and Path(env[var]).is_file():
            return Path(env[var])
        return _first_file(_home_dirs(env, homes, defaults), rels)

    runner = pick(executor_runner, "EXECUTORCH_RUNNER", ("EXECUTORCH_ROOT", "EXECUTORCH_HOME"), ("executorch",), EXECUTOR_RUNNER_PATHS, "--executor-runner")
    bm = pick(benchmark_model, "LITERT_BENCHMARK_MODEL", ("LITERT_ROOT", "TENSORFLOW_ROOT"), ("litert", "LiteRT", "tensorflow"), BENCHMARK_MODEL_PATHS, "--benchmark-model")
    for p in (runner, bm):
        arch = elf_arch(p) if p else None
        if arch and arch not in ("aarch64", "arm"):
            notes.append(f"{p} is an {arch} binary: a phone needs an Android arm64 build")
    return PhoneTools(adb, runner, bm, notes)


# ----------------------------------------------------------------------------- commands


def executor_runner_command(remote_runner: str, remote_model: str, threads: int, executions: int) -> str:
    """One ``executor_runner`` invocation: ``executions`` runs of the model's ``forward`` at ``threads``.

    Inputs are the runner's default (all ones): the time of these CNNs does not depend on the
    values. ``--cpu_threads`` sizes the XNNPACK thread pool (1 disables it).
    """
    return " ".join([
        shlex.quote(remote_runner),
        f"--model_path={shlex.quote(remote_model)}",
        f"--num_executions={executions}",
        f"--cpu_threads={threads}",
    ])


def benchmark_model_command(remote_bin: str, remote_model: str, threads: int, runs: int, warmup: int) -> str:
    """One ``benchmark_model`` invocation on the CPU (XNNPACK) with the peak-memory monitor on."""
    return " ".join([
        shlex.quote(remote_bin),
        f"--graph={shlex.quote(remote_model)}",
        f"--num_threads={threads}",
        f"--num_runs={runs}",
        f"--warmup_runs={warmup}",
        "--use_xnnpack=true",
        "--report_peak_memory_footprint=true",
    ])


# ----------------------------------------------------------------------------- parsing


@dataclass
class PhoneTiming:
    """What a runner reported, in milliseconds; None where the tool does not report it."""

    tool: str
    runs: int
    mean_ms: float
    p50_ms: float | None = None
    p90_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    std_ms: float | None = None
    init_ms: float | None = None
    peak_mem_mb: float | None = None

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


_ET_LOG = re.compile(r"^([DIEF]) [\d:.]+ executorch:(\S+?):\d+\] (.*)$")
_ITERATION = re.compile(r"Iteration (\d+) of (\d+): ([\d.]+) ms")
_EXECUTED = re.compile(r"Model executed successfully (\d+) time\(s\) in ([\d.]+) ms")
_LOADED = re.compile(r"Model loaded in ([\d.]+) ms")


def parse_executor_runner(text: str, warmup: int = 0) -> PhoneTiming:
    """Timing from ``executor_runner``'s log; the first ``warmup`` iterations are dropped when the
    runner prints per-iteration times (else the mean includes them, and the report says so).
    Raises :class:`PhoneError` when there is no timing, with the runner's first error line."""
    iterations, total, init, errors = [], None, None, []
    for line in text.splitlines():
        m = _ET_LOG.match(line.strip())
        if not m:
            continue
        level, _, message = m.groups()
        if level in "EF":
            errors.append(message.strip())
        elif (it := _ITERATION.search(message)):
            iterations.append(float(it.group(3)))
        elif (ex := _EXECUTED.search(message)):
            total = (int(ex.group(1)), float(ex.group(2)))
        elif (ld := _LOADED.search(message)):
            init = float(ld.group(1))
    if total is None and not iterations:
        if errors:
            raise PhoneError(f"executor_runner failed: {errors[0]}")
        raise PhoneError("executor_runner printed no timing ('Model executed successfully ...'): is its log going to "
                         "logcat? build it with the default (posix) platform layer, or check `adb logcat -s ExecuTorch`")
    if iterations:
        x = np.asarray(iterations[warmup:] if len(iterations) > warmup else iterations)
        pct = {q: float(np.percentile(x, q)) for q in (50, 90, 99)}
        return PhoneTiming("executor_runner", len(x), float(x.mean()), p50_ms=pct[50], p90_ms=pct[90], p99_ms=pct[99],
                           min_ms=float(x.min()), max_ms=float(x.max()), std_ms=float(x.std()), init_ms=init)
    n, ms = total
    return PhoneTiming("executor_runner", n, ms / n, init_ms=init)


_STAT = re.compile(r"count=(\d+)(.*)$")
_KV = re.compile(r"(\w+)=([\d.eE+-]+)")
_TIMINGS = re.compile(r"Inference timings in us: Init: ([\d.]+), First inference: ([\d.]+), Warmup \(avg\): ([\d.eE+-]+), Inference \(avg\): ([\d.eE+-]+)")
_PEAK = re.compile(r"Overall peak memory footprint \(MB\) via periodic monitoring: ([\d.]+)")
_FOOTPRINT = re.compile(r"(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\): init=([\d.]+) overall=([\d.]+)")


def parse_benchmark_model(text: str) -> PhoneTiming:
    """Timing of the regular runs (the last ``count=`` line; the first is the warm-up) and the peak
    memory from ``benchmark_model``'s output, with or without its ``INFO:`` prefixes. Raises
    :class:`PhoneError` when there are no statistics, with the tool's first error line."""
    stats, timings, peak, footprint, errors = [], None, None, None, []
    for raw in text.splitlines():
        raw = raw.strip()
        if raw.startswith("ERROR:") or raw.startswith("E tflite"):
            errors.append(raw)
        line = re.sub(r"^(?:INFO|WARN|WARNING|VERBOSE|ERROR): ", "", raw)
        if line.startswith("count=") and (m := _STAT.match(line)):
            stats.append((int(m.group(1)), {k: float(v) for k, v in _KV.findall(m.group(2))}))
        elif (t := _TIMINGS.search(line)):
            timings = tuple(float(v) for v in t.groups())
        elif (p := _PEAK.search(line)):
            peak = float(p.group(1))
        elif (f := _FOOTPRINT.search(line)):
            footprint = float(f.group(2))
    if not stats:
        raise PhoneError("benchmark_model failed: " + (errors[0] if errors else "it printed no 'count=' statistics"))
    count, kv = stats[-1]
    us = lambda k: kv[k] / 1e3 if k in kv else None  # noqa: E731
    mean = us("avg") if "avg" in kv else (timings[3] / 1e3 if timings else us("curr"))
    return PhoneTiming("benchmark_model", count, mean, p50_ms=us("median"), p95_ms=us("p95"), min_ms=us("min"), max_ms=us("max"),
                       std_ms=us("std"), init_ms=timings[0] / 1e3 if timings else None,
                       peak_mem_mb=peak if peak is not None else footprint)


# ----------------------------------------------------------------------------- the device


def parse_devices(text: str) -> list[tuple[str, str]]:
    """``adb devices`` -> [(serial, state)] (state: device, offline, unauthorized, ...)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("List of devices", "*")):
            continue
        parts = line.split()
        if len(parts) >= 2:
            out.append((parts[0], parts[1]))
    return out


class Adb:
    """adb for one device; every call goes through ``runner``."""

    def __init__(self, adb: str, serial: str, runner: Runner = subprocess_runner, timeout: float = 600) -> None:
        self.adb, self.serial, self.runner, self.timeout = adb, serial, runner, timeout

    def _run(self, *args: str, timeout: float | None = None) -> tuple[int, str]:
        return self.runner([self.adb, "-s", self.serial, *args], timeout or self.timeout)

    def shell(self, command: str, timeout: float | None = None) -> tuple[int, str]:
        return self._run("shell", command, timeout=timeout)

    def push(self, local: str | Path, remote: str) -> None:
        rc, out = self._run("push", str(local), remote)
        if rc != 0:
            raise PhoneError(f"adb push {Path(local).name} failed: {out.strip().splitlines()[-1] if out.strip() else rc}")

    def getprop(self, name: str) -> str:
        rc, out = self.shell(f"getprop {name}", timeout=30)
        return out.strip() if rc == 0 else ""


def pick_device(adb: str, serial: str | None, runner: Runner = subprocess_runner) -> tuple[str | None, str | None]:
    """-> (serial, None) for a usable device, or (None, why not)."""
    rc, out = runner([adb, "devices"], 30)
    if rc != 0:
        return None, f"`adb devices` failed: {out.strip().splitlines()[-1] if out.strip() else rc}"
    devices = parse_devices(out)
    ready = [s for s, state in devices if state == "device"]
    if serial:
        state = dict(devices).get(serial)
        if state is None:
            listed = ", ".join(f"{s} ({st})" for s, st in devices) or "none"
            return None, f"device {serial} is not connected (adb devices: {listed})"
        if state != "device":
            return None, f"device {serial} is {state}: unlock it and accept the USB-debugging prompt"
        return serial, None
    if not ready:
        listed = ", ".join(f"{s} ({st})" for s, st in devices)
        return None, "no device connected over adb" + (f" in a usable state ({listed})" if listed else ": plug in a phone with USB debugging on")
    if len(ready) > 1:
        return None, f"{len(ready)} devices connected ({', '.join(ready)}): pass --adb SERIAL"
    return ready[0], None


@dataclass
class PhoneRow:
    key: str
    format: str
    precision: str
    threads: int
    hop_s: float
    command: str = ""
    timing: PhoneTiming | None = None
    error: str = ""

    @property
    def rtf(self) -> float | None:
        if self.timing is None:
            return None
        ms = self.timing.p50_ms if self.timing.p50_ms is not None else self.timing.mean_ms
        return ms / 1e3 / self.hop_s

    def to_dict(self) -> dict:
        return {"key": self.key, "format": self.format, "precision": self.precision, "threads": self.threads,
                "command": self.command, "timing": self.timing.to_dict() if self.timing else None,
                "rtf_model_only": round(self.rtf, 6) if self.rtf is not None else None, "error": self.error}


@dataclass
class PhoneReport:
    serial: str | None
    device: dict = field(default_factory=dict)  # model, soc, abi
    rows: list[PhoneRow] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"serial": self.serial, "device": self.device, "rows": [r.to_dict() for r in self.rows], "missing": self.missing}


def run_phone(
    subjects: Sequence,
    serial: str | None,
    tools: PhoneTools,
    threads: Sequence[int] = (1, 2),
    runs: int = 200,
    warmup: int = 10,
    runner: Runner = subprocess_runner,
    remote_dir: str = REMOTE_DIR,
) -> PhoneReport:
    """Push and time every edge subject (``bench.subjects.Subject``) on the phone; see the module docstring."""
    report = PhoneReport(serial, missing=list(tools.notes))
    if tools.adb is None:
        report.missing.append("adb not found: install Android platform-tools (apt-get install adb, or the SDK's "
                              "platform-tools) or put adb on PATH; no phone numbers in this report")
        return report
    serial, why = pick_device(tools.adb, serial, runner)
    report.serial = serial or report.serial
    if serial is None:
        report.missing.append(why + "; no phone numbers in this report")
        return report
    adb = Adb(tools.adb, serial, runner)
    report.device = {"model": adb.getprop("ro.product.model"), "soc": adb.getprop("ro.soc.model") or adb.getprop("ro.board.platform"),
                     "abi": adb.getprop("ro.product.cpu.abi"), "android": adb.getprop("ro.build.version.release")}
    rc, out = adb.shell(f"mkdir -p {remote_dir}", timeout=30)
    if rc != 0:
        report.missing.append(f"cannot create {remote_dir} on {serial}: {out.strip()[:200]}")
        return report

    binaries = {"pte": tools.executor_runner, "tflite": tools.benchmark_model}
    how = {"pte": "build ExecuTorch's executor_runner for Android with XNNPACK (examples/portable/executor_runner, "
                  "-DANDROID_ABI=arm64-v8a -DEXECUTORCH_BUILD_XNNPACK=ON) and pass --executor-runner PATH or set $EXECUTORCH_RUNNER",
           "tflite": "get LiteRT's android_aarch64_benchmark_model (prebuilt nightly) or build //tflite/tools/benchmark:benchmark_model, "
                     "and pass --benchmark-model PATH or set $LITERT_BENCHMARK_MODEL"}
    pushed_bins: dict[str, str | None] = {}
    for fmt in sorted({s.format for s in subjects if not s.is_torch}):
        if fmt not in binaries:
            report.missing.append(f".{fmt} artifacts: no phone runner is wired for this format (ONNX Runtime's onnxruntime_perf_test "
                                  "could time it); not timed on the phone")
            continue
        local = binaries[fmt]
        if local is None:
            report.missing.append(f".{fmt} artifacts: no {'executor_runner' if fmt == 'pte' else 'benchmark_model'} binary: {how[fmt]}")
            pushed_bins[fmt] = None
            continue
        remote = f"{remote_dir}/{local.name}"
        try:
            adb.push(local, remote)
            rc, out = adb.shell(f"chmod 755 {remote}", timeout=30)
            pushed_bins[fmt] = remote if rc == 0 else None
            if rc != 0:
                report.missing.append(f"cannot make {remote} executable: {out.strip()[:200]}")
        except PhoneError as e:
            report.missing.append(str(e))
            pushed_bins[fmt] = None

    for s in subjects:
        if s.is_torch or not pushed_bins.get(s.format):
            continue
        remote_model = f"{remote_dir}/{s.path.name}"
        try:
            adb.push(s.path, remote_model)
        except PhoneError as e:
            report.rows.append(PhoneRow(s.key, s.format, s.precision, 0, s.hop_s, error=str(e)))
            continue
        for t in threads:
            if s.format == "pte":
                cmd = executor_runner_command(pushed_bins["pte"], remote_model, t, warmup + runs)
            else:
                cmd = benchmark_model_command(pushed_bins["tflite"], remote_model, t, runs, warmup)
            row = PhoneRow(s.key, s.format, s.precision, t, s.hop_s, command=cmd)
            rc, out = adb.shell(f"cd {remote_dir} && {cmd} 2>&1")
            try:
                row.timing = parse_executor_runner(out, warmup) if s.format == "pte" else parse_benchmark_model(out)
                if rc != 0:
                    row.error = f"exit status {rc} (timing parsed anyway)"
            except PhoneError as e:
                row.error = f"{e} [exit {rc}]"
            report.rows.append(row)
    return report
