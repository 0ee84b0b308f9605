"""The classical baselines: the generator contract, and what each model must reproduce."""

from __future__ import annotations

import numpy as np
import pytest

from synthmarket.bars import to_features
from synthmarket.errors import ConfigError
from synthmarket.registry import get_registry
from synthmarket.testing import GeneratorContract
from synthmarket.training_data import TrainingData
from synthmarket_plugins.classical import Bootstrap, Fhs, Garch, Gbm, garch_recursion


class TestGbmContract(GeneratorContract):
    def make_generator(self):
        return Gbm()


class TestGarchContract(GeneratorContract):
    def make_generator(self):
        return Garch(burn=20)


class TestFhsContract(GeneratorContract):
    def make_generator(self):
        return Fhs(burn=20)


class TestBootstrapContract(GeneratorContract):
    def make_generator(self):
        return Bootstrap(block_length=10)


def _acf1(x: np.ndarray) -> float:
    """Lag-1 autocorrelation pooled over paths (last axis is time)."""
    x = x - x.mean(axis=-1, keepdims=True)
    return float((x[..., 1:] * x[..., :-1]).sum() / (x * x).sum())


def _bar_range(features: np.ndarray) -> np.ndarray:
    """log(high / low) of each bar: body plus both wicks."""
    return np.abs(features[..., 0] - features[..., 1]) + features[..., 2] + features[..., 3]


@pytest.fixture(scope="module")
def real_features(sp500_recent):
    return to_features(sp500_recent)


@pytest.fixture(scope="module")
def garch_t(sp500_recent):
    model = Garch()
    model.fit(sp500_recent)
    return model


def test_classical_generators_are_registered_through_the_entry_point():
    generators = get_registry().generators()
    for name, cls in (("gbm", Gbm), ("garch", Garch), ("bootstrap", Bootstrap)):
        assert generators[name].obj is cls
        assert generators[name].origin == "synthmarket_plugins.classical (synthmarket)"
        assert generators[name].description


def test_gbm_matches_the_training_mean_and_volatility(sp500_recent):
    model = Gbm()
    model.fit(sp500_recent)
    train = TrainingData.from_bars(sp500_recent).train
    returns = model.scaler.inverse_transform(train.astype(float))[:, 0]
    assert model.mu == pytest.approx(returns.mean())
    assert model.sigma == pytest.approx(returns.std(ddof=1))
    sampled = model.sample(400, 500, seed=0)[..., 0]
    assert sampled.mean() == pytest.approx(returns.mean(), abs=3 * model.sigma / np.sqrt(sampled.size))
    assert sampled.std() == pytest.approx(returns.std(), rel=0.01)
    assert _acf1(sampled**2) == pytest.approx(0.0, abs=0.01)  # no volatility clustering


def test_garch_recursion_equals_arch_simulate_on_the_same_innovations(garch_t):
    from arch.univariate import GARCH

    p = garch_t.params
    burn, n_obs = 50, 300
    innovations = np.random.default_rng(3).standard_normal((burn + n_obs, 4))
    garch = [p["omega"], p["alpha"], p["beta"]]
    ours, ours_var = garch_recursion(p["mu"], *garch, innovations, burn)
    starts = np.array([0.3, 1.0, 2.5, 9.0])
    ours_started, _ = garch_recursion(p["mu"], *garch, innovations, burn, initial_variance=starts)
    for path in range(innovations.shape[1]):
        feed = innovations[:, path]
        data, sigma2 = GARCH().simulate(garch, n_obs, lambda size: feed, burn=burn)
        np.testing.assert_allclose(ours[:, path], p["mu"] + data, rtol=1e-10)
        np.testing.assert_allclose(ours_var[:, path], sigma2, rtol=1e-10)
        data, _ = GARCH().simulate(garch, n_obs, lambda size: feed, burn=burn, initial_value=starts[path])
        np.testing.assert_allclose(ours_started[:, path], p["mu"] + data, rtol=1e-10)


def _rank_acf1(x: np.ndarray) -> float:
    """Lag-1 autocorrelation of the ranks of |x|: volatility clustering, robust to fat tails."""
    from scipy.stats import rankdata

    return _acf1(rankdata(np.abs(x)).reshape(x.shape))


@pytest.mark.parametrize("dist", ["normal", "t"])
def test_garch_samples_match_arch_simulate_statistically(sp500_recent, dist):
    from arch.univariate import GARCH, ConstantMean, Normal, StudentsT

    model = Garch(dist=dist)
    model.fit(sp500_recent)
    p = model.params
    params = [p["mu"], p["omega"], p["alpha"], p["beta"]] + ([p["nu"]] if dist == "t" else [])
    innovations = {"normal": Normal, "t": StudentsT}[dist](seed=np.random.default_rng(100))
    spec = ConstantMean(None, volatility=GARCH(), distribution=innovations)
    reference = np.stack([spec.simulate(params, 250, burn=500)["data"].to_numpy() for _ in range(150)]) / 100.0
    ours = model.sample(400, 250, seed=0, context=None)[..., 0]  # the stationary model, as arch simulates it
    for q in (0.5, 0.9):
        np.testing.assert_allclose(np.quantile(np.abs(ours), q), np.quantile(np.abs(reference), q), rtol=0.06)
    assert _rank_acf1(ours) == pytest.approx(_rank_acf1(reference), abs=0.03)
    assert _rank_acf1(ours) > 0.08  # volatility clusters; i.i.d. returns give 0


