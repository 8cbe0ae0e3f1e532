import numpy as np
import pytest

from edge import frontend as fe


# the same frame computed in batches of different sizes is the same to the bit (the mel projection
# always takes fe.MEL_ROWS rows); a framing error moves frames by O(1)


def _noise(n, seed=0):
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


def test_shapes_and_causal_framing():
    assert fe.log_mel(_noise(80_000)).shape == (fe.N_MELS, 500)  # 5 s -> (64, 500) as the paper
    assert fe.log_mel(_noise(159)).shape == (fe.N_MELS, 0)
    x = _noise(16_000)
    full = fe.log_mel(x)
    # frame i only sees samples before (i + 1) * HOP: changing later samples leaves it alone
    y = x.copy()
    y[800:] = 0
    assert np.array_equal(fe.log_mel(y)[:, :5], full[:, :5])


def test_frozen_filterbank_matches_its_formula():
    shipped = np.load(fe.MEL_FILTERS_PATH)
    assert shipped.shape == (fe.N_MELS, fe.N_FREQS)
    np.testing.assert_array_equal(shipped, fe.compute_mel_filters())
    assert (shipped.sum(axis=1) > 0).all()  # no empty band


def test_slice_with_history_reproduces_whole_recording():
    x = _noise(48_000, seed=1)
    full = fe.log_mel(x)
    start = 16_000
    part = fe.log_mel(x[start:], history=x[start - fe.HISTORY : start])
    # the same samples in every frame: the same frames, to the bit (fe.frames_to_log_mel)
    np.testing.assert_array_equal(part, full[:, start // fe.HOP_LENGTH :])


@pytest.mark.parametrize("block", [1, 159, 160, 161, 1024, 7_777])
def test_streaming_reproduces_offline_frames(block):
    x = _noise(40_000, seed=2)
    stream = fe.StreamingLogMel()
    frames = [stream.push(x[i : i + block]) for i in range(0, len(x), block)]
    np.testing.assert_array_equal(np.concatenate(frames, axis=1), fe.log_mel(x))
    assert stream.frames_emitted == len(x) // fe.HOP_LENGTH


def test_torch_twin_equals_numpy():
    torch = pytest.importorskip("torch")
    from train.models.frontend import LogMel

    x = np.stack([_noise(32_000, seed=s) for s in range(3)])
    x[1] *= 10  # loud
    x[2, :8000] = 0  # digital silence hits the log floor
    ours = LogMel()(torch.from_numpy(x)).numpy()
    ref = np.stack([fe.log_mel(a) for a in x])[:, None]
    assert ours.shape == ref.shape == (3, 1, fe.N_MELS, 200)
    assert np.abs(ours - ref).max() <= 1e-4


def test_streaming_push_reuses_its_workspace():
    """A warm stream allocates per hop little more than the frames it returns: the ~0.5 MB of
    temporaries of a 1.6-s hop live in a reused workspace (fresh ones cost more than the FFT)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    hop = 160 * fe.HOP_LENGTH
    audio = (rng.standard_normal(hop * 6) * 0.1).astype(np.float32)
    s = fe.StreamingLogMel()
    s.push(audio[:hop])  # warm: the workspace is sized here
    tracemalloc.start()
    try:
        outs = [s.push(audio[i * hop:(i + 1) * hop]) for i in range(1, 6)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    kept = sum(o.nbytes for o in outs)  # the 5 results held in `outs`: 5 x 64 x 160 float32 = 200 kB
    assert peak < kept + 100_000, peak  # a fresh set of temporaries alone is ~0.5 MB
    np.testing.assert_array_equal(np.concatenate(outs, axis=1), fe.log_mel(audio)[:, 160:])
