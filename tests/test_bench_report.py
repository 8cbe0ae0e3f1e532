"""`footfall bench` end to end on the tiny scenario (tests/bench_tiny.py: untrained Cnn14/16 teacher,
Cnn6/16 student exported to every CPU target, a 5-runner synthetic dataset): discovery, the quick
run, the numbers' invariants, the report files and the CLI."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from bench.latency import batch_throughput
from bench.report import PLOTS, summary_lines, write_report
from bench.run import GOAL_RTF, GOAL_SPEEDUP, BenchConfig, cpu_features, run_bench, verdict
from bench.subjects import REPO, BenchError, discover
from tests.bench_tiny import tiny_scenario

EDGE = {f"cnn6_{p}.{f}" for f in ("pte", "tflite", "onnx") for p in ("fp32", "int8")}  # export names them <model>_<precision>


@pytest.fixture(scope="module")
def scenario():
    return tiny_scenario()


@pytest.fixture(scope="module")
def bench_run(scenario, tmp_path_factory):
    """One quick bench run at 1 and 2 threads, with peak RSS: its result, its report and its progress lines."""
    out = tmp_path_factory.mktemp("bench")
    cfg = BenchConfig(artifacts=scenario.artifacts, out=out, quick=True, threads=(1, 2), cuda=False)
    said = []
    result = run_bench(cfg, progress=said.append)
    return result, write_report(result, out), said


@pytest.fixture(scope="module")
def bench(bench_run):
    return bench_run[:2]


def test_discovery_finds_every_subject(scenario):
    disc, models = discover(scenario.artifacts, cuda=False)
    keys = {s.key for s in disc.subjects}
    assert keys == {"teacher-cpu", "student-pytorch"} | EDGE
    assert disc.reference.model_name == "cnn14" and disc.reference.window_frames == 500
    assert disc.dataset == scenario.data.resolve() and disc.fold == 0
    for s in disc.subjects:
        assert s.hop_frames == 48 and s.params and s.macs, s.key
        assert s.window_frames == (500 if s.role == "reference" else 200)
    int8 = next(s for s in disc.subjects if s.key == "cnn6_int8.pte")
    fp32 = next(s for s in disc.subjects if s.key == "cnn6_fp32.pte")
    assert int8.size_bytes < fp32.size_bytes and int8.params == fp32.params


def test_discovery_reports_what_it_cannot_bench(scenario, tmp_path):
    folder = tmp_path / "art"
    shutil.copytree(scenario.artifacts, folder)
    shutil.copy(folder / "cnn6_fp32.onnx", folder / "orphan.onnx")  # no card
    card = folder / "cnn6_int8.tflite.card.json"
    card.write_text(card.read_text().replace('"window_frames": 200', '"window_frames": 196'))  # does not verify
    disc, _ = discover(folder, cuda=False)
    skipped = dict(disc.skipped)
    assert "no model card" in skipped["orphan.onnx"]
    assert "card does not verify" in skipped["cnn6_int8.tflite"]
    assert "cnn6_int8.tflite" not in {s.key for s in disc.subjects}
    (folder / "teacher.pt").unlink()
    with pytest.raises(BenchError, match="--teacher"):
        discover(folder, cuda=False)


def test_every_subject_timed_at_every_thread_count(bench):
    result, _ = bench
    for s in result.subjects:
        for t in (1, 2):
            timing = result.timings[(s.key, t)]
            assert len(timing.hop_ms) >= result.config["runs"]
            assert (timing.model_ms > 0).all() and (timing.model_ms <= timing.hop_ms).all()
            assert timing.rtf == pytest.approx(np.median(timing.hop_ms) / 1e3 / 0.48)


def test_ratios_come_from_this_run(bench):
    result, report = bench
    data = json.loads((report.parent / "results.json").read_text())
    raw = data["raw_latency_ms"]
    for row in data["latency"]:
        want = np.median(raw[f"teacher-cpu@{row['threads']}"]) / np.median(raw[f"{row['key']}@{row['threads']}"])
        assert row["speedup_vs_reference"] == pytest.approx(want, rel=1e-3)
        if row["key"] == "teacher-cpu":
            assert row["speedup_vs_reference"] == pytest.approx(1.0)


def test_accuracy_and_agreement(bench, scenario):
    result, _ = bench
    acc = result.accuracy
    assert set(acc) == {s.key for s in result.subjects}
    ref = acc["teacher-cpu"]
    assert ref.rel_mae_cost_pct is None and ref.n_windows > 0
    # the fp32 artifacts count what the PyTorch student counts, window for window
    for key in ("cnn6_fp32.pte", "cnn6_fp32.tflite", "cnn6_fp32.onnx"):
        assert acc[key].mae == pytest.approx(acc["student-pytorch"].mae, abs=1e-3)
        assert acc[key].step_f == pytest.approx(acc["student-pytorch"].step_f, abs=1e-3)
    for key in EDGE | {"student-pytorch"}:
        a = acc[key]
        assert a.rel_mae_cost_pct == pytest.approx(100 * (a.mae - ref.mae) / ref.mae)
        assert set(a.count_diff) == {"mean_abs", "mean", "max_abs", "total_abs_mean"}
        assert a.count_diff["max_abs"] >= a.count_diff["mean_abs"] >= abs(a.count_diff["mean"]) - 1e-9


def test_reference_accuracy_is_the_trainers(bench, scenario):
    """The teacher's numbers are those train.evaluate.predict gives on the same fold (one evaluation code)."""
    from train.evaluate.predict import evaluate_model

    result, _ = bench
    model = discover(scenario.artifacts, cuda=False)[1]["teacher-cpu"]
    fold, _runs = evaluate_model(model, scenario.data, fold=0)
    assert result.accuracy["teacher-cpu"].mae == pytest.approx(fold.mae, rel=1e-6)


