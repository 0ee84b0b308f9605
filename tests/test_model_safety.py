"""Loading a model directory never runs code, and a damaged or tampered config.json is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from typer.testing import CliRunner

from synthmarket.cli import app
from synthmarket.errors import ConfigError, PluginError
from synthmarket.generator import Generator
from synthmarket.model_files import CHECKSUM_COVERS, CONFIG_FILE, WEIGHTS_FILE, config_sha256, file_sha256, write_config
from synthmarket.registry import get_registry
from synthmarket_plugins.classical import Garch, Gbm

EVIL = "import pathlib\npathlib.Path({marker!r}).touch()\n\nclass G:\n    pass\n"


@pytest.fixture(scope="module")
def bars(sp500):
    return sp500.loc["2015-01-01":"2016-12-31"]


@pytest.fixture()
def model_dir(bars, tmp_path) -> Path:
    model = Gbm()
    model.fit(bars)
    return model.save(tmp_path / "gbm")


@pytest.fixture()
def evil(tmp_path) -> tuple[Path, Path]:
    """A scratch dir holding evil.py, which creates ``marker`` when imported; (evil.py, marker)."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    marker = scratch / "MARKER"
    (scratch / "evil.py").write_text(EVIL.format(marker=str(marker)))
    return scratch / "evil.py", marker


def read(directory: Path) -> dict:
    return json.loads((directory / CONFIG_FILE).read_text())


def write_unsealed(directory: Path, config: dict) -> None:
    """Write ``config`` as it stands: an edit by hand, or (without ``checksum``) a directory saved before the record."""
    (directory / CONFIG_FILE).write_text(json.dumps(config))


def write_old_style(directory: Path, config: dict) -> None:
    """A config as saved before the checksum record existed: only the weights are checksummed."""
    write_unsealed(directory, {k: v for k, v in config.items() if k != "checksum"})


def set_generator(directory: Path, value: str, write=write_config) -> None:
    config = read(directory)
    config["generator"] = value
    write(directory, config)


def assert_names_value_and_generators(message: str, value: str) -> None:
    assert repr(value) in message
    assert "Known generators:" in message and "garch" in message and "gbm" in message


# -- the generator is an installed plugin's name, and nothing is imported --------------------------
@pytest.mark.parametrize("write", [write_config, write_old_style], ids=["sealed", "old-style"])
@pytest.mark.parametrize("form", ["absolute file", "relative file", "module", "unknown name"])
def test_a_generator_that_is_not_an_installed_name_is_refused_before_any_import(
    model_dir, evil, form, write, monkeypatch
):
    source, marker = evil
    monkeypatch.chdir(source.parent)
    monkeypatch.syspath_prepend(str(source.parent))  # "evil:G" would import, were imports tried
    value = {"absolute file": f"{source}:G", "relative file": "evil.py:G", "module": "evil:G", "unknown name": "evil"}[
        form
    ]
    set_generator(model_dir, value, write)
    for loader in (Generator, Gbm):
        with pytest.raises(ConfigError) as refused:
            loader.load(model_dir)
        assert str(model_dir / CONFIG_FILE) in str(refused.value)
        assert_names_value_and_generators(str(refused.value), value)
    assert not marker.exists()
    assert "evil" not in sys.modules
    assert not [m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == str(source.resolve())]


def test_the_registry_lookup_for_models_imports_nothing(evil):
    source, marker = evil
    with pytest.raises(PluginError, match="No generator named"):
        get_registry().get("generator", f"{source}:G", references=False)
    assert not marker.exists()


