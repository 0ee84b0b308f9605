"""The deep generators start from the market's state (issue #22): the GANs run their own
recursion backwards over the context (filtered shocks), the VAE's encoder reads it and its
decoder runs over it, and a regime chain starts from the context's regime. Real S&P 500
bars, tiny seeded models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from typer.testing import CliRunner

from synthmarket.bars import to_features
from synthmarket.calibration.walkforward import calibrate
from synthmarket.cli import app
from synthmarket.deep import RegimeChain
from synthmarket.deep.conditioning import context_noise, filtered_shocks
from synthmarket.deep.gan import _inverse_with_gradient, one_step_nll, pair_crps
from synthmarket.deep.heads import VolatilityHead
from synthmarket.errors import ConfigError, ContextUnreadable
from synthmarket.generator import Generator
from synthmarket.train_config import TrainConfig
from synthmarket.training_data import TrainingData
from synthmarket.validation_score import ValidationScore
from synthmarket_plugins.conv1d_cgan import Conv1DCGAN
from synthmarket_plugins.rgan import RGAN
from synthmarket_plugins.vae import SequenceVAE

SMALL = {
    "conv1d_cgan": (Conv1DCGAN, dict(hidden=8, d_hidden=8, dilations=[1, 2, 4], d_dilations=[1, 2, 4], window=48)),
    "rgan": (RGAN, dict(hidden=8, d_hidden=8, window=48, burn_in=8)),
    "vae": (SequenceVAE, dict(hidden=8, encoder_hidden=8, window=48, burn_in=8, kl_anneal_steps=10)),
}
SHORT = TrainConfig(steps=12, validate_every=6, seed=0)


@pytest.fixture(scope="module")
def bars(sp500):
    return sp500.loc["2012":"2014"]


@pytest.fixture(scope="module")
def contexts(sp500):
    """A calm and a turbulent stretch of the S&P 500: late 2006 and October 2008."""
    return sp500.loc[:"2006-12-29"].iloc[-300:], sp500.loc[:"2008-10-10"].iloc[-300:]


@pytest.fixture(scope="module", params=list(SMALL))
def fitted(request, bars):
    cls, hparams = SMALL[request.param]
    model = cls(batch_size=8, **hparams)
    model.fit(bars, SHORT)
    return model


def scaled_returns(model, bars):
    tail = to_features(bars)[-model.min_context :]
    return torch.as_tensor(model.scaler.transform(tail)[:, 0], dtype=torch.float32)


@pytest.mark.parametrize("name", ["conv1d_cgan", "rgan"])
def test_filtered_shocks_give_back_the_context(name, bars, contexts):
    cls, hparams = SMALL[name]
    model = cls(batch_size=8, **hparams)
    model.fit(bars, SHORT)
    net = model.nets["generator_ema"]
    for context in contexts:
        returns = scaled_returns(model, context)[None]
        shocks = filtered_shocks(net, returns, lead=3)
        h, _, _, factors = net.head_inputs(context_noise(net, shocks, 3), None, 3)
        log_vol, drift = net.head.log_vol_drift(h, factors)
        rebuilt = torch.exp(log_vol[..., 0]) * net.head.shock(shocks) + drift[..., 0]
        within = shocks.abs() < 11.99  # a move beyond the shock of 12 standard deviations stays at 12
        assert int((~within).sum()) <= 1  # a -9 % day of October 2008, at most
        torch.testing.assert_close(rebuilt[within], returns[within], atol=1e-4, rtol=1e-4)
        assert (torch.sign(shocks[~within]) == torch.sign(returns[~within] - drift[..., 0][~within])).all()


@pytest.fixture(scope="module")
def egarch_like(bars):
    """An EGARCH-like generator by hand: its log volatility is the decaying average of the
    past shock sizes, so the context's shocks must carry into the first bars."""
    model = RGAN(batch_size=8, **SMALL["rgan"][1])
    model.fit(bars, SHORT)
    net = model.nets["generator_ema"]
    with torch.no_grad():
        net.memory.mix.weight.zero_()
        net.memory.mix.bias.zero_()
        net.memory.mix.weight[0, net.inputs.z_dim + 1] = 1.0  # |eps_{t-1}|
        net.head.vol.weight.zero_()
        net.head.vol.bias.zero_()
        net.head.vol.weight[0, net.gru.hidden_size] = 1.5  # log vol = 1.5 x the average size
    model.prepare_for_sampling()
    return model


