"""The plugin registry: entry points, third-party packages, clashes, failures, references, hooks.

The third-party plugins are real packages (``tests/plugins/*``) installed once per session
with pip into a temporary folder, so their entry points come from real metadata:

- ``synthmarket-sample-plugin`` (entry point ``sample``): implements every hook;
- ``synthmarket-broken-plugin`` (``broken``): its module fails to import;
- ``synthmarket-clash-plugin`` (``clash``): registers a generator named like the sample's.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import shutil
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import backtrader as bt
import numpy as np
import pytest
from typer.testing import CliRunner

from synthmarket import hookimpl, hookspecs
from synthmarket.cli import app
from synthmarket.errors import PluginError
from synthmarket.generator import Generator
from synthmarket.references import load_object
from synthmarket.registry import (
    DECLARED_GROUPS,
    ENV_ALLOW,
    GROUP,
    KINDS,
    collect,
    get_registry,
    plugin_manager,
    reset_registry,
)

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).resolve().parent / "plugins"
SAMPLE_ORIGIN = "sample (synthmarket-sample-plugin)"
CLASH_ORIGIN = "clash (synthmarket-clash-plugin)"


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """The three test plugin packages, installed with pip (no network, no dependencies)."""
    work = tmp_path_factory.mktemp("plugin_packages")
    sources = []
    for name in ("sample", "broken", "clash"):
        shutil.copytree(PLUGINS / name, work / name)  # builds write into the source folder
        sources.append(str(work / name))
    site = work / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(site),
            *sources,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return site


@pytest.fixture
def installed(plugin_site, monkeypatch):
    """Put the test plugins on the path; return a function giving the registry for an allow-list."""
    monkeypatch.syspath_prepend(str(plugin_site))
    reset_registry()

    def registry_for(allow: str | None):
        if allow is None:
            monkeypatch.delenv(ENV_ALLOW, raising=False)
        else:
            monkeypatch.setenv(ENV_ALLOW, allow)
        reset_registry()
        return get_registry()

    yield registry_for
    reset_registry()


@pytest.fixture
def fresh_registry():
    reset_registry()
    yield
    reset_registry()


PLUGIN_GROUPS = (GROUP, *DECLARED_GROUPS.values())


def builtin_entry_points() -> list[importlib.metadata.EntryPoint]:
    every = importlib.metadata.entry_points()
    return [
        ep for group in PLUGIN_GROUPS for ep in every.select(group=group) if ep.dist and ep.dist.name == "synthmarket"
    ]


def declared_in_pyproject() -> dict[str, dict[str, str]]:
    """pyproject.toml's entry points of the plugin groups: group -> name -> value."""
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    return {group: eps for group, eps in groups.items() if group in PLUGIN_GROUPS}


def problems_text(registry) -> str:
    return "\n".join(map(str, registry.problems))


# -- (a) built-in plugins come through the entry-point group ---------------------------------


def test_installed_entry_points_match_pyproject():
    installed: dict[str, dict[str, str]] = {}
    for ep in builtin_entry_points():
        installed.setdefault(ep.group, {})[ep.name] = ep.value
    assert installed == declared_in_pyproject(), "the installed metadata is stale: run `pip install -e .` again"


def test_builtin_plugins_are_declared_and_load_on_use(fresh_registry, monkeypatch):
    monkeypatch.setenv(ENV_ALLOW, "")  # no third-party plugin: the built-ins still load
    eps = builtin_entry_points()
    assert eps and all(ep.group in DECLARED_GROUPS.values() for ep in eps)  # the built-ins use no hook
    registry = get_registry()
    kind_of = {group: kind for kind, group in DECLARED_GROUPS.items()}
    for ep in eps:
        info = registry.items[kind_of[ep.group]][ep.name]
        assert info.origin == f"{ep.module} (synthmarket)"
        assert info.obj is ep.load()
        assert info.description
    assert registry.problems == []


# -- (b) a third-party package is listed and usable ------------------------------------------


