"""The streaming alignment, the event counter and the ring buffer, on their own (no model, no audio)."""

import math
import tracemalloc

import numpy as np
import pytest

from edge.counter import DENSITY_FPS, DENSITY_STRIDE, Alignment, Counter, CounterParams, count_events
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


FPS = DENSITY_FPS
LOW, HIGH = -6.0, 4.0  # logits: no step (p 0.0025), a sure step (p 0.98)


def track(times_s, seconds, peak=HIGH, low=LOW, shoulder=None):
    """A logit track at 25 fps with a peak at each time (and optional shoulders either side)."""
    x = np.full(int(seconds * FPS), low, np.float32)
    for t in times_s:
        j = int(t * FPS)
        x[j] = peak
        if shoulder is not None:
            x[max(j - 1, 0)] = max(x[max(j - 1, 0)], shoulder)
            if j + 1 < len(x):
                x[j + 1] = max(x[j + 1], shoulder)
    return x


def steady(spm, seconds, start=0.5):
    return np.arange(start, seconds - 0.5, 60.0 / spm)


def test_counter_params_defaults_and_validation():
    p = CounterParams()
    assert (p.threshold, p.min_interval_s, p.train_steps, p.fill_gaps) == (0.2, 0.25, 4, True)
    assert p.threshold_logit == pytest.approx(math.log(0.25))
    assert CounterParams.from_dict({}) == p and CounterParams.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="threshold"):
        CounterParams(threshold=1.5)
    with pytest.raises(ValueError, match="min_interval_s"):
        CounterParams(min_interval_s=2.0, max_gap_s=1.0)
    with pytest.raises(ValueError, match=r"unknown counter parameters \['gain'\]"):
        CounterParams.from_dict({"gain": 2})
    assert (p.weak_threshold, p.min_phase, p.peak_logit) == (None, 0.0, p.threshold_logit)  # no gate by default
    gate = CounterParams.from_dict({"weak_threshold": 0.05, "min_phase": 0.6})
    assert gate.peak_logit == pytest.approx(math.log(0.05 / 0.95)) and CounterParams.from_dict(gate.to_dict()) == gate
    for bad in ({"weak_threshold": 0.3}, {"weak_threshold": 0.0}, {"weak_threshold": True}, {"weak_threshold": "low"}):
        with pytest.raises(ValueError, match="weak_threshold"):
            CounterParams.from_dict(bad)
    for bad in (1.0, -0.1, True, None):
        with pytest.raises(ValueError, match="min_phase"):
            CounterParams(min_phase=bad)


@pytest.mark.parametrize("spm", [100.0, 150.0, 170.0, 200.0])
def test_one_event_per_peak_at_any_cadence(spm):
    times = steady(spm, 30.0)
    events = count_events(track(times, 30.0, shoulder=1.0))  # shoulders above threshold: still one step each
    assert len(events) == len(times)
    assert np.abs(events - (np.floor(times * FPS) + 0.5) / FPS).max() < 0.5 / FPS


def test_peak_time_moves_towards_the_higher_neighbour():
    x = np.full(100, LOW, np.float32)
    for j in (20, 30, 40, 50):
        x[j] = HIGH
    x[31] = 3.0  # the second peak leans right: its vertex is after frame 30's centre
    x[39] = 3.0  # the third leans left
    ev = count_events(x, CounterParams(train_steps=1))
    assert ev[0] == pytest.approx(20.5 / FPS)
    assert 30.5 / FPS < ev[1] < 31.0 / FPS
    assert 39.99 / FPS < ev[2] < 40.5 / FPS


def test_loudness_of_a_peak_does_not_count_more_steps():
    """A sure step and an unsure one (p 0.6) count once each: events, not mass."""
    times = steady(170.0, 20.0)
    sure = count_events(track(times, 20.0, peak=6.0))
    unsure = count_events(track(times, 20.0, peak=0.4))
    assert len(sure) == len(unsure) == len(times)


def test_peaks_closer_than_the_minimum_interval_keep_the_higher():
    x = track(steady(120.0, 20.0), 20.0)
    x[int(5.1 * FPS)] = 2.0  # 0.1 s after the step at 5.0 s... a lower echo
    base = count_events(track(steady(120.0, 20.0), 20.0))
    assert len(count_events(x)) == len(base)
    x[int(5.1 * FPS)] = 5.0  # ... now higher than the step: it replaces it
    ev = count_events(x)
    assert len(ev) == len(base) and np.any(np.isclose(ev, (int(5.1 * FPS) + 0.5) / FPS))


def test_a_lone_knock_counts_nothing_and_a_short_burst_neither():
    x = np.full(30 * FPS, LOW, np.float32)
    for t in (3.0, 9.0, 15.0, 15.5, 16.0, 25.0):  # knocks and a burst of three
        x[int(t * FPS)] = HIGH
    assert len(count_events(x)) == 0
    assert len(count_events(x, CounterParams(train_steps=1))) == 6


