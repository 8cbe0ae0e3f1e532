"""The phone path of `footfall bench --adb`, without a phone: command construction, tool discovery
and the parsing of executor_runner / benchmark_model output recorded in tests/data/adb/.

The recordings follow the tools' real formats: ExecuTorch's ET_LOG lines
(``I 00:00:00.000412 executorch:file.cpp:line] message``; recent runners print one
``Iteration i of N: x ms`` line per execution, older ones only ``Model executed successfully N
time(s) in X ms.``) and LiteRT's ``benchmark_model`` statistics (``count= first= curr= min= max=
avg= std=`` in microseconds, ``p5= median= p95=`` in recent builds, the peak-memory lines).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from bench import adb
from bench.adb import (
    PhoneError,
    PhoneTools,
    benchmark_model_command,
    executor_runner_command,
    find_tools,
    parse_benchmark_model,
    parse_devices,
    parse_executor_runner,
    pick_device,
    run_phone,
)
from bench.subjects import Subject

DATA = Path(__file__).resolve().parent / "data" / "adb"
SERIAL = "R5CW31ABCDE"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


# ----------------------------------------------------------------------------- parsing


def test_executor_runner_per_iteration_times_give_percentiles_after_warmup():
    text = recorded("executor_runner_xnnpack_1t.txt")
    values = [float(v) for v in re.findall(r"Iteration \d+ of \d+: ([\d.]+) ms", text)]
    t = parse_executor_runner(text, warmup=10)
    assert t.tool == "executor_runner" and t.runs == len(values) - 10 == 200
    assert t.p50_ms == pytest.approx(np.median(values[10:]))
    assert t.p99_ms == pytest.approx(np.percentile(values[10:], 99))
    assert t.mean_ms == pytest.approx(np.mean(values[10:]))
    assert t.min_ms <= t.p50_ms <= t.p90_ms <= t.p99_ms <= t.max_ms
    assert t.init_ms == pytest.approx(6.587312)
    assert max(values[:10]) > t.p99_ms  # the cold first runs are what the warm-up drops


def test_executor_runner_without_per_iteration_lines_gives_the_mean():
    t = parse_executor_runner(recorded("executor_runner_total_only.txt"), warmup=10)
    assert t.runs == 210 and t.mean_ms == pytest.approx(159.018112 / 210)
    assert t.p50_ms is None and t.p99_ms is None  # the tool does not say: the report shows a dash


def test_executor_runner_failure_is_one_line_with_its_first_error():
    with pytest.raises(PhoneError, match=r"executor_runner failed: kernel 'aten::amax.out' not found"):
        parse_executor_runner(recorded("executor_runner_missing_op.txt"))


def test_executor_runner_silence_points_at_logcat():
    with pytest.raises(PhoneError, match="logcat"):
        parse_executor_runner("Segmentation fault\n")


def test_benchmark_model_regular_runs_not_warmup():
    t = parse_benchmark_model(recorded("benchmark_model_int8_1t.txt"))
    assert t.tool == "benchmark_model" and t.runs == 2412  # the second count= line, not the warm-up's 1187
    assert t.mean_ms == pytest.approx(0.4124) and t.p50_ms == pytest.approx(0.403) and t.p95_ms == pytest.approx(0.471)
    assert t.min_ms == pytest.approx(0.368) and t.max_ms == pytest.approx(1.621) and t.std_ms == pytest.approx(0.047)
    assert t.init_ms == pytest.approx(18.752)
    assert t.peak_mem_mb == pytest.approx(9.17188)  # the periodic monitor's peak, preferred to the delta


def test_benchmark_model_legacy_format():
    t = parse_benchmark_model(recorded("benchmark_model_legacy.txt"))
    assert t.runs == 1204 and t.mean_ms == pytest.approx(0.8296)
    assert t.p50_ms is None and t.p95_ms is None
    assert t.peak_mem_mb == pytest.approx(6.39844)  # "Peak memory footprint (MB): init=.. overall=.."


def test_benchmark_model_failure_is_one_line():
    with pytest.raises(PhoneError, match=r"benchmark_model failed: ERROR: Could not open"):
        parse_benchmark_model(recorded("benchmark_model_no_file.txt"))


def test_adb_devices():
    assert parse_devices(recorded("adb_devices.txt")) == [(SERIAL, "device"), ("emulator-5554", "offline")]
    assert parse_devices(recorded("adb_devices_none.txt")) == []


# ----------------------------------------------------------------------------- commands


def test_command_construction():
    assert executor_runner_command("/data/local/tmp/footfall/executor_runner", "/data/local/tmp/footfall/m int8.pte", 2, 210) == (
        "/data/local/tmp/footfall/executor_runner --model_path='/data/local/tmp/footfall/m int8.pte' "
        "--num_executions=210 --cpu_threads=2"
    )
    assert benchmark_model_command("/d/benchmark_model", "/d/s.tflite", 1, 200, 10) == (
        "/d/benchmark_model --graph=/d/s.tflite --num_threads=1 --num_runs=200 --warmup_runs=10 "
        "--use_xnnpack=true --report_peak_memory_footprint=true"
    )


# ----------------------------------------------------------------------------- finding the tools


def _elf(path: Path, machine: int) -> Path:
    """A file with just an ELF header of the given machine (enough for elf_arch)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"\x02\x00" + machine.to_bytes(2, "little") + b"\x00" * 44)
    return path


