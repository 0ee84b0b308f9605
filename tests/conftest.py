"""Shared fixtures. Third-party plugins are not autoloaded in tests."""

from __future__ import annotations

import os

os.environ["SYNTHMARKET_LOAD_PLUGINS"] = ""
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

from synthmarket.data import sample_data  # noqa: E402


@pytest.fixture(scope="session")
def sp500():
    """The bundled real S&P 500 bars, 1999-2018."""
    return sample_data("sp500")


@pytest.fixture(scope="session")
def sp500_recent(sp500):
    """S&P 500 bars 2009-05-01..2018-12-31 (the Quant GANs period)."""
    return sp500.loc["2009-05-01":"2018-12-31"]