def test_the_cadence_prior_fills_a_missed_step_but_not_a_stop():
    times = steady(180.0, 30.0)
    x = track(times, 30.0)
    missed = [10, 25, 26, 60]  # a single miss, two in a row, a single miss
    for i in missed:
        x[int(times[i] * FPS)] = LOW
    ev = count_events(x)
    assert len(ev) == len(times)
    assert len(count_events(x, CounterParams(fill_gaps=False))) == len(times) - len(missed)
    # a 4-s stop is not filled: the train breaks and the next one starts
    stop = track(np.concatenate([steady(180.0, 10.0), 14.0 + steady(180.0, 10.0)]), 24.0)
    assert len(count_events(stop)) == 2 * len(steady(180.0, 10.0))


WEAK = -2.0  # a quiet step: p 0.12, under the threshold (0.2), over a weak threshold of 0.05


@pytest.mark.parametrize("keep_first", [False, True])
def test_the_cadence_gate_counts_a_quiet_step_where_one_is_due_and_drops_an_early_peak(keep_first):
    gate = CounterParams(weak_threshold=0.05, min_phase=0.6, keep_first=keep_first)
    plain = CounterParams(keep_first=keep_first)
    times = steady(170.0, 30.0)
    quiet = [12, 13, 30, 50, 51, 52, 53]  # quiet steps, up to four in a row (the gap prior fills at most 2)
    x = track(times, 30.0)
    for i in quiet:
        x[int(times[i] * FPS)] = WEAK
    assert len(count_events(x, gate)) == len(times)
    assert len(count_events(x, plain)) < len(times) - 2
    # a quiet knock between two steps is off the cadence: it counts nothing
    y = track(times, 30.0)
    y[int((times[20] + times[21]) / 2 * FPS)] = WEAK
    assert len(count_events(y, gate)) == len(times)
    # a sure second transient half a period (0.3 s) after a step at 100 spm, beyond the minimum
    # interval's reach on either side: counted without the gate, dropped by it
    slow = steady(100.0, 30.0)
    z = track(slow, 30.0)
    for i in (20, 35):
        z[int((slow[i] + 0.3) * FPS)] = HIGH
    assert len(count_events(z, gate)) == len(slow)
    assert len(count_events(z, plain)) == len(slow) + 2
    # outside a train a quiet peak is no peak: quiet steps alone count nothing
    assert len(count_events(track(times, 30.0, peak=WEAK), gate)) == 0


def test_random_noise_below_threshold_counts_nothing():
    rng = np.random.default_rng(0)
    below = CounterParams().threshold_logit - 4.0  # an activation that flickers 4 logits under the threshold
    assert len(count_events(rng.normal(below, 1.0, 60 * FPS).astype(np.float32))) == 0


@pytest.mark.parametrize("cut", [1, 7, 25, 61, 300])
def test_events_do_not_depend_on_how_the_track_is_cut(cut):
    times = steady(165.0, 40.0)
    x = track(times, 40.0, shoulder=0.5)
    for i in (12, 40, 41):
        x[int(times[i] * FPS)] = LOW
    whole = count_events(x)
    c = Counter()
    pieces = []
    for i in range(0, len(x), cut):
        pieces += c.commit(x[i : i + cut])
    pieces += c.flush()
    np.testing.assert_array_equal(np.sort(pieces), whole)
    assert c.n_events == len(whole)


def test_runner_figures_come_from_events():
    c = Counter()
    c.commit(track(np.concatenate([steady(180.0, 20.0), 30.0 + steady(180.0, 20.0)]), 50.0))
    assert c.cadence_state() == "steps" and c.cadence_spm() == pytest.approx(180.0, abs=0.5)
    c.flush()
    assert c.active_s == pytest.approx(40.0, abs=4.1)  # two 20-s stretches of running, a 10-s stop
    assert c.mean_cadence() == pytest.approx(180.0, abs=12.0)
    assert c.peak_cadence == pytest.approx(180.0, abs=4.0)  # steps on a 40-ms grid: intervals of 8 or 9 frames
    idle = Counter()
    idle.commit(np.full(20 * FPS, LOW, np.float32))
    idle.flush()
    assert idle.cadence_state() == "no steps" and idle.active_s == 0.0 and idle.mean_cadence() is None


def test_cadence_warms_up_then_reads_no_steps_after_a_stop():
    c = Counter()
    c.commit(track(steady(170.0, 2.0, start=0.2), 2.0))
    assert c.cadence_state() == "warming up"
    c.commit(track(steady(170.0, 10.0, start=0.2), 10.0))
    assert c.cadence_state() == "steps"
    c.commit(np.full(10 * FPS, LOW, np.float32))
    assert c.cadence_state() == "no steps" and c.shown_cadence() is None


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


def test_ring_reserve_grows_and_keeps_the_frames_held():
    frames = np.arange(64 * 300, dtype=np.float32).reshape(64, 300)
    ring = FrameRing(64, 20)
    ring.write(frames[:, :37])  # wrapped round: holds [17, 37)
    ring.reserve(120)
    assert ring.capacity == 120 and (ring.oldest, ring.written) == (17, 37)
    with pytest.raises(IndexError, match="not held"):
        ring.read_into(16, np.empty((64, 1), np.float32))
    ring.write(frames[:, 37:150])
    out = np.empty((64, 120), dtype=np.float32)
    ring.read_into(30, out)
    np.testing.assert_array_equal(out, frames[:, 30:150])
    ring.reserve(50)  # never shrinks
    assert ring.capacity == 120 and ring.oldest == 30


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


