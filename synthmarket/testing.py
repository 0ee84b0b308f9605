"""A contract test suite for generator plugins, shipped in the package.

A plugin proves that it honours the :class:`~synthmarket.generator.Generator` contract by
subclassing :class:`GeneratorContract` in one of its own pytest modules::

    from synthmarket.testing import GeneratorContract
    from my_package.plugin import MyGenerator

    class TestMyGenerator(GeneratorContract):
        def make_generator(self):
            return MyGenerator(hidden=8)

pytest then runs every ``test_*`` method below against that generator, trained once per
class on a slice of the bundled real S&P 500 bars: valid bars at several lengths, shapes,
seeds, chunked sampling, save/load, refusal of damaged weights, and regimes (conditional
generators) or a clear :class:`~synthmarket.errors.ConfigError` (unconditional ones).

Override :meth:`GeneratorContract.train_config` to make training short (a deep model's
``TrainConfig`` with few steps), and the class attributes to change the data slice.
"""

from __future__ import annotations

import abc
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from .checks import with_article
from .data import sample_data
from .errors import ConfigError, ModelFileError
from .generator import Generator
from .model_files import CONFIG_FILE, WEIGHTS_FILE
from .paths import Paths

LENGTHS = (10, 257, 5000)


@lru_cache(maxsize=4)
def _bars(name: str, start: str, end: str) -> pd.DataFrame:
    return sample_data(name).loc[start:end]


def assert_valid_paths(paths: Paths) -> None:
    """Every bar is finite and positive with ``low <= min(open, close) <= max(open, close) <= high``."""
    o, h, l, c, v = paths.open, paths.high, paths.low, paths.close, paths.volume
    for name, values in (("open", o), ("high", h), ("low", l), ("close", c), ("volume", v)):
        assert np.isfinite(values).all(), f"{name} holds non-finite values"
    assert (l > 0).all(), "some low is not positive"
    tol = 1e-12 * c
    assert (l <= np.minimum(o, c) + tol).all(), "some low is above the open or close"
    assert (h >= np.maximum(o, c) - tol).all(), "some high is below the open or close"
    assert (v >= 0).all(), "some volume is negative"


