"""synthmarket: stress-test trading strategies on realistic synthetic market histories."""

from .data import load_data, load_ohlcv, sample_data
from .errors import ConfigError, DataError, ModelFileError, PluginError, SynthmarketError, TrainingDiverged
from .hookspecs import hookimpl
from .paths import Paths

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "DataError", "ModelFileError", "PluginError", "SynthmarketError", "TrainingDiverged",
    "Paths", "__version__", "hookimpl", "load_data", "load_ohlcv", "sample_data",
]