def test_a_gan_whose_volatility_reads_past_shocks_starts_turbulent_after_a_turbulent_context(egarch_like, contexts):
    calm, turbulent = (egarch_like.sample(400, 3, seed=1, context=c)[..., 0].std() for c in contexts)
    assert turbulent > 1.5 * calm


def by_hand(bars, signed_weight: float, size_weight: float, shock_bound: float = 0.0) -> RGAN:
    """A briefly trained rgan with a 60-bar burn-in whose log volatility is set by hand to
    weights on the decaying averages of the past shocks (signed) and of their sizes."""
    model = RGAN(batch_size=8, **{**SMALL["rgan"][1], "burn_in": 60, "shock_bound": shock_bound})
    model.fit(bars, SHORT)
    net = model.nets["generator_ema"]
    with torch.no_grad():
        net.memory.mix.weight.zero_()
        net.memory.mix.bias.zero_()
        net.memory.mix.weight[0, net.inputs.z_dim] = 1.0  # eps_{t-1}
        net.memory.mix.weight[1, net.inputs.z_dim + 1] = 1.0  # |eps_{t-1}|
        net.head.vol.weight.zero_()
        net.head.vol.bias.zero_()
        net.head.vol.weight[0, net.gru.hidden_size] = signed_weight
        net.head.vol.weight[0, net.gru.hidden_size + 1] = size_weight
    model.prepare_for_sampling()
    return model


def test_a_gan_whose_filter_runs_away_cannot_start_from_that_context(sp500, bars, contexts, tmp_path):
    """Volatility that falls steeply after a rise is not invertible, as an EGARCH's need not be:
    read back over the rising market of 2014, the filter's shocks grow and the volatility sinks
    to its floor. Sampling from there raises, the CLI exits 2 and writes nothing, calibrate names
    the origin, and validation never keeps such weights; without a context the model samples
    as before."""
    runaway = by_hand(bars, signed_weight=-4.0, size_weight=0.0)
    with pytest.raises(ContextUnreadable, match="cannot start from 1 of 1 contexts"):
        runaway.sample(10, 5, seed=0)  # from the end of its training data, late 2014
    assert np.isfinite(runaway.sample(10, 5, seed=0, context=None)).all()
    usual = by_hand(bars, signed_weight=-0.5, size_weight=1.0)  # a leverage effect of the usual size
    for context in (*contexts, bars):
        assert np.isfinite(usual.sample(10, 5, seed=0, context=context)).all()

    _, distances = ValidationScore(TrainingData.from_bars(bars), n_paths=8, context_length=runaway.min_context)(
        runaway.sample_scaled
    )
    assert distances["crps_1"] == np.inf
    with pytest.raises(ContextUnreadable, match=r"The origin 2015-\d\d-\d\d: rgan cannot start from"):
        calibrate(runaway, sp500, start="2015-01-01", end="2015-03-31", horizons=(1,), n_paths=8, stride=20)

    runaway.save(tmp_path / "runaway")
    out = tmp_path / "paths.parquet"
    result = CliRunner().invoke(
        app, ["generate", "-m", str(tmp_path / "runaway"), "-n", "10", "-s", "5", "--no-progress", "-o", str(out)]
    )
    assert result.exit_code == 2 and "cannot start from" in result.output, result.output
    assert not out.exists()