class GeneratorContract(abc.ABC):
    """Base test case: subclass it as ``Test<Something>`` and implement :meth:`make_generator`.

    Attributes
    ----------
    data, train_start, train_end : str
        The bundled data set and the slice of it the generator is trained on.
    regimes : str
        The regime scheme a conditional generator is trained with.
    n_paths : int
        Paths per sample in the tests.
    return_scale_factor : float
        Sampled close returns must have a standard deviation within this factor of the
        training returns' (a generous sanity bound, not a quality score).
    context_effect : float or None
        For a context-aware generator: the early volatility after a turbulent context must be
        more than this multiple of that after a calm one. None checks only that the paths
        depend on the context, for a model trained too briefly to learn volatility clustering
        (a tiny test run of a deep model).
    """

    data = "sp500"
    train_start = "2014-01-01"
    train_end = "2016-12-31"
    regimes = "volatility"
    n_paths = 3
    return_scale_factor = 10.0
    context_effect: float | None = 1.5

    @abc.abstractmethod
    def make_generator(self) -> Generator:
        """A new, unfitted instance of the generator under test (small hyper-parameters)."""

    def train_config(self) -> Any:
        """The ``config`` passed to ``fit`` (None: the generator's default training)."""
        return None

    def training_bars(self) -> pd.DataFrame:
        return _bars(self.data, self.train_start, self.train_end)

    # -- fixtures: train once per test class ----------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls) -> Generator:
        contract = cls()
        model = contract.make_generator()
        model.fit(contract.training_bars(), contract.train_config())
        return model

    @pytest.fixture(scope="class")
    @classmethod
    def fitted_with_regimes(cls) -> Generator:
        contract = cls()
        model = contract.make_generator()
        if not model.conditional:
            pytest.skip(f"{model.name} is not conditional")
        model.fit(contract.training_bars(), contract.train_config(), regimes=contract.regimes)
        return model

    # -- identity -----------------------------------------------------------------------------
    def test_has_a_name_a_description_and_json_defaults(self):
        model = self.make_generator()
        cls = type(model)
        assert isinstance(cls.name, str) and cls.name, "set the class attribute `name`"
        assert (cls.__doc__ or "").strip(), "give the class a docstring; its first line is the description"
        json.dumps(cls.defaults)
        for hp in cls.hyperparameters:  # each declared default is a value of its declared type
            assert hp.coerce(hp.default) == hp.default, f"the default of {hp.name} is not {with_article(hp.type_name)}"
        json.dumps(model.hparams)
        assert not model.is_fitted

    def test_unknown_hyperparameter_is_a_config_error(self):
        with pytest.raises(ConfigError, match="unknown hyper-parameter"):
            type(self.make_generator())(surely_not_a_hyperparameter=1)

    def test_sampling_before_fit_is_a_config_error(self):
        with pytest.raises(ConfigError):
            self.make_generator().sample(2, 5, seed=0)

    # -- sampling -------------------------------------------------------------------------------
    @pytest.mark.parametrize("n_steps", LENGTHS)
    def test_samples_make_valid_bars_at_any_length(self, fitted, n_steps):
        features = fitted.sample(self.n_paths, n_steps, seed=0)
        assert features.shape == (self.n_paths, n_steps, len(fitted.scaler.channels))
        assert np.isfinite(features).all()
        paths = Paths.from_features(features, fitted.anchor)
        assert paths.close.shape == (self.n_paths, n_steps)
        assert len(paths.dates) == n_steps
        assert_valid_paths(paths)

    def test_sample_paths_continue_from_the_training_data(self, fitted):
        paths = fitted.sample_paths(self.n_paths, 20, seed=0)
        bars = self.training_bars()
        assert paths.anchor_close == pytest.approx(float(bars["close"].iloc[-1]))
        assert paths.dates[0] > bars.index[-1]
        assert_valid_paths(paths)

    def test_one_path(self, fitted):
        features = fitted.sample(1, 30, seed=0)
        assert features.shape == (1, 30, len(fitted.scaler.channels))
        np.testing.assert_array_equal(features[0], fitted.sample(1, 30, seed=0)[0])

    def test_same_seed_same_samples(self, fitted):
        first = fitted.sample(self.n_paths, 50, seed=7)
        fitted.sample(self.n_paths, 50, seed=8)  # no state may leak from one call to the next
        np.testing.assert_array_equal(first, fitted.sample(self.n_paths, 50, seed=7))

    def test_no_context_is_reproducible(self, fitted):
        first = fitted.sample(self.n_paths, 30, seed=4, context=None)
        np.testing.assert_array_equal(first, fitted.sample(self.n_paths, 30, seed=4, context=None))

    def test_a_context_aware_generator_follows_its_context(self, fitted):
        """A calm and a turbulent context (the S&P 500 in late 2006 and in October 2008) give
        different paths, and with :attr:`context_effect` the turbulent one a higher early volatility."""
        if not fitted.uses_context:
            pytest.skip(f"{fitted.name} does not use a context (uses_context is False)")
        bars = sample_data("sp500")
        keep = max(int(fitted.min_context) + 1, 250)
        calm, turbulent = bars.loc[:"2006-12-29"].iloc[-keep:], bars.loc[:"2008-10-10"].iloc[-keep:]
        after_calm, after_turbulent = (fitted.sample(200, 5, seed=6, context=c)[..., 0] for c in (calm, turbulent))
        assert not np.allclose(after_calm, after_turbulent), "the paths should depend on the context"
        if self.context_effect is not None:
            ratio = after_turbulent.std() / after_calm.std()
            assert ratio > self.context_effect, f"early volatility should follow the context's (ratio {ratio:.2f})"

    def test_different_seed_different_samples(self, fitted):
        a = fitted.sample(self.n_paths, 50, seed=1)
        b = fitted.sample(self.n_paths, 50, seed=2)
        assert not np.allclose(a[..., 0], b[..., 0])

    def test_paths_differ_from_one_another(self, fitted):
        features = fitted.sample(4, 50, seed=3)
        assert not np.allclose(features[0, :, 0], features[1, :, 0])

    def test_chunked_sampling(self, fitted):
        chunks = list(fitted.sample_chunks(10, 40, seed=5, chunk_size=4))
        assert [len(c) for c in chunks] == [4, 4, 2]
        again = np.concatenate(list(fitted.sample_chunks(10, 40, seed=5, chunk_size=4)))
        np.testing.assert_array_equal(np.concatenate(chunks), again)
        fewer = np.concatenate(list(fitted.sample_chunks(8, 40, seed=5, chunk_size=4)))
        np.testing.assert_array_equal(np.concatenate(chunks)[:8], fewer)  # a chunk depends on its seed only
        one_chunk = np.concatenate(list(fitted.sample_chunks(10, 40, seed=5, chunk_size=10)))
        np.testing.assert_array_equal(one_chunk, fitted.sample(10, 40, seed=5))

    def test_return_scale_is_plausible(self, fitted):
        real = np.log(self.training_bars()["close"]).diff().dropna().std()
        synthetic = fitted.sample(32, 250, seed=0)[..., 0].std()
        factor = self.return_scale_factor
        assert real / factor < synthetic < real * factor, f"return std {synthetic:.3g} vs real {real:.3g}"

    # -- model directories ------------------------------------------------------------------
    def test_save_load_round_trip(self, fitted, tmp_path):
        fitted.save(tmp_path / "model")
        loaded = type(fitted).load(tmp_path / "model")
        assert type(loaded) is type(fitted)
        assert loaded.hparams == fitted.hparams
        np.testing.assert_array_equal(
            loaded.sample(self.n_paths, 60, seed=11), fitted.sample(self.n_paths, 60, seed=11)
        )
        config = json.loads((tmp_path / "model" / CONFIG_FILE).read_text())
        assert config["generator"] == fitted.name

    def test_corrupted_weights_are_refused(self, fitted, tmp_path):
        directory = fitted.save(tmp_path / "model")
        corrupt(directory / WEIGHTS_FILE)
        with pytest.raises(ModelFileError, match="checksum"):
            type(fitted).load(directory)

    def test_truncated_weights_are_refused(self, fitted, tmp_path):
        directory = fitted.save(tmp_path / "model")
        weights = directory / WEIGHTS_FILE
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        with pytest.raises(ModelFileError):
            type(fitted).load(directory)

    # -- regimes ------------------------------------------------------------------------------
    def test_unconditional_generator_refuses_regimes(self, fitted):
        if fitted.conditional:
            pytest.skip(f"{fitted.name} is conditional")
        with pytest.raises(ConfigError, match="regimes"):
            self.make_generator().fit(self.training_bars(), self.train_config(), regimes=self.regimes)
        with pytest.raises(ConfigError, match="without regimes"):
            fitted.sample(2, 10, regime="calm", seed=0)
        with pytest.raises(ConfigError, match="without regimes"):
            fitted.sample(2, 10, schedule="calm:5,turbulent:5", seed=0)

    def test_every_regime_samples_valid_bars(self, fitted_with_regimes):
        model = fitted_with_regimes
        for name in model.scheme.names:
            features = model.sample(self.n_paths, 40, regime=name, seed=0)
            assert features.shape == (self.n_paths, 40, len(model.scaler.channels))
            assert_valid_paths(Paths.from_features(features, model.anchor))
        unconditioned = model.sample(self.n_paths, 40, seed=0)
        assert np.isfinite(unconditioned).all()

    def test_regime_schedule(self, fitted_with_regimes):
        model = fitted_with_regimes
        names = model.scheme.names
        spec = f"{names[0]}:30,{names[-1]}:20,{names[0]}:30"
        features = model.sample(self.n_paths, 80, schedule=spec, seed=0)
        assert features.shape[:2] == (self.n_paths, 80)
        np.testing.assert_array_equal(features, model.sample(self.n_paths, 80, schedule=spec, seed=0))
        labels = np.repeat([0, len(names) - 1, 0], [30, 20, 30])
        np.testing.assert_array_equal(features, model.sample(self.n_paths, 80, schedule=labels, seed=0))
        with pytest.raises(ConfigError, match="schedule covers"):
            model.sample(2, 79, schedule=spec, seed=0)
        with pytest.raises(ConfigError, match="Unknown regime"):
            model.sample(2, 10, regime="no-such-regime", seed=0)
        with pytest.raises(ConfigError, match="not both"):
            model.sample(2, 80, regime=names[0], schedule=spec, seed=0)

    def test_regimes_survive_save_and_load(self, fitted_with_regimes, tmp_path):
        model = fitted_with_regimes
        loaded = type(model).load(model.save(tmp_path / "model"))
        assert loaded.scheme == model.scheme
        name = model.scheme.names[-1]
        np.testing.assert_array_equal(
            loaded.sample(self.n_paths, 30, regime=name, seed=4), model.sample(self.n_paths, 30, regime=name, seed=4)
        )


def corrupt(path: Path, at: float = 0.5) -> None:
    """Flip one byte of ``path`` at the fraction ``at`` of its length (for tests)."""
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0xFF
    path.write_bytes(bytes(data))
