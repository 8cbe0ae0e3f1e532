"""Backends: chosen by extension, parity with the torch model, int8 I/O, threads, card checks."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from edge.backends import BackendError, dequantize, load_backend, load_model, quantize
from edge.card import CardError, card_path, load_card, write_card
from edge.golden import OnsetBackend
from edge.stream import offline_log_mel
from tests.edge_fixtures import KINDS, OnsetNet, copy_artifact, make_card, onset_artifacts
from edge.golden import click_track


@pytest.fixture(scope="module")
def artifacts():
    return onset_artifacts()


@pytest.fixture(scope="module")
def windows():
    """Real log-mel windows (1, 1, 64, 200) of a click track, and random ones."""
    frames = offline_log_mel(click_track(6.0, seed=3)[0])
    real = [frames[None, None, :, s : s + 200].copy() for s in (0, 148, 400)]
    rng = np.random.default_rng(0)
    return real + [(rng.standard_normal((1, 1, 64, 200)) * 3 - 7).astype(np.float32)]


def test_numpy_reference_equals_the_torch_model(windows):
    model = OnsetNet().eval()
    for x in windows:
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()[0]
        np.testing.assert_allclose(OnsetBackend(200).run(x), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_backend_by_extension_matches_torch(artifacts, windows, kind):
    backend, card = load_model(artifacts[kind])
    assert backend.format == card.format and backend.input_shape == (1, 1, 64, 200)
    model = OnsetNet().eval()
    ys, refs = [], []
    for x in windows:
        with torch.no_grad():
            refs.append(model(torch.from_numpy(x)).numpy()[0])
        ys.append(backend.run(x))
        assert ys[-1].shape == (50,) and ys[-1].dtype == np.float32
    if kind == "tflite_int8":  # int8 I/O tensors: quantized in, dequantized out; an int8 net, not fp32
        assert "int8-io" in backend.name
        y, ref = np.concatenate(ys[:3]), np.concatenate(refs[:3])  # the real windows
        assert np.corrcoef(y, ref)[0, 1] > 0.9
    else:
        np.testing.assert_allclose(np.stack(ys), np.stack(refs), rtol=0, atol=1e-4)


def test_int8_tflite_needs_the_conversion(artifacts, windows):
    """Feeding float32 to its int8 input tensor is the runtime error the backend avoids."""
    backend = load_backend(artifacts["tflite_int8"])
    assert backend._in_q is not None and backend._out_q is not None
    with pytest.raises(ValueError, match="(?i)int8|type"):
        backend._interp.set_tensor(backend._in["index"], windows[0])


@pytest.mark.parametrize("kind", ["onnx", "tflite", "tflite_int8"])
def test_threads_option_gives_the_same_density(artifacts, windows, kind):
    one = load_backend(artifacts[kind], threads=1)
    two = load_backend(artifacts[kind], threads=2)
    assert two.threads == 2
    np.testing.assert_allclose(one.run(windows[1]), two.run(windows[1]), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="threads"):
        load_backend(artifacts[kind], threads=0)


def test_quantize_roundtrip():
    x = np.array([-20.0, -1.0, 0.0, 0.049, 0.051, 3.0, 100.0], dtype=np.float32)
    q = quantize(x, 0.1, 3, np.int8)
    assert q.dtype == np.int8 and q.tolist() == [-128, -7, 3, 3, 4, 33, 127]
    np.testing.assert_allclose(dequantize(q, 0.1, 3), [-13.1, -1.0, 0.0, 0.0, 0.1, 3.0, 12.4], atol=1e-6)
    assert quantize(np.array([-1.0, 30.0]), 0.1, 128, np.uint8).tolist() == [118, 255]


def test_unknown_extension_and_missing_file(tmp_path):
    (tmp_path / "m.bin").write_bytes(b"x")
    with pytest.raises(BackendError, match=r"unknown model format '.bin' \(expected one of"):
        load_backend(tmp_path / "m.bin")
    with pytest.raises(BackendError, match="no such model file"):
        load_backend(tmp_path / "nope.onnx")


def test_corrupt_artifact_is_a_backend_error(tmp_path, artifacts):
    for suffix, kind in ((".onnx", "onnx"), (".tflite", "tflite")):
        path = tmp_path / f"bad{suffix}"
        path.write_bytes(b"this is not a model" * 10)
        make_card(path, kind)
        with pytest.raises(BackendError, match="cannot load it"):
            load_model(path)


@pytest.mark.parametrize("kind", ["onnx", "tflite"])
def test_card_mismatches_are_clear_errors(artifacts, tmp_path, kind):
    path = copy_artifact(artifacts[kind], tmp_path / "ok")
    load_model(path)  # the copy verifies

    def edited(**changes):
        card = dataclasses.replace(load_card(path), **changes)
        write_card(card, path)

    original = load_card(path)
    edited(sha256="0" * 64)
    with pytest.raises(CardError, match="sha256 mismatch"):
        load_model(path)
    edited(sha256=original.sha256, frontend=original.frontend | {"n_mels": 80})
    with pytest.raises(CardError, match="front end differs"):
        load_model(path)
    # a card that claims another window than the artifact takes
    edited(frontend=original.frontend, window_frames=100, hop_frames=48, input_shape=[1, 1, 64, 100])
    with pytest.raises(CardError, match=r"model takes input \[1, 1, 64, 200\], its card says \[1, 1, 64, 100\]"):
        load_model(path)
    edited(window_frames=200, input_shape=[1, 1, 64, 200], hop_frames=50)
    with pytest.raises(CardError, match="multiples of the density stride"):
        load_model(path)
    edited(hop_frames=48, density_fps=50.0)
    with pytest.raises(CardError):
        load_model(path)
    write_card(original, path)
    load_model(path)
    card_path(path).unlink()
    with pytest.raises(CardError, match="no model card"):
        load_model(path)
    card_path(path).write_text("{not json")
    with pytest.raises(CardError, match="malformed"):
        load_model(path)


def test_artifact_swapped_under_its_card(artifacts, tmp_path):
    """An .onnx renamed to .tflite, or a card copied to another artifact: refused."""
    a = copy_artifact(artifacts["tflite"], tmp_path / "a")
    b = copy_artifact(artifacts["tflite_int8"], tmp_path / "b")
    b.write_bytes(a.read_bytes())
    with pytest.raises(CardError, match="sha256 mismatch"):
        load_model(b)
    renamed = tmp_path / "a" / "renamed.tflite"
    a.rename(renamed)
    card_path(a).rename(card_path(renamed))
    with pytest.raises(CardError, match="card is for"):
        load_model(renamed)


def test_card_fields_of_test_artifacts(artifacts):
    for kind, path in artifacts.items():
        card = json.loads(card_path(path).read_text())
        assert card["window_frames"] == 200 and card["hop_frames"] == 48 and card["density_fps"] == 25
        assert card["precision"] == ("int8" if kind.endswith("int8") else "fp32")