def test_tools_found_in_sdk_folders(tmp_path):
    runner = _elf(tmp_path / "executorch" / "cmake-android-out" / "executor_runner", 0xB7)
    bm = _elf(tmp_path / "litert" / "bazel-bin" / "tflite" / "tools" / "benchmark" / "benchmark_model", 0xB7)
    sdk_adb = _elf(tmp_path / "sdk" / "platform-tools" / "adb", 0x3E)
    tools = find_tools(env={"HOME": str(tmp_path), "PATH": str(tmp_path / "nowhere"), "ANDROID_HOME": str(tmp_path / "sdk")})
    assert (tools.executor_runner, tools.benchmark_model, tools.adb) == (runner, bm, str(sdk_adb))
    assert tools.notes == []


def test_tools_from_environment_and_wrong_architecture_noted(tmp_path):
    runner = _elf(tmp_path / "x86" / "executor_runner", 0x3E)
    tools = find_tools(env={"HOME": str(tmp_path), "PATH": "", "EXECUTORCH_RUNNER": str(runner)})
    assert tools.executor_runner == runner and tools.benchmark_model is None and tools.adb is None
    assert any("x86_64 binary" in n for n in tools.notes)


def test_explicit_missing_paths_are_noted(tmp_path):
    tools = find_tools(executor_runner=tmp_path / "nope", env={"HOME": str(tmp_path), "PATH": ""})
    assert tools.executor_runner is None
    assert any("--executor-runner" in n and "no such file" in n for n in tools.notes)


# ----------------------------------------------------------------------------- a phone run, recorded


class FakePhone:
    """Answers adb commands with recorded outputs and remembers every command."""

    def __init__(self, devices: str = "adb_devices.txt", runner_output: str = "executor_runner_xnnpack_1t.txt") -> None:
        self.calls: list[list[str]] = []
        self.devices, self.runner_output = devices, runner_output

    def __call__(self, cmd, timeout):
        cmd = list(cmd)
        self.calls.append(cmd)
        if cmd[1:] == ["devices"]:
            return 0, recorded(self.devices)
        assert cmd[:3] == ["adb", "-s", SERIAL], cmd
        verb, rest = cmd[3], cmd[4:]
        if verb == "push":
            return 0, f"{rest[0]}: 1 file pushed, 0 skipped. 38.2 MB/s (4096 bytes in 0.001s)\n"
        command = rest[0]
        if command.startswith("getprop"):
            return 0, {"ro.product.model": "Pixel 8", "ro.soc.model": "Tensor G3", "ro.product.cpu.abi": "arm64-v8a",
                       "ro.build.version.release": "15"}.get(command.split()[1], "") + "\n"
        if "executor_runner" in command and "--model_path" in command:
            return 0, recorded(self.runner_output)
        if "benchmark_model" in command and "--graph" in command:
            return 0, recorded("benchmark_model_int8_1t.txt")
        return 0, ""


