"""The streaming alignment, the event counter and the ring buffer, on their own (no model, no audio)."""

import math
import tracemalloc

import numpy as np
import pytest

from edge.counter import DENSITY_FPS, DENSITY_STRIDE, TRACK_RATE, Alignment, Counter, CounterParams, count_events
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
    assert (p.threshold, p.min_spm, p.max_spm, p.tempo_lambda, p.switch_prob, p.lag_s) == (0.05, 75.0, 250.0, 30.0, 1e-5, 3.0)
    assert p.threshold_logit == pytest.approx(math.log(0.05 / 0.95))
    assert p.fps == 50 and p.periods == (12, 40) and p.lag_frames == 150  # 250-75 spm at 20 ms a frame
    assert CounterParams.from_dict({}) == p and CounterParams.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="threshold"):
        CounterParams(threshold=1.5)
    with pytest.raises(ValueError, match="min_spm"):
        CounterParams(min_spm=200.0, max_spm=150.0)
    with pytest.raises(ValueError, match="too few step periods"):
        CounterParams(min_spm=240.0, max_spm=250.0)
    for name, bad in (("switch_prob", 0.0), ("switch_prob", 0.7), ("lag_s", -1.0), ("lag_s", 11.0), ("tempo_lambda", -1.0),
                      ("threshold", True), ("lag_s", float("nan")), ("min_spm", "slow")):
        with pytest.raises(ValueError, match=name):
            CounterParams(**{name: bad})
    with pytest.raises(ValueError, match=r"unknown counter parameters \['gain'\]"):
        CounterParams.from_dict({"gain": 2})
    # a card of the peak picker the tracker replaced gets one line that says what to do
    with pytest.raises(ValueError, match="peak picker's .*cadence tracker now.*release.bundle counter"):
        CounterParams.from_dict({"threshold": 0.14, "train_steps": 5, "keep_first": True})


@pytest.mark.parametrize("spm", [100.0, 150.0, 170.0, 200.0, 240.0])
def test_one_event_per_step_at_any_cadence(spm):
    times = steady(spm, 30.0)
    events = count_events(track(times, 30.0, shoulder=1.0))  # shoulders: still one step each
    assert len(events) == len(times)
    # each where its step is, within the 20-ms frame of the tracker and the 40-ms frame of the track
    assert np.abs(events - (np.floor(times * FPS) + 0.5) / FPS).max() <= 1.0 / FPS + 1e-9


def test_loudness_of_a_step_does_not_count_more_steps():
    """A sure step and an unsure one (p 0.6) count once each: events, not mass."""
    times = steady(170.0, 20.0)
    sure = count_events(track(times, 20.0, peak=6.0))
    unsure = count_events(track(times, 20.0, peak=0.4))
    assert len(sure) == len(unsure) == len(times)


def test_an_echo_between_two_steps_is_not_a_step():
    times = steady(120.0, 20.0)
    base = count_events(track(times, 20.0))
    x = track(times, 20.0)
    for i in (8, 20, 21):
        x[int((times[i] + 0.2) * FPS)] = 2.0  # a second transient 0.2 s after a step (off the cadence)
    assert len(count_events(x)) == len(base) == len(times)


def test_a_lone_knock_counts_nothing_and_a_short_burst_neither():
    x = np.full(30 * FPS, LOW, np.float32)
    for t in (3.0, 9.0, 15.0, 15.35, 15.7, 25.0):  # knocks and a burst of three
        x[int(t * FPS)] = HIGH
    assert len(count_events(x)) == 0
    # a runner is worth starting for: the tracker starts more readily when starting costs less
    assert len(count_events(x, CounterParams(switch_prob=0.1))) > 0


