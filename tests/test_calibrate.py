"""``footfall calibrate``: the counter's rate calibration, fitted on training runs only (release/calibrate.py)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edge.backends import load_model
from edge.card import load_card, load_verified_card
from edge.counter import DENSITY_FPS, RateCalibration
from edge.stream import count_offline
from edge.audio import load_audio
from release.calibrate import MIN_FIT_RUNS, RunDensity, fit, report, total_errors_pct
from tests.edge_fixtures import copy_artifact, onset_artifacts
from tests.fixtures import make_dataset


def _shrunk_run(rng, true_spm: float, seconds: float = 120.0, mean_spm: float = 170.0, keep: float = 0.8):
    """A density that regresses the true cadence towards ``mean_spm`` (what a count regressor does)."""
    n = round(seconds * DENSITY_FPS)
    pred_spm = mean_spm + keep * (true_spm - mean_spm)
    d = np.full(n, pred_spm / 60 / DENSITY_FPS) * rng.uniform(0.7, 1.3, n)
    d *= pred_spm * seconds / 60 / d.sum()
    return d.astype(np.float32), round(true_spm * seconds / 60)


def test_fit_undoes_a_regression_to_the_mean():
    rng = np.random.default_rng(0)
    runs = [RunDensity(f"r{i}", "fit", *_shrunk_run(rng, spm)) for i, spm in enumerate(np.linspace(140, 195, 12))]
    held = [RunDensity(f"h{i}", "test", *_shrunk_run(rng, spm)) for i, spm in enumerate([137.0, 152.0, 181.0, 198.0])]
    before = total_errors_pct(held, None)
    assert np.median(np.abs(before)) > 2.0 and before[0] > 0 > before[-1]  # slow over-, fast under-counted
    cal = fit(runs)
    assert cal.slope_per_spm > 0 and 160 < cal.centre_spm < 180  # speeds up fast runs, slows slow ones
    after = total_errors_pct(held, cal)
    assert np.median(np.abs(after)) < 0.5 * np.median(np.abs(before))
    rep = report(runs + held, cal)
    assert set(rep) == {"fit", "test"} and rep["test"]["uncalibrated"]["runs"] == 4


def test_fit_needs_runs():
    rng = np.random.default_rng(1)
    few = [RunDensity(f"r{i}", "fit", *_shrunk_run(rng, spm)) for i, spm in enumerate(np.linspace(150, 190, MIN_FIT_RUNS - 1))]
    with pytest.raises(ValueError, match=f"at least {MIN_FIT_RUNS} runs with steps .* got {MIN_FIT_RUNS - 1}"):
        fit(few)
    with pytest.raises(ValueError, match="got 1"):
        fit([RunDensity("a", "fit", np.ones(10, np.float32), 5)])


def test_calibrate_refuses_too_few_runs_and_leaves_the_card(tmp_path, datasets):
    """Fold 0 of the 10-runner set alone has 6 training runs: refused, with the minimum, card untouched."""
    from footfall.cli import app

    artifact = copy_artifact(onset_artifacts()["onnx"], tmp_path)
    card = (tmp_path / (artifact.name + ".card.json")).read_text()
    res = CliRunner().invoke(app, ["calibrate", str(artifact), "--data", str(datasets[0]), "--fold", "0"])
    assert res.exit_code == 2, res.output
    err = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and f"at least {MIN_FIT_RUNS} runs" in err[0] and "got 6" in err[0], res.output
    assert "Traceback" not in res.output
    assert (tmp_path / (artifact.name + ".card.json")).read_text() == card


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    base = tmp_path_factory.mktemp("cal")
    return make_dataset(base / "main", n_runners=10, seconds=12.0, seed=3), make_dataset(base / "extra", n_runners=3, seconds=12.0, seed=4, runner_prefix="x")


def test_calibrate_writes_the_card_fitted_on_training_runs_only(tmp_path, datasets):
    from footfall.cli import app

    main, extra = datasets
    artifact = copy_artifact(onset_artifacts()["onnx"], tmp_path)
    sha = load_card(artifact).sha256
    res = CliRunner().invoke(app, ["calibrate", str(artifact), "--data", str(main), "--fold", "0", "--extra", str(extra), "--json"])
    assert res.exit_code == 0, res.output
    card = load_verified_card(artifact)  # still verifies: the artifact and its sha256 are untouched
    assert card.sha256 == sha
    cal = card.rate_calibration()
    entry = card.calibration
    rep = entry["fit"]["report"]
    # fold 0 of 10 runners: 6 train runners (+ 3 extra) fitted, 2 val and 2 test runners only reported
    assert rep["fit"]["uncalibrated"]["runs"] == 9 and rep["val"]["calibrated"]["runs"] == 2 and rep["test"]["calibrated"]["runs"] == 2
    assert entry["fit"]["extra"] == [str(extra)] and entry["fit"]["fold"] == 0
    # the objective never gets worse than no calibration (the fit starts there)
    from train.data.recordings import labeled, load_dataset, load_steps
    from train.data.folds import split

    backend, raw_card = load_model(artifact)
    raw_card.calibration = {}
    train = split(labeled(load_dataset(main)), 0, 5)[0] + labeled(load_dataset(extra))
    runs = [RunDensity(r.run_id, "fit", count_offline(backend, raw_card, load_audio(r.audio)).density, len(load_steps(r.steps))) for r in train]
    assert np.sum(total_errors_pct(runs, cal) ** 2) <= np.sum(total_errors_pct(runs, None) ** 2) + 1e-9
    # and the edge runtime now counts with it
    backend, card = load_model(artifact)
    r = train[0]
    audio = load_audio(r.audio)
    assert count_offline(backend, card, audio).steps == pytest.approx(cal.apply(runs[0].density).sum(), rel=1e-9)
    assert json.loads(res.output[res.output.index("{"): res.output.rindex("}") + 1])["kind"] == "rate_gain"
    png = tmp_path / (artifact.name + ".calibration.png")  # the default plot, beside the artifact
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_dry_run_leaves_the_card_alone(tmp_path, datasets):
    from footfall.cli import app

    artifact = copy_artifact(onset_artifacts()["onnx"], tmp_path)
    before = (tmp_path / (artifact.name + ".card.json")).read_text()
    res = CliRunner().invoke(app, ["calibrate", str(artifact), "--data", str(datasets[0]), "--extra", str(datasets[1]),
                                   "--dry-run", "--no-plot"])
    assert res.exit_code == 0, res.output
    assert "not written (--dry-run)" in res.output
    assert (tmp_path / (artifact.name + ".card.json")).read_text() == before
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("case", ["no card", "no dataset", "bad fold"])
def test_bad_input_is_one_line(tmp_path, datasets, case):
    from footfall.cli import app

    artifact = copy_artifact(onset_artifacts()["onnx"], tmp_path)
    args = ["calibrate", str(artifact), "--data", str(datasets[0])]
    if case == "no card":
        (tmp_path / (artifact.name + ".card.json")).unlink()
        match = "no model card"
    elif case == "no dataset":
        args[3] = str(tmp_path / "nowhere")
        match = "nowhere"
    else:
        args += ["--fold", "7"]
        match = "fold 7"
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    err = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and match in err[0], res.output
    assert "Traceback" not in res.output
