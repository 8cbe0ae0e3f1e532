"""The model registry and contract 3: (B, 1, 64, T) log-mel -> (B, T // 4) non-negative density."""

import dataclasses

import pytest
import torch
from torch import nn

from train.models import (
    DENSITY_STRIDE,
    CheckpointError,
    ConfigError,
    build_model,
    count_macs,
    count_params,
    list_models,
    load_checkpoint,
    macs_per_second,
    make_config,
    register_model,
    save_checkpoint,
)
from train.models.base import DensityModel

# small widths keep these tests fast (2 shared cores); the architecture is the same
SMALL = {"cnn6": {"width": 0.5}, "cnn14": {"width": 0.125}, "wvlm_cnn14": {"width": 0.125}, "cnn10": {"width": 0.25}, "crnn": {"width": 0.25, "gru_hidden": 32}}
ALL = ["cnn10", "cnn14", "cnn6", "crnn", "fnn", "mobilenetv2", "streamtcn", "wvlm_cnn14"]

# the shipping student's budget (ARCHITECTURE: phone CPUs/NPUs)
STUDENT = "mobilenetv2"
MAX_STUDENT_PARAMS = 1_500_000
MAX_STUDENT_MMAC_PER_S = 60.0


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small(name: str, **overrides) -> DensityModel:
    torch.manual_seed(0)
    return build_model(name, **{**SMALL.get(name, {}), **overrides})


def test_registry_lists_every_model_with_its_role():
    assert list_models() == sorted(ALL)
    assert list_models("student") == ["cnn6", "mobilenetv2", "streamtcn"]
    assert list_models("teacher") == ["cnn10", "cnn14", "crnn", "fnn", "wvlm_cnn14"]
    with pytest.raises(ConfigError, match="unknown model 'nope'.*mobilenetv2"):
        build_model("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_model("cnn6")(type(build_model("cnn6")))


def test_density_stride_is_the_counters():
    counter = pytest.importorskip("edge.counter")
    assert DENSITY_STRIDE == counter.DENSITY_STRIDE == 4


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("frames", [200, 500])
def test_contract_shape_and_logits(name, frames):
    model = small(name).eval()
    assert model.name == name and model.time_multiple == DENSITY_STRIDE
    assert frames % model.time_multiple == 0
    (x,) = model.example_inputs(frames, batch=2)
    assert x.shape == (2, 1, 64, frames) and x.dtype == torch.float32
    with torch.no_grad():
        y = model(x * 4 - 6)  # log-mel-like range
    assert y.shape == (2, frames // 4) and y.dtype == torch.float32
    assert torch.isfinite(y).all() and (y < 0).any()  # logits: no ReLU at the end
    # untrained: near the out_bias logit -2 (p 0.12 per 40-ms frame, 3 steps/s)
    assert -3.0 < y.mean() < -1.0


@pytest.mark.parametrize("name", ALL)
def test_trains_one_step_in_train_mode(name):
    model = small(name).train()
    (x,) = model.example_inputs(200, batch=2)
    y = model(x)
    assert y.shape == (2, 50)
    loss = (y.sum(1) - torch.tensor([12.0, 9.0])).square().mean()  # weak labels: window counts
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", ALL)
def test_time_is_downsampled_by_exactly_four_and_only_locally(name):
    """Output frame j depends on the input near frames 4j..4j+3, not on the far end of the window:
    what a streaming counter over short windows needs (the bidirectional CRNN is exempt). Checked
    without the band centring, whose window means reach every frame (by design: the level)."""
    model = small(name, dropout=0.0, centre_bands=False).eval()
    (x,) = model.example_inputs(400)
    x2 = x.clone()
    x2[..., 300:] += 3.0  # change the last second
    with torch.no_grad():
        y, y2 = model(x), model(x2)
    changed = (y - y2).abs().flatten() > 1e-6
    assert changed[75:].any()
    if name != "crnn":
        assert not changed[:25].any(), "the first second's density depends on the last second"


def test_checkpoint_roundtrip_rebuilds_from_config(tmp_path):
    model = small("mobilenetv2", width=0.35, head_dilations=[1, 3])  # lists from YAML become tuples
    with torch.no_grad():  # make the BatchNorm statistics non-trivial
        model.train()(model.example_inputs(200, batch=4)[0] * 3)
    model.eval()
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, epoch=3, metrics={"mae": 0.5}, history=[1.0, 0.5])
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    loaded, meta = load_checkpoint(path)
    assert type(loaded) is type(model) and loaded.name == "mobilenetv2" and not loaded.training
    assert loaded.config == model.config and loaded.config.head_dilations == (1, 3)
    assert meta["epoch"] == 3 and meta["metrics"] == {"mae": 0.5} and meta["name"] == "mobilenetv2"
    assert meta["config"] == dataclasses.asdict(model.config)
    (x,) = model.example_inputs(200, batch=2)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize("name", ALL)
def test_every_model_roundtrips(tmp_path, name):
    model = small(name).eval()
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / f"{name}.pt", model))
    (x,) = model.example_inputs(200)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_save_unwraps_and_overwrites_atomically(tmp_path):
    class Wrapper(nn.Module):  # stands in for DistributedDataParallel (.module)
        def __init__(self, module):
            super().__init__()
            self.module = module

    path = tmp_path / "m.pt"
    save_checkpoint(path, small("fnn", hidden=16))
    save_checkpoint(path, Wrapper(small("fnn", hidden=32)))
    model, _ = load_checkpoint(path)
    assert model.config.hidden == 32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_unknown_config_key_fails_loudly(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['widht'\].*valid keys: .*width"):
        build_model("mobilenetv2", widht=0.5)
    with pytest.raises(ConfigError, match="width must be > 0"):
        make_config("cnn6", width=0)
    with pytest.raises(ConfigError, match="exactly 4"):
        build_model("cnn6", blocks=[[64, 1, 5, 2, 2], [128, 1, 5, 2, 1]])
    # a checkpoint whose config has a key this code does not know
    path = save_checkpoint(tmp_path / "m.pt", small("fnn"))
    payload = torch.load(path, weights_only=True)
    payload["config"]["surprise"] = 1
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="surprise"):
        load_checkpoint(path)