def test_accuracy_scores_every_subjects_steps(bench, scenario):
    """Per-step scores from each subject's events: defined for every subject (the test runs have
    steps), and the teacher's are those of its own events against the true step times."""
    from bench.accuracy import load_test_set
    from edge.audio import load_audio
    from edge.counter import count_events
    from edge.stream import offline_log_mel
    from train.evaluate.metrics import step_scores
    from train.evaluate.predict import predict_run_logits

    result, _ = bench
    for key, a in result.accuracy.items():
        assert 0.0 <= a.step_f <= 1.0, key
    model = discover(scenario.artifacts, cuda=False)[1]["teacher-cpu"]
    test_set = load_test_set(scenario.data, 0, result.config["max_test_runs"])
    events = [count_events(predict_run_logits(model, offline_log_mel(load_audio(r.audio)), 500)) for r in test_set.runs]
    want = step_scores(events, [r.steps for r in test_set.runs])
    assert result.accuracy["teacher-cpu"].step_f == pytest.approx(want.f_measure)


def test_memory_in_process_when_quick(bench):
    result, _ = bench
    assert set(result.memory) == {s.key for s in result.subjects}
    for key, mem in result.memory.items():
        # the bench process's RSS can shrink between reading it and resetting the peak: no order between the two
        assert mem["method"] == "in-process" and mem["peak_mb"] > 10 and mem["runtime_mb"] > 10, (key, mem)
        assert mem["model_mb"] is None or mem["model_mb"] >= 0


def test_memory_of_a_fresh_process(scenario):
    """The full bench's method: a child process with only LiteRT imported (no torch: seconds, not tens)."""
    from bench import memory

    mem = memory.measure("tflite", scenario.artifacts / "cnn6_int8.tflite", 200, 48, threads=1, hops=3)
    assert mem.get("method") == "fresh process", mem
    assert mem["peak_mb"] >= mem["runtime_mb"] > 10 and mem["model_mb"] >= 0
    assert mem["runtime_mb"] < 300  # numpy + LiteRT, no libtorch
    bad = memory.measure("tflite", scenario.artifacts / "missing.tflite", 200, 48, hops=1)
    assert "error" in bad and "missing.tflite" in bad["error"]


def test_report_files(bench):
    result, report = bench
    folder = report.parent
    for name in PLOTS:
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    text = report.read_text()
    for needle in ("## Goals", "## Latency per hop", "### 1 thread", "### 2 threads", "## Accuracy", "## Size, cost and memory",
                   "![", "no CUDA device", "## Definitions", "student int8 · .pte", "CPU features (read from this machine):",
                   "| step F |", "**step_f**"):
        assert needle in text, needle
    assert "rate-calibrat" not in text and "RateCalibration" not in text
    assert result.machine["cpu_features"] == cpu_features()  # what this machine has, not a statement
    data = json.loads((folder / "results.json").read_text())
    assert [g["subject"] for g in data["goals"]] == ["cnn6_int8.pte"] * 3
    assert data["curves"]["edge_key"] == "cnn6_int8.pte" and len(data["curves"]["truth"]) == len(data["curves"]["t_s"])
    lines = summary_lines(result, report)
    assert lines[-1] == f"report: {report}" and sum(l.startswith(("PASS", "FAIL", "INFO", "N/A")) for l in lines) == 3
    # RTF is an absolute time: shown, judged only when asked for (test_absolute_times_are_information_unless_asked)
    assert sum(l.startswith(("PASS", "FAIL")) for l in lines) == 2
    assert next(l for l in lines if "RTF <=" in l).startswith("INFO") and "--absolute-goals" in text