def test_bounded_shock_inputs_keep_that_gan_readable(bars, contexts):
    """The same network reading its past shocks through tanh (``shock_bound``): a run of large
    shocks moves its volatility only so far, so its filter settles on every context, and the
    paths from them stay within the range of the bounded volatility."""
    bounded = by_hand(bars, signed_weight=-4.0, size_weight=0.0, shock_bound=1.0)
    for context in (*contexts, bars):
        paths = bounded.sample(10, 5, seed=0, context=context)
        assert np.isfinite(paths).all()
        assert np.abs(paths[..., 0]).max() < 0.5  # daily log returns: no path explodes
    with pytest.raises(ConfigError, match="shock_bound"):
        RGAN(shock_bound=-1.0).fit(bars, SHORT)
    generator, _ = Conv1DCGAN(shock_bound=3.0).build_pair(n_channels=5, n_regimes=1)
    assert generator.inputs.bound == 3.0


def test_pair_crps_is_the_fair_crps_of_a_two_member_ensemble():
    """The forecast score's CRPS from two samples, checked against scoringrules' fair estimator."""
    import scoringrules

    rng = np.random.default_rng(0)
    first, second, outcome = rng.standard_t(4, size=(3, 200))
    expected = scoringrules.crps_ensemble(outcome, np.stack([first, second], axis=-1), estimator="fair")
    got = pair_crps(*(torch.as_tensor(a) for a in (first, second, outcome)))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_the_forecast_score_joins_the_generator_loss_only_with_a_context(bars):
    """``forecast_weight`` adds the CRPS of two futures of each training context to the
    generator's loss (logged as ``forecast``); it needs a context to forecast from."""
    cls, hparams = SMALL["rgan"]
    model = cls(batch_size=8, **{**hparams, "context_window": 8}, forecast_weight=1.0)
    logged = []
    model.callbacks.append(lambda step, losses: logged.append(losses))
    model.fit(bars, SHORT)
    assert len(logged) == SHORT.steps and all(np.isfinite(step["forecast"]) for step in logged)
    assert all(step["forecast"] > 0 for step in logged)  # a CRPS of continuous forecasts
    with pytest.raises(ConfigError, match="forecast_weight"):
        Conv1DCGAN(forecast_weight=1.0).fit(bars, SHORT)  # conv1d_cgan trains without a context by default
    with pytest.raises(ConfigError, match="forecast_weight"):
        cls(batch_size=8, **hparams, forecast_weight=-1.0).fit(bars, SHORT)


def test_the_one_step_likelihood_is_the_density_of_each_real_return(bars):
    """``likelihood_weight`` adds the mean negative log density of each real return given the
    generator's state (logged as ``nll``). Checked against the density written out by hand: the
    filtered shock's normal density over the volatility and the shock's slope, taken by finite
    differences, for a skewed, heavy-tailed shock."""
    cls, hparams = SMALL["rgan"]
    model = cls(batch_size=8, **hparams, context_window=8, likelihood_weight=1.0)
    logged = []
    model.callbacks.append(lambda step, losses: logged.append(losses))
    model.fit(bars, SHORT)
    assert len(logged) == SHORT.steps and all(np.isfinite(step["nll"]) for step in logged)
    net = model.nets["generator_ema"]
    with torch.no_grad():
        net.head.shock_shape.copy_(torch.tensor([-0.3, 0.15]))
    scaled = torch.as_tensor(model.scaler.transform(to_features(bars))[:, 0], dtype=torch.float32)
    returns = torch.stack([scaled[40 * i : 40 * i + 28] for i in range(3)])
    k = 8
    lead = net.burn_in - k
    shocks = filtered_shocks(net, returns, None, lead=lead, tol=1e-7)
    noise = context_noise(net, shocks, lead)
    got = float(one_step_nll(net, noise, returns[:, k:], None).detach())
    with torch.no_grad():
        h, _, _, factors = net.head_inputs(noise, None, net.burn_in)
        log_vol, _ = net.head.log_vol_drift(h, factors)
        eps = shocks[:, k:].double()
        step = 1e-5
        slope = (net.head.shock(eps + step) - net.head.shock(eps - step)) / (2 * step)
    log_density = stats.norm.logpdf(eps.numpy()) - log_vol[..., 0].double().numpy() - np.log(slope.numpy())
    assert got == pytest.approx(-log_density.mean(), rel=1e-4)
    with pytest.raises(ConfigError, match="likelihood_weight"):
        cls(batch_size=8, **hparams, likelihood_weight=-1.0).fit(bars, SHORT)


