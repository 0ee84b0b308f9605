"""Model directories: what config.json records, and how loading refuses anything damaged."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from synthmarket import __version__
from synthmarket.data import fingerprint
from synthmarket.errors import ConfigError, ModelFileError
from synthmarket.generator import Generator
from synthmarket.model_files import CONFIG_FILE, WEIGHTS_FILE, read_config, write_config
from synthmarket_plugins.classical import Bootstrap, Garch, Gbm

BARS = slice("2015-01-01", "2016-12-31")


@pytest.fixture(scope="module")
def bars(sp500):
    return sp500.loc[BARS]


@pytest.fixture()
def model_dir(bars, tmp_path) -> Path:
    model = Garch(dist="normal", burn=50)
    model.fit(bars)
    return model.save(tmp_path / "garch")


def _config(directory: Path) -> dict:
    return json.loads((directory / CONFIG_FILE).read_text())


def _write_config(directory: Path, config: dict) -> None:
    """Write an edited config with a matching checksum, so that only the other checks can object."""
    write_config(directory, config)


def _replace_weights(directory: Path, payload: bytes) -> None:
    """Put ``payload`` in place of the weights and record its true checksum, so only the parser can object."""
    (directory / WEIGHTS_FILE).write_bytes(payload)
    config = _config(directory)
    config["weights"].update(sha256=hashlib.sha256(payload).hexdigest(), bytes=len(payload))
    _write_config(directory, config)


class _Tripwire:
    """Unpickling this would create a file: proof that loading executed code."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_config_records_what_made_the_model(bars, tmp_path):
    model = Bootstrap(block_length=15)
    model.fit(bars, regimes="volatility")
    directory = model.save(tmp_path / "model")
    assert sorted(p.name for p in directory.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    config = _config(directory)
    assert config["format"] == "synthmarket-model" and config["format_version"] == 1
    assert config["package_version"] == __version__
    assert config["generator"] == "bootstrap"
    assert config["hyperparameters"] == {"block_length": 15.0}
    assert config["scaler"]["channels"] == ["ret", "gap", "upper", "lower", "volume"]
    assert config["scaler"] == model.scaler.to_dict()
    assert config["regimes"]["kind"] == "volatility"
    assert config["regimes"]["names"] == ["calm", "normal", "turbulent"]
    assert config["data_fingerprint"] == fingerprint(bars)
    assert config["anchor"]["close"] == pytest.approx(float(bars["close"].iloc[-1]))
    assert config["anchor"]["date"] == "2016-12-30"
    assert config["weights"]["sha256"] == hashlib.sha256((directory / WEIGHTS_FILE).read_bytes()).hexdigest()
    assert config["train_report"]["generator"] == "bootstrap"


def test_config_without_regimes_says_so(model_dir):
    config = _config(model_dir)
    assert config["regimes"] is None
    assert config["hyperparameters"] == {"dist": "normal", "burn": 50}


def test_generic_load_finds_the_class_through_the_registry(model_dir):
    loaded = Generator.load(model_dir)
    assert type(loaded) is Garch
    assert loaded.hparams == {"dist": "normal", "burn": 50}
    direct = Garch.load(model_dir)
    np.testing.assert_array_equal(loaded.sample(3, 40, seed=1), direct.sample(3, 40, seed=1))


def test_saving_again_replaces_the_model(bars, model_dir):
    model = Gbm()
    model.fit(bars)
    model.save(model_dir)
    assert type(Generator.load(model_dir)) is Gbm
    assert not list(model_dir.glob("*.tmp"))


def test_unfitted_generator_cannot_be_saved(tmp_path):
    with pytest.raises(ConfigError, match="fitted"):
        Gbm().save(tmp_path / "m")


def test_tampered_weights_are_refused(model_dir):
    weights = model_dir / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum in config.json"):
        Generator.load(model_dir)


def test_truncated_weights_are_refused(model_dir):
    weights = model_dir / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="truncated"):
        Generator.load(model_dir)


def test_truncated_weights_with_a_matching_checksum_are_refused_by_the_parser(model_dir):
    _replace_weights(model_dir, (model_dir / WEIGHTS_FILE).read_bytes()[:-40])
    with pytest.raises(ModelFileError, match="not a readable safetensors file"):
        Generator.load(model_dir)


def test_a_pickle_is_refused_and_never_executed(model_dir, tmp_path):
    tripwire = tmp_path / "code-was-executed"
    _replace_weights(model_dir, pickle.dumps({"mu": _Tripwire(tripwire)}))
    with pytest.raises(ModelFileError, match="not a readable safetensors file"):
        Generator.load(model_dir)
    assert not tripwire.exists()
    # the payload is live: unpickling it would indeed have run code
    pickle.loads((model_dir / WEIGHTS_FILE).read_bytes())
    assert tripwire.exists()


def test_random_bytes_are_refused(model_dir):
    _replace_weights(model_dir, np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFileError, match="not a readable safetensors file"):
        Generator.load(model_dir)


def test_weights_of_another_model_are_refused(model_dir, tmp_path):
    save_file({"rows": np.zeros((10, 5), dtype=np.float32)}, str(tmp_path / "other.safetensors"))
    _replace_weights(model_dir, (tmp_path / "other.safetensors").read_bytes())
    with pytest.raises(ModelFileError, match="does not fit a garch"):
        Generator.load(model_dir)


