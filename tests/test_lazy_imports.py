"""Plugins and commands import only what they use: no torch where none is needed.

Each check runs in a fresh interpreter (this process has imported everything already) and
reads its ``sys.modules`` at the end. No timing is asserted here; docs/plugins.md says why
it matters.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from synthmarket.paths import FIELDS, Paths
from synthmarket.registry import DECLARED_GROUPS

#: Modules a light command must not import.
HEAVY = ("torch", "synthmarket.deep", "synthmarket.training")
#: Nor a Monte-Carlo worker, which gets its bars as arrays: each one it imports delays its first path.
NOT_IN_WORKERS = (*HEAVY, "pandas", "pyarrow", "scipy")


def modules_after(code: str, *, cwd: Path | None = None) -> set[str]:
    """The modules a fresh interpreter holds after running ``code`` (it must succeed)."""
    script = textwrap.dedent(code) + "\nimport json, sys\nprint('MODULES=' + json.dumps(sorted(sys.modules)))\n"
    env = {**os.environ, "SYNTHMARKET_LOAD_PLUGINS": "", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("MODULES=")]
    return set(json.loads(line.removeprefix("MODULES=")))


def run_cli(*args: str) -> str:
    """Python code that runs ``synthmarket ARGS`` as the console script does, and returns."""
    return f"""
        import sys
        from synthmarket.cli import main
        sys.argv = ["synthmarket", *{list(args)!r}]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
    """


def plugin_modules(modules: set[str]) -> set[str]:
    roots = ("synthmarket_plugins.", "synthmarket_strategies", "synthmarket.facts")
    return {m for m in modules if m.startswith(roots)}


@pytest.fixture(scope="module")
def scenario_file(sp500, tmp_path_factory) -> Path:
    bars = sp500.iloc[: 4 * 60]
    arrays = {k: bars[k].to_numpy().reshape(4, 60) for k in FIELDS}
    return Paths(**arrays, dates=bars.index[:60]).save(tmp_path_factory.mktemp("scenarios") / "paths.parquet")


def test_import_synthmarket_is_light():
    modules = modules_after("import synthmarket")
    assert not {"torch", "pandas", "scipy", "backtrader"} & modules


def test_the_registry_imports_no_plugin_until_one_is_used():
    modules = modules_after("""
        from synthmarket.registry import get_registry
        registry = get_registry()
        assert registry.items["generator"] and registry.items["strategy"] and registry.items["fact"]
    """)
    assert not plugin_modules(modules)


def test_using_a_generator_imports_only_its_module():
    modules = modules_after("""
        from synthmarket.registry import get_registry
        assert get_registry().get("generator", "gbm").name == "gbm"
    """)
    assert "synthmarket_plugins.classical" in modules
    assert not {"synthmarket_plugins.rgan", "synthmarket_plugins.vae", "synthmarket_plugins.conv1d_cgan"} & modules
    assert not set(HEAVY) & modules


def test_a_training_configuration_imports_no_torch():
    modules = modules_after("""
        import synthmarket as sm
        from synthmarket.train_config import parse_duration
        config = sm.TrainConfig(steps=3, time_budget=parse_duration("5m"), device="cpu")
        assert config.to_dict()["steps"] == 3
    """)
    assert not set(HEAVY) & modules


def test_strategies_command_imports_no_torch_nor_other_plugins():
    modules = modules_after(run_cli("strategies"))
    assert "synthmarket_strategies.sma_cross" in modules
    assert not set(HEAVY) & modules
    assert not {m for m in modules if m.startswith(("synthmarket_plugins.", "synthmarket.facts"))}


def test_data_info_imports_no_torch():
    modules = modules_after(run_cli("data", "info", "--data", "sp500"))
    assert not set(HEAVY) & modules
    assert not plugin_modules(modules)


def test_backtest_of_a_scenario_file_imports_no_torch(scenario_file, tmp_path):
    modules = modules_after(
        run_cli(
            "backtest",
            "--scenarios",
            str(scenario_file),
            "-s",
            "buy_and_hold",
            "-j",
            "1",
            "--out",
            str(tmp_path / "run"),
        )
    )
    assert (tmp_path / "run" / "results.parquet").is_file()
    assert not set(HEAVY) & modules
    assert not {m for m in modules if m.startswith(("synthmarket_plugins.", "synthmarket.facts"))}


PROBE = '''
import json, os, sys

import backtrader as bt


class Probe(bt.Strategy):
    """Writes which heavy modules its worker process holds."""

    def stop(self):
        held = sorted(m for m in sys.modules if m in {heavy!r} or m.startswith("synthmarket_plugins."))
        with open(os.path.join({out!r}, f"{{os.getpid()}}.json"), "w") as f:
            json.dump(held, f)
'''


def test_monte_carlo_workers_import_neither_torch_nor_pandas(scenario_file, tmp_path):
    seen = tmp_path / "seen"
    seen.mkdir()
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE.format(heavy=NOT_IN_WORKERS, out=str(seen)))
    code = run_cli(
        "backtest",
        "--scenarios",
        str(scenario_file),
        "-s",
        f"{probe}:Probe",
        "-j",
        "2",
        "--batch-size",
        "1",
        "--out",
        str(tmp_path / "run"),
    )
    parent = modules_after(code)  # with two workers, no path runs in this process
    reports = {int(path.stem): json.loads(path.read_text()) for path in seen.glob("*.json")}
    assert reports, "no path ran"
    assert all(held == [] for held in reports.values()), reports
    assert not set(HEAVY) & parent


def test_every_built_in_is_declared_under_its_own_name():
    """A generator's or fact's ``name`` is what model directories and scorecards record."""
    every = importlib.metadata.entry_points()
    for kind, group in DECLARED_GROUPS.items():
        builtins = [ep for ep in every.select(group=group) if ep.dist and ep.dist.name == "synthmarket"]
        assert builtins, f"no built-in {kind} is declared"
        for ep in builtins:
            if kind != "strategy":
                assert ep.load().name == ep.name, f"{ep.value} is declared as {ep.name!r}"
