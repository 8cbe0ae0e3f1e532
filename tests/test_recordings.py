"""The dataset format (contract 5): every validation error is one line naming the file and row."""

from __future__ import annotations

import csv
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge.frontend import N_MELS
from train.data.features import cache_path, fold_windows, recording_features, step_frames
from train.data.folds import assign_folds, check_runner_independent, split
from train.data.recordings import COLUMNS, DatasetError, labeled, load_dataset, load_steps
from train.data.windows import frame_of, window_counts, window_index, window_sums

SR = 8000  # not 16 kHz on purpose: the loader resamples


def write_run(root: Path, run_id: str, seconds: float = 2.0, steps: list[float] | None = None, sr: int = SR) -> dict:
    rng = np.random.default_rng(zlib.crc32(run_id.encode()))
    sf.write(root / f"{run_id}.wav", (0.01 * rng.standard_normal((int(seconds * sr), 2))).astype(np.float32), sr)
    row = {"run_id": run_id, "runner_id": f"runner_{run_id}", "audio": f"{run_id}.wav", "steps": "", "surface": "asphalt", "session": "s1", "fold": ""}
    if steps is not None:
        with open(root / f"{run_id}_steps.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["time_s", "foot"])
            w.writerows([[t, "LR"[i % 2]] for i, t in enumerate(steps)])
        row["steps"] = f"{run_id}_steps.csv"
    return row


def write_manifest(root: Path, rows: list[dict], columns=COLUMNS) -> Path:
    path = root / "manifest.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, list[dict]]:
    rows = [write_run(tmp_path, f"r{i}", steps=[0.1, 0.45, 0.8, 1.2, 1.55]) for i in range(5)]
    rows.append(write_run(tmp_path, "u0"))  # unlabeled
    rows[-1]["runner_id"] = "runner_r0"
    for i, row in enumerate(rows):
        row["fold"] = str(i % 5)
    rows[-1]["fold"] = rows[0]["fold"]
    write_manifest(tmp_path, rows)
    return tmp_path, rows


def one_line_error(root: Path, *needles: str) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(root)
    msg = str(info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    return msg


def test_loads_valid_dataset(dataset):
    root, rows = dataset
    recs = load_dataset(root)
    assert [r.run_id for r in recs] == [r["run_id"] for r in rows]
    assert len(labeled(recs)) == 5 and recs[-1].steps is None
    assert recs[0].audio.is_absolute() and recs[0].duration_s == pytest.approx(2.0)
    assert [r.fold for r in recs] == [0, 1, 2, 3, 4, 0]
    np.testing.assert_allclose(load_steps(recs[0].steps), [0.1, 0.45, 0.8, 1.2, 1.55])


def test_empty_fold_column_assigns_runner_independent_folds(dataset):
    root, rows = dataset
    for row in rows:
        row["fold"] = ""
    write_manifest(root, rows)
    recs = load_dataset(root)
    assert sorted(r.fold for r in recs[:5]) == [0, 1, 2, 3, 4]
    assert recs[-1].fold == recs[0].fold  # same runner, same fold
    check_runner_independent(recs)


def test_missing_manifest(tmp_path):
    one_line_error(tmp_path, "manifest.csv", "no manifest")


def test_missing_dataset_folder(tmp_path):
    one_line_error(tmp_path / "nope", "nope", "no such dataset folder")


def test_missing_columns(dataset):
    root, rows = dataset
    write_manifest(root, rows, columns=[c for c in COLUMNS if c not in ("runner_id", "fold")])
    one_line_error(root, "manifest.csv", "runner_id", "fold")


def test_missing_audio(dataset):
    root, rows = dataset
    os.remove(root / "r2.wav")
    one_line_error(root, "manifest.csv:4", "'r2'", "r2.wav", "no such audio file")


def test_unreadable_audio(dataset):
    root, rows = dataset
    (root / "r3.wav").write_bytes(b"RIFF not really a wave file")
    one_line_error(root, "manifest.csv:5", "r3.wav", "unreadable audio")


def test_missing_steps_file(dataset):
    root, rows = dataset
    os.remove(root / "r1_steps.csv")
    one_line_error(root, "manifest.csv:3", "r1_steps.csv", "no such steps file")


@pytest.mark.parametrize(
    "steps, needles",
    [
        ([0.1, 0.5, 2.5], ["r4_steps.csv:4", "outside the audio"]),
        ([-0.2, 0.5], ["r4_steps.csv:2", "before the start"]),
        ([0.1, 0.9, 0.5], ["r4_steps.csv:4", "not sorted"]),
        ([0.1, 0.5, 0.5, 0.9], ["r4_steps.csv:4", "duplicate step"]),
    ],
)
def test_bad_steps(dataset, steps, needles):
    root, rows = dataset
    write_run(root, "r4", steps=steps)
    one_line_error(root, "manifest.csv:6", "'r4'", *needles)


def test_non_numeric_step_and_bad_header(dataset):
    root, rows = dataset
    (root / "r0_steps.csv").write_text("time_s\n0.1\nabc\n")
    one_line_error(root, "manifest.csv:2", "r0_steps.csv:3", "'abc'")
    (root / "r0_steps.csv").write_text("t,foot\n0.1,L\n")
    one_line_error(root, "r0_steps.csv", "header")


@pytest.mark.parametrize(
    "row, column, value, needles",
    [
        (2, "runner_id", "", ["manifest.csv:4", "'r2'", "missing runner_id"]),
        (3, "run_id", "r1", ["manifest.csv:5", "'r1'", "duplicate run_id", "line 3"]),
        (1, "fold", "x", ["manifest.csv:3", "'r1'", "not an integer"]),
        (1, "fold", "5", ["manifest.csv:3", "'r1'", "out of range"]),
        (1, "fold", "-1", ["manifest.csv:3", "'r1'", "out of range"]),
        (1, "fold", "1.5", ["manifest.csv:3", "'r1'", "not an integer"]),
        (-1, "fold", "3", ["manifest.csv:7", "runner_r0", "one fold"]),  # u0 belongs to runner_r0, fold 0
        (2, "fold", "", ["manifest.csv:4", "empty fold"]),  # partly empty folds
    ],
    ids=["missing-runner-id", "duplicate-run-id", "fold-x", "fold-5", "fold-minus-1", "fold-1.5", "runner-in-two-folds",
         "partly-empty-folds"],
)
def test_bad_manifest_cell(dataset, row, column, value, needles):
    root, rows = dataset
    rows[row][column] = value
    write_manifest(root, rows)
    one_line_error(root, *needles)


def test_assign_folds_balanced_and_deterministic():
    runners = [f"p{i}" for i in range(23)]
    a = assign_folds(runners, seed=3)
    assert a == assign_folds(list(reversed(runners)), seed=3)  # input order does not matter
    sizes = np.bincount(list(a.values()), minlength=5)
    assert sizes.max() - sizes.min() <= 1
    # balanced by runs when runners repeat
    runs = [r for i, r in enumerate(runners) for _ in range(1 + i % 4)]
    b = assign_folds(runs)
    per_group = np.bincount([b[r] for r in runs], minlength=5)
    assert per_group.max() - per_group.min() <= 4
    with pytest.raises(ValueError):
        assign_folds(["a", "b"], n_folds=5)


def test_split_is_runner_independent(dataset):
    root, _ = dataset
    recs = load_dataset(root)
    for k in range(5):
        train, val, test = split(recs, k)
        assert {r.fold for r in test} == {k} and {r.fold for r in val} == {(k + 1) % 5}
        assert len(train) + len(val) + len(test) == len(recs)
        ids = [{r.runner_id for r in part} for part in (train, val, test)]
        assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])


