"""Streaming == offline, for every backend, hop and block size (as kws_streaming's stream tests).

The offline count (``count_offline``: log-mel of the whole recording, the windows of
``Alignment.plan``) is the reference; streaming the same audio block by block through
``StreamCounter`` (incremental front end, ring buffer, hop-by-hop model runs) must give the
same count, the same committed logits and the same step events.
"""

import dataclasses
import os
import time

import numpy as np
import pytest
import soundfile as sf

from edge.audio import AudioError, load_audio, to_mono
from edge.backends import load_model
from edge.counter import Alignment, CounterParams
from edge.golden import OnsetBackend, click_track, onset_card
from edge.sources import FileSource
from edge.stream import StreamCounter, count_offline, offline_log_mel
from edge.frontend import log_mel
from tests.edge_fixtures import KINDS, onset_artifacts

TOL = 1e-3  # steps
HOPS = [4, 48, 100, 200]
BLOCKS = [160, 1601, 7919, None]  # samples; None = the whole recording in one push


@pytest.fixture(scope="module")
def backends():
    out = {"numpy": (OnsetBackend(200), onset_card(200, 48))}
    for kind, path in onset_artifacts().items():
        out[kind] = load_model(path)
    return out


@pytest.fixture(scope="module")
def audio():
    pcm, steps = click_track(6.0, seed=11)
    return pcm


def stream(backend, card, pcm, block, keep=True):
    sc = StreamCounter(backend, card, keep=keep)
    updates = []
    block = block or max(1, len(pcm))
    for i in range(0, len(pcm), block):
        updates += sc.push(pcm[i : i + block])
    updates += sc.finish()
    return sc.result(), updates


