"""The errors a user can cause. The CLI prints their message and exits with status 2."""


class SynthmarketError(Exception):
    """Base class: something the user can fix. The message says what and how."""


class DataError(SynthmarketError):
    """Input market data is missing, malformed or inconsistent."""


class ConfigError(SynthmarketError):
    """An option, parameter, schedule or configuration value is invalid."""


class PluginError(SynthmarketError):
    """A plugin could not be found, loaded or registered."""


class ModelFileError(ConfigError):
    """A model directory is missing, truncated, tampered with or not a synthmarket model."""


class ContextUnreadable(ConfigError):
    """A generator cannot start from the given context: its filter runs away on it."""


class TrainingDiverged(SynthmarketError):
    """Training produced non-finite or exploding losses; the last good checkpoint is kept."""