def test_a_missed_or_quiet_step_counts_where_the_cadence_puts_it_but_not_a_stop():
    times = steady(180.0, 30.0)
    x = track(times, 30.0)
    missed = [10, 25, 26, 60]  # a single miss, two in a row, a single miss
    for i in missed:
        x[int(times[i] * FPS)] = LOW
    quiet = [40, 41, 42, 43, 44]  # five quiet steps in a row (p 0.12)
    for i in quiet:
        x[int(times[i] * FPS)] = WEAK
    ev = count_events(x)
    assert len(ev) == len(times)
    # the same quiet steps alone, with no runner around them, count nothing
    assert len(count_events(track(times[quiet], 30.0, peak=WEAK))) == 0
    # a 4-s stop is not filled: the runner stops, then starts again
    stop = track(np.concatenate([steady(180.0, 10.0), 14.0 + steady(180.0, 10.0)]), 24.0)
    assert len(count_events(stop)) == 2 * len(steady(180.0, 10.0))


WEAK = -2.0  # a quiet step: p 0.12


def test_a_runner_whose_far_foot_is_quiet_is_counted_every_step_not_every_other():
    times = steady(170.0, 40.0)
    x = track(times, 40.0)
    for i in range(1, len(times), 2):
        x[int(times[i] * FPS)] = WEAK  # the far foot: p 0.12
    assert len(count_events(x)) == pytest.approx(len(times), abs=1)  # not half: 85 spm is a cadence too, but it leaves steps unheard
    # a threshold over the far foot's probability gives it up
    assert len(count_events(x, CounterParams(threshold=0.2))) == pytest.approx(len(times) / 2, abs=2)


def test_a_cadence_change_is_followed():
    run, walk = steady(180.0, 20.0), 20.0 + steady(110.0, 20.0, start=0.3)
    times = np.concatenate([run, walk])
    ev = count_events(track(times, 40.0))
    # an abrupt change from 180 to 110 spm is followed within a few steps (the step period changes
    # by 40 ms a step at most), two steps too many on the way
    assert len(ev) == pytest.approx(len(times), abs=2)
    assert np.abs(ev[-20:] - walk[-20:]).max() <= 1.0 / FPS + 1e-9
    c = Counter()
    c.commit(track(times, 40.0)[: int(19 * FPS)])
    assert c.cadence_spm() == pytest.approx(180.0, abs=6.0)
    c.commit(track(times, 40.0)[int(19 * FPS) :])
    assert c.cadence_spm() == pytest.approx(110.0, abs=4.0)


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
    x[int(30.0 * FPS):] = LOW  # and a stop
    whole = count_events(x)
    c = Counter()
    pieces = []
    for i in range(0, len(x), cut):
        pieces += c.commit(x[i : i + cut])
    pieces += c.flush()
    np.testing.assert_array_equal(np.sort(pieces), whole)
    assert c.n_events == len(whole) == len(times[times < 30.0])


