"""Typed hyper-parameters: declared once per generator, read once at the edge, listed by the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from synthmarket.checks import Duration, coerce_like, coerce_to
from synthmarket.cli import app
from synthmarket.errors import ConfigError
from synthmarket.generator import Generator
from synthmarket.hyperparameters import HyperParameter, parse_hparams, with_defaults
from synthmarket.registry import get_registry
from synthmarket_plugins.classical import Bootstrap, Garch, Gbm

GENERATORS = ("conv1d_cgan", "rgan", "vae", "gbm", "garch", "fhs", "bootstrap")


def generator(name: str) -> type[Generator]:
    return get_registry().get("generator", name)


@pytest.mark.parametrize("name", GENERATORS)
def test_every_generator_declares_each_hyper_parameter_once_with_type_default_and_help(name):
    cls = generator(name)
    names = [hp.name for hp in cls.hyperparameters]
    assert len(names) == len(set(names))
    assert cls.defaults == {hp.name: hp.default for hp in cls.hyperparameters}
    for hp in cls.hyperparameters:
        assert hp.help, f"{name}.{hp.name} has no help"
        assert hp.coerce(hp.default) == hp.default
    json.dumps(cls.defaults)
    assert set(cls.added_later) <= set(names)


def test_lists_are_lists_and_durations_seconds():
    cls = generator("conv1d_cgan")
    assert cls.defaults["dilations"] == [1, 3, 9, 27, 81] and cls.defaults["facts_horizons"] == [5, 20, 60]
    assert cls.defaults["time_budget"] == 570.0  # "9.5m", read once
    model = cls(dilations="1,2,4", d_dilations=[1, 2], time_budget="90s")  # the old text forms still work
    assert model.hparams["dilations"] == [1, 2, 4] and model.hparams["d_dilations"] == [1, 2]
    assert model.hparams["time_budget"] == 90.0
    assert cls(dilations="[1, 3, 9]").hparams["dilations"] == [1, 3, 9]
    assert cls(facts_horizons="").hparams["facts_horizons"] == []


def test_models_do_not_share_a_default_list():
    cls = generator("conv1d_cgan")
    a, b = cls(), cls()
    a.hparams["dilations"].append(243)
    assert b.hparams["dilations"] == [1, 3, 9, 27, 81] == cls.defaults["dilations"]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: generator("conv1d_cgan")(hidden=2.5), r"hidden=2\.5: expected a whole number"),
        (lambda: generator("conv1d_cgan")(hidden="16"), r"hidden='16': expected a whole number"),
        (lambda: generator("conv1d_cgan")(dilations="1,two"), r"dilations='1,two': expected a comma-separated list"),
        (lambda: generator("conv1d_cgan")(time_budget="soon"), r"time_budget='soon': expected a duration"),
        (lambda: generator("conv1d_cgan")(time_budget=-5), r"time_budget=-5: expected a duration"),
        (lambda: generator("vae")(feedback="maybe"), r"feedback='maybe': expected true or false"),
        (lambda: generator("rgan")(hiddn=3), r"rgan: unknown hyper-parameter\(s\) hiddn\. Known: steps=3000"),
        (lambda: Garch(dist="cauchy"), r"garch: dist must be one of normal, t"),
        (lambda: Gbm(sigma=1), r"unknown hyper-parameter\(s\) sigma\. Known: none"),
        (lambda: Bootstrap(block_length="20"), r"block_length='20'"),
    ],
)
def test_an_unknown_key_or_a_wrong_type_names_the_key_and_what_it_accepts(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_old_names_of_renamed_hyper_parameters_map_to_the_new_ones():
    rgan, vae = generator("rgan"), generator("vae")
    assert rgan.renamed == {"warmup": "burn_in"}
    assert vae.renamed == {"warmup": "burn_in", "kl_warmup": "kl_anneal_steps"}
    assert vae.saved_hparams({"warmup": 8, "kl_warmup": 10}) == {**vae.added_later, "burn_in": 8, "kl_anneal_steps": 10}
    with pytest.warns(DeprecationWarning, match="burn_in"):
        assert vae(warmup=8, kl_warmup=10).hparams["kl_anneal_steps"] == 10
    with pytest.raises(ConfigError, match="give 'burn_in' only"):
        rgan(warmup=8, burn_in=8)
    assert parse_hparams(["warmup=8"], rgan) == {"burn_in": 8}
    for cls in (rgan, vae):
        assert "warmup" not in cls.defaults and "kl_warmup" not in cls.defaults


def test_parse_hparams_reads_each_declared_type():
    cls = generator("conv1d_cgan")
    parsed = parse_hparams(
        ["dilations=1,3,9", "d_dilations=[1,2]", "time_budget=2m", "lr_g=1e-3", "facts_unbiased=no", "facts_horizons="],
        cls,
    )
    assert parsed == {
        "dilations": [1, 3, 9],
        "d_dilations": [1, 2],
        "time_budget": 120.0,
        "lr_g": 1e-3,
        "facts_unbiased": False,
        "facts_horizons": [],
    }
    assert parse_hparams(["hidden=8"], cls.hyperparameters) == {"hidden": 8}
    with pytest.raises(ConfigError, match=r"dilations='1,x': expected a comma-separated list of whole numbers"):
        parse_hparams(["dilations=1,x"], cls)
    with pytest.raises(ConfigError, match="Unknown hyper-parameter 'nope'"):
        parse_hparams(["nope=1"], cls)
    with pytest.raises(ConfigError, match="dist must be one of normal, t"):
        parse_hparams(["dist=cauchy"], Garch)


def test_the_one_coercion():
    assert (
        coerce_to("1,3,9", list[int])
        == [1, 3, 9]
        == coerce_to("[1, 3, 9]", list[int])
        == coerce_to((1, 3, 9), list[int])
    )
    assert coerce_to("", list[int]) == []
    assert coerce_to("0.5, 1", list[float]) == [0.5, 1.0]
    assert (
        coerce_to("9.5m", Duration) == 570.0
        and coerce_to("1.5h", Duration) == 5400.0
        and coerce_to(30, Duration) == 30.0
    )
    assert coerce_like("1,3,9", [1]) == [1, 3, 9]
    assert coerce_like("yes", False) is True and coerce_like("1e3", 1) == 1000 and coerce_like("x", "y") == "x"
    for value, kind in (("1,x", list[int]), ("0s", Duration), (True, Duration), (3, list[int])):
        with pytest.raises(ValueError):
            coerce_to(value, kind)


def test_with_defaults_and_declarations_are_checked():
    params = (HyperParameter("a", int, 1, "a"), HyperParameter("b", list[int], "1,2", "b"))
    assert params[1].default == [1, 2]
    assert [hp.default for hp in with_defaults(params, a=5)] == [5, [1, 2]]
    with pytest.raises(ValueError, match="no such hyper-parameters"):
        with_defaults(params, c=1)
    with pytest.raises(ValueError, match="declared twice"):
        type("Twice", (Gbm,), {"hyperparameters": params + params[:1]})


def test_a_plugin_that_lists_only_defaults_gets_types_from_them():
    class Old(Gbm):
        name = "old_style"
        defaults = {"alpha": 0.5, "lags": "1,2", "flag": False}

    assert [hp.type for hp in Old.hyperparameters] == [float, str, bool]
    assert Old(alpha=1).hparams == {"alpha": 1.0, "lags": "1,2", "flag": False}
    with pytest.raises(ConfigError, match="flag='yes'"):
        Old(flag="yes")


def test_a_plugin_with_the_old_sampling_hook_name_still_works():
    class OldHook(Gbm):
        name = "old_hook"

        def _sample(self, n, labels, rng, n_steps):
            return "old"

    assert OldHook._sample_scaled is OldHook._sample


def test_plugins_generator_lists_the_hyper_parameters_as_a_table():
    result = CliRunner().invoke(app, ["plugins", "--generator", "conv1d_cgan"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in (
        "name",
        "type",
        "default",
        "help",
        "dilations",
        "list[int]",
        "1,3,9,27,81",
        "time_budget",
        "duration",
        "9.5m",
        "facts_horizons",
        "5,20,60",
    ):
        assert text in result.output
    rgan = CliRunner().invoke(app, ["plugins", "-g", "rgan"], env={"COLUMNS": "200"})
    assert "burn_in" in rgan.output and "warmup -> burn_in" in rgan.output
    garch = CliRunner().invoke(app, ["plugins", "-g", "garch"], env={"COLUMNS": "200"})
    assert "normal | t" in garch.output
    missing = CliRunner().invoke(app, ["plugins", "-g", "nope"])
    assert missing.exit_code != 0 and "No generator named 'nope'" in missing.output
