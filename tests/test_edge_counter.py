"""The streaming alignment, the counter and the ring buffer, on their own (no model, no audio)."""

import tracemalloc

import numpy as np
import pytest

from edge.counter import DENSITY_FPS, DENSITY_STRIDE, Alignment, Counter
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