def test_step_frames_and_windows():
    steps = np.array([0.0, 0.29, 0.295, 4.999, 5.0, 9.99, 12.0])
    assert list(frame_of(steps)) == [0, 29, 29, 499, 500, 999, 1200]
    fs = step_frames(steps, 1100)  # the step at 12 s lies past the last frame: dropped
    assert fs.sum() == 6 and fs[29] == 2
    starts = window_index(1100, 500)
    assert list(starts) == [0, 500]  # whole windows only
    assert list(window_counts(steps, starts, 500)) == [4, 2]
    np.testing.assert_array_equal(window_sums(fs, starts, 500), [4, 2])
    assert list(window_index(1100, 500, 250)) == [0, 250, 500]
    assert len(window_index(499, 500)) == 0


def test_features_cached_and_windows(dataset):
    root, _ = dataset
    recs = load_dataset(root)
    mel, steps = recording_features(recs[0], root)
    assert mel.shape == (N_MELS, 200) and mel.dtype == np.float32  # 2 s at 100 fps
    path = cache_path(recs[0], root)
    assert path.is_file() and ".cache" in path.parts
    np.testing.assert_array_equal(np.load(path), mel)
    mel2, _ = recording_features(recs[0], root, mmap=True)
    np.testing.assert_array_equal(mel2, mel)
    # changing the audio changes the key, and the stale entry goes
    st = recs[0].audio.stat()
    os.utime(recs[0].audio, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cache_path(recs[0], root) != path
    recording_features(recs[0], root)
    assert not path.exists() and cache_path(recs[0], root).is_file()
    assert recording_features(recs[-1], root)[1] is None  # unlabeled

    ws = fold_windows(root, 0, window_frames=100, hop_frames=50, split="train")
    assert {r.run_id for r in ws.recs} == {"r2", "r3", "r4"}
    assert len(ws) == 3 * 3  # starts 0, 50, 100 in 200 frames
    x, y = ws.batch([0, 1, 2])
    assert x.shape == (3, N_MELS, 100)
    np.testing.assert_array_equal(y, [3, 2, 2])  # steps at frames 10, 45, 80 | 120, 155
    assert ws.window_frame_steps(0).sum() == 3
    test = fold_windows(root, 0, window_frames=100, split="test")
    assert [r.run_id for r in test.recs] == ["r0"] and len(test) == 2
