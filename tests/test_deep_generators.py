"""The three deep generators: the Generator contract, exact streaming, weights, regimes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synthmarket.deep import (
    VOLUME_INDEX,
    FactsConfig,
    FactsMatching,
    PiecewiseLinearShock,
    RegimeChain,
    SlowNoise,
    TemporalConvNet,
    VolatilityHead,
    parse_horizons,
)
from synthmarket.errors import ConfigError, ModelFileError
from synthmarket.generator import Generator
from synthmarket.model_files import CONFIG_FILE, WEIGHTS_FILE, file_sha256, write_config
from synthmarket.registry import get_registry
from synthmarket.testing import GeneratorContract
from synthmarket.train_config import TrainConfig
from synthmarket_plugins.conv1d_cgan import Conv1DCGAN, parse_dilations
from synthmarket_plugins.rgan import RGAN, GRUGenerator
from synthmarket_plugins.vae import Decoder, SequenceVAE

torch.set_num_threads(1)

SMALL = {
    "conv1d_cgan": dict(hidden=8, d_hidden=8, dilations="1,2,4", d_dilations="1,2,4", window=48, batch_size=8),
    "rgan": dict(hidden=8, d_hidden=8, window=48, batch_size=8, burn_in=8),
    "vae": dict(hidden=8, encoder_hidden=8, window=48, batch_size=8, burn_in=8, kl_anneal_steps=10),
}
SHORT = TrainConfig(steps=12, validate_every=6, seed=0)


class TestConv1DCGANContract(GeneratorContract):
    context_effect = None  # twelve steps teach no volatility clustering

    def make_generator(self):
        return Conv1DCGAN(**SMALL["conv1d_cgan"])

    def train_config(self):
        return SHORT


class TestRGANContract(GeneratorContract):
    context_effect = None  # twelve steps teach no volatility clustering

    def make_generator(self):
        return RGAN(**SMALL["rgan"])

    def train_config(self):
        return SHORT


class TestVAEContract(GeneratorContract):
    context_effect = None  # twelve steps teach no volatility clustering

    def make_generator(self):
        return SequenceVAE(**SMALL["vae"])

    def train_config(self):
        return SHORT


@pytest.fixture(scope="module")
def fitted(sp500_recent):
    """Each deep generator, trained briefly with volatility regimes."""
    bars = sp500_recent.loc["2014-01-01":"2016-12-31"]
    models = {}
    for name, hparams in SMALL.items():
        model = get_registry().get("generator", name)(**hparams)
        model.fit(bars, SHORT, regimes="volatility")
        models[name] = model
    return models


def test_registered_through_the_entry_point_group():
    generators = get_registry().generators()
    for name, cls in (("conv1d_cgan", Conv1DCGAN), ("rgan", RGAN), ("vae", SequenceVAE)):
        assert generators[name].obj is cls
        assert cls.conditional
        assert "synthmarket" in generators[name].origin


@pytest.mark.parametrize("name", list(SMALL))
def test_long_paths_are_streamed_not_stitched(fitted, name, monkeypatch):
    """Sampling in short time chunks gives the same numbers as one pass over the whole path."""
    model = fitted[name]
    whole = model.sample(2, 700, regime="turbulent", seed=3)
    import synthmarket.deep.layers as layers
    import synthmarket_plugins.rgan as rgan
    import synthmarket_plugins.vae as vae

    for module in (layers, rgan, vae):
        monkeypatch.setattr(module, "TIME_CHUNK", 64)
    chunked = model.sample(2, 700, regime="turbulent", seed=3)
    np.testing.assert_allclose(chunked, whole, rtol=1e-4, atol=1e-5)


def test_tcn_stream_equals_forward():
    torch.manual_seed(0)
    net = TemporalConvNet(3, 6, parse_dilations("1,3,9"), kernel_size=3).eval()
    x = torch.randn(2, 3, 500)
    with torch.no_grad():
        np.testing.assert_allclose(net.stream(x, chunk=37).numpy(), net(x).numpy(), rtol=1e-5, atol=1e-6)
    assert net.receptive_field == 1 + 2 * 13


def test_tcn_generator_sampling_end_to_end_equals_the_batched_forward():
    """Paths laid end to end in one sequence give what one batch of separate paths gives."""
    from synthmarket_plugins.conv1d_cgan import TCNGenerator

    torch.manual_seed(0)
    net = TCNGenerator(5, 3, z_dim=2, hidden=6, dilations=(1, 3), kernel=3, embed_dim=2, memory=2).eval()
    with torch.no_grad():  # the output layers start at zero, which would hide the hidden state
        for p in net.head.parameters():
            p.normal_(0.0, 0.3)
    noise = torch.randn(4, net.burn_in + 50, net.noise_dim)
    labels = torch.randint(0, 3, (4, net.burn_in + 50))
    with torch.no_grad():
        np.testing.assert_allclose(net.rollout(noise, labels).numpy(), net(noise, labels).numpy(), rtol=1e-5, atol=1e-5)


def test_gru_generator_carries_its_state_across_chunks():
    torch.manual_seed(0)
    net = GRUGenerator(5, 0, z_dim=2, hidden=6, layers=2, embed_dim=2, burn_in=4).eval()
    noise = torch.randn(3, 4 + 300, net.noise_dim)
    with torch.no_grad():
        np.testing.assert_allclose(net.rollout(noise, None).numpy(), net(noise, None).numpy(), rtol=1e-5, atol=1e-6)


def test_unconditioned_sampling_of_a_conditional_model_draws_regimes_from_the_chain(fitted):
    model = fitted["conv1d_cgan"]
    assert model.chain is not None
    labels = model.chain.sample(200, 300, np.random.default_rng(0))
    assert set(np.unique(labels)) == {0, 1, 2}
    stay = (labels[:, 1:] == labels[:, :-1]).mean()
    assert stay > 0.8  # regimes persist, as in the data
    assert np.isfinite(model.sample(5, 100, seed=1)).all()


def test_regime_chain_round_trip_and_checks():
    chain = RegimeChain.fit(np.array([0, 0, 1, 1, 1, 2, 2, 0]), 3)
    np.testing.assert_allclose(chain.transition.sum(axis=1), 1.0)
    again = RegimeChain.from_array(chain.to_array())
    np.testing.assert_array_equal(again.transition, chain.transition)
    with pytest.raises(ValueError):
        RegimeChain.from_array(np.ones((3, 3)))


@pytest.mark.parametrize("name", list(SMALL))
def test_weights_that_do_not_fit_are_refused(fitted, name, tmp_path):
    directory = fitted[name].save(tmp_path / "model")
    config = json.loads((directory / CONFIG_FILE).read_text())
    config["hyperparameters"]["hidden"] = 12  # the weights were trained with 8
    write_config(directory, config)
    with pytest.raises(ModelFileError, match="does not fit"):
        Generator.load(directory)


@pytest.mark.parametrize("name", list(SMALL))
def test_non_finite_weights_are_refused_even_with_a_matching_checksum(fitted, name, tmp_path):
    from safetensors.numpy import load_file, save_file

    directory = fitted[name].save(tmp_path / "model")
    weights = directory / WEIGHTS_FILE
    state = load_file(str(weights))
    key = sorted(k for k in state if k != "regime_chain")[0]
    state[key] = np.full_like(state[key], np.nan)
    save_file(state, str(weights))
    config = json.loads((directory / CONFIG_FILE).read_text())
    config["weights"]["sha256"] = file_sha256(weights)
    write_config(directory, config)
    with pytest.raises(ModelFileError, match="NaN"):
        Generator.load(directory)


def test_slow_noise_is_persistent_at_unit_variance():
    slow = SlowNoise(2, length=400, half_lives=(5.0, 50.0))
    white = torch.randn(1, 60_000, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = slow(white)[0, 400:].numpy()
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=0.1)
    lag = 5
    acf = [np.corrcoef(x[:-lag, j], x[lag:, j])[0, 1] for j in range(2)]
    np.testing.assert_allclose(acf, [0.5, 0.5 ** (lag / 50)], atol=0.05)  # decay^lag: half-lives 5 and 50 days


def saved_before_the_later_options(model, bars, tmp_path) -> Generator:
    """Train ``model`` briefly, save it, drop its ``added_later`` options from the config, load it back."""
    model.fit(bars.loc["2016-01-01":], TrainConfig(steps=2, validate_every=2, seed=0))
    directory = model.save(tmp_path / "old")
    config = json.loads((directory / CONFIG_FILE).read_text())
    for key in type(model).added_later:
        config["hyperparameters"].pop(key)
    write_config(directory, config)
    loaded = Generator.load(directory)
    np.testing.assert_array_equal(loaded.sample(3, 40, seed=5), model.sample(3, 40, seed=5))
    return loaded


def test_a_model_saved_before_a_hyper_parameter_existed_still_loads(sp500_recent, tmp_path):
    """Conv1DCGAN.added_later rebuilds models saved before the slow volatility factors and the learned shock."""
    model = Conv1DCGAN(
        **SMALL["conv1d_cgan"],
        vol_factors=0,
        tail_floor=0.0,
        facts_window_spread=0.0,
        shock_knots=0,
        facts_horizons="",
        facts_block_spread=0.0,
    )
    loaded = saved_before_the_later_options(model, sp500_recent, tmp_path)
    assert loaded.hparams["vol_factors"] == 0 and loaded.hparams["facts_unbiased"] is False  # as it was trained
    assert loaded.hparams["tail_floor"] == 0.0 and loaded.hparams["facts_window_spread"] == 0.0
    assert loaded.hparams["shock_knots"] == 0 and loaded.nets["generator_ema"].head.shock_map is None


def test_a_vae_saved_before_its_decoder_read_the_previous_bar_still_loads(sp500_recent, tmp_path):
    model = SequenceVAE(**SMALL["vae"], feedback=False, facts_volume=False, reversion=0, facts_horizons="")
    loaded = saved_before_the_later_options(model, sp500_recent, tmp_path)
    assert loaded.hparams["feedback"] is False and not loaded.nets["decoder"].feedback
    assert loaded.hparams["facts_volume"] is False and loaded.hparams["reversion"] == 0


@pytest.mark.parametrize(
    "cls, old, new",
    [
        (RGAN, {"warmup": 8}, {"burn_in": 8}),
        (SequenceVAE, {"warmup": 8, "kl_warmup": 10}, {"burn_in": 8, "kl_anneal_steps": 10}),
    ],
)
def test_a_model_saved_with_the_old_burn_in_and_kl_names_still_loads(cls, old, new, sp500_recent, tmp_path):
    """config.json files from before ``warmup`` became ``burn_in`` (and ``kl_warmup`` ``kl_anneal_steps``) load."""
    small = {k: v for k, v in SMALL[cls.name].items() if k not in new}
    model = cls(**small, **new)
    model.fit(sp500_recent.loc["2016-01-01":], TrainConfig(steps=2, validate_every=2, seed=0))
    directory = model.save(tmp_path / "old-names")
    config = json.loads((directory / CONFIG_FILE).read_text())
    for key in new:
        config["hyperparameters"].pop(key)
    config["hyperparameters"].update(old)
    write_config(directory, config)
    loaded = Generator.load(directory)
    assert all(loaded.hparams[k] == v for k, v in new.items()) and not set(old) & set(loaded.hparams)
    np.testing.assert_array_equal(loaded.sample(3, 40, seed=5), model.sample(3, 40, seed=5))


def test_old_string_forms_of_lists_and_durations_still_load(sp500_recent, tmp_path):
    """A config.json that stores dilations, horizons and the time budget as text loads as lists and seconds."""
    model = Conv1DCGAN(**SMALL["conv1d_cgan"])
    model.fit(sp500_recent.loc["2016-01-01":], TrainConfig(steps=2, validate_every=2, seed=0))
    directory = model.save(tmp_path / "old-forms")
    config = json.loads((directory / CONFIG_FILE).read_text())
    config["hyperparameters"].update(
        dilations="1,2,4", d_dilations="1,2,4", facts_horizons="5,20,60", time_budget="9.5m"
    )
    write_config(directory, config)
    loaded = Generator.load(directory)
    assert loaded.hparams["dilations"] == [1, 2, 4] and loaded.hparams["facts_horizons"] == [5, 20, 60]
    assert loaded.hparams["time_budget"] == 570.0
    np.testing.assert_array_equal(loaded.sample(3, 40, seed=5), model.sample(3, 40, seed=5))


def test_dilations_are_checked():
    assert parse_dilations("1, 2,4") == (1, 2, 4)
    with pytest.raises(ConfigError):
        parse_dilations("1,two")
    with pytest.raises(ConfigError):
        parse_dilations("0,1")


def test_facts_matching_knows_real_windows_from_gaussian_noise(sp500_recent):
    from synthmarket.training_data import TrainingData

    train = TrainingData.from_bars(sp500_recent).train[:, 0]
    facts = FactsMatching(train, FactsConfig(window=128))
    target = facts.target
    assert target["acf_abs"].shape == (64,) and target["leverage"].shape == (20,)
    assert float(target["acf_abs"][:20].mean()) > 0.1  # volatility clustering
    assert float(target["leverage"][:5].mean()) < -0.03  # the leverage effect
    assert float(target["skewness"]) < -0.1  # losses bigger than gains
    rng = np.random.default_rng(0)
    starts = rng.integers(0, len(train) - 128, size=64)
    real = torch.from_numpy(np.stack([train[s : s + 128] for s in starts]).astype(np.float32))
    noise = torch.randn(64, 128, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert float(facts.loss(real)) < 0.5 * float(facts.loss(noise).detach())
    # the quantiles tell a peaked, long-tailed day from a normal one of the same volatility
    quantiles = target["quantiles"]
    assert quantiles.shape == (41,) and bool((quantiles.diff() > 0).all())
    np.testing.assert_allclose(quantiles[[0, 20, 40]].numpy(), np.quantile(train, [0.005, 0.5, 0.995]), atol=0.15)
    same_volatility = noise.detach() * real.std()
    quantile_error = lambda r: float(((facts.facts(r)["quantiles"] - quantiles) ** 2).sum())
    assert quantile_error(real) < 0.5 * quantile_error(same_volatility)
    assert "quantiles" not in FactsMatching(train, FactsConfig(window=128, quantiles=False)).target  # rgan's default
    assert FactsMatching(train, FactsConfig(window=128, acf_lags=120)).target["acf_abs"].shape == (
        120,
    )  # conv1d_cgan's reach
    assert (
        FactsMatching(train, FactsConfig(window=128, acf_lags=500)).acf_lags == 120
    )  # a few pairs left at the last lag
    heavier = FactsMatching(train, FactsConfig(window=128, short_acf_weight=5.0))  # the facts_short_acf_weight option
    with torch.no_grad():
        short = float(((facts.facts(noise)["acf_abs"] - target["acf_abs"])[:10] ** 2).sum())
        assert float(heavier.loss(noise)) == pytest.approx(float(facts.loss(noise)) + 4 * short, rel=1e-5)
    facts.loss(noise).backward()
    assert torch.isfinite(noise.grad).all() and noise.grad.abs().sum() > 0


def test_facts_matching_can_measure_how_volatility_differs_between_windows(sp500_recent):
    from synthmarket.training_data import TrainingData

    train = TrainingData.from_bars(sp500_recent).train[:, 0]
    plain = FactsMatching(train, FactsConfig(window=128))
    spread = FactsMatching(train, FactsConfig(window=128, window_spread=2.0))  # the facts_window_spread option
    assert "window_spread" not in plain.target
    target = float(spread.target["window_spread"])  # variance over windows of each window's log std
    starts = range(0, len(train) - 128 + 1, 16)
    log_stds = [0.5 * np.log(np.mean((train[s : s + 128] - train.mean()) ** 2)) for s in starts]
    assert target == pytest.approx(np.var(log_stds, ddof=1), rel=0.1) and target > 0.02
    # paths of one constant volatility have almost none of it; each path a different volatility, more
    noise = torch.randn(64, 128, generator=torch.Generator().manual_seed(0))
    levels = torch.exp(torch.linspace(-0.6, 0.6, 64))[:, None]
    assert float(spread.facts(noise)["window_spread"]) < 0.2 * target
    assert float(spread.facts(noise * levels)["window_spread"]) > target
    with torch.no_grad():  # counted as a relative error, times its weight
        relative = (float(spread.facts(noise)["window_spread"]) / target - 1) ** 2
        assert float(spread.loss(noise)) == pytest.approx(float(plain.loss(noise)) + 2.0 * relative, rel=1e-4)
    one = noise[:1].clone().requires_grad_()
    assert torch.isfinite(spread.loss(one))  # one window has no spread to measure: the fact sits out
    batch = noise.clone().requires_grad_()
    spread.loss(batch).backward()
    assert torch.isfinite(batch.grad).all()


def test_facts_matching_can_measure_how_volatility_moves_from_week_to_week(sp500_recent):
    """With block_spread, the variance of the weekly log volatility within each month is a fact."""
    from synthmarket.training_data import TrainingData

    train = TrainingData.from_bars(sp500_recent).train[:, 0]
    plain = FactsMatching(train, FactsConfig(window=128))
    weekly = FactsMatching(train, FactsConfig(window=128, block_spread=2.0))  # the facts_block_spread option
    assert "block_spread" not in plain.target
    assert "block_spread" not in FactsMatching(train, FactsConfig(window=16, block_spread=2.0)).target  # no month fits
    target = float(weekly.target["block_spread"])
    starts = range(0, len(train) - 128 + 1, 16)
    centred = train - train.mean()
    weekly_log_std = [0.5 * np.log((centred[s : s + 120].reshape(6, 4, 5) ** 2).mean(-1)) for s in starts]
    assert target == pytest.approx(np.mean([np.var(w, axis=1, ddof=1) for w in weekly_log_std]), rel=0.05)
    # one constant volatility leaves only the noise of five days' estimates; a volatility moving week to week, more
    noise = torch.randn(64, 128, generator=torch.Generator().manual_seed(0))
    weeks = torch.exp(0.6 * torch.randn(64, 24, 1, generator=torch.Generator().manual_seed(1)))
    moving = (noise[:, :120].reshape(64, 24, 5) * weeks).reshape(64, 120)
    assert float(weekly.facts(noise)["block_spread"]) < 0.7 * target < float(weekly.facts(moving)["block_spread"])
    with torch.no_grad():  # counted as a relative error, times its weight
        relative = (float(weekly.facts(noise)["block_spread"]) / target - 1) ** 2
        assert float(weekly.loss(noise)) == pytest.approx(float(plain.loss(noise)) + 2.0 * relative, rel=1e-4)
    batch = noise.clone().requires_grad_()
    weekly.loss(batch).backward()
    assert torch.isfinite(batch.grad).all()


def test_facts_matching_can_ask_that_big_days_trade_more(sp500_recent):
    """With the volume channel, the correlation of |r| with volume is a fact (the volume-volatility one)."""
    from synthmarket.training_data import TrainingData

    train = TrainingData.from_bars(sp500_recent).train
    facts = FactsMatching(train[:, 0], FactsConfig(window=128), volume=train[:, VOLUME_INDEX])
    target = float(facts.target["volume_size"])
    r, v = np.abs(train[:, 0]), train[:, VOLUME_INDEX]
    assert target == pytest.approx(np.corrcoef(r, v)[0, 1], abs=0.05) and target > 0.1  # about 0.2 on the S&P 500
    noise = torch.randn(64, 128, generator=torch.Generator().manual_seed(0))
    unrelated = torch.randn(64, 128, generator=torch.Generator().manual_seed(1))
    trading = 0.6 * noise.abs() + unrelated  # volume that rises with the day's move
    assert abs(float(facts.facts(noise, volume=unrelated)["volume_size"])) < 0.05
    assert float(facts.facts(noise, volume=trading)["volume_size"]) > target
    assert "volume_size" not in FactsMatching(train[:, 0], FactsConfig(window=128)).target
    volume = unrelated.clone().requires_grad_()
    facts.loss(noise, volume=volume).backward()
    assert torch.isfinite(volume.grad).all() and volume.grad.abs().sum() > 0


def test_facts_matching_can_ask_how_returns_add_up_over_weeks_and_months(sp500_recent):
    """With horizons, the variance ratio of k-day sums is a fact: the S&P 500's partly revert."""
    from synthmarket.training_data import TrainingData

    train = TrainingData.from_bars(sp500_recent).train[:, 0]
    facts = FactsMatching(train, FactsConfig(window=128, horizons=parse_horizons("5,20")))
    five, twenty = (float(v) for v in facts.target["variance_ratio"])
    assert 0.5 < twenty < 0.85 and twenty < five  # about 0.7 at 20 days on the S&P 500 of 2009-2018
    noise = torch.randn(256, 128, generator=torch.Generator().manual_seed(0))
    independent = facts.facts(noise)["variance_ratio"]
    assert torch.allclose(independent, torch.ones(2), atol=0.08)
    reverting = noise - 0.3 * torch.nn.functional.pad(noise, (1, 0))[:, :-1]  # an MA(1) with theta -0.3
    assert float(facts.facts(reverting)["variance_ratio"][1]) < twenty
    assert "variance_ratio" not in FactsMatching(train, FactsConfig(window=128)).target
    batch = noise.clone().requires_grad_()
    facts.loss(batch).backward()
    assert torch.isfinite(batch.grad).all()
    assert FactsMatching(train, FactsConfig(window=128, horizons=(5, 100))).horizons == (
        5,
    )  # 100 days do not fit in 128
    with pytest.raises(ConfigError):
        FactsMatching(train, FactsConfig(window=128, horizons=(1,)))
    with pytest.raises(ConfigError):
        parse_horizons("5,a month")