def test_checkpoint_refuses_mismatched_weights_and_bad_extras(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", small("fnn"))
    payload = torch.load(path, weights_only=True)
    payload["config"]["hidden"] = 64  # config and weights disagree
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a footfall model checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(TypeError, match="extra.*Path.*str"):
        save_checkpoint(tmp_path / "x.pt", small("fnn"), data_root=tmp_path)
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "x.pt", small("fnn"), config={})


def test_mac_counter_on_known_layers():
    class Tiny(DensityModel):
        def __init__(self):
            super().__init__(make_config("fnn"))
            self.conv = nn.Conv2d(1, 8, 3, padding=1)  # 64 * T * 8 * 9
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)  # 64 * T * 8 * 9
            self.gru = nn.GRU(8, 4, bidirectional=True, batch_first=True)  # T * 2 * 3 * 4 * (8 + 4)
            self.fc = nn.Linear(8, 2)  # T * 2 * 8

        def forward(self, x):
            x = self.dw(self.conv(x)).mean(2).transpose(1, 2)  # (1, T, 8)
            return self.fc(self.gru(x)[0])

    t = 100
    expected = 64 * t * 8 * 9 * 2 + t * 2 * 3 * 4 * (8 + 4) + t * 2 * 8
    assert count_macs(Tiny(), t) == expected
    assert count_params(nn.Linear(8, 2)) == 18


def test_shipping_student_fits_the_phone_budget():
    model = build_model(STUDENT)  # defaults are the shipping config
    assert model.config.width == 0.5
    assert count_params(model) <= MAX_STUDENT_PARAMS
    assert macs_per_second(model) / 1e6 <= MAX_STUDENT_MMAC_PER_S
    assert macs_per_second(model, 200) == pytest.approx(macs_per_second(model, 500), rel=0.02)  # cost is linear in T


def test_teacher_widths_scale_like_panns():
    full = make_config("cnn14")
    assert full.channels() == [64, 128, 256, 512, 1024, 2048]
    assert make_config("cnn14", width=0.25).channels() == [16, 32, 64, 128, 256, 512]
    assert make_config("cnn10").channels() == [64, 128, 256, 512]
    assert count_params(build_model("cnn6", width=0.5)) < count_params(build_model("cnn6")) / 3


def test_example_inputs_refuse_a_bad_length():
    with pytest.raises(ValueError, match="multiple of 4"):
        small("cnn6").example_inputs(202)


@pytest.mark.parametrize("name", ["mobilenetv2", "cnn6"])
def test_centred_bands_make_the_output_blind_to_level_and_colour(name):
    """A gain adds one constant to every log-mel value, a static EQ one constant per band: with
    ``centre_bands`` (the default) the model sees neither (same logits), without it it does."""
    x = torch.randn(2, 1, 64, 200) * 2 - 6
    shift = torch.linspace(-4, 3, 64).view(1, 1, 64, 1) + 1.5  # colour + level
    for centre, same in ((True, True), (False, False)):
        model = small(name, centre_bands=centre).eval()
        with torch.no_grad():
            a, b = model(x), model(x + shift)
        assert torch.allclose(a, b, atol=1e-5) == same, (centre, (a - b).abs().max())