def test_weights_with_wrong_channel_count_are_refused(bars, model_dir, tmp_path):
    model = Gbm()
    model.fit(bars.drop(columns="volume"))  # four channels
    other = model.save(tmp_path / "gbm4")
    config = _config(model_dir)
    config["generator"], config["hyperparameters"] = "gbm", {}
    _write_config(model_dir, config)
    _replace_weights(model_dir, (other / WEIGHTS_FILE).read_bytes())
    with pytest.raises(ModelFileError, match="does not fit a gbm"):
        Generator.load(model_dir)


def test_a_weights_path_outside_the_directory_is_refused(model_dir):
    config = _config(model_dir)
    config["weights"]["file"] = f"../{model_dir.name}/{WEIGHTS_FILE}"
    _write_config(model_dir, config)
    with pytest.raises(ModelFileError, match="missing"):
        Generator.load(model_dir)


def test_missing_weights_are_refused(model_dir):
    (model_dir / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelFileError, match="missing"):
        Generator.load(model_dir)


@pytest.mark.parametrize(
    "text, match",
    [
        (json.dumps({"architectures": ["BertModel"], "hidden_size": 768}), "not a synthmarket model configuration"),
        (json.dumps([1, 2, 3]), "not a synthmarket model configuration"),
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
    ],
)
def test_a_foreign_config_is_refused(model_dir, text, match):
    (model_dir / CONFIG_FILE).write_text(text)
    with pytest.raises(ModelFileError, match=match):
        Generator.load(model_dir)


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: c.pop("scaler"),
        lambda c: c.__setitem__("weights", "weights.safetensors"),
        lambda c: c["weights"].pop("sha256"),
        lambda c: c.__setitem__("hyperparameters", [1, 2]),
        lambda c: c.__setitem__("generator", 5),
        lambda c: c.__setitem__("format_version", "1"),
        lambda c: c.__setitem__("scaler", {"mean": [0.0]}),
        lambda c: c.__setitem__("anchor", {"close": -1.0}),
        lambda c: c.__setitem__("regimes", {"kind": "volatility"}),
        lambda c: c.__setitem__("train_report", {"generator": "garch", "unexpected": 1}),
    ],
)
def test_a_damaged_config_is_a_model_file_error(model_dir, damage):
    config = _config(model_dir)
    damage(config)
    _write_config(model_dir, config)
    with pytest.raises(ModelFileError, match="damaged|not a synthmarket"):
        Generator.load(model_dir)


def test_a_newer_format_is_refused(model_dir):
    config = _config(model_dir)
    config["format_version"] = 99
    _write_config(model_dir, config)
    with pytest.raises(ModelFileError, match="newer synthmarket"):
        Generator.load(model_dir)


def test_an_unknown_generator_is_a_config_error(model_dir):
    config = _config(model_dir)
    config["generator"] = "not-installed"
    _write_config(model_dir, config)
    with pytest.raises(ConfigError, match="No generator named 'not-installed'"):
        Generator.load(model_dir)


def test_a_model_of_a_generator_from_a_file_loads_through_its_class(bars, tmp_path):
    """A class named as file.py:Name is not registered: its models load through the class, never by running files."""
    from synthmarket.references import load_object

    source = tmp_path / "my_generators.py"
    source.write_text("from synthmarket_plugins.classical import Gbm\n\nclass MyWalk(Gbm):\n    name = 'my_walk'\n")
    cls = load_object(f"{source}:MyWalk")
    model = cls()
    model.fit(bars)
    directory = model.save(tmp_path / "mine")
    with pytest.raises(ConfigError, match="'my_walk', which is not an installed generator.*YourGenerator.load"):
        Generator.load(directory)
    again = cls.load(directory)
    np.testing.assert_array_equal(again.sample(3, 20, seed=1), model.sample(3, 20, seed=1))


def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(ModelFileError, match="No such model directory"):
        Generator.load(tmp_path / "nowhere")


def test_a_file_instead_of_a_directory_is_refused(model_dir):
    with pytest.raises(ModelFileError, match="is a file"):
        Generator.load(model_dir / WEIGHTS_FILE)


def test_a_directory_without_config_is_refused(tmp_path):
    (tmp_path / WEIGHTS_FILE).write_bytes(b"")
    with pytest.raises(ModelFileError, match=f"holds no {CONFIG_FILE}"):
        Generator.load(tmp_path)


def test_read_config_returns_the_checked_config(model_dir):
    assert read_config(model_dir)["generator"] == "garch"


def test_unknown_hyperparameters_are_config_errors(model_dir):
    with pytest.raises(ConfigError, match=r"gbm: unknown hyper-parameter\(s\) drift"):
        Gbm(drift=0.1)
    with pytest.raises(ConfigError, match="Known: dist='t', burn=100"):
        Garch(p=2)
    config = _config(model_dir)
    config["hyperparameters"]["layers"] = 3
    _write_config(model_dir, config)
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        Generator.load(model_dir)


def test_regime_requests_on_an_unconditioned_model(model_dir):
    model = Generator.load(model_dir)
    with pytest.raises(ConfigError, match="trained without regimes"):
        model.sample(2, 10, regime="turbulent")
