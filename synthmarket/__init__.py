"""synthmarket: stress-test trading strategies on realistic synthetic market histories.

The notebook API (``import synthmarket as sm``): :func:`train`, :func:`generate`,
:func:`load_model`, :func:`scorecard`, :func:`run_montecarlo`, :func:`write_run` and
:func:`build_report`. Heavy modules (torch, backtrader, scipy) load on first use.
"""

from importlib import import_module
from typing import Any

from .data import load_data, load_ohlcv, sample_data
from .errors import ConfigError, DataError, ModelFileError, PluginError, SynthmarketError, TrainingDiverged
from .hookspecs import hookimpl
from .paths import Paths

__version__ = "0.1.0"

#: Public names loaded on first use: name -> (module, attribute).
_LAZY = {
    "train": ("synthmarket.api", "train"),
    "generate": ("synthmarket.api", "generate"),
    "load_model": ("synthmarket.api", "load_model"),
    "generators": ("synthmarket.api", "generators"),
    "regime_comparison": ("synthmarket.api", "regime_comparison"),
    "Generator": ("synthmarket.generator", "Generator"),
    "TrainReport": ("synthmarket.generator", "TrainReport"),
    "TrainConfig": ("synthmarket.training", "TrainConfig"),
    "scorecard": ("synthmarket.facts", "scorecard"),
    "Scorecard": ("synthmarket.facts", "Scorecard"),
    "run_montecarlo": ("synthmarket.montecarlo", "run_montecarlo"),
    "MonteCarloResult": ("synthmarket.montecarlo", "MonteCarloResult"),
    "write_run": ("synthmarket.report", "write_run"),
    "build_report": ("synthmarket.report", "build_report"),
    "build_training_report": ("synthmarket.report", "build_training_report"),
    "plot_paths": ("synthmarket.report", "plot_paths"),
    "plot_training": ("synthmarket.report", "plot_training"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'synthmarket' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ConfigError", "DataError", "ModelFileError", "PluginError", "SynthmarketError", "TrainingDiverged",
    "Paths", "__version__", "hookimpl", "load_data", "load_ohlcv", "sample_data",
    *_LAZY,
]
