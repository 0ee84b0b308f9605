"""synthmarket: stress-test trading strategies on realistic synthetic market histories.

The notebook API (``import synthmarket as sm``): :func:`train`, :func:`generate`,
:func:`load_model`, :func:`scorecard`, :func:`run_montecarlo`, :func:`write_run` and
:func:`build_report`. Every name but the errors and :data:`hookimpl` is imported on first use,
so that ``import synthmarket`` (and a command or worker that needs no torch, pandas or scipy)
stays light.
"""

from .errors import (
    ConfigError,
    ContextUnreadable,
    DataError,
    ModelFileError,
    PluginError,
    SynthmarketError,
    TrainingDiverged,
)
from .hookspecs import hookimpl
from .lazy import lazy_attributes

__version__ = "0.1.0"

#: Public names imported on first use: name -> its module.
_LAZY = {
    **dict.fromkeys(("load_data", "load_ohlcv", "sample_data"), ".data"),
    "Paths": ".paths",
    **dict.fromkeys(("train", "generate", "load_model", "generators", "run_pipeline"), ".api"),
    "regime_comparison": ".regime_stats",
    **dict.fromkeys(("Generator", "TrainReport"), ".generator"),
    "TrainConfig": ".train_config",
    **dict.fromkeys(("scorecard", "Scorecard"), ".facts"),
    **dict.fromkeys(("run_montecarlo", "MonteCarloResult"), ".montecarlo"),
    **dict.fromkeys(("calibrate", "read_calibration", "CalibrationResult"), ".calibration.walkforward"),
    **dict.fromkeys(("write_run", "build_report", "build_training_report", "plot_paths", "plot_training"), ".report"),
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    "ConfigError",
    "ContextUnreadable",
    "DataError",
    "ModelFileError",
    "PluginError",
    "SynthmarketError",
    "TrainingDiverged",
    "__version__",
    "hookimpl",
    *_LAZY,
]