def test_cpu_throughput_batches(scenario):
    from bench.subjects import load_checkpoint

    model, _ = load_checkpoint(scenario.teacher)
    windows = np.random.default_rng(0).standard_normal((3, 1, 64, 500)).astype(np.float32) * 3 - 7
    rows = batch_throughput(model, windows, (1, 4), "cpu", hop_s=0.48, iters=2, warmup=1)
    assert [r.batch for r in rows] == [1, 4]
    assert all(r.windows_per_s > 0 and r.streams == pytest.approx(r.windows_per_s * 0.48) for r in rows)


@pytest.mark.gpu
def test_cuda_reference_uses_events(scenario):
    from bench.subjects import TorchBackend, load_checkpoint

    model, _ = load_checkpoint(scenario.teacher)
    backend = TorchBackend(model, scenario.teacher, 500, device="cuda")
    y = backend.run(np.zeros((1, 1, 64, 500), np.float32) - 7)
    assert y.shape == (125,) and backend.last_event_ms is not None and backend.last_event_ms > 0
    rows = batch_throughput(model, np.zeros((2, 1, 64, 500), np.float32), (1, 32, 256), "cuda", iters=2, warmup=1)
    assert all(r.timer == "cuda events" for r in rows if not r.error)


def test_cli_quick_run_says_what_is_missing_for_the_phone(scenario, tmp_path):
    from footfall.cli import app

    out = tmp_path / "report"
    res = CliRunner().invoke(app, ["bench", "--artifacts", str(scenario.artifacts), "--out", str(out), "--quick", "--threads", "1",
                                   "--no-rss", "--no-cuda", "--runs", "4", "--adb", "--adb-path", str(tmp_path / "no-adb")])
    goals = json.loads((out / "results.json").read_text())["goals"]
    failed = [g for g in goals if g["passed"] is False]
    assert failed  # the tiny scenario's model fails its goals by design: a FAIL is not an exit 0
    assert res.exit_code == 1, res.output
    assert f"bench: {len(failed)} goal(s) FAILED" in res.stderr and "Traceback" not in res.output
    assert "report: " in res.stdout and "RTF <=" in res.stdout
    text = (out / "report.md").read_text()
    assert "## On the phone" in text and "adb not found" in text and "no-adb: no such program" in text


def test_full_size_reference_is_timed_beside_the_headline(scenario, tmp_path):
    """--full-size: an untrained registry model on the reference's window, latency only, its ratios
    measured interleaved with the trained reference and the int8 .pte."""
    from footfall.cli import app

    out = tmp_path / "report"
    res = CliRunner().invoke(app, ["bench", "--artifacts", str(scenario.artifacts), "--out", str(out), "--quick", "--threads", "1",
                                   "--no-rss", "--no-cuda", "--runs", "4", "--no-plots", "--full-size", "cnn14:width=0.25"])
    goals = json.loads((out / "results.json").read_text())["goals"]
    assert res.exit_code == (1 if any(g["passed"] is False for g in goals) else 0), res.output
    fs = json.loads((out / "results.json").read_text())["full_size"]
    assert fs["model"] == "cnn14" and fs["overrides"] == {"width": 0.25} and fs["window_frames"] == 500 and fs["runs"] == 4
    row = fs["threads"]["1"]
    assert row["headline"] == "cnn6_int8.pte" and row["speedup_headline"] == pytest.approx(row["p50_ms"] / row["headline_p50_ms"])
    assert row["x_reference"] > 1  # width 1/4 against the tiny reference's 1/16: ~16x the MACs
    assert "## Full-size reference `cnn14:width=0.25`" in (out / "report.md").read_text()
    assert "full-size cnn14:width=0.25 (untrained, latency only)" in res.stdout
    # the speed goal is then judged against the full-size model; the trained teacher's ratio is information
    goals = json.loads((out / "results.json").read_text())["goals"]
    speed = [g for g in goals if "faster than the full-size reference teacher (cnn14:width=0.25" in g["goal"]]
    assert len(speed) == 1 and speed[0]["value"] == pytest.approx(row["speedup_headline"])
    assert speed[0]["passed"] == (row["speedup_headline"] >= 50)
    info = [g for g in goals if "trained reference teacher" in g["goal"]]  # RTF is information too (an absolute time)
    assert len(info) == 1 and info[0]["passed"] is None and info[0]["value"] > 0
    assert "INFO  speed-up vs the trained reference teacher" in res.stdout
    shown = f"{info[0]['value']:.1f}x"  # a ratio, shown as one (not as a percentage)
    assert re.search(rf"INFO  speed-up vs the trained reference teacher.*: {re.escape(shown)}$", res.stdout, re.M)
    assert re.search(rf"\| speed-up vs the trained reference teacher.* \| {re.escape(shown)} \| info \|", (out / "report.md").read_text())
    bad = CliRunner().invoke(app, ["bench", "--artifacts", str(scenario.artifacts), "--full-size", "resnet50"])
    assert bad.exit_code == 2 and "unknown model 'resnet50'" in bad.output
    bad = CliRunner().invoke(app, ["bench", "--artifacts", str(scenario.artifacts), "--full-size", "cnn14:depth"])
    assert bad.exit_code == 2 and "NAME[:key=value" in bad.output