def _subjects(tmp_path) -> list[Subject]:
    out = []
    for name, fmt, prec in (("student_int8.pte", "pte", "int8"), ("student_int8.tflite", "tflite", "int8"), ("student_fp32.onnx", "onnx", "fp32")):
        p = tmp_path / name
        p.write_bytes(b"model")
        out.append(Subject(key=name, role="student", format=fmt, precision=prec, path=p, window_frames=200, hop_frames=48))
    return out


def test_phone_run_pushes_runs_and_parses(tmp_path):
    runner_bin = _elf(tmp_path / "bin" / "executor_runner", 0xB7)
    bm_bin = _elf(tmp_path / "bin" / "benchmark_model", 0xB7)
    phone = FakePhone()
    report = run_phone(_subjects(tmp_path), None, PhoneTools("adb", runner_bin, bm_bin), threads=(1, 2), runs=200, warmup=10, runner=phone)
    assert report.serial == SERIAL and report.device["model"] == "Pixel 8" and report.device["abi"] == "arm64-v8a"
    remote = adb.REMOTE_DIR
    pushes = [c[4:] for c in phone.calls if c[3:4] == ["push"]]
    assert [str(runner_bin), f"{remote}/executor_runner"] in pushes and [str(bm_bin), f"{remote}/benchmark_model"] in pushes
    assert [str(tmp_path / "student_int8.pte"), f"{remote}/student_int8.pte"] in pushes
    assert not any("student_fp32.onnx" in " ".join(p) for p in pushes)  # no runner for it: not pushed
    runs = [c[4] for c in phone.calls if c[3:4] == ["shell"] and "--" in c[4]]
    assert f"cd {remote} && {remote}/executor_runner --model_path={remote}/student_int8.pte --num_executions=210 --cpu_threads=1 2>&1" in runs
    assert any("--graph=" + f"{remote}/student_int8.tflite --num_threads=2" in r for r in runs)
    rows = {(r.key, r.threads): r for r in report.rows}
    assert set(rows) == {("student_int8.pte", 1), ("student_int8.pte", 2), ("student_int8.tflite", 1), ("student_int8.tflite", 2)}
    pte = rows[("student_int8.pte", 1)]
    assert pte.timing.runs == 200 and not pte.error
    assert pte.rtf == pytest.approx(pte.timing.p50_ms / 1e3 / 0.48)
    assert rows[("student_int8.tflite", 1)].timing.peak_mem_mb == pytest.approx(9.17188)
    assert any(".onnx" in m and "no phone runner" in m for m in report.missing)


def test_phone_run_failure_is_kept_per_row(tmp_path):
    runner_bin = _elf(tmp_path / "bin" / "executor_runner", 0xB7)
    phone = FakePhone(runner_output="executor_runner_missing_op.txt")
    report = run_phone(_subjects(tmp_path)[:1], SERIAL, PhoneTools("adb", runner_bin, None), threads=(1,), runner=phone)
    (row,) = report.rows
    assert row.timing is None and "aten::amax.out" in row.error


def test_missing_binary_says_how_to_get_it(tmp_path):
    phone = FakePhone()
    report = run_phone(_subjects(tmp_path), SERIAL, PhoneTools("adb", None, None), threads=(1,), runner=phone)
    assert report.rows == []
    text = "\n".join(report.missing)
    assert "no executor_runner binary" in text and "--executor-runner PATH" in text
    assert "no benchmark_model binary" in text and "--benchmark-model PATH" in text


def test_missing_adb_and_device_are_said(tmp_path):
    report = run_phone(_subjects(tmp_path), None, PhoneTools(None, None, None), runner=FakePhone())
    assert report.rows == [] and "adb not found" in report.missing[0]
    report = run_phone(_subjects(tmp_path), None, PhoneTools("adb", None, None), runner=FakePhone(devices="adb_devices_none.txt"))
    assert report.rows == [] and "no device connected" in report.missing[0]


def test_pick_device_by_serial():
    phone = FakePhone()
    assert pick_device("adb", SERIAL, phone) == (SERIAL, None)
    serial, why = pick_device("adb", "emulator-5554", phone)
    assert serial is None and "offline" in why
    serial, why = pick_device("adb", "XYZ", phone)
    assert serial is None and "not connected" in why and SERIAL in why