def test_third_party_package_is_listed_by_the_cli_subprocess(plugin_site):
    env = {k: v for k, v in os.environ.items() if k != ENV_ALLOW}  # as a user has it: unset
    env["PYTHONPATH"] = os.pathsep.join([str(plugin_site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["COLUMNS"] = "250"
    result = subprocess.run(
        [sys.executable, "-c", "from synthmarket.cli import main; main()", "plugins"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Traceback" not in out
    assert "sample_hold" in out and "Buy ``size`` units on the first bar" in out
    assert "sample_max_drawdown" in out
    assert SAMPLE_ORIGIN in out
    # the broken plugin is reported with its name, package and cause; the others still load
    assert (
        "Plugin 'broken' from package 'synthmarket-broken-plugin' (synthmarket_broken_plugin) failed to load: "
        "ModuleNotFoundError: No module named 'synthmarket_dependency_that_is_not_installed'"
    ) in out
    # the clash is shown as such, with both origins
    assert out.count("random_walk (clash)") == 2 and CLASH_ORIGIN in out


def test_third_party_generator_is_usable(installed, sp500_recent, tmp_path):
    registry = installed("synthmarket-sample-plugin")
    info = registry.generators()["random_walk"]
    assert info.origin == SAMPLE_ORIGIN
    assert info.description == "I.i.d. Gaussian features with the data's mean and spread per channel (and regime)."
    model = registry.get("generator", "random_walk")()
    model.fit(sp500_recent.iloc[-600:], regimes="volatility")
    paths = model.sample_paths(8, 300, schedule="calm:150,turbulent:150", seed=7)
    assert paths.n_paths == 8 and paths.n_steps == 300
    assert (paths.low <= np.minimum(paths.open, paths.close)).all() and (
        paths.high >= np.maximum(paths.open, paths.close)
    ).all()
    r = paths.log_returns()
    assert r[:, 150:].std() > 1.5 * r[:, :150].std()  # the turbulent half is wilder
    model.save(tmp_path / "model")
    again = Generator.load(tmp_path / "model")  # found by name through the registry
    assert type(again) is type(model)
    np.testing.assert_array_equal(
        again.sample(2, 50, regime="calm", seed=1), model.sample(2, 50, regime="calm", seed=1)
    )


def test_third_party_strategy_is_usable(installed, sp500):
    registry = installed("sample")
    strategy = registry.get("strategy", "sample_hold")
    assert registry.strategies()["sample_hold"].origin == SAMPLE_ORIGIN
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=sp500.iloc[:60].assign(openinterest=0.0)))
    cerebro.addstrategy(strategy, size=3)
    cerebro.broker.setcash(10_000.0)
    [run] = cerebro.run()
    assert run.position.size == 3
    assert cerebro.broker.getvalue() != 10_000.0  # it held the index for two months


def test_third_party_fact_is_usable(installed, sp500):
    registry = installed("sample")
    fact = registry.get("fact", "sample_max_drawdown")()
    returns = np.diff(np.log(sp500["close"].to_numpy()))
    real = fact.compute(returns)
    peak_to_trough = np.log(sp500["close"].loc["2007-10-01":"2007-10-31"].max() / sp500["close"].loc["2009-03"].min())
    assert real["max_drawdown"] == pytest.approx(peak_to_trough)  # the 2007-2009 bear market
    halves = fact.compute_paths(returns[: 2 * 2500].reshape(2, 2500))
    assert halves["max_drawdown"].shape == (2,)
    assert fact.passes(real, {"max_drawdown": np.array([real["max_drawdown"]] * 3)})
    assert not fact.passes(real, {"max_drawdown": np.array([0.01, 0.02, 0.03])})


# -- (c) two plugins, one name --------------------------------------------------------------


def test_two_plugins_with_one_name(installed):
    registry = installed("sample,clash")
    assert "random_walk" not in registry.generators()
    with pytest.raises(PluginError) as info:
        registry.get("generator", "random_walk")
    message = str(info.value)
    assert SAMPLE_ORIGIN in message and CLASH_ORIGIN in message and ENV_ALLOW in message
    assert any(SAMPLE_ORIGIN in str(p) and CLASH_ORIGIN in str(p) for p in registry.problems)
    assert registry.get("strategy", "sample_hold")  # the rest of both plugins is fine
    listing = CliRunner().invoke(app, ["plugins"])
    assert listing.exit_code == 0 and "Two plugins register a generator named 'random_walk'" in listing.output


def test_two_modules_with_one_name_without_packages():
    def plugin(name: str, cls: type) -> types.ModuleType:
        module = types.ModuleType(name)
        module.register_generators = hookimpl(lambda register: register(cls))
        return module

    class First(Generator):
        """First."""

        name = "twin"

    class Second(First):
        """Second."""

    pm = plugin_manager()
    pm.register(plugin("first_plugin", First), name="first_plugin")
    pm.register(plugin("second_plugin", Second), name="second_plugin")
    registry = collect(pm)
    with pytest.raises(PluginError, match="'twin': first_plugin and second_plugin"):
        registry.get("generator", "twin")


def test_two_packages_with_one_entry_point_name(installed, tmp_path, monkeypatch):
    other = tmp_path / "other_site" / "synthmarket_other-2.0.dist-info"
    other.mkdir(parents=True)
    (other / "METADATA").write_text("Metadata-Version: 2.1\nName: synthmarket-other\nVersion: 2.0\n")
    (other / "entry_points.txt").write_text("[synthmarket]\nsample = json\n")
    monkeypatch.syspath_prepend(str(tmp_path / "other_site"))
    registry = installed("sample,synthmarket-other")
    text = problems_text(registry)
    assert "Two packages declare a synthmarket plugin named 'sample'" in text
    assert "'synthmarket-sample-plugin'" in text and "'synthmarket-other'" in text


# -- (d) a plugin that fails ----------------------------------------------------------------


def test_failing_import_is_reported_and_the_others_load(installed):
    registry = installed(None)  # the user's default: every installed plugin
    text = problems_text(registry)
    assert "Plugin 'broken' from package 'synthmarket-broken-plugin' (synthmarket_broken_plugin) failed to load" in text
    assert "No module named 'synthmarket_dependency_that_is_not_installed'" in text
    assert "Fix or uninstall that package, or leave it out with SYNTHMARKET_LOAD_PLUGINS" in text
    assert registry.strategies()["sample_hold"].origin == SAMPLE_ORIGIN


def test_plugin_failing_inside_a_hook_is_reported_and_the_others_load():
    class Good(Generator):
        """Good."""

        name = "good"

    broken = types.ModuleType("hook_raises")
    broken.register_generators = hookimpl(lambda register: 1 / 0)
    good = types.ModuleType("good_plugin")
    good.register_generators = hookimpl(lambda register: register(Good))
    pm = plugin_manager()
    pm.register(broken, name="hook_raises")
    pm.register(good, name="good_plugin")
    registry = collect(pm, origins={"hook_raises": "hook_raises (some-package)"})
    assert registry.get("generator", "good") is Good
    assert "Plugin hook_raises (some-package) failed in register_generators: ZeroDivisionError" in problems_text(
        registry
    )


def test_registering_the_wrong_thing_is_reported():
    class NotAStrategy:
        """Not a backtrader strategy."""

    def registry_of(hook) -> str:
        module = types.ModuleType("wrong_things")
        module.register_strategies = hookimpl(hook)
        pm = plugin_manager()
        pm.register(module, name="wrong_things")
        registry = collect(pm)
        assert registry.strategies() == {}
        return problems_text(registry)

    text = registry_of(lambda register: register(NotAStrategy, name="wrong"))
    assert "wrong_things gave" in text and "must be a subclass of backtrader.Strategy" in text
    assert "without a usable name ('has space')" in registry_of(
        lambda register: register(bt.Strategy, name="has space")
    )
    assert "without a usable name ('')" in registry_of(lambda register: register(bt.Strategy, name=""))


# -- (e) SYNTHMARKET_LOAD_PLUGINS ----------------------------------------------------------


@pytest.mark.parametrize(
    "allow, loaded",
    [
        ("", set()),
        ("sample", {"sample"}),
        ("synthmarket-sample-plugin", {"sample"}),
        ("Synthmarket_Sample_Plugin", {"sample"}),
        (" sample , clash ", {"sample", "clash"}),
        ("broken", {"broken"}),
        ("nothing-like-that", set()),
        (None, {"sample", "clash", "broken"}),
    ],
)
def test_load_plugins_variable_limits_third_party_plugins(installed, allow, loaded):
    registry = installed(allow)
    text = problems_text(registry)
    origins = {info.origin for kind in KINDS for info in registry.items[kind].values()}
    origins |= {info.origin for infos in registry.conflicts.values() for info in infos}
    third_party = {o.split(" ")[0] for o in origins if not o.endswith("(synthmarket)")}
    third_party |= {"broken"} if "'broken'" in text else set()
    assert third_party == loaded
    for ep in builtin_entry_points():  # built-ins load whatever the variable says
        assert f"{ep.module} (synthmarket)" in origins


def test_cli_listing_follows_the_variable(installed):
    installed("sample")
    result = CliRunner().invoke(app, ["plugins"])
    assert result.exit_code == 0
    assert "random_walk" in result.output and "(clash)" not in result.output and "broken" not in result.output


# -- (f) module:Name and path/to/file.py:Name -----------------------------------------------

USER_FILE = '''
import backtrader as bt


class MyStrategy(bt.Strategy):
    """A strategy kept in a plain file."""

    class Settings:
        level = 3
'''


def test_module_references_load():
    import json

    assert load_object("json:dumps") is json.dumps
    assert load_object("synthmarket.references:load_object") is load_object
    assert load_object("os.path:join.__name__") == "join"


def test_file_references_load_once(tmp_path, fresh_registry):
    path = tmp_path / "my_strategy.py"
    path.write_text(USER_FILE)
    first = load_object(f"{path}:MyStrategy")
    assert issubclass(first, bt.Strategy) and first.__doc__ == "A strategy kept in a plain file."
    assert load_object(f"{path}:MyStrategy") is first  # imported once
    assert load_object(f"{path}:MyStrategy.Settings").level == 3
    assert get_registry().get("strategy", f"{path}:MyStrategy") is first


def test_relative_file_reference(tmp_path, monkeypatch):
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "mine.py").write_text(USER_FILE)
    monkeypatch.chdir(tmp_path)
    assert load_object("strategies/mine.py:MyStrategy").__name__ == "MyStrategy"


@pytest.mark.parametrize(
    "ref, message",
    [
        ("json", "is not a reference: write package.module:Name or path/to/file.py:Name"),
        ("json:", "is not a reference"),
        (":dumps", "is not a reference"),
        ("json:du mps", "is not a reference"),
        ("no_such_module_here:Thing", "Could not import 'no_such_module_here'"),
        ("json:nothing_here", "'json' has no attribute 'nothing_here'"),
        ("missing/file.py:Thing", "No such file 'missing/file.py'"),
    ],
)
def test_bad_references(ref, message):
    with pytest.raises(PluginError) as info:
        load_object(ref)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "source, cause",
    [
        ("1 / 0\n", "ZeroDivisionError: division by zero"),
        ("def broken(:\n", "SyntaxError"),
        ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    ],
)
def test_file_that_fails_to_import(tmp_path, source, cause):
    path = tmp_path / "bad.py"
    path.write_text(source)
    with pytest.raises(PluginError, match=cause):
        load_object(f"{path}:Anything")
    assert not [
        m
        for m in sys.modules
        if m.startswith("synthmarket_user_") and getattr(sys.modules[m], "__file__", "") == str(path)
    ]


def test_reference_of_the_wrong_kind(fresh_registry, tmp_path):
    path = tmp_path / "my_strategy.py"
    path.write_text(USER_FILE)
    with pytest.raises(PluginError, match="must be a subclass of synthmarket.generator.Generator"):
        get_registry().get("generator", f"{path}:MyStrategy")


def test_unknown_name_suggests_the_closest(installed):
    registry = installed("sample")
    with pytest.raises(
        PluginError, match="No generator named 'radnom_walk'. Did you mean 'random_walk'?.*Known generators:"
    ):
        registry.get("generator", "radnom_walk")
    with pytest.raises(PluginError, match="Unknown plugin kind 'model'"):
        registry.get("model", "random_walk")


# -- (g) every hook is exercised and documented ---------------------------------------------


def hook_names() -> list[str]:
    return sorted(
        name
        for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(obj, f"{hookspecs.PROJECT}_spec")
    )


def test_every_hook_has_a_kind():
    assert hook_names() == sorted(KINDS.values())


def test_every_hook_is_documented():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    missing = [name for name in hook_names() if f"### `{name}(register)`" not in docs]
    assert not missing, f"hooks missing from docs/plugins.md: {missing}"


def test_every_hook_is_implemented_by_the_sample_plugin(installed):
    installed("sample")
    module = importlib.import_module("synthmarket_sample_plugin")
    missing = [name for name in hook_names() if not hasattr(getattr(module, name, None), f"{hookspecs.PROJECT}_impl")]
    assert not missing, f"hooks the sample plugin does not implement: {missing}"


def test_every_hook_is_exercised(installed):
    registry = installed("sample")
    contributed = {kind: [i for i in registry.items[kind].values() if i.origin == SAMPLE_ORIGIN] for kind in KINDS}
    for kind, hook in KINDS.items():
        assert contributed[kind], f"the sample plugin's {hook} registered nothing"
        for info in contributed[kind]:
            assert info.description, f"{kind} {info.name} has no docstring"


# -- the wheel ships the built-in plugins and their entry points -----------------------------


def test_wheel_holds_every_module_and_the_entry_points(tmp_path):
    import configparser
    import zipfile

    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for folder in set(mapping.values()):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    [wheel] = (tmp_path / "dist").glob("synthmarket-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package, folder in mapping.items():
        for module in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in module.parts:
                inside = f"{package}/{module.relative_to(ROOT / folder).as_posix()}"
                assert inside in names, f"{inside} is missing from the wheel (list its package in pyproject.toml)"
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(zipfile.ZipFile(wheel).read(entry_points).decode())
    assert {group: dict(parser[group]) for group in PLUGIN_GROUPS if group in parser} == declared_in_pyproject()
    assert parser["console_scripts"]["synthmarket"] == "synthmarket.cli:main"