def test_cli_bad_input_is_one_line(tmp_path):
    from footfall.cli import app

    res = CliRunner().invoke(app, ["bench", "--artifacts", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no such artifact folder" in res.output
    res = CliRunner().invoke(app, ["bench", "--artifacts", str(tmp_path), "--threads", "0"])
    assert res.exit_code == 2 and "--threads" in res.output


def test_cpu_features_are_read_from_cpuinfo():
    x86 = "processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni amx_tile\n"
    assert cpu_features(x86) == ["sse4_2", "avx", "fma", "avx2", "avx512f", "avx512_vnni", "amx_tile"]
    assert cpu_features("processor\t: 0\nflags\t\t: fpu sse4_2 avx\n") == ["sse4_2", "avx"]  # no AVX2: said so by omission
    assert cpu_features("Features\t: fp asimd asimddp i8mm\n") == ["asimd", "asimddp", "i8mm"]


def test_progress_reports_every_round_every_subject_and_ends(bench_run):
    result, _, said = bench_run
    rounds = math.ceil(result.config["runs"] / result.config["block"])
    for threads in (1, 2):
        start = next(i for i, m in enumerate(said) if m.startswith("timing ") and f" at {threads} thread(s)" in m)
        assert said[start + 1 : start + 1 + rounds] == [f"  round {r}/{rounds}" for r in range(1, rounds + 1)]  # the last too
    for s in result.subjects:
        if s.role == "student":
            assert f"accuracy of {s.key}" in said
        assert f"model RSS of {s.key} (in this process: quick mode)" in said
    assert said[-1].startswith(f"done: {len(result.subjects)} subjects in ")


def test_quick_wording_is_what_was_measured(bench):
    """--quick still times the teacher interleaved (its ratios are measured, roughly); the report says
    so from what was timed, and says what quick mode left out, as --help does."""
    from bench.cli import bench_command
    from bench.report import ratios_sentence

    result, report = bench
    text = report.read_text()
    assert ("Speed-ups are ratios to the reference teacher, timed interleaved with the other subjects in this run "
            "(12 hops each, quick mode: rough) at 1, 2 thread(s).") in text
    assert ("- quick mode: 12 timed hops per subject (not 200); at most 2 test runs scored; peak RSS measured in the bench "
            "process (the model's share only), not in a fresh process per subject") in text
    assert summary_lines(result)[1] == ("quick mode: 12 timed hops per subject (not 200); at most 2 test runs scored; peak RSS "
                                        "measured in the bench process (the model's share only), not in a fresh process per "
                                        "subject: ratios are rough")
    # the sentence follows the timings: no reference timed, no ratio claimed
    none = dataclasses.replace(result, timings={k: t for k, t in result.timings.items() if k[0] != "teacher-cpu"})
    assert ratios_sentence(none).startswith("No speed-up in this run: the reference teacher was not timed")
    partly = dataclasses.replace(result, timings={k: t for k, t in result.timings.items() if k != ("teacher-cpu", 2)})
    assert "at 1 thread(s); at 2 thread(s) the reference was not timed beside a subject: no speed-up there." in ratios_sentence(partly)
    help_text = inspect.signature(bench_command).parameters["quick"].default.help
    for said in ("12 timed hops per subject instead of 200", "2 test runs", "peak RSS in the bench process",
                 "the teacher is still timed interleaved"):
        assert said in help_text


def test_absolute_times_are_information_unless_asked(bench):
    """RTF is a wall time with nothing timed beside it: shown, not judged, unless the run asks for
    absolute goals; the speed-up is a ratio to the teacher timed in the same run: judged either way."""
    result, _ = bench
    asked = dataclasses.replace(result, config=result.config | {"absolute_goals": True})
    rtf = result.goals()[0]
    assert rtf["goal"].startswith("RTF <=") and rtf["passed"] is None and rtf["value"] > 0 and "--absolute-goals" in rtf["note"]
    assert verdict(rtf) == "info"
    rtf = asked.goals()[0]
    assert rtf["passed"] == (rtf["value"] <= GOAL_RTF) and "note" not in rtf
    for r in (result, asked):
        speed = r.goals()[1]
        assert speed["value"] == pytest.approx(r.speedup("cnn6_int8.pte", 1)) and speed["passed"] == (speed["value"] >= GOAL_SPEEDUP)
    # a goal whose figure was not measured is not a failure: the .pte not timed at 1 thread
    untimed = dataclasses.replace(result, timings={k: t for k, t in result.timings.items() if k != ("cnn6_int8.pte", 1)})
    rtf, speed, cost = untimed.goals()
    assert [verdict(rtf), verdict(speed), verdict(cost)] == ["not measured", "not measured", verdict(result.goals()[2])]
    assert "not timed at 1 thread" in rtf["note"] and "not timed at 1 thread" in speed["note"]


def test_a_missing_pte_is_not_found_not_failed(scenario, tmp_path):
    """The README's export makes .tflite and .onnx only. The .pte the goals are about is then said
    once, as not found, with the command that makes it; its goals are not measured; exit 0."""
    from footfall.cli import app

    folder = tmp_path / "art"
    folder.mkdir()
    for f in scenario.artifacts.iterdir():
        if ".pte" not in f.name:
            shutil.copy(f, folder / f.name)
    out = tmp_path / "report"
    res = CliRunner().invoke(app, ["bench", "--artifacts", str(folder), "--out", str(out), "--quick", "--threads", "1",
                                   "--no-rss", "--no-cuda", "--runs", "4", "--no-plots", "--absolute-goals"])
    assert res.exit_code == 0, res.output
    assert "FAILED" not in res.stderr and "not found" not in res.stderr and "Traceback" not in res.output
    (line,) = [l for l in res.stdout.splitlines() if "not found" in l]
    command = re.fullmatch(r"not found: the student's int8 \.pte, the artifact the goals are measured on "
                           r"\(make it with: (footfall export (\S+) --to pte --precision int8 --data (\S+) --out (\S+))\)", line)
    assert command, line
    assert (REPO / command[2]).is_file() and (REPO / command[3]).is_dir() and command[4] == str(folder)
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["absolute_goals"] is True  # --absolute-goals reaches the run
    assert [(g["value"], g["passed"]) for g in data["goals"]] == [(None, None)] * 3
    assert all(g["note"] == "no student int8 .pte among the artifacts" for g in data["goals"])
    assert data["missing"] == [{"what": "the student's int8 .pte, the artifact the goals are measured on", "how": f"make it with: {command[1]}"}]
    assert sum(l.startswith("N/A ") for l in res.stdout.splitlines()) == 3
    text = (out / "report.md").read_text()
    assert "## Not found" in text and text.count("make it with: footfall export") == 1 and "| not measured |" in text


def test_a_pte_that_cannot_be_benched_is_skipped_not_missing(scenario, tmp_path):
    folder = tmp_path / "art"
    shutil.copytree(scenario.artifacts, folder)
    card = folder / "cnn6_int8.pte.card.json"
    card.write_text(card.read_text().replace('"window_frames": 200', '"window_frames": 196'))
    disc, _ = discover(folder, cuda=False)
    assert "card does not verify" in dict(disc.skipped)["cnn6_int8.pte"] and disc.missing == []
    (folder / "cnn6_int8.pte").unlink()
    card.unlink()
    disc, _ = discover(folder, cuda=False)
    assert [what for what, _ in disc.missing] == ["the student's int8 .pte, the artifact the goals are measured on"]
