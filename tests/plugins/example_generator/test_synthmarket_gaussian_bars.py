"""The example plugin passes synthmarket's generator contract, and works once installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from synthmarket_gaussian_bars import GaussianBars

from synthmarket.errors import ConfigError
from synthmarket.testing import GeneratorContract

HERE = Path(__file__).resolve().parent


class TestGaussianBars(GeneratorContract):
    def make_generator(self):
        return GaussianBars(shrinkage=0.1)


def test_shrinkage_is_checked():
    with pytest.raises(ConfigError, match="shrinkage"):
        GaussianBars(shrinkage=2)


@pytest.mark.slow
def test_installed_plugin_is_found_by_the_registry_and_the_cli(tmp_path):
    """pip-install the package, then train, list and generate through its entry point."""
    source = shutil.copytree(HERE, tmp_path / "source", ignore=shutil.ignore_patterns("test_*", "__pycache__"))
    site = tmp_path / "site"
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
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    script = textwrap.dedent(
        f"""
        from typer.testing import CliRunner
        from synthmarket import sample_data
        from synthmarket.cli import app
        from synthmarket.generator import Generator
        from synthmarket.registry import get_registry

        info = get_registry().generators()["gaussian_bars"]
        print("origin:", info.origin)
        model = info.obj()
        model.fit(sample_data("sp500").loc["2016"])
        model.save({str(tmp_path / "model")!r})
        print("loaded:", type(Generator.load({str(tmp_path / "model")!r})).__name__)
        result = CliRunner().invoke(app, ["generate", "--model", {str(tmp_path / "model")!r}, "--paths", "4",
                                          "--steps", "10", "--out", {str(tmp_path / "paths.csv")!r}])
        print("generate:", result.exit_code, result.output)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(site), "SYNTHMARKET_LOAD_PLUGINS": "synthmarket-gaussian-bars"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "origin: gaussian_bars (synthmarket-gaussian-bars)" in done.stdout
    assert "loaded: GaussianBars" in done.stdout
    assert "generate: 0" in done.stdout
    assert len((tmp_path / "paths.csv").read_text().splitlines()) == 1 + 4 * 10


def test_the_guide_shows_this_package_verbatim():
    guide = (HERE.parents[2] / "docs" / "writing-a-generator.md").read_text()
    for name in ("pyproject.toml", "synthmarket_gaussian_bars.py"):
        assert (HERE / name).read_text().strip() in guide, f"docs/writing-a-generator.md is out of date with {name}"