def test_unbiased_facts_loss_does_not_charge_real_windows_for_their_own_variability(sp500_recent):
    from synthmarket.training_data import TrainingData

    train = TrainingData.from_bars(sp500_recent).train[:, 0]
    plain = FactsMatching(train, FactsConfig(window=128))
    unbiased = FactsMatching(train, FactsConfig(window=128, unbiased=True))
    rng = np.random.default_rng(1)
    plain_losses, unbiased_losses = [], []
    for _ in range(200):  # batches of real windows: no bias, only batch-to-batch variability
        starts = rng.integers(0, len(train) - 128, size=32)
        batch = torch.from_numpy(np.stack([train[s : s + 128] for s in starts]).astype(np.float32))
        plain_losses.append(float(plain.loss(batch)))
        unbiased_losses.append(float(unbiased.loss(batch)))
    assert abs(np.mean(unbiased_losses)) < 0.25 * np.mean(plain_losses)
    # a biased batch is still charged, by about its squared bias
    wild = torch.from_numpy((2.0 * np.stack([train[s : s + 128] for s in starts])).astype(np.float32))
    assert float(unbiased.loss(wild)) > 0.4 and float(unbiased.loss(wild)) == pytest.approx(
        float(plain.loss(wild)), rel=0.5
    )


def test_the_return_shock_learns_skew_and_tails_from_the_identity():
    from scipy.stats import kurtosis, skew

    head = VolatilityHead(hidden=4, n_channels=5)
    eps = torch.randn(200_000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(head.shock(eps), eps)  # untrained: the standard normal shock itself
    with torch.no_grad():
        head.shock_shape.copy_(torch.tensor([-0.2, 0.05]))
    shaped = head.shock(eps).detach().numpy()
    assert skew(shaped) < -0.4 and kurtosis(shaped) > 1.0
    assert abs(shaped.mean()) < 0.01  # centred: the drift stays the expected return
    with torch.no_grad():
        head.shock_shape.copy_(torch.tensor([3.0, 5.0]))  # out of range: clamped, so still finite
    assert torch.isfinite(head.shock(eps)).all()
    # the gradient at the start (g = h = 0) is finite and says which way to move
    head.shock_shape.data.zero_()
    target_skew = (head.shock(eps[:1000]) ** 3).mean()
    target_skew.backward()
    assert torch.isfinite(head.shock_shape.grad).all() and head.shock_shape.grad[0] > 0
    # a tail parameter that stepped below its limit still hears that heavier tails are wanted
    head.shock_shape.grad = None
    with torch.no_grad():
        head.shock_shape.copy_(torch.tensor([0.0, -0.001]))
    assert torch.equal(head.shock(eps), eps)  # clamped at h = 0 in value
    tails = -(head.shock(eps[:1000]) ** 4).mean()
    tails.backward()
    assert head.shock_shape.grad[1] < 0  # a descent step raises h


def test_the_shock_may_have_lighter_tails_than_normal_and_stays_increasing():
    from scipy.stats import kurtosis

    eps = torch.randn(400_000, generator=torch.Generator().manual_seed(0))
    heavy_only, light = VolatilityHead(hidden=4, n_channels=5), VolatilityHead(hidden=4, n_channels=5, tail_floor=-0.5)
    with torch.no_grad():
        for head in (heavy_only, light):
            head.shock_shape.copy_(torch.tensor([-0.2, 0.05]))
    # h >= 0: Tukey's shock, its mean integrated numerically equal to the closed form
    torch.testing.assert_close(light.shock(eps), heavy_only.shock(eps), atol=1e-5, rtol=0)
    with torch.no_grad():
        heavy_only.shock_shape.copy_(torch.tensor([-0.2, -0.3]))
        light.shock_shape.copy_(torch.tensor([-0.2, -0.3]))
    shaped = light.shock(eps).detach().numpy()
    assert kurtosis(shaped) < -0.3 and abs(shaped.mean()) < 0.01  # lighter tails, still centred
    assert kurtosis(heavy_only.shock(eps).detach().numpy()) > kurtosis(shaped) + 0.3  # the default floor is 0
    grid = torch.linspace(-12, 12, 24001, dtype=torch.float64)
    for g, h in ((-0.5, -0.5), (0.5, -0.9), (-0.3, -0.1), (-0.5, 0.2)):
        head = VolatilityHead(hidden=4, n_channels=5, tail_floor=-0.9).double()
        with torch.no_grad():
            head.shock_shape.copy_(torch.tensor([g, h], dtype=torch.float64))
            assert bool((head.shock(grid).diff() > 0).all()), (g, h)  # a bigger eps, a bigger shock
    # h below 0 hears which way the loss wants it
    light.shock_shape.grad = None
    (-(light.shock(eps[:2000]) ** 4).mean()).backward()
    assert light.shock_shape.grad[1] < 0  # heavier tails wanted: a descent step raises h
    with pytest.raises(ConfigError):
        VolatilityHead(hidden=4, n_channels=5, tail_floor=-1.0)


def test_a_piecewise_linear_shock_starts_as_the_identity_and_stays_standard_and_increasing():
    from scipy.stats import skew

    eps = torch.randn(400_000, generator=torch.Generator().manual_seed(0))
    head = VolatilityHead(hidden=4, n_channels=5, shock_knots=12)
    torch.testing.assert_close(head.shock(eps), eps, atol=1e-5, rtol=0)  # untrained: the normal shock itself
    shock = PiecewiseLinearShock(12)
    with torch.no_grad():  # falls in the centre squeezed, the left tail stretched: skews no one number gives
        shock.log_slopes.copy_(torch.tensor([0.7] + [0.3] * 4 + [-0.3] * 2 + [0.0] * 6 + [-0.2]))
    shaped = shock(eps).detach().numpy()
    assert abs(shaped.mean()) < 0.01 and abs(shaped.std() - 1) < 0.01  # standardised
    low, median, high = np.quantile(shaped, [0.25, 0.5, 0.75])
    assert high - median > 1.1 * (median - low) and skew(shaped) < -0.1
    grid = torch.linspace(-8, 8, 16001)
    with torch.no_grad():
        assert bool((shock(grid).diff() > 0).all())  # a bigger eps, a bigger shock
        assert float((shock(grid + 1e-3) - shock(grid - 1e-3)).abs().max()) < 0.05  # continuous at the knots
    (shock(eps[:2000]) ** 3).mean().backward()
    assert torch.isfinite(shock.log_slopes.grad).all() and shock.log_slopes.grad.abs().sum() > 0
    with pytest.raises(ConfigError):
        VolatilityHead(hidden=4, n_channels=5, shock_knots=7)


def test_facts_matching_learns_each_regimes_volatility(sp500_recent):
    from synthmarket.training_data import TrainingData

    data = TrainingData.from_bars(sp500_recent, regimes="volatility")
    names = list(data.scheme.names)
    facts = FactsMatching(data.train[:, 0], FactsConfig(window=96), labels=data.train_labels, n_regimes=len(names))
    calm, normal, turbulent = (
        float(facts.target["regime_log_std"][names.index(r)]) for r in ("calm", "normal", "turbulent")
    )
    assert calm < normal < turbulent
    # windows with the real labels but one volatility everywhere are told apart from the real ones
    rng = np.random.default_rng(0)
    starts = rng.integers(0, len(data.train) - 96, size=64)
    labels = torch.from_numpy(np.stack([data.train_labels[s : s + 96] for s in starts]))
    real = torch.from_numpy(np.stack([data.train[s : s + 96, 0] for s in starts]).astype(np.float32))
    flat = real.flatten()[torch.randperm(real.numel(), generator=torch.Generator().manual_seed(0))].reshape(real.shape)
    regime_error = lambda r: float(
        ((facts.facts(r, labels)["regime_log_std"] - facts.target["regime_log_std"]) ** 2).nansum()
    )
    assert regime_error(real) < 0.2 * regime_error(flat)
    # a regime the batch lacks does not count
    only_calm = torch.full_like(labels, names.index("calm"))
    assert torch.isfinite(facts.loss(real, only_calm))
    # the unbiased error keeps the regimes' terms as squared errors of the whole batch
    unbiased = FactsMatching(
        data.train[:, 0], FactsConfig(window=96, unbiased=True), labels=data.train_labels, n_regimes=len(names)
    )
    regime_part = lambda f, r: float(f.loss(r, labels)) - float(f.loss(r))
    assert regime_part(unbiased, flat) == pytest.approx(regime_part(facts, flat), rel=1e-4)


def test_vae_prior_sample_is_the_same_in_torch_and_numpy():
    decoder = Decoder(5, 0, hidden=8, latent=4, embed_dim=4, burn_in=3)
    e = torch.randn(3, 40, 4, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(
        decoder.prior_sample_torch(e).detach().numpy(), decoder.prior_sample(e.numpy()).numpy(), atol=1e-5
    )


@pytest.mark.parametrize("reversion", [0, 3])
def test_vae_rollout_is_the_autoregressive_decoder_it_is_trained_as(reversion):
    """Sampling feeds each bar to the next step; training feeds the real previous bar to one GRU pass.

    Both must be the same model: decoding the rolled-out bars with teacher forcing gives
    back their means and scales exactly (the other channels read the bar's own return shock;
    with ``reversion`` the mean return reads averages of the past returns).
    """
    torch.manual_seed(0)
    decoder = Decoder(5, 3, hidden=8, latent=4, embed_dim=4, burn_in=3, feedback=True, reversion=reversion)
    z, eta = torch.randn(4, 30, 4), torch.randn(4, 30, 5)
    labels = torch.randint(0, 3, (4, 30))
    with torch.no_grad():
        layers = (decoder.within, decoder.out) + ((decoder.revert,) if reversion else ())
        for layer in layers:  # zero at init: give the bar's own shock and the past returns a part
            layer.weight.normal_(0, 0.3)
        bars = decoder.roll(z, labels, eta)
        mean, log_scale, _ = decoder(z, labels, x=bars)
    np.testing.assert_allclose((mean + log_scale.exp() * eta).numpy(), bars.numpy(), atol=1e-5)
    changed = eta.clone()
    changed[:, 10, 0] = -6.0  # a crash on day 10 changes only the days after it
    with torch.no_grad():
        after = decoder.roll(z, labels, changed)
    np.testing.assert_array_equal(after[:, :10].numpy(), bars[:, :10].numpy())
    assert not torch.allclose(after[:, 11:, 0], bars[:, 11:, 0])


def test_vae_kl_weight_is_annealed():
    vae = SequenceVAE(kl_anneal_steps=100, kl_weight=0.5)
    assert vae.kl_beta(0) == 0.0
    assert vae.kl_beta(50) == pytest.approx(0.25)
    assert vae.kl_beta(500) == pytest.approx(0.5)


@pytest.mark.parametrize("name", list(SMALL))
def test_a_huge_learning_rate_diverges_with_a_clear_message(sp500_recent, name, tmp_path):
    from synthmarket.errors import TrainingDiverged

    lr = {"vae": {"lr": 1e9}, "rgan": {"lr_g": 1e9, "lr_d": 1e9}, "conv1d_cgan": {"lr_g": 1e9, "lr_d": 1e9}}[name]
    model = get_registry().get("generator", name)(**SMALL[name], **lr)
    config = TrainConfig(steps=300, validate_every=1000, checkpoint_every=1, out_dir=tmp_path, max_loss=1e3)
    with pytest.raises(TrainingDiverged, match="diverged at step") as caught:
        model.fit(sp500_recent.loc["2014-01-01":"2016-12-31"], config)
    if "no checkpoint was written yet" not in str(caught.value):  # it may blow up on the very first step
        assert (tmp_path / "checkpoints" / "last.json").is_file()


def realized_vol(model, regime: str) -> float:
    returns = model.sample(200, 120, regime=regime, seed=0, context=None)[..., 0]
    return float(returns.std(axis=1).mean())


@pytest.mark.slow
@pytest.mark.parametrize("name, steps", [("conv1d_cgan", 800), ("rgan", 250), ("vae", 800)])
def test_regimes_order_volatility(sp500_recent, name, steps):
    """After brief training, turbulent paths are wilder than normal ones, and normal than calm.

    conv1d_cgan needs longer since its facts term matches the between-window spread of
    volatility: seed 0 had calm above normal after 250 and 400 steps, ordered at 800 and
    1,500 (seeds 1-9 ordered at 250; generators-deep.md). The vae too, since its decoder reads
    the previous bar: seed 0 had turbulent below normal after 400 steps, and seeds 0-4 were
    ordered after 800.
    """
    short = dict(ema_decay=0.95)  # the default EMA horizon (about 200 steps) suits long runs
    hparams = {"conv1d_cgan": dict(window=128, **short), "rgan": dict(window=96, **short), "vae": dict(window=96)}[name]
    model = get_registry().get("generator", name)(**hparams)
    model.fit(sp500_recent, TrainConfig(steps=steps, validate_every=steps, seed=0), regimes="volatility")
    calm, normal, turbulent = (realized_vol(model, r) for r in ("calm", "normal", "turbulent"))
    assert turbulent > normal > calm, (calm, normal, turbulent)


def test_every_logged_step_of_a_gan_shows_the_lazy_r1_penalty(sp500_recent, tmp_path):
    model = Conv1DCGAN(**SMALL["conv1d_cgan"])
    log = tmp_path / "log.jsonl"
    model.fit(
        sp500_recent.loc["2014-01-01":"2016-12-31"],
        TrainConfig(steps=12, log_every=5, validate_every=100, log_file=log),
    )
    steps = [json.loads(line) for line in log.read_text().splitlines() if json.loads(line)["event"] == "step"]
    assert [row["step"] for row in steps] == [1, 5, 10]
    assert all(row["r1"] > 0 and row["facts"] > 0 for row in steps)


@pytest.mark.parametrize("positions", [40 * 60, 1 << 20], ids=["several batches", "one batch"])
@pytest.mark.parametrize("name", list(SMALL))
def test_sampling_on_several_threads_gives_the_same_paths(fitted, name, positions, monkeypatch):
    """Promised bit for bit on one machine: each batch runs on one thread, whatever the count."""
    model = fitted[name]
    monkeypatch.setattr(type(model), "sample_positions", positions)  # batches of 40 paths, or one of all 150
    monkeypatch.setattr(type(model), "sample_batch_paths", None)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = model.sample(150, 50, seed=3)
        torch.set_num_threads(2)
        two = model.sample(150, 50, seed=3)
        assert torch.get_num_threads() == 2  # restored after sampling
    finally:
        torch.set_num_threads(previous)
    np.testing.assert_array_equal(one, two)


def openmp_and_mkl_threads() -> tuple[int, int]:
    """The calling thread's OpenMP and MKL thread counts, read without letting torch set them first."""
    import ctypes
    from pathlib import Path

    library = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
    try:
        return library.omp_get_max_threads(), library.mkl_get_max_threads()
    except AttributeError:
        pytest.skip("this torch build exports no OpenMP or MKL thread count")


def test_every_sampling_batch_runs_its_kernels_on_one_thread(fitted, monkeypatch):
    """A fresh thread starts with OpenMP's and MKL's default count (the machine's cores): a
    matrix product there may split its sums across threads, and only the first batch of each
    worker would, so paths changed with the number of workers on some CPUs."""
    model = fitted["vae"]
    monkeypatch.setattr(type(model), "sample_positions", 40 * 60)
    monkeypatch.setattr(type(model), "sample_batch_paths", None)
    seen = []
    draw_batch = type(model).draw_batch

    def recording(self, *args, **kwargs):
        seen.append(openmp_and_mkl_threads())
        return draw_batch(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "draw_batch", recording)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        model.sample(150, 50, seed=3)
    finally:
        torch.set_num_threads(previous)
    assert seen and set(seen) == {(1, 1)}


SAMPLE_IN_A_FRESH_PROCESS = """
import sys, numpy as np, torch
from synthmarket.generator import Generator
torch.set_num_threads(int(sys.argv[2]))
model = Generator.load(sys.argv[1])
type(model).sample_positions, type(model).sample_batch_paths = 40 * 60, None
np.save(sys.argv[3], model.sample(150, 50, seed=3))
"""

#: Settings that pick the kernels of another machine: torch's without SIMD, MKL's portable path.
OTHER_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
#: The documented float32 tolerance of paths across machines (docs/concepts.md, "Seeds").
ACROSS_MACHINES = dict(rtol=1e-4, atol=1e-5)


def sample_in_fresh_process(directory, out, threads: int, env: dict[str, str]) -> np.ndarray:
    import os
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", *OTHER_KERNELS)} | env
    subprocess.run(
        [sys.executable, "-c", SAMPLE_IN_A_FRESH_PROCESS, str(directory), str(threads), str(out)],
        env=environment,
        check=True,
    )
    return np.load(out)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SMALL))
def test_the_reproducibility_promise_in_fresh_processes(fitted, name, tmp_path):
    """Bit for bit whatever torch's thread count and OMP_NUM_THREADS; within the documented
    tolerance under another machine's kernels."""
    directory = fitted[name].save(tmp_path / "model")
    runs = {
        (threads, omp): sample_in_fresh_process(
            directory, tmp_path / f"{threads}-{omp}.npy", threads, {} if omp is None else {"OMP_NUM_THREADS": omp}
        )
        for threads in (1, 2)
        for omp in (None, "1")
    }
    first = runs[1, None]
    for key, paths in runs.items():
        np.testing.assert_array_equal(paths, first, err_msg=f"threads, OMP_NUM_THREADS = {key}")
    other = sample_in_fresh_process(directory, tmp_path / "other.npy", 2, OTHER_KERNELS)
    np.testing.assert_allclose(other, first, **ACROSS_MACHINES)
