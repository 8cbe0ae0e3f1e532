"""The streaming student: stepping it packet by packet equals running it on the whole input,
whatever the packet size; its state is what ``state_specs`` says; its band normalisation is
causal and blind to gain; and the edge schedule and counter that serve it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edge.counter import Alignment, Counter, CounterParams, count_events
from train.evaluate.predict import predict_run_logits
from train.models import ConfigError, build_model
from train.models.streaming import LONG_FRAMES, StreamStep


def _small(**kw):
    torch.manual_seed(0)
    return build_model("streamtcn", channels=(8, 8, 8), tcn_channels=16, dilations=(1, 2, 4), **kw).eval()


def _mel(frames: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 1, 64, frames, generator=g) * 3 - 8


@pytest.mark.parametrize("packet", [4, 8, 40])
def test_stepping_equals_the_whole_input(packet):
    m = _small()
    x = _mel(400)
    with torch.no_grad():
        whole = m(x)
        state, out = m.initial_state(), []
        for i in range(0, 400, packet):
            y, *state = m.step(x[..., i : i + packet], *state)
            out.append(y)
    assert torch.allclose(torch.cat(out, -1), whole, atol=1e-4)


def test_state_specs_are_what_step_takes_and_returns():
    m = _small()
    specs = m.state_specs()
    assert [s for _, s in specs] == [tuple(t.shape) for t in m.initial_state()]
    assert len({n for n, _ in specs}) == len(specs)
    with torch.no_grad():
        y, *state = StreamStep(m)(*StreamStep(m).example_inputs())
    assert y.shape == (1, m.packet_frames // 4) and [tuple(t.shape) for t in state] == [s for _, s in specs]
    # the receptive field: 1 + 2 frames per conv block + 2 d per dilated conv
    assert m.receptive_field_frames == 1 + 3 * 2 + 2 * (1 + 2 + 4)


def test_output_never_depends_on_the_future():
    m = _small()
    x = _mel(200)
    y = x.clone()
    y[..., 120:] += torch.randn_like(y[..., 120:]) * 5
    with torch.no_grad():
        a, b = m(x), m(y)
    assert torch.equal(a[:, :30], b[:, :30]) and not torch.allclose(a[:, 30:], b[:, 30:])


def test_a_gain_leaves_the_output_once_the_band_mean_has_settled():
    """log-mel + c (a gain) is removed by the running band mean exactly from the first frame (the
    bias-corrected mean starts at the first frame's value)."""
    m = _small()
    x = _mel(300)
    with torch.no_grad():
        a, b = m(x), m(x + 4.6)  # +20 dB
    assert torch.allclose(a, b, atol=1e-3)


def test_long_inputs_run_in_chunks_with_the_same_numbers():
    m = _small()
    x = _mel(LONG_FRAMES + 200)
    with torch.no_grad():
        whole = m(x)
        state = m.initial_state()
        y1, *state = m.step(x[..., :600], *state)
        y2, *state = m.step(x[..., 600:], *state)
    assert whole.shape == (1, (LONG_FRAMES + 200) // 4)
    assert torch.allclose(whole, torch.cat([y1, y2], -1), atol=1e-4)


def test_predict_run_logits_streams_a_streaming_model_over_the_whole_run():
    m = _small()
    mel = _mel(1003)[0, 0].numpy()
    with torch.no_grad():
        want = m(torch.from_numpy(mel[None, None, :, :1000].copy()))[0].numpy()
    got = predict_run_logits(m, mel, window_frames=4)
    assert got.shape == (250,) and np.allclose(got, want, atol=1e-5)


def test_a_lookahead_teacher_is_the_causal_network_read_late():
    """lookahead L: the logit of frame t is the causal logit of frame t + L (the same weights); it
    hears exactly L frames of the future, never more, and it runs windows, not streams."""
    L = 5
    teacher, causal = _small(lookahead=L), _small()
    causal.load_state_dict(teacher.state_dict())
    x = _mel(LONG_FRAMES + 200)  # the chunked path too
    with torch.no_grad():
        late, now = teacher(x), causal(x)
        assert late.shape == now.shape
        assert torch.allclose(late[:, :-L], now[:, L:], atol=1e-4)
        y = x.clone()
        y[..., 400:] += torch.randn_like(y[..., 400:]) * 5  # output frame 100 onwards hears it L frames early
        b = teacher(y)
    assert torch.equal(late[:, : 100 - L], b[:, : 100 - L]) and not torch.allclose(late[:, 100 - L : 100], b[:, 100 - L : 100])
    assert teacher.streaming is False and teacher.role == "teacher" and causal.streaming is True
    with pytest.raises(ConfigError, match="cannot stream"):
        teacher.step(x[..., :16], *teacher.initial_state())
    mel = x[0, 0, :, :1000].numpy()  # predict_run_logits runs it on windows, as any windowed model
    got = predict_run_logits(teacher, mel, window_frames=400)
    assert got.shape == (250,) and np.isfinite(got).all()


@pytest.mark.parametrize("kw", [dict(packet_frames=6), dict(channels=(8,) * 7), dict(norm_tau_s=0.0), dict(centre_bands=True),
                                dict(lookahead=-1), dict(lookahead=51)])
def test_bad_configs_are_refused(kw):
    with pytest.raises(ConfigError):
        build_model("streamtcn", **kw)


def test_the_stateful_schedule_takes_each_packet_once_and_its_tail_never_reaches_back():
    a = Alignment(8, 8, stateful=True)
    assert a.latency_frames == 0 and a.commit(0) == (0, 2) and a.commit(5) == (0, 2)
    plan = a.plan(8 * 10 + 5)  # 10 packets and one more output frame
    assert plan[:10] == [(8 * k, 0, 2) for k in range(10)]
    assert plan[10] == (80, 0, 1)
    with pytest.raises(ValueError):
        Alignment(8, 4, stateful=True)
    with pytest.raises(ValueError):
        Alignment(8, 8, lookahead_frames=0, stateful=True)


def test_a_causal_networks_echo_after_each_step_is_not_counted():
    """A causal network peaks at a step's onset and may peak again at its tail: the cadence tracker
    counts the steps, not the echoes, and each a lag after it lands."""
    fps = 25
    logits = np.full(400, -6.0)
    for k in range(25):  # a steady run, a smaller echo 0.12 s after every step
        logits[10 + 12 * k] = 3.0
        logits[13 + 12 * k] = 1.0
    c = Counter()
    got = []
    for j, v in enumerate(logits):
        got += [(e, j / fps) for e in c.commit([v])]
    got += [(e, len(logits) / fps) for e in c.flush()]
    steps = (10 + 12 * np.arange(25) + 0.5) / fps
    assert len(got) == 25 and np.abs(np.array([t for t, _ in got]) - steps).max() <= 1.0 / fps
    lag = [seen - t for t, seen in got[:-3]]
    assert min(lag) >= CounterParams().lag_s and max(lag) <= CounterParams().lag_s + 0.3


def test_the_teacher_preset_is_the_student_four_times_wider_and_half_a_second_ahead():
    from pathlib import Path

    from train.distill.student import load_distill_config
    from train.models.profile import count_params, macs_per_second

    root = Path(__file__).resolve().parents[1] / "train" / "presets"
    teacher = load_distill_config(None, root / "teacher-stream.yaml", {})
    student = load_distill_config(None, root / "student-stream.yaml", {})
    assert teacher.model == student.model == "streamtcn" and teacher.labels == student.labels == "true"
    assert (teacher.window_s, teacher.train_hop_s) == (student.window_s, student.train_hop_s)
    m = build_model(teacher.model, **teacher.model_args[teacher.model])
    s = build_model(student.model, **student.model_args.get(student.model, {}))
    assert m.role == "teacher" and not m.streaming and m.config.lookahead * 0.04 == pytest.approx(0.48)
    assert 3.5 < count_params(m) / count_params(s) < 4.5 and 3.5 < macs_per_second(m) / macs_per_second(s) < 5
