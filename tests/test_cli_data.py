"""``synthmarket data info`` and ``synthmarket data list``."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from synthmarket.cli import app

runner = CliRunner()


def rows(output: str) -> dict[str, str]:
    """The table's ``what | value`` rows."""
    found = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 2 and cells[0]:
            found[cells[0]] = cells[1]
    return found


def test_info_on_sp500_reports_dates_and_bars():
    result = runner.invoke(app, ["data", "info", "--data", "sp500"])
    assert result.exit_code == 0, result.output
    table = rows(result.output)
    assert table["date range"] == "1999-01-04 to 2018-12-31"
    assert table["bars"] == "5031"
    assert table["business days with no bar"] == "185"
    assert table["longest gap"] == "4 business days (2001-09-11 to 2001-09-14)"
    assert table["volume"] == "yes"
    assert float(table["annualised vol"].rstrip("%")) == pytest.approx(
        float(table["std"]) * np.sqrt(252) * 100, abs=0.011
    )
    assert float(table["excess kurtosis"]) > 3  # fat tails
    for key in ("mean", "skew", "min", "max"):
        assert re.fullmatch(r"-?\d+\.\d+", table[key]), key


def test_info_default_is_sp500_and_range_cuts(sp500):
    result = runner.invoke(app, ["data", "info", "--start", "2008-01-01", "--end", "2008-12-31"])
    assert result.exit_code == 0, result.output
    table = rows(result.output)
    assert table["date range"] == "2008-01-02 to 2008-12-31"
    assert table["bars"] == str(len(sp500.loc["2008"]))
    assert float(table["annualised vol"].rstrip("%")) > 35  # 2008 was wild


def test_info_on_a_volume_less_file(tmp_path, sp500):
    path = tmp_path / "no_volume.csv"
    sp500.iloc[:40].drop(columns="volume").to_csv(path)
    result = runner.invoke(app, ["data", "info", "--data", str(path)])
    assert result.exit_code == 0, result.output
    table = rows(result.output)
    assert table["volume"] == "no" and table["bars"] == "40"


def test_info_shows_extra_columns(tmp_path, sp500):
    path = tmp_path / "labelled.parquet"
    bars = sp500.iloc[:30].copy()
    bars["regime"] = "calm"
    bars.to_parquet(path)
    result = runner.invoke(app, ["data", "info", "--data", str(path)])
    assert result.exit_code == 0, result.output
    assert rows(result.output)["other columns"] == "regime"


def test_info_bad_options_exit_2_without_traceback():
    for args, phrase in (
        (["--missing", "zero"], "'zero' is not one of"),
        (["--start", "2030-01-01"], "holds 0 bar(s)"),
        (["--start", "soon"], "YYYY-MM-DD"),
    ):
        result = runner.invoke(app, ["data", "info", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert phrase in result.output, result.output


def test_list_shows_the_bundled_sets():
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0, result.output
    assert "sp500" in result.output and "nasdaq" in result.output
    assert result.output.count("5031") == 2


def test_data_without_a_subcommand_shows_help():
    result = runner.invoke(app, ["data"])
    assert "info" in result.output and "list" in result.output
