"""The streaming alignment, the counter and the ring buffer, on their own (no model, no audio)."""

import tracemalloc

import numpy as np
import pytest

from edge.card import sha256_file
from edge.counter import DENSITY_FPS, DENSITY_STRIDE, Alignment, Counter, RateCalibration
from edge.frontend import FRAMES_PER_SECOND
from edge.ringbuffer import FrameRing

ALIGNMENTS = [(200, 48), (200, 100), (200, 200), (200, 4), (100, 20), (500, 100), (64, 60)]


def test_constants():
    assert DENSITY_FPS == 25 and DENSITY_STRIDE == 4
    assert DENSITY_FPS * DENSITY_STRIDE == FRAMES_PER_SECOND


@pytest.mark.parametrize("w,h", ALIGNMENTS)
@pytest.mark.parametrize("n_frames", [0, 3, 4, 57, 199, 200, 201, 203, 204, 247, 248, 1000, 1003, 4321])
def test_plan_commits_every_density_frame_exactly_once_in_order(w, h, n_frames):
    a = Alignment(w, h)
    committed = []
    for start, lo, hi in a.plan(n_frames):
        assert start % DENSITY_STRIDE == 0 and start >= 0
        assert 0 <= lo <= hi <= a.window_d
        assert start + w <= max(n_frames, w)  # a window never reads past the stream (short ones are padded)
        committed.extend(range(start // DENSITY_STRIDE + lo, start // DENSITY_STRIDE + hi))
    assert committed == list(range(n_frames // DENSITY_STRIDE))


@pytest.mark.parametrize("w,h", ALIGNMENTS)
def test_regular_windows_commit_their_centre_hop(w, h):
    a = Alignment(w, h)
    c = a.commit_offset_d
    assert c == (w // 4 - h // 4) // 2
    assert a.commit(0) == (0, c + h // 4)  # the first window also commits its head
    for k in (1, 2, 7):
        assert a.commit(k) == (c, c + h // 4)
        assert a.committed_after(k + 1) == (k + 1) * a.hop_d + c
    # latency: the newest frame a window sees minus the end of what it commits
    for k in range(5):
        assert a.window_end(k) - (a.window_start(k) + a.commit(k)[1] * 4) == a.latency_frames
    assert a.latency_frames == w - h - 4 * c


def test_student_latency_documented():
    a = Alignment(200, 48)
    assert (a.commit_offset_d, a.latency_frames, a.latency_s) == (19, 76, 0.76)


def test_hop_off_the_density_grid_is_a_clear_error():
    with pytest.raises(ValueError, match="multiples of the density stride 4.*hop 48 or 52"):
        Alignment(200, 50)
    with pytest.raises(ValueError, match="hop_frames"):
        Alignment(200, 0)
    with pytest.raises(ValueError, match="hop_frames"):
        Alignment(200, 204)


def test_tail_of_short_and_long_streams():
    a = Alignment(200, 48)
    assert a.tail(150, 0) == (0, 0, 37)  # shorter than a window: padded window from frame 0
    assert a.tail(3, 0) is None  # not even one density frame
    # 1003 frames: regular windows 0..16 (end 968) commit up to 16*12+19+12 = 223; D = 250
    assert a.n_windows(1003) == 17 and a.committed_after(17) == 223
    assert a.tail(1003, 223) == (800, 23, 50)  # last full window ending at frame 1000
    assert a.tail(1003, 250) is None


def test_counter_events_follow_the_half_integer_crossings_at_peaks():
    c = Counter()
    density = np.zeros(100)
    density[[10, 11, 12]] = [0.2, 0.6, 0.2]  # one step peaking at frame 11
    density[[40, 41]] = [0.5, 0.55]  # one step peaking at frame 41
    density[70] = 2.0  # two steps in one frame
    events = c.commit(density[:50]) + c.commit(density[50:])
    assert c.steps == pytest.approx(4.05)
    assert c.n_events + c._pending == 4
    events += c.flush()
    assert events == pytest.approx([11.5 / 25, 41.5 / 25, 70.5 / 25, 70.5 / 25])
    assert c.t_final == 4.0


@pytest.mark.parametrize("spm", [90.0, 160.0, 185.0])
def test_cadence_over_the_last_10_s(spm):
    c = Counter()
    rate = spm / 60 / DENSITY_FPS  # steps per density frame
    c.commit(np.full(30 * DENSITY_FPS, rate))
    assert c.cadence_spm() == pytest.approx(spm)
    c.commit(np.zeros(5 * DENSITY_FPS))  # a 5-s stop halves the 10-s cadence
    assert c.cadence_spm() == pytest.approx(spm / 2)
    c.commit(np.zeros(10 * DENSITY_FPS))
    assert c.cadence_spm() == 0.0
    assert len(c._ring) == 10 * DENSITY_FPS  # fixed memory


def test_cadence_at_the_start_uses_what_is_committed():
    c = Counter()
    assert c.cadence_spm() == 0.0
    c.commit(np.full(2 * DENSITY_FPS, 3.0 / DENSITY_FPS))  # 3 steps/s for 2 s
    assert c.cadence_spm() == pytest.approx(180.0)


def test_ring_wraps_and_reads_back_exactly():
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((64, 1000)).astype(np.float32)
    ring = FrameRing(64, 204)
    out = np.empty((64, 200), dtype=np.float32)
    i = 0
    for k in [1, 7, 150, 203, 204, 3, 99, 200, 33]:
        ring.write(frames[:, i : i + k])
        i += k
        start = max(ring.oldest, i - 200)
        n = min(200, i - start)
        ring.read_into(start, out[:, :n])
        np.testing.assert_array_equal(out[:, :n], frames[:, start : start + n])
    with pytest.raises(IndexError, match="not held"):
        ring.read_into(ring.oldest - 1, out)
    with pytest.raises(IndexError, match="not held"):
        ring.read_into(ring.written - 199, out)


def test_ring_long_write_keeps_the_newest_frames():
    frames = np.arange(64 * 500, dtype=np.float32).reshape(64, 500)
    ring = FrameRing(64, 204)
    ring.write(frames)
    assert (ring.oldest, ring.written) == (296, 500)
    out = np.empty((64, 204), dtype=np.float32)
    ring.read_into(296, out)
    np.testing.assert_array_equal(out, frames[:, 296:])


def test_ring_write_and_read_allocate_nothing():
    ring = FrameRing(64, 204)
    block = np.ones((64, 48), dtype=np.float32)
    out = np.empty((64, 200), dtype=np.float32)
    buf = ring._buf
    for _ in range(10):  # warm up
        ring.write(block)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(1000):
        ring.write(block)
        ring.read_into(ring.written - 200, out)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if s.size_diff > 0)
    assert grown < 4096, f"ring allocated {grown} bytes over 1000 hops"
    assert ring._buf is buf


# ---- the rate calibration (edge.counter.RateCalibration, fitted by release.calibrate)


def _spm_density(spm: float, seconds: float) -> np.ndarray:
    return np.full(round(seconds * DENSITY_FPS), spm / 60 / DENSITY_FPS)


def test_calibration_with_zero_slope_counts_every_frame_as_it_is():
    rng = np.random.default_rng(1)
    d = rng.gamma(0.5, 0.2, 3000)
    plain, cal = Counter(), Counter(calibration=RateCalibration(centre_spm=170.0, slope_per_spm=0.0))
    e1, e2 = plain.commit(d) + plain.flush(), cal.commit(d) + cal.flush()
    assert cal.steps == plain.steps == cal.raw_steps  # bit-identical: the gain is exactly 1.0
    assert e1 == e2 and cal.cadence_spm() == plain.cadence_spm()


@pytest.mark.parametrize("spm,expected_gain", [(150.0, 1 - 0.002 * 20), (170.0, 1.0), (190.0, 1 + 0.002 * 20)])
def test_steady_rate_is_scaled_by_the_gain_of_that_rate(spm, expected_gain):
    cal = RateCalibration(centre_spm=170.0, slope_per_spm=0.002)
    c = Counter(calibration=cal)
    d = _spm_density(spm, 60.0)
    c.commit(d)
    assert c.raw_steps == pytest.approx(spm)  # 60 s at spm
    assert c.steps == pytest.approx(spm * expected_gain, rel=1e-12)
    assert c.cadence_spm() == pytest.approx(spm * expected_gain)  # cadence is calibrated too
    assert float(cal.gain(spm)) == pytest.approx(expected_gain)


def test_gain_follows_the_recent_uncalibrated_rate_and_is_clipped():
    cal = RateCalibration(centre_spm=150.0, slope_per_spm=0.01, window_s=5.0, gain_min=0.8, gain_max=1.2)
    assert float(cal.gain(0.0)) == 0.8 and float(cal.gain(400.0)) == 1.2
    c = Counter(calibration=cal)
    c.commit(_spm_density(180.0, 20.0))  # g = 1.2 (clipped from 1.3)
    assert c.steps == pytest.approx(60.0 * 1.2)
    before = c.steps
    c.commit(_spm_density(150.0, 20.0))  # after 5 s of the new rate the gain is exactly 1
    gained = c.steps - before
    assert 50.0 < gained < 50.0 * 1.2
    tail = Counter(calibration=cal)
    tail.commit(_spm_density(180.0, 20.0))
    tail.commit(_spm_density(150.0, 5.0))
    t0 = tail.steps
    tail.commit(_spm_density(150.0, 15.0))
    assert tail.steps - t0 == pytest.approx(37.5, rel=1e-12)  # 15 s at 150 spm, gain 1


def test_calibrated_count_does_not_depend_on_how_frames_arrive_and_matches_apply():
    rng = np.random.default_rng(2)
    d = (rng.gamma(0.3, 0.4, 5000) * (1 + np.sin(np.arange(5000) / 400))).astype(np.float32)
    cal = RateCalibration(centre_spm=160.0, slope_per_spm=0.003)
    whole = Counter(calibration=cal)
    ev_whole = whole.commit(d) + whole.flush()
    pieces = Counter(calibration=cal)
    ev_pieces, i = [], 0
    for k in [1, 12, 250, 7, 1000, 3, 60] * 30:
        ev_pieces += pieces.commit(d[i : i + k])
        i += k
        if i >= len(d):
            break
    ev_pieces += pieces.commit(d[i:]) + pieces.flush()
    assert pieces.steps == whole.steps and ev_pieces == ev_whole  # bit-identical
    assert whole.steps == pytest.approx(cal.apply(d).sum(), rel=1e-10)  # the vectorised twin the fit uses
    assert whole.steps != pytest.approx(whole.raw_steps, rel=1e-3)  # the calibration did something


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"kind": "other", "centre_spm": 1, "slope_per_spm": 0}, "kind 'rate_gain'"),
        ({"kind": "rate_gain", "centre_spm": float("nan"), "slope_per_spm": 0}, "finite numbers"),
        ({"kind": "rate_gain", "centre_spm": 160, "slope_per_spm": "0.1"}, "finite numbers"),
        ({"kind": "rate_gain", "centre_spm": 160, "slope_per_spm": 0, "gain_min": 1.1}, "gain_min <= 1"),
        ({"kind": "rate_gain", "centre_spm": 160, "slope_per_spm": 0, "window_s": 0}, "window_s"),
        ({"kind": "rate_gain", "slope_per_spm": 0}, "centre_spm"),
    ],
)
def test_malformed_calibrations_are_one_line_errors(bad, match):
    with pytest.raises(ValueError, match=match) as e:
        RateCalibration.from_dict(bad)
    assert "\n" not in str(e.value)


def test_a_card_with_a_bad_calibration_is_refused_before_anything_runs(tmp_path):
    from edge.card import CardError, load_verified_card, write_card
    from edge.golden import onset_card

    artifact = tmp_path / "m.onnx"
    artifact.write_bytes(b"not really a model")
    card = onset_card(200, 48)
    card.artifact, card.format, card.sha256 = "m.onnx", "onnx", sha256_file(artifact)
    card.calibration = {"kind": "rate_gain", "centre_spm": 160.0, "slope_per_spm": 0.001}
    write_card(card, artifact)
    assert load_verified_card(artifact).rate_calibration() == RateCalibration(160.0, 0.001)
    card.calibration = {"kind": "rate_gain", "centre_spm": 160.0, "slope_per_spm": 0.001, "gain_max": 0.9}
    write_card(card, artifact)
    with pytest.raises(CardError, match=r"m.onnx.card.json: bad calibration: .*gain_max") as e:
        load_verified_card(artifact)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("w,h,la", [(240, 28, 12), (240, 20, 0), (240, 200, 40), (200, 48, 8), (240, 240, 0)])
@pytest.mark.parametrize("n_frames", [0, 57, 240, 241, 1003, 4321])
def test_a_lookahead_commits_every_frame_once_that_far_before_the_window_end(w, h, la, n_frames):
    a = Alignment(w, h, DENSITY_STRIDE, la)
    assert a.latency_frames == la
    for k in (1, 2, 9):
        lo, hi = a.commit(k)
        assert (hi - lo) * DENSITY_STRIDE == h and w - hi * DENSITY_STRIDE == la
    committed = []
    for start, lo, hi in a.plan(n_frames):
        committed.extend(range(start // DENSITY_STRIDE + lo, start // DENSITY_STRIDE + hi))
    assert committed == list(range(n_frames // DENSITY_STRIDE))


def test_a_lookahead_off_the_grid_or_outside_the_window_is_a_clear_error():
    for la in (2, -4, 44):
        with pytest.raises(ValueError, match=r"lookahead_frames .* multiple of 4 in \[0, 40\]"):
            Alignment(240, 200, DENSITY_STRIDE, la)
    assert Alignment(240, 200, DENSITY_STRIDE, None).latency_frames == 20  # None: the centre hop