def test_the_cli_refuses_a_generator_file_in_one_message(model_dir, evil, tmp_path):
    source, marker = evil
    value = f"{source}:G"
    set_generator(model_dir, value)
    out = tmp_path / "x.parquet"
    result = CliRunner().invoke(
        app, ["generate", "--model", str(model_dir), "--paths", "3", "--steps", "20", "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert_names_value_and_generators(" ".join(result.output.split()), value)
    assert not marker.exists() and not out.exists()


def test_the_installed_cli_refuses_a_generator_file(model_dir, evil, tmp_path):
    """The reported reproduction, in a fresh process as a user runs it."""
    source, marker = evil
    set_generator(model_dir, f"{source}:G")
    command = [
        str(Path(sys.executable).parent / "synthmarket"),
        "generate",
        "--model",
        str(model_dir),
        "--paths",
        "3",
        "--steps",
        "20",
        "--out",
        str(tmp_path / "x.parquet"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "500"}, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "evil.py:G" in done.stderr
    assert not marker.exists()


def test_a_strategy_file_still_loads_by_reference(tmp_path):
    """Only model directories lose file references; a user naming a file still gets its class."""
    source = tmp_path / "mine.py"
    source.write_text("from synthmarket_plugins.classical import Gbm\n\nclass MyGbm(Gbm):\n    name = 'my_gbm'\n")
    assert get_registry().get("generator", f"{source}:MyGbm").__name__ == "MyGbm"


# -- the schema ------------------------------------------------------------------------------------
def _nested(depth: int):
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _drop(key):
    return lambda c: c.pop(key)


def _set(key, value):
    return lambda c: c.__setitem__(key, value)


def _set_in(section, key, value):
    return lambda c: c[section].__setitem__(key, value)


def _set_item(section, key, index, value):
    return lambda c: c[section][key].__setitem__(index, value)


SCHEMA_VIOLATIONS = {
    "format_version -5": (_set("format_version", -5), "'format_version'"),
    "format_version 0": (_set("format_version", 0), "'format_version'"),
    "format_version 99": (_set("format_version", 99), "'format_version' 99"),
    "format_version true": (_set("format_version", True), "'format_version'"),
    "format_version text": (_set("format_version", "1"), "'format_version'"),
    "format_version missing": (_drop("format_version"), "'format_version'"),
    "generator not text": (_set("generator", 5), "'generator'"),
    "unknown key": (_set("code", "import os"), "'code'"),
    "hyperparameters a list": (_set("hyperparameters", [1, 2]), "'hyperparameters'"),
    "hyperparameters nested 9 deep": (_set("hyperparameters", {"a": _nested(8)}), "'hyperparameters'"),
    "hyperparameters nested 500 deep": (_set("hyperparameters", {"a": _nested(500)}), "'hyperparameters'"),
    "scaler missing": (_drop("scaler"), "'scaler'"),
    "scaler std NaN": (_set_item("scaler", "std", 0, float("nan")), "'scaler.std'"),
    "scaler std 0": (_set_item("scaler", "std", 1, 0.0), "'scaler.std'"),
    "scaler std negative": (_set_item("scaler", "std", 1, -1.0), "'scaler.std'"),
    "scaler std too short": (lambda c: c["scaler"]["std"].pop(), "'scaler.std'"),
    "scaler mean infinite": (_set_item("scaler", "mean", 0, float("inf")), "'scaler.mean'"),
    "scaler channels": (_set_in("scaler", "channels", ["ret", "x", "upper", "lower", "volume"]), "'scaler.channels'"),
    "anchor date month 13": (_set_in("anchor", "date", "2016-13-30"), "'anchor.date'"),
    "anchor date past pandas": (_set_in("anchor", "date", "9999-01-01"), "'anchor.date'"),
    "anchor date a word": (_set_in("anchor", "date", "yesterday"), "'anchor.date'"),
    "anchor close negative": (_set_in("anchor", "close", -1.0), "'anchor.close'"),
    "anchor close NaN": (_set_in("anchor", "close", float("nan")), "'anchor.close'"),
    "anchor close text": (_set_in("anchor", "close", "100"), "'anchor.close'"),
    "anchor close beyond float": (_set_in("anchor", "close", 10**400), "'anchor.close'"),
    "anchor volume infinite": (_set_in("anchor", "volume_level", float("inf")), "'anchor.volume_level'"),
    "anchor unknown key": (_set_in("anchor", "open", 1.0), "'anchor'"),
    "regimes incomplete": (_set("regimes", {"kind": "volatility"}), "'regimes'"),
    "regimes thresholds descending": (
        _set(
            "regimes",
            {"kind": "volatility", "names": ["calm", "normal", "turbulent"], "window": 20, "thresholds": [0.02, 0.01]},
        ),
        "'regimes.thresholds'",
    ),
    "regimes names": (
        _set("regimes", {"kind": "volatility", "names": ["a", "b", "c"], "window": 20, "thresholds": [0.01, 0.02]}),
        "'regimes.names'",
    ),
    "regimes window": (
        _set("regimes", {"kind": "trend", "names": ["bear", "flat", "bull"], "window": 0, "thresholds": [-0.1, 0.1]}),
        "'regimes.window'",
    ),
    "regimes one column label": (
        _set("regimes", {"kind": "label", "names": ["only"], "window": 0, "thresholds": []}),
        "'regimes.names'",
    ),
    "train_report field": (_set_in("train_report", "seconds", "fast"), "'train_report.seconds'"),
    "train_report unknown field": (_set_in("train_report", "callback", "x"), "'train_report'"),
    "weights sha256": (_set_in("weights", "sha256", "abc"), "'weights.sha256'"),
    "weights file": (_set_in("weights", "file", 3), "'weights.file'"),
}


@pytest.mark.parametrize("write", [write_config, write_old_style], ids=["sealed", "old-style"])
@pytest.mark.parametrize("case", list(SCHEMA_VIOLATIONS))
def test_each_schema_violation_is_a_config_error_naming_the_key(model_dir, case, write):
    damage, key = SCHEMA_VIOLATIONS[case]
    config = read(model_dir)
    damage(config)
    write(model_dir, config)
    with pytest.raises(ConfigError, match=key) as refused:
        Generator.load(model_dir)
    assert str(model_dir / CONFIG_FILE) in str(refused.value)


def test_a_malformed_checksum_record_is_refused(model_dir):
    config = read(model_dir)
    config["checksum"]["covers"] = [WEIGHTS_FILE]
    write_unsealed(model_dir, config)
    with pytest.raises(ConfigError, match="'checksum' must hold covers"):
        Generator.load(model_dir)


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_a_deeply_nested_file_is_a_config_error(model_dir, depth):
    (model_dir / CONFIG_FILE).write_text("[" * depth + "]" * depth)
    with pytest.raises(ConfigError, match="not a synthmarket model configuration|too deeply"):
        Generator.load(model_dir)


def test_an_integer_of_thousands_of_digits_is_a_config_error(model_dir):
    text = (model_dir / CONFIG_FILE).read_text()
    (model_dir / CONFIG_FILE).write_text(text.replace('"format_version": 1', '"format_version": ' + "9" * 5000))
    with pytest.raises(ConfigError, match="not valid JSON"):
        Generator.load(model_dir)


def test_deeply_nested_values_are_refused_before_the_checksum(model_dir):
    config = read(model_dir)
    config["train_report"]["history"] = _nested(500)
    write_unsealed(model_dir, config)
    with pytest.raises(ConfigError, match="'train_report' must not nest lists and dicts more than 8 deep"):
        Generator.load(model_dir)


# -- the checksum covers config.json -----------------------------------------------------------------
@pytest.mark.parametrize(
    "tamper",
    [
        _set("format_version", -5),
        _set_item("scaler", "std", 0, 1e9),
        _set_in("anchor", "close", 1.0),
        _set("generator", "/tmp/evil.py:G"),
        _set_in("weights", "sha256", "0" * 64),
        _drop("train_report"),
    ],
    ids=["format_version", "scaler std", "anchor close", "generator", "weights checksum", "dropped key"],
)
def test_a_tampered_config_is_refused(model_dir, tamper):
    config = read(model_dir)
    tamper(config)
    write_unsealed(model_dir, config)
    with pytest.raises(ConfigError, match="the config does not match its checksum") as refused:
        Generator.load(model_dir)
    assert str(model_dir / CONFIG_FILE) in str(refused.value)


def test_a_reformatted_config_still_matches_its_checksum(model_dir):
    """The checksum covers the content, not the layout: re-indented JSON with keys in another order loads."""
    config = read(model_dir)
    write_unsealed(model_dir, dict(reversed(list(config.items()))))
    assert type(Generator.load(model_dir)) is Gbm


# -- weights that match their checksum but are no model's -----------------------------------------
def _replace_weights(directory: Path, payload: bytes) -> None:
    (directory / WEIGHTS_FILE).write_bytes(payload)
    config = read(directory)
    config["weights"].update(sha256=file_sha256(directory / WEIGHTS_FILE), bytes=len(payload))
    write_config(directory, config)


def test_unparsable_weights_with_a_matching_checksum_are_a_config_error(model_dir):
    _replace_weights(model_dir, b"\xff" * 64)
    with pytest.raises(ConfigError, match="not a readable safetensors file"):
        Generator.load(model_dir)


def test_weights_of_the_wrong_shape_are_a_config_error(model_dir, tmp_path):
    save_file({"mu": np.zeros(0), "sigma": np.ones((3, 3))}, str(tmp_path / "odd.safetensors"))
    _replace_weights(model_dir, (tmp_path / "odd.safetensors").read_bytes())
    with pytest.raises(ConfigError, match="does not fit a gbm"):
        Generator.load(model_dir)


def test_hyperparameters_the_class_cannot_take_are_a_config_error(model_dir):
    config = read(model_dir)
    config["hyperparameters"] = {"self": 1}
    write_config(model_dir, config)
    with pytest.raises(ConfigError, match="'hyperparameters' do not fit a gbm"):
        Generator.load(model_dir)


# -- what still loads ----------------------------------------------------------------------------------
def test_a_saved_model_is_sealed_and_round_trips(bars, tmp_path):
    model = Garch(dist="normal", burn=20)
    model.fit(bars, regimes=None)
    directory = model.save(tmp_path / "garch")
    config = read(directory)
    assert config["checksum"] == {"covers": CHECKSUM_COVERS, "sha256": config_sha256(config)}
    loaded = Generator.load(directory)
    assert type(loaded) is Garch and loaded.hparams == model.hparams
    np.testing.assert_array_equal(loaded.sample(3, 30, seed=2), model.sample(3, 30, seed=2))


def test_a_directory_saved_before_the_config_checksum_still_loads(model_dir):
    expected = Generator.load(model_dir).sample(3, 30, seed=4)
    write_old_style(model_dir, read(model_dir))
    assert "checksum" not in read(model_dir)
    np.testing.assert_array_equal(Generator.load(model_dir).sample(3, 30, seed=4), expected)


def test_an_old_style_directory_still_has_its_weights_checked(model_dir):
    write_old_style(model_dir, read(model_dir))
    weights = model_dir / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="weights do not match the checksum"):
        Generator.load(model_dir)