def test_steps_are_decided_the_lag_after_they_land_and_a_run_counted_from_its_first_step():
    times = steady(170.0, 30.0, start=5.0)
    x = track(times, 30.0)
    c = Counter()
    seen = []  # (time the step was counted at, its time)
    for j in range(len(x)):
        seen += [(j / FPS, t) for t in c.commit(x[j : j + 1])]
    seen += [(len(x) / FPS, t) for t in c.flush()]
    assert [t for _, t in seen] == sorted(t for _, t in seen) and len(seen) == len(times)
    lag = CounterParams().lag_s
    waits = np.array([at - t for at, t in seen])
    # a step of the running run waits the lag (and a block of 12 tracker frames, and the next output frame) ...
    running = waits[len(waits) // 3 : -10]
    assert running.min() >= lag - 1e-9 and running.max() <= lag + 0.24 + 0.04 + 1e-9
    # ... the first ones wait longer: counted once the run is confirmed, with their times
    assert waits[0] > lag and abs(seen[0][1] - times[0]) <= 1.0 / FPS
    assert c.t_decided == pytest.approx(len(x) / FPS)


def test_runner_figures_come_from_events():
    c = Counter()
    c.commit(track(np.concatenate([steady(180.0, 20.0), 30.0 + steady(180.0, 20.0)]), 55.0))
    assert c.cadence_state() == "no steps" and c.cadence_spm() == 0.0  # 5 s after the run: stopped
    c.flush()
    assert c.n_events == 2 * len(steady(180.0, 20.0))
    assert c.active_s == pytest.approx(40.0, abs=4.1)  # two 20-s stretches of running, a 10-s stop
    assert c.mean_cadence() == pytest.approx(180.0, abs=12.0)
    assert c.peak_cadence == pytest.approx(180.0, abs=4.0)
    idle = Counter()
    idle.commit(np.full(20 * FPS, LOW, np.float32))
    idle.flush()
    assert idle.cadence_state() == "no steps" and idle.active_s == 0.0 and idle.mean_cadence() is None


@pytest.mark.parametrize("lag_s", [0.0, 0.25, 3.0, 9.5])
def test_no_step_is_older_than_the_activity_bins_close_horizon(lag_s):
    """A step counted late (a run confirmed at the first frame decided, counted back up to RETRO_S)
    still lands in an open activity bin: its age behind the committed frame never passes the
    horizon the bins close at, and that horizon is reached (it is tight, not padded)."""
    rng = np.random.default_rng(7)
    ages = []

    class Watched(Counter):
        def _step(self, u, events):
            ages.append(self.frames - (u + 1) // TRACK_RATE)
            super()._step(u, events)

    horizon = Counter(params=CounterParams(lag_s=lag_s))._lag_frames
    for trial in range(40):
        params = CounterParams(lag_s=lag_s, switch_prob=float(rng.choice([1e-5, 1e-3, 0.2])),
                               threshold=float(rng.choice([0.02, 0.07, 0.3])))
        x = rng.normal(-4.0, 1.5, 60 * FPS)
        for _ in range(3):  # runs of weak steps, confirmed late
            s = int(rng.integers(0, len(x) - 300))
            x[s : s + int(rng.integers(100, 600)) : int(rng.integers(7, 18))] += rng.uniform(1.0, 5.0)
        c = Watched(params=params)
        for chunk in np.array_split(x.astype(np.float32), int(rng.integers(1, 50))):
            c.commit(chunk)
        ages_before_flush = len(ages)
        c.flush()
        del ages[ages_before_flush:]  # the flush closes every bin after it decides: any age is fine there
    assert max(ages) <= horizon
    assert max(ages) >= horizon - c._tr.block // TRACK_RATE


def test_cadence_warms_up_then_shows_steps_then_reads_no_steps_after_a_stop():
    c = Counter()
    x = track(steady(170.0, 30.0, start=4.0), 30.0)  # a runner from 4 s on
    c.commit(x[: 2 * FPS])
    assert c.cadence_state() == "warming up"  # 2 s committed
    c.commit(x[2 * FPS : 5 * FPS])
    assert c.cadence_state() == "no steps"  # 5 s committed, 2 s decided: no runner yet
    c.commit(x[5 * FPS :])
    assert c.cadence_state() == "steps" and c.shown_cadence() == pytest.approx(170.0, abs=6.0)
    c.commit(np.full(10 * FPS, LOW, np.float32))
    assert c.cadence_state() == "no steps" and c.shown_cadence() is None


def test_the_counter_keeps_bounded_state_over_an_hour():
    rng = np.random.default_rng(1)
    c = Counter()
    times = steady(170.0, 3600.0)
    x = track(times, 3600.0) + rng.normal(0, 0.3, 3600 * FPS).astype(np.float32)
    for i in range(0, len(x), 1500):
        c.commit(x[i : i + 1500])
    c.flush()
    assert c.n_events == len(times)
    assert len(c._tr.from_off) == c._tr.keep and len(c._bins) == 0 and len(c._intervals) <= 8
    assert np.isfinite(c._tr.score).any() and abs(c._tr.off) < 1e6  # scores normalised, never drifting away


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