def assert_same(streamed, offline):
    assert abs(streamed.steps - offline.steps) <= TOL, (streamed.steps, offline.steps)
    assert streamed.windows == offline.windows
    assert streamed.n_frames == offline.n_frames
    assert streamed.logits.shape == offline.logits.shape == (offline.n_frames // 4,)
    # the same windows; the incremental front end differs from the whole-file one in the last bits
    np.testing.assert_allclose(streamed.logits, offline.logits, rtol=0, atol=1e-5)
    assert streamed.n_events == offline.n_events
    np.testing.assert_allclose(streamed.events, offline.events, atol=1e-6)  # peak vertices move with those bits


def test_offline_log_mel_in_chunks_equals_one_call():
    pcm = click_track(4.3, seed=1)[0]
    np.testing.assert_allclose(offline_log_mel(pcm, chunk_s=1.0), log_mel(pcm), rtol=0, atol=1e-4)


@pytest.mark.parametrize("kind", ["numpy", *KINDS])
@pytest.mark.parametrize("hop", HOPS)
def test_stream_equals_offline(backends, audio, kind, hop):
    backend, card = backends[kind]
    card = dataclasses.replace(card, hop_frames=hop)
    offline = count_offline(backend, card, audio)
    assert offline.steps > 5  # the test model counts something on a click track
    for block in BLOCKS:
        streamed, updates = stream(backend, card, audio, block)
        assert_same(streamed, offline)
        # per-hop updates: monotone, final, and the last one is the total
        assert [u.window for u in updates] == list(range(len(updates)))
        assert all(b.t_final >= a.t_final and b.steps >= a.steps - 1e-9 for a, b in zip(updates, updates[1:]))
        assert updates[-1].steps == streamed.steps and updates[-1].t_final == pytest.approx(offline.n_frames // 4 / 25)
        assert all(u.t - u.t_final <= card.window_frames / 100 + 1e-9 for u in updates)


@pytest.mark.parametrize("kind", ["numpy", *KINDS])
@pytest.mark.parametrize("hop", [4, 48, 200])
def test_stream_equals_offline_with_the_cards_counter(backends, kind, hop):
    """The card's counter parameters depend only on committed frames: streaming still equals offline."""
    backend, card = backends[kind]
    params = CounterParams(threshold=0.3, tempo_lambda=0.0, switch_prob=0.01, lag_s=0.5)
    card = dataclasses.replace(card, hop_frames=hop, counter=params.to_dict())
    pcm = click_track(8.0, seed=12, spm=175.0, drop=(9,))[0]  # a missed step, which the default counter fills
    offline = count_offline(backend, card, pcm)
    default = count_offline(backend, dataclasses.replace(card, counter={}), pcm)
    assert offline.steps > 5 and offline.events != default.events  # the parameters were used
    for block in BLOCKS:
        streamed, updates = stream(backend, card, pcm, block)
        assert_same(streamed, offline)
        assert updates[-1].steps == streamed.steps


@pytest.mark.parametrize("block", [1, 7, 159, 161])
@pytest.mark.parametrize("kind", ["numpy", "tflite"])
def test_tiny_blocks(backends, kind, block):
    backend, card = backends[kind]
    pcm = click_track(2.7, seed=5)[0]
    assert_same(stream(backend, card, pcm, block)[0], count_offline(backend, card, pcm))


@pytest.mark.parametrize("n", [0, 100, 511, 640, 1000, 16000, 31999, 32000, 32001, 32640, 40000])
@pytest.mark.parametrize("kind", ["numpy", "onnx"])
def test_short_and_ragged_streams(backends, kind, n):
    """Shorter than a window (padded tail window), exactly one window, a window plus a bit."""
    backend, card = backends[kind]
    pcm = click_track(3.0, seed=2)[0][:n]
    offline = count_offline(backend, card, pcm)
    assert offline.n_frames == n // 160
    assert_same(stream(backend, card, pcm, 777)[0], offline)


def test_updates_carry_the_documented_latency(backends, audio):
    backend, card = backends["numpy"]
    _, updates = stream(backend, card, audio, 1600)
    regular = [u for u in updates if not u.tail]
    assert regular[0].t == 2.0 and regular[0].t_final == pytest.approx(1.24)
    for u in regular[1:]:
        assert u.t - u.t_final == pytest.approx(0.76)  # W - H - commit offset = 200 - 48 - 76 frames


def test_push_after_finish_and_nan_blocks_are_errors(backends):
    backend, card = backends["numpy"]
    sc = StreamCounter(backend, card)
    bad = np.zeros(1000, np.float32)
    bad[500] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        sc.push(bad)
    sc.finish()
    with pytest.raises(RuntimeError, match="after finish"):
        sc.push(np.zeros(10, np.float32))


@pytest.mark.parametrize("rate,channels", [(16000, 1), (8000, 1), (48000, 2), (44100, 1)])
def test_file_source_streaming_equals_offline_count_of_the_loaded_file(backends, tmp_path, rate, channels):
    """FileSource resamples with a streaming soxr at load_audio's quality: bit-identical audio."""
    import soxr

    backend, card = backends["tflite"]
    pcm16 = click_track(6.0, seed=4)[0]
    x = soxr.resample(pcm16, 16000, rate) if rate != 16000 else pcm16
    if channels == 2:
        x = np.stack([x, 0.5 * x], axis=1)
    path = tmp_path / f"run_{rate}_{channels}.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    offline = count_offline(backend, card, load_audio(path))
    for block_s in (0.01, 0.1, 0.77):
        sc = StreamCounter(backend, card, keep=True)
        for block in FileSource(path, block_s=block_s):
            sc.push(block)
        sc.finish()
        assert_same(sc.result(), offline)


@pytest.mark.parametrize("fmt,channels", [("WAV", 1), ("WAV", 2), ("FLAC", 1), ("AIFF", 2)])
def test_file_source_reads_16_bit_pcm_as_soundfile_does(tmp_path, fmt, channels):
    """16-bit PCM is read as int16 and scaled here: libsndfile's float samples, bit for bit, for every code."""
    codes = np.arange(-(2**15), 2**15, dtype=np.int16)
    path = tmp_path / f"codes.{fmt.lower()}"
    sf.write(path, np.stack([codes, codes[::-1]], axis=1)[:, :channels], 16000, subtype="PCM_16", format=fmt)
    expected = to_mono(sf.read(path, dtype="float32", always_2d=True)[0])
    got = np.concatenate(list(FileSource(path, block_s=0.3)))
    assert got.dtype == np.float32 and np.array_equal(got.view(np.int32), expected.view(np.int32))


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _soak(backends, tmp_path, minutes: float, kind: str = "tflite") -> dict:
    """Stream ``minutes`` of generated clicks+noise from a WAV file as fast as possible.

    The counter's bounded state (intervals, open activity bins) is soaked too."""
    backend, card = backends[kind]
    pcm = click_track(minutes * 60, spm=172, seed=99)[0]
    path = tmp_path / "soak.wav"
    sf.write(path, pcm, 16000, subtype="PCM_16")
    offline = count_offline(backend, card, load_audio(path), keep=False)
    sc = StreamCounter(backend, card)
    rss, t0 = [], time.perf_counter()
    for i, block in enumerate(FileSource(path, block_s=0.1)):
        sc.push(block)
        if i % 600 == 0:  # every minute of audio
            rss.append(_rss_bytes())
    sc.finish()
    wall = time.perf_counter() - t0
    return {"steps": sc.steps, "offline": offline.steps, "rss": rss, "wall": wall, "audio_s": sc.audio_s,
            "windows": sc.latency.n}


def _check_soak(r: dict) -> None:
    assert abs(r["steps"] - r["offline"]) <= TOL, r
    baseline = r["rss"][min(2, len(r["rss"]) - 1)]  # after warm-up (allocator pools, first windows)
    growth = max(r["rss"]) - baseline
    assert growth < 5 * 2**20, f"RSS grew {growth / 2**20:.2f} MB over {r['audio_s'] / 60:.0f} min"


def test_soak_short(backends, tmp_path):
    """5 minutes, in every test run; the 60-minute soak is marked slow."""
    _check_soak(_soak(backends, tmp_path, 5.0))


@pytest.mark.slow
def test_soak_60_minutes(backends, tmp_path):
    r = _soak(backends, tmp_path, 60.0)
    _check_soak(r)
    print(f"soak: {r['audio_s'] / 60:.0f} min in {r['wall']:.1f} s, {r['windows']} windows, steps {r['steps']:.3f} "
          f"(offline {r['offline']:.3f}), RSS {min(r['rss']) / 2**20:.1f}..{max(r['rss']) / 2**20:.1f} MB")


def _bundled_artifacts():
    from edge.cli import ASSETS

    return sorted(p for p in ASSETS.glob("*") if p.suffix in (".tflite", ".pte", ".onnx"))


@pytest.mark.parametrize("block", [160, 4099])
def test_bundled_models_stream_equals_offline(block):
    """Every bundled artifact (when the trained default is in edge/assets) on 20 s of its sample."""
    from edge.cli import ASSETS
    from edge.demo import SAMPLE

    artifacts = _bundled_artifacts()
    if not artifacts or not (ASSETS / SAMPLE).exists():
        pytest.skip(f"no bundled model/sample in {ASSETS} yet (make model)")
    pcm = load_audio(ASSETS / SAMPLE)[: 20 * 16000]
    for artifact in artifacts:
        backend, card = load_model(artifact)
        streamed, offline = stream(backend, card, pcm, block)[0], count_offline(backend, card, pcm)
        assert_same(streamed, offline)
        # the front end is bit-exact in any blocks, so the network sees the same input: the same
        # logits and steps to the bit (for a streaming model, whose state carries every difference on)
        assert np.array_equal(streamed.logits, offline.logits) and streamed.events == offline.events, artifact.name


@pytest.mark.parametrize("kind", ["numpy", "tflite"])
@pytest.mark.parametrize("hop,lookahead", [(28, 12), (20, 0), (160, 40)])
def test_stream_equals_offline_on_a_lookahead_schedule(backends, audio, kind, hop, lookahead):
    """Streaming equals offline on any schedule; every regular update is final up to ``lookahead``
    before the audio it has seen."""
    backend, card = backends[kind]
    align = Alignment(card.window_frames, hop, 4, lookahead)
    offline = count_offline(backend, card, audio, align=align)
    for block in (1601, None):
        sc = StreamCounter(backend, card, keep=True, align=align)
        updates = []
        for i in range(0, len(audio), block or len(audio)):
            updates += sc.push(audio[i : i + (block or len(audio))])
        updates += sc.finish()
        assert_same(sc.result(), offline)
        for u in updates[1:]:
            if not u.tail:
                assert u.t - u.t_final == pytest.approx(lookahead / 100)
    assert offline.windows == len(align.plan(offline.n_frames))


def test_the_card_low_latency_is_for_the_microphone_and_validated(backends):
    from edge.card import CardError

    _, card = backends["numpy"]
    fast = dataclasses.replace(card, low_latency={"hop_frames": 28, "lookahead_frames": 12})
    assert fast.alignment() == Alignment(card.window_frames, card.hop_frames)
    assert fast.alignment(low_latency=True) == Alignment(card.window_frames, 28, 4, 12)
    assert card.alignment(low_latency=True) == card.alignment()  # none in the card: the default
    for bad in ({"hop_frames": 30}, {"hop_frames": 28, "lookahead_frames": 500}, {"hop_frames": "x"}, [1]):
        with pytest.raises(CardError, match="low_latency"):
            dataclasses.replace(card, low_latency=bad).alignment(low_latency=True)