def test_garch_innovations_follow_arch_distributions(sp500_recent, garch_t):
    from arch.univariate import Normal, StudentsT
    from scipy.stats import ks_2samp

    normal = Garch(dist="normal")
    normal.fit(sp500_recent)
    assert normal.params["nu"] == 0.0 and garch_t.params["nu"] > 2
    for model, reference in (
        (normal, Normal(seed=np.random.default_rng(1)).simulate([])),
        (garch_t, StudentsT(seed=np.random.default_rng(1)).simulate([garch_t.params["nu"]])),
    ):
        ours = model.innovations((50_000,), np.random.default_rng(0))
        assert ours.std() == pytest.approx(1.0, rel=0.03)
        assert ks_2samp(ours, reference(50_000)).pvalue > 0.001
    t_draws = garch_t.innovations((200_000,), np.random.default_rng(0))
    assert np.mean(t_draws**4) > 4.0  # a normal's fourth moment is 3


def test_other_channels_follow_the_real_ones(real_features, sp500_recent, garch_t):
    """Wicks and volume widen on big moves; ranges cluster with GARCH volatility."""
    real_range_corr = np.corrcoef(np.abs(real_features[:, 0]), _bar_range(real_features))[0, 1]
    real_volume_corr = np.corrcoef(np.abs(real_features[:, 0]), real_features[:, 4])[0, 1]
    gbm = Gbm()
    gbm.fit(sp500_recent)
    for model in (gbm, garch_t):
        f = model.sample(100, 1000, seed=2)
        range_corr = np.corrcoef(np.abs(f[..., 0]).ravel(), _bar_range(f).ravel())[0, 1]
        volume_corr = np.corrcoef(np.abs(f[..., 0]).ravel(), f[..., 4].ravel())[0, 1]
        assert range_corr == pytest.approx(real_range_corr, abs=0.1), model.name
        assert volume_corr > 0.5 * real_volume_corr > 0.05, model.name
        assert _acf1(f[..., 4]) == pytest.approx(_acf1(real_features[:, 4]), abs=0.05), model.name
        assert (f[..., 2:4] >= 0).all()
    garch_range_acf = _acf1(_bar_range(garch_t.sample(100, 1000, seed=2)))
    assert garch_range_acf > 0.3 > abs(_acf1(_bar_range(gbm.sample(100, 1000, seed=2))))
    assert _acf1(_bar_range(real_features)) > 0.3


def test_bootstrap_draws_real_rows_in_blocks(sp500_recent):
    model = Bootstrap(block_length=20)
    model.fit(sp500_recent)
    rows = model.rows
    lookup = {row.tobytes(): i for i, row in enumerate(rows)}
    scaled = model._sample_scaled(50, None, np.random.default_rng(0), 400)
    index = np.array([[lookup.get(bar.tobytes(), -1) for bar in path] for path in scaled])
    assert (index >= 0).all()
    continues = np.diff(index, axis=1) == 1
    mean_block = continues.size / (~continues).sum()
    assert mean_block == pytest.approx(20, rel=0.15)


def test_bootstrap_conditions_on_regimes(sp500_recent):
    model = Bootstrap()
    model.fit(sp500_recent, regimes="volatility")
    calm = model.sample(100, 100, regime="calm", seed=0)[..., 0].std()
    turbulent = model.sample(100, 100, regime="turbulent", seed=0)[..., 0].std()
    assert turbulent > 1.8 * calm
    lookup = {row.tobytes(): label for row, label in zip(model.rows, model.labels)}
    schedule = model.regime_labels(90, schedule="calm:30,turbulent:30,calm:30")
    scaled = model._sample_scaled(20, schedule, np.random.default_rng(1), 90)
    labels = np.array([[lookup[bar.tobytes()] for bar in path] for path in scaled])
    np.testing.assert_array_equal(labels, np.broadcast_to(schedule, labels.shape))


def test_bootstrap_without_a_regime_uses_every_row(sp500_recent):
    model = Bootstrap()
    model.fit(sp500_recent, regimes="volatility")
    assert model.sample(200, 200, seed=0)[..., 0].std() == pytest.approx(
        to_features(sp500_recent)[: len(model.rows), 0].std(), rel=0.1
    )


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Garch(dist="cauchy"), "dist must be one of normal, t"),
        (lambda: Garch(burn=-1), "burn"),
        (lambda: Garch(burn=2.5), "burn"),
        (lambda: Bootstrap(block_length=0.5), "block_length"),
        (lambda: Bootstrap(block_length="20"), "block_length"),
        (lambda: Gbm(sigma=1), "unknown hyper-parameter"),
    ],
)
def test_bad_hyperparameters_are_config_errors(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_gbm_and_garch_are_unconditional(sp500_recent):
    for model in (Gbm(), Garch()):
        with pytest.raises(ConfigError, match="does not learn regimes"):
            model.fit(sp500_recent, regimes="trend")


def test_bootstrap_refuses_a_regime_without_training_bars(sp500_recent):
    from synthmarket.regimes import RegimeScheme

    scheme = RegimeScheme("volatility", ("calm", "normal", "turbulent"), 20, (1.0, 2.0))  # every bar is calm
    model = Bootstrap()
    model.fit(TrainingData.from_bars(sp500_recent, regimes=scheme))
    assert model.sample(2, 10, regime="calm", seed=0).shape == (2, 10, 5)
    with pytest.raises(ConfigError, match="No training bar is in regime 'turbulent'"):
        model.sample(2, 10, schedule="calm:5,turbulent:5", seed=0)