def test_the_inverse_shock_carries_its_gradient():
    """The inverse of the learned shock, differentiated through one Newton step, against finite
    differences of the inverse itself (by bisection), in the shocked value and in the shock's shape."""
    head = VolatilityHead(hidden=4, n_channels=2).double()
    with torch.no_grad():
        head.shock_shape.copy_(torch.tensor([-0.3, 0.15], dtype=torch.float64))
    y = torch.linspace(-4.0, 3.0, 9, dtype=torch.float64, requires_grad=True)
    eps = _inverse_with_gradient(head, y)
    torch.testing.assert_close(head.shock(eps), y)
    d_y, d_shape = torch.autograd.grad(eps.sum(), (y, head.shock_shape))
    step = 1e-4
    with torch.no_grad():
        by_y = (head.inverse_shock(y + step) - head.inverse_shock(y - step)) / (2 * step)
        by_shape = []
        for i in range(2):
            moved = []
            for sign in (1, -1):
                head.shock_shape[i] += sign * step
                moved.append(head.inverse_shock(y).sum())
                head.shock_shape[i] -= sign * step
            by_shape.append((moved[0] - moved[1]) / (2 * step))
    torch.testing.assert_close(d_y, by_y, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(d_shape, torch.stack(by_shape), rtol=1e-6, atol=1e-8)


def scaled_contexts(model, contexts):
    """The contexts' last min_context bars, scaled: (B, L, C), as the Trainer's validation gives them."""
    return np.stack([model.scaler.transform(to_features(c)[-model.min_context :]) for c in contexts])


def test_several_contexts_start_as_each_does_alone(fitted, contexts):
    """The validation forecasts start from many contexts at once (one batch through the filter
    or the encoder): each context's start is the one it gets alone, and one context given as
    a batch of one samples exactly as given alone."""
    scaled = scaled_contexts(fitted, contexts)
    unscaled = np.stack([to_features(c)[-fitted.min_context :] for c in contexts])
    both = fitted._context_start(unscaled, fitted._context_regimes(unscaled))
    for i in range(len(contexts)):
        alone = fitted._context_start(unscaled[i : i + 1], fitted._context_regimes(unscaled[i : i + 1]))
        for together, single in zip(as_tuple(both.value), as_tuple(alone.value)):
            torch.testing.assert_close(together[i], single[0], atol=1e-4, rtol=1e-4)
    batch_of_one = fitted.sample_scaled(6, None, np.random.default_rng(0), 5, context=scaled[1:])
    alone = fitted.sample_scaled(6, None, np.random.default_rng(0), 5, context=scaled[1])
    np.testing.assert_array_equal(batch_of_one, alone)
    assert fitted.sample_scaled(6, None, np.random.default_rng(0), 5, context=scaled).shape[:2] == (12, 5)


def as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def test_paths_from_several_contexts_follow_each_its_own(egarch_like, contexts):
    paths = egarch_like.sample_scaled(
        400, None, np.random.default_rng(1), 3, context=scaled_contexts(egarch_like, contexts)
    )
    calm, turbulent = paths[:400, :, 0].std(), paths[400:, :, 0].std()
    assert turbulent > 1.5 * calm


def test_sampling_from_a_context_is_reproducible_and_leaves_none_as_before(fitted, contexts):
    calm, turbulent = contexts
    first = fitted.sample(20, 15, seed=3, context=turbulent)
    np.testing.assert_array_equal(first, fitted.sample(20, 15, seed=3, context=turbulent))
    assert not np.allclose(first, fitted.sample(20, 15, seed=3, context=calm))
    unconditional = fitted.sample(20, 15, seed=3, context=None)
    np.testing.assert_array_equal(unconditional, fitted.sample(20, 15, seed=3, context=None))


def test_the_context_must_cover_the_burn_in(fitted, contexts):
    from synthmarket.errors import ConfigError

    short = contexts[0].iloc[-fitted.min_context :]  # one bar short: the first bar has no return
    with pytest.raises(ConfigError, match=f"at least {fitted.min_context} bars of context"):
        fitted.sample(2, 5, seed=0, context=short)


def test_a_saved_model_keeps_its_context_and_starts_where_it_did(fitted, tmp_path):
    fitted.save(tmp_path / "model")
    loaded = Generator.load(tmp_path / "model")
    assert loaded.uses_context
    np.testing.assert_array_equal(fitted.sample(5, 10, seed=2), loaded.sample(5, 10, seed=2))


def test_a_vae_saved_without_its_encoder_samples_unconditionally(bars, contexts, tmp_path):
    cls, hparams = SMALL["vae"]
    model = cls(batch_size=8, **hparams)
    model.fit(bars, SHORT)
    model.context_nets = ()  # as a VAE saved before it read contexts: the decoder only
    model.save(tmp_path / "model")
    old = Generator.load(tmp_path / "model")
    assert not old.uses_context and old.min_context == 0
    calm, turbulent = contexts
    np.testing.assert_array_equal(old.sample(5, 10, seed=1, context=calm), old.sample(5, 10, seed=1, context=None))


def test_the_regime_chain_starts_from_the_contexts_regime(sp500, contexts):
    model = RGAN(batch_size=8, **SMALL["rgan"][1])
    model.fit(sp500.loc["2012":"2014"], SHORT, regimes="volatility")
    for context in contexts:
        expected = model.scheme.label(context)[-1]
        assert model._context_regimes(to_features(context)[None])[0] == expected
    chain = RegimeChain(np.full((3, 3), 1 / 3), np.array([0.8, 0.1, 0.1]))
    assert (chain.sample(50, 4, np.random.default_rng(0), first=2)[:, 0] == 2).all()
    assert np.isfinite(model.sample(4, 5, seed=0, context=contexts[1])).all()
    # asked for calm paths from October 2008, the model reads the context in its own regime
    seen = []
    model.prepare_for_sampling()  # forgets the start computed above
    read = model.context_start
    model.context_start = lambda context, labels: seen.append(labels) or read(context, labels)
    model.sample(4, 5, seed=0, context=contexts[1], regime="calm")
    turbulent = model.scheme.label(contexts[1])[-1]
    assert turbulent == model.scheme.index("turbulent") and (seen[0] == turbulent).all()


@pytest.mark.slow
def test_a_briefly_trained_vae_starts_turbulent_after_a_turbulent_context(sp500, contexts):
    model = SequenceVAE(hidden=8, encoder_hidden=8, window=64, burn_in=16)
    model.fit(sp500.loc["2005":"2014"], TrainConfig(steps=150, seed=0))
    calm, turbulent = (model.sample(400, 5, seed=1, context=c)[..., 0].std() for c in contexts)
    assert turbulent > 1.3 * calm


@pytest.mark.parametrize("knots", [0, 12])
def test_the_shock_is_inverted_exactly(knots):
    from synthmarket.deep import VolatilityHead

    torch.manual_seed(0)
    head = VolatilityHead(4, 4, shock_knots=knots)
    with torch.no_grad():
        head.shock_shape.copy_(torch.tensor([-0.2, 0.1]))
        if head.shock_map is not None:
            head.shock_map.log_slopes.normal_(0, 0.4)
    eps = torch.linspace(-8, 8, 2001)
    torch.testing.assert_close(head.inverse_shock(head.shock(eps)), eps, atol=1e-5, rtol=0)


@pytest.mark.parametrize("context_window", [0, 5, 100])
def test_training_windows_come_with_the_bars_before_them(bars, context_window):
    """context_window K: each window is drawn K bars longer (at most the burn-in) and its first
    K bars are the context; 0 trains unconditionally and filters the whole burn-in at sampling."""
    model = RGAN(batch_size=8, **{**SMALL["rgan"][1], "context_window": context_window})
    model.fit(bars, SHORT)
    extra = min(context_window, model.burn_in())
    assert model.training_plan()["window"] == 48 + extra
    assert model.min_context == (extra or model.burn_in())
    assert model.report.steps == 12
